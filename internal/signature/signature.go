// Package signature implements paygate's request signing scheme
// (DESIGN.md §11): HMAC-SHA256 over "<unix timestamp>.<raw body>", sent as
// "v1=<hex>" (several comma-separated values allowed during key rotation),
// checked in constant time against every active secret, with a replay
// tolerance in both directions. The mall and finance sign with it; the
// simulator PSP signs its own protocol with it too.
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
	if sigHeader == "" || tsHeader == "" {
		return ErrMissing
	}
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrBadTimestamp, tsHeader)
	}
	if err := CheckTime(ts, now, tolerance); err != nil {
		return err
	}
	var given [][]byte
	for _, part := range strings.Split(sigHeader, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if !ok {
			continue
		}
		if b, err := hex.DecodeString(v); err == nil && len(b) == sha256.Size {
			given = append(given, b)
		}
	}
	if len(given) == 0 {
		return fmt.Errorf("%w: no well-formed v1 value", ErrNoValidSignature)
	}
	if !Match(secrets, ts, body, given) {
		return ErrNoValidSignature
	}
	return nil
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
