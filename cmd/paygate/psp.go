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

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/psp"
)

// pspHelp documents `paygate psp`; main prints it after helpText.
const pspHelp = `
PSP channel tools:
  psp verify --channel NAME --config FILE --headers FILE --body FILE [--at UNIX_TIME]
             [--kind async|sync] [--query QUERY]
                    verify one captured PSP callback offline with the channel's secrets, as the
                    gateway would, and print the notification it states (exit 0) or exactly why
                    it was rejected (exit 1). --config is a channels file; --headers holds the
                    request's header lines ("Name: value", optionally after the request line
                    "POST /path?query HTTP/1.1") or a JSON object of header lists; --at is the
                    receipt time the signed timestamp is judged against (default: now).
`

// errRejected makes main exit 1 once the reason has been printed.
var errRejected = errors.New("callback rejected")

func runPSP(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return usageError{"psp needs a subcommand: verify"}
	}
	return runPSPVerify(args[1:], stdout, time.Now)
}

// runPSPVerify is `paygate psp verify`. It makes no network request.
func runPSPVerify(args []string, stdout io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("psp verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		channel = fs.String("channel", "", "channel name in the channels file")
		config  = fs.String("config", "", "channels file")
		headers = fs.String("headers", "", "file with the callback's headers")
		body    = fs.String("body", "", "file with the callback's raw body")
		at      = fs.String("at", "", "receipt time, unix seconds (default now)")
		kind    = fs.String("kind", string(psp.Async), "async (webhook) or sync (browser return)")
		query   = fs.String("query", "", "the callback URL's raw query (default: from the request line, if any)")
	)
	if err := fs.Parse(args); err != nil {
		return usageError{"psp verify: " + err.Error()}
	}
	if fs.NArg() > 0 || *channel == "" || *config == "" || *headers == "" || *body == "" {
		return usageError{"psp verify needs --channel, --config, --headers and --body"}
	}
	if *kind != string(psp.Async) && *kind != string(psp.Sync) {
		return usageError{fmt.Sprintf("psp verify: --kind %q: want async or sync", *kind)}
	}
	receivedAt := now()
	if *at != "" {
		s, err := strconv.ParseInt(*at, 10, 64)
		if err != nil {
			return usageError{fmt.Sprintf("psp verify: --at %q is not unix seconds", *at)}
		}
		receivedAt = time.Unix(s, 0)
	}
	ch, err := app.BuildChannel(*config, *channel)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(*headers)
	if err != nil {
		return fmt.Errorf("headers: %w", err)
	}
	cb, err := parseCapturedHeaders(raw)
	if err != nil {
		return fmt.Errorf("headers file %s: %w", *headers, err)
	}
	if cb.Body, err = os.ReadFile(*body); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if *query != "" {
		if cb.Query, err = url.ParseQuery(strings.TrimPrefix(*query, "?")); err != nil {
			return usageError{fmt.Sprintf("psp verify: --query: %v", err)}
		}
	}
	cb.Kind, cb.ReceivedAt = psp.CallbackKind(*kind), receivedAt.UTC()

	n, perr := ch.ParseCallback(cb)
	if perr != nil {
		why := "other"
		switch {
		case errors.Is(perr, psp.ErrBadSignature):
			why = "bad signature"
		case errors.Is(perr, psp.ErrStale):
			why = "stale (signed time outside the tolerance at the receipt time)"
		case errors.Is(perr, psp.ErrMalformed):
			why = "malformed or not acted on (signature verified or not reached)"
		case errors.Is(perr, psp.ErrUnsupported):
			why = "unsupported by the channel"
		}
		fmt.Fprintf(stdout, "REJECTED by channel %s at %s\n  class:  %s\n  reason: %v\n",
			ch.Name(), cb.ReceivedAt.Format(time.RFC3339), why, perr)
		return errRejected
	}
	fmt.Fprintf(stdout, "ACCEPTED by channel %s at %s\n", ch.Name(), cb.ReceivedAt.Format(time.RFC3339))
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(stdout, "  %-17s %s\n", k+":", v)
		}
	}
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
func parseCapturedHeaders(raw []byte) (psp.Callback, error) {
	cb := psp.Callback{Method: http.MethodPost, Headers: http.Header{}, Query: url.Values{}}
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
		cb.Method, cb.Path, cb.Query = f[0], u.Path, u.Query()
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
