// Package signature implements paygate's request signing scheme
// (DESIGN.md §11): HMAC-SHA256 over "<unix timestamp>.<raw body>", sent as
// "v1=<hex>" (several comma-separated values allowed during key rotation),
// checked in constant time against every active secret, with a replay
// tolerance in both directions. The mall and finance sign with it; the
// simulator PSP signs its own protocol with it too.
//
// Version 2 binds the request too: HMAC-SHA256 over "<unix
// timestamp>.<METHOD>.<target>.<raw body>", the target being the path and
// query exactly as sent in the request line ("/v1/payments/A1001?wait=5s"),
// sent as "v2=<hex>". A v1 signature covers no method or path, so it says
// nothing about which read it was made for: reads must carry a v2 one
// (VerifyRequest), and the signature of one read is worth nothing on
// another. v1 stays valid for bodies (POST) as it always was.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a signed timestamp may be from now, either way.
const DefaultTolerance = 300 * time.Second

// Verification errors; check with errors.Is.
var (
	ErrMissing          = errors.New("signature or timestamp missing")
	ErrBadTimestamp     = errors.New("timestamp is not unix seconds")
	ErrTooOld           = errors.New("timestamp too old")
	ErrTooNew           = errors.New("timestamp too far in the future")
	ErrNoValidSignature = errors.New("no valid signature")
)

// Compute is the hex HMAC-SHA256 of "<timestamp>.<body>" under secret.
func Compute(secret []byte, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Header is the signature header value "v1=<hex>" for one secret.
func Header(secret []byte, timestamp int64, body []byte) string {
	return "v1=" + Compute(secret, timestamp, body)
}

// Verify checks a signature header against the raw body, the timestamp
// header and a set of active secrets, at time now. It returns nil only if
// the timestamp is within tolerance and some v1 value matches some secret.
func Verify(sigHeader, tsHeader string, body []byte, secrets [][]byte, now time.Time, tolerance time.Duration) error {
	ts, err := timestamp(sigHeader, tsHeader, now, tolerance)
	if err != nil {
		return err
	}
	given := values(sigHeader, "v1=")
	if len(given) == 0 {
		return fmt.Errorf("%w: no well-formed v1 value", ErrNoValidSignature)
	}
	if !Match(secrets, ts, body, given) {
		return ErrNoValidSignature
	}
	return nil
}

// Request is what a v2 signature binds: the request's method, its target
// (path and query as sent in the request line, e.g.
// "/v1/payments/A1001?wait=5s") and its raw body (empty for a read).
type Request struct {
	Method string
	Target string
	Body   []byte
}

// content is "<ts>.<METHOD>.<target>.<body>", the bytes a v2 MAC covers.
func (r Request) content(ts int64) []byte {
	b := make([]byte, 0, 24+len(r.Method)+len(r.Target)+len(r.Body))
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, '.')
	b = append(b, r.Method...)
	b = append(b, '.')
	b = append(b, r.Target...)
	b = append(b, '.')
	return append(b, r.Body...)
}

// ComputeRequest is the hex HMAC-SHA256 of
// "<timestamp>.<METHOD>.<target>.<body>" under secret: a v2 signature.
func ComputeRequest(secret []byte, timestamp int64, r Request) string {
	m := hmac.New(sha256.New, secret)
	m.Write(r.content(timestamp))
	return hex.EncodeToString(m.Sum(nil))
}

// RequestHeader is the signature header value "v2=<hex>" for one secret.
func RequestHeader(secret []byte, timestamp int64, r Request) string {
	return "v2=" + ComputeRequest(secret, timestamp, r)
}

// VerifyRequest checks a signature header for request r, as Verify does,
// accepting v2 values (over r's method, target and body) and, with
// bodyOnly, v1 values (over the body alone) too. The ingress passes
// bodyOnly for the requests the contract lets a v1 signature authorise,
// a POST's body, and not for reads, whose v1 signature (over an empty
// body) would fit every read at once.
func VerifyRequest(sigHeader, tsHeader string, r Request, secrets [][]byte, now time.Time, tolerance time.Duration, bodyOnly bool) error {
	ts, err := timestamp(sigHeader, tsHeader, now, tolerance)
	if err != nil {
		return err
	}
	v2, v1 := values(sigHeader, "v2="), values(sigHeader, "v1=")
	if len(v2) > 0 && matchContent(secrets, r.content(ts), v2) {
		return nil
	}
	if bodyOnly && len(v1) > 0 && Match(secrets, ts, r.Body, v1) {
		return nil
	}
	switch {
	case bodyOnly && len(v1)+len(v2) == 0:
		return fmt.Errorf("%w: no well-formed v1 or v2 value", ErrNoValidSignature)
	case !bodyOnly && len(v2) == 0 && len(v1) > 0:
		return fmt.Errorf("%w: %s needs a v2 signature, over \"<timestamp>.<METHOD>.<path?query>.<body>\"; a v1 signature covers no method or path", ErrNoValidSignature, r.Method)
	case !bodyOnly && len(v2) == 0:
		return fmt.Errorf("%w: no well-formed v2 value", ErrNoValidSignature)
	case len(v2) > 0:
		return fmt.Errorf("%w: no v2 value matches %s %s", ErrNoValidSignature, r.Method, r.Target)
	}
	return ErrNoValidSignature
}

// timestamp reads the timestamp header and checks it against now.
func timestamp(sigHeader, tsHeader string, now time.Time, tolerance time.Duration) (int64, error) {
	if sigHeader == "" || tsHeader == "" {
		return 0, ErrMissing
	}
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrBadTimestamp, tsHeader)
	}
	return ts, CheckTime(ts, now, tolerance)
}

// values are the well-formed MACs of one version ("v1=", "v2=") in a
// signature header; other versions and malformed values are skipped.
func values(sigHeader, version string) [][]byte {
	var given [][]byte
	for _, part := range strings.Split(sigHeader, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), version)
		if !ok {
			continue
		}
		if b, err := hex.DecodeString(v); err == nil && len(b) == sha256.Size {
			given = append(given, b)
		}
	}
	return given
}

// matchContent reports whether any given MAC is HMAC-SHA256 of content
// under any secret, in constant time per comparison.
func matchContent(secrets [][]byte, content []byte, given [][]byte) bool {
	ok := false
	for _, secret := range secrets {
		m := hmac.New(sha256.New, secret)
		m.Write(content)
		want := m.Sum(nil)
		for _, g := range given {
			ok = hmac.Equal(want, g) || ok
		}
	}
	return ok
}

// Match reports whether any of the given raw HMAC-SHA256 values is the
// MAC of "<ts>.<body>" under any of the secrets, comparing in constant
// time. PSP schemes of the same construction (Stripe's) use it with their
// own header syntax.
func Match(secrets [][]byte, ts int64, body []byte, given [][]byte) bool {
	prefix := []byte(strconv.FormatInt(ts, 10) + ".")
	ok := false
	for _, secret := range secrets {
		m := hmac.New(sha256.New, secret)
		m.Write(prefix)
		m.Write(body)
		want := m.Sum(nil)
		for _, g := range given {
			ok = hmac.Equal(want, g) || ok
		}
	}
	return ok
}

// CheckTime checks a signed unix timestamp against now, both ways within
// tolerance, in whole seconds: no Duration is built from the difference,
// so a timestamp centuries away cannot overflow into "within tolerance".
// Errors wrap ErrTooOld or ErrTooNew.
func CheckTime(ts int64, now time.Time, tolerance time.Duration) error {
	n, tol := now.Unix(), int64(tolerance/time.Second)
	switch {
	case ts < n-tol:
		return fmt.Errorf("%w: signed %ds before, tolerance %ds", ErrTooOld, n-ts, tol)
	case ts > n+tol:
		return fmt.Errorf("%w: signed %ds ahead, tolerance %ds", ErrTooNew, ts-n, tol)
	}
	return nil
}
