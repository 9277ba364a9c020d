package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/psp"
)

// pspHelp documents `paygate psp`; main prints it after helpText.
const pspHelp = `
PSP channel tools:
  psp verify --channel NAME --config FILE --headers FILE --body FILE [--at TIME]
             [--kind async|sync] [--query QUERY] [--certs DIR]
                    verify one captured PSP callback offline with the channel's secrets, as the
                    gateway would, and print the notification it states (exit 0), exactly why
                    it was rejected (exit 1), or why it cannot judge (exit 2: usage, the
                    channels file, a certificate it does not have). It never reaches the
                    network. paygate psp verify -h lists the flags and the channel kinds.
`

// verifyUsage is `paygate psp verify -h`; %s is the flags, then the kinds.
const verifyUsage = `usage: paygate psp verify --channel NAME --config FILE --headers FILE --body FILE [flags]

Verify one captured PSP callback offline, as the gateway would: the channel's
secrets come from the channels file, the receipt time from --at. Nothing is
sent anywhere: a PayPal channel's signing certificate must be pinned in the
channels file ("certificates") or saved in --certs DIR, and is judged at --at.

Exit status: 0 accepted (the notification is printed), 1 rejected (the reason
is printed, and whether the signature verified), 2 usage or configuration error
(bad flags, an unreadable file, an unknown channel, a missing certificate).

Flags:
%s
Channel kinds: %s
`

// errRejected makes main exit 1 once the reason has been printed.
var errRejected = errors.New("callback rejected")

// configError makes main exit 2, like a usage error, for a command that
// cannot judge its input (an unreadable or incomplete file).
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

func runPSP(args []string, stdout io.Writer) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		_, err := fmt.Fprint(stdout, strings.TrimPrefix(pspHelp, "\n"))
		return err
	}
	if len(args) == 0 || args[0] != "verify" {
		return usageError{"psp needs a subcommand: verify (paygate psp verify -h)"}
	}
	return runPSPVerify(args[1:], stdout, time.Now)
}

// parseAt reads --at: unix seconds, or an RFC 3339 time. A number too
// large for seconds (milliseconds, as JavaScript and Java give) is
// refused rather than read as a date thousands of years ahead.
func parseAt(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	s, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("--at %q: want unix seconds (1764064800) or an RFC 3339 time (2025-11-25T10:00:00Z)", v)
	}
	// 10^11 seconds is the year 5138; 10^11 milliseconds is 1973.
	if s >= 1e11 || s <= -1e11 {
		return time.Time{}, fmt.Errorf("--at %d is in milliseconds (or finer), not seconds: give unix seconds, e.g. --at %d", s, s/1000)
	}
	return time.Unix(s, 0), nil
}

// runPSPVerify is `paygate psp verify`. It makes no network request.
func runPSPVerify(args []string, stdout io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("psp verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		channel = fs.String("channel", "", "the channel's name in the channels file (required)")
		config  = fs.String("config", "", "the channels file (required)")
		headers = fs.String("headers", "", "file with the callback's headers: \"Name: value\" lines, optionally after the request line\n\"POST /path?query HTTP/1.1\", or a JSON object of header lists (required)")
		body    = fs.String("body", "", "file with the callback's raw body (required)")
		at      = fs.String("at", "", "when the gateway received it: unix seconds or RFC 3339 (default now);\nsigned times and pinned certificates are judged at it")
		kind    = fs.String("kind", domain.CallbackAsync.String(), "async (webhook) or sync (browser return)")
		query   = fs.String("query", "", "the callback URL's raw query (default: from the request line, if any)")
		certs   = fs.String("certs", "", "directory of pinned signing certificates (PayPal): PEM files named like the\nlast path segment of their URL (CERT-…), with or without .pem")
	)
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		var flags strings.Builder
		fs.SetOutput(&flags)
		fs.PrintDefaults()
		_, err := fmt.Fprintf(stdout, verifyUsage, flags.String(), strings.Join(app.ChannelKinds(), ", "))
		return err
	case err != nil:
		return usageError{"psp verify: " + err.Error()}
	}
	if fs.NArg() > 0 || *channel == "" || *config == "" || *headers == "" || *body == "" {
		return usageError{"psp verify needs --channel, --config, --headers and --body (paygate psp verify -h)"}
	}
	cbKind, err := domain.ParseCallbackKind(*kind)
	if err != nil || cbKind == domain.CallbackStatusProbe {
		return usageError{fmt.Sprintf("psp verify: --kind %q: want async or sync", *kind)}
	}
	receivedAt := now()
	if *at != "" {
		t, err := parseAt(*at)
		if err != nil {
			return usageError{"psp verify: " + err.Error()}
		}
		receivedAt = t
	}
	if *certs != "" {
		if st, err := os.Stat(*certs); err != nil || !st.IsDir() {
			return usageError{fmt.Sprintf("psp verify: --certs %q is not a directory", *certs)}
		}
	}
	ch, err := app.BuildOfflineChannel(*config, *channel, psp.Offline{At: receivedAt, CertDir: *certs})
	if err != nil {
		return configError{err}
	}
	raw, err := os.ReadFile(*headers)
	if err != nil {
		return configError{fmt.Errorf("headers: %w", err)}
	}
	cb, err := parseCapturedHeaders(raw)
	if err != nil {
		return configError{fmt.Errorf("headers file %s: %w", *headers, err)}
	}
	if cb.Body, err = os.ReadFile(*body); err != nil {
		return configError{fmt.Errorf("body: %w", err)}
	}
	if *query != "" {
		cb.RawQuery = strings.TrimPrefix(*query, "?")
		if cb.Query, err = url.ParseQuery(cb.RawQuery); err != nil {
			return usageError{fmt.Sprintf("psp verify: --query: %v", err)}
		}
	}
	cb.Kind, cb.ReceivedAt = cbKind, receivedAt.UTC()

	// The gateway's one verification, as the ingress and the callbacks
	// group run it.
	v := psp.Verify(ch, cb)
	perr := v.Err
	if errors.Is(perr, psp.ErrCertificateMissing) {
		fmt.Fprintf(stdout, "CANNOT VERIFY with channel %s at %s\n  reason: %v\n"+
			"  psp verify fetches nothing: pin the certificate in the channel's \"certificates\" in %s,\n"+
			"  or save it (as PayPal serves it, at the URL above) into a directory given as --certs DIR\n",
			ch.Name(), cb.ReceivedAt.Format(time.RFC3339), perr, *config)
		return configError{fmt.Errorf("channel %s: signing certificate missing", ch.Name())}
	}
	if perr != nil {
		verified := errors.Is(perr, psp.ErrVerified)
		why, sig := "other", "not verified: the callback was refused before its signature was checked"
		switch {
		case errors.Is(perr, psp.ErrBadSignature):
			why, sig = "bad signature", "BAD (wrong secret, tampered, forged, or not signed)"
		case errors.Is(perr, psp.ErrStale):
			why = "stale (signed time outside the tolerance at the receipt time)"
			sig = "not accepted: signed too long before or after the receipt time (--at)"
		case errors.Is(perr, psp.ErrMalformed):
			why = "malformed or not acted on"
		case errors.Is(perr, psp.ErrUnsupported):
			why = "unsupported by the channel"
		case psp.IsTemporary(perr):
			why = "temporary (the gateway would try again)"
		}
		reason := perr.Error()
		if verified {
			sig = "ok (the channel's secrets verify it)"
			reason = "signature ok; " + reason
		}
		fmt.Fprintf(stdout, "REJECTED by channel %s at %s\n  signature: %s\n  class:  %s\n  reason: %s\n",
			ch.Name(), cb.ReceivedAt.Format(time.RFC3339), sig, why, reason)
		return errRejected
	}
	fmt.Fprintf(stdout, "ACCEPTED by channel %s at %s\n", ch.Name(), cb.ReceivedAt.Format(time.RFC3339))
	row := func(k, val string) {
		if val != "" {
			fmt.Fprintf(stdout, "  %-17s %s\n", k+":", val)
		}
	}
	if v.Kind == psp.VerdictRefund {
		row("refund_ref", v.Refund.RefundRef)
		row("psp_reference", v.Refund.PSPReference)
		row("status", v.RefundStatus().String())
		fmt.Fprintln(stdout, "  (a refund's outcome: the gateway finishes the refund it names)")
		return nil
	}
	n := v.Notification
	row("transaction_code", n.TransactionCode)
	row("psp_reference", n.PSPReference)
	row("event_id", n.EventID)
	row("status", n.Status.String())
	if n.Amount.IsZero() {
		row("amount", "(not stated: confirmed by query)")
	} else {
		row("amount", fmt.Sprintf("%d minor units (%s)", n.Amount.Minor(), n.Amount))
	}
	if !n.OccurredAt.IsZero() {
		row("occurred_at", n.OccurredAt.UTC().Format(time.RFC3339))
	}
	if ch.Capabilities().ConfirmByQuery {
		fmt.Fprintln(stdout, "  (the gateway confirms this with the PSP's status query before it changes anything)")
	}
	return nil
}

// parseCapturedHeaders reads a headers file: a JSON object of header
// lists (or single values), or header lines in HTTP form, optionally
// after a request line whose target gives the path and query.
func parseCapturedHeaders(raw []byte) (domain.Callback, error) {
	cb := domain.Callback{Method: http.MethodPost, Headers: http.Header{}, Query: url.Values{}}
	t := strings.TrimSpace(string(raw))
	if strings.HasPrefix(t, "{") {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(t), &m); err != nil {
			return cb, err
		}
		for k, v := range m {
			var list []string
			if json.Unmarshal(v, &list) != nil {
				var one string
				if err := json.Unmarshal(v, &one); err != nil {
					return cb, fmt.Errorf("header %s: want a string or a list of strings", k)
				}
				list = []string{one}
			}
			for _, s := range list {
				cb.Headers.Add(k, s)
			}
		}
		return cb, nil
	}
	lines := strings.Split(strings.ReplaceAll(t, "\r\n", "\n"), "\n")
	if f := strings.Fields(lines[0]); len(f) == 3 && strings.HasPrefix(f[2], "HTTP/") {
		u, err := url.ParseRequestURI(f[1])
		if err != nil {
			return cb, fmt.Errorf("request line: %w", err)
		}
		// The query read as the gateway reads it (wire.Callback): a
		// malformed one is refused by Verify.
		cb.Method, cb.Path, cb.RawQuery = f[0], u.Path, u.RawQuery
		cb.Query, cb.QueryErr = url.ParseQuery(u.RawQuery)
		lines = lines[1:]
	}
	r := textproto.NewReader(bufio.NewReader(strings.NewReader(strings.Join(lines, "\r\n") + "\r\n\r\n")))
	h, err := r.ReadMIMEHeader()
	if err != nil {
		return cb, err
	}
	cb.Headers = http.Header(h)
	return cb, nil
}
