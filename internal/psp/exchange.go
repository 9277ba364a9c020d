package psp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Exchange is one HTTP request to a PSP and its answer, kept as evidence
// (DESIGN.md §1.6) with secrets masked.
type Exchange struct {
	Channel   string
	Operation string
	// OrderID and TransactionCode are filled in by the caller's recorder.
	OrderID         string
	TransactionCode string
	Method          string
	URL             string
	RequestBody     string
	StatusCode      int
	ResponseBody    string
	Err             string
	StartedAt       time.Time
	Duration        time.Duration
}

type recorderKey struct{}

type recorder struct {
	op  string
	rec func(Exchange)
}

// WithRecorder returns a context under which every PSP HTTP exchange made
// through a Transport is handed to rec, labelled with the operation name.
// rec may be called from several goroutines.
func WithRecorder(ctx context.Context, operation string, rec func(Exchange)) context.Context {
	return context.WithValue(ctx, recorderKey{}, recorder{op: operation, rec: rec})
}

// maxEvidence bounds what is kept of one request or response body.
const maxEvidence = 64 << 10

// Transport is an http.RoundTripper for adapters that records every
// exchange to the recorder in the request's context, masking secrets.
// Adapters build their http.Client on it; no adapter code logs by itself.
type Transport struct {
	// Base does the round trip; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Channel labels the exchanges.
	Channel string
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	r, ok := req.Context().Value(recorderKey{}).(recorder)
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if !ok {
		return base.RoundTrip(req)
	}
	ex := Exchange{Channel: t.Channel, Operation: r.op, Method: req.Method, URL: maskURL(req.URL), StartedAt: time.Now()}
	if req.GetBody != nil {
		if b, err := req.GetBody(); err == nil {
			body, _ := io.ReadAll(io.LimitReader(b, maxEvidence))
			_ = b.Close()
			ex.RequestBody = Mask(body)
		}
	}
	resp, err := base.RoundTrip(req)
	ex.Duration = time.Since(ex.StartedAt)
	if err != nil {
		ex.Err = err.Error()
		r.rec(ex)
		return nil, err
	}
	ex.StatusCode = resp.StatusCode
	// Evidence is the answer's first maxEvidence bytes; the caller reads
	// the whole answer, however long (a settlement file may be tens of
	// MiB): the prefix read here is put back in front of the rest.
	prefix, rerr := io.ReadAll(io.LimitReader(resp.Body, maxEvidence+1))
	if rerr != nil {
		_ = resp.Body.Close()
		ex.Err = rerr.Error()
		ex.ResponseBody = Mask(prefix)
		r.rec(ex)
		return nil, rerr
	}
	ev := prefix
	if len(ev) > maxEvidence {
		ev = ev[:maxEvidence]
	}
	ex.ResponseBody = Mask(ev)
	if len(prefix) > maxEvidence {
		ex.ResponseBody += " …(truncated)"
	}
	r.rec(ex)
	resp.Body = readCloser{io.MultiReader(bytes.NewReader(prefix), resp.Body), resp.Body}
	return resp, nil
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}

// sensitive matches field names whose values never go into evidence.
// "pan" only as a whole word of the name (card_pan, pan), not inside
// "company".
var sensitive = regexp.MustCompile(`(?i)(secret|password|passwd|cvv|cvc|card_?number|(^|[_.-])pan($|[_.-])|private|api_?key|authorization)`)

// Mask returns body with the values of sensitive fields replaced by
// "***", for JSON objects and form-encoded bodies; anything else is kept
// as it is (PSP bodies without such fields are evidence as sent).
func Mask(body []byte) string {
	if !maySayWhatIsSensitive(body) {
		return string(body)
	}
	t := bytes.TrimSpace(body)
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		var v any
		if json.Unmarshal(t, &v) == nil {
			if b, err := json.Marshal(maskValue(v)); err == nil {
				return string(b)
			}
		}
		return string(body)
	}
	if q, err := url.ParseQuery(string(t)); err == nil && len(q) > 0 && !bytes.ContainsAny(t, " \n<") {
		for k := range q {
			if sensitive.MatchString(k) {
				q[k] = []string{"***"}
			}
		}
		return q.Encode()
	}
	return string(body)
}

// sensitiveWords are lower-case fragments of every name sensitive
// matches (broader: "pan" also inside "company").
var sensitiveWords = [][]byte{[]byte("secret"), []byte("passw"), []byte("cvv"), []byte("cvc"), []byte("card"),
	[]byte("pan"), []byte("private"), []byte("api"), []byte("authorization")}

// maySayWhatIsSensitive is a cheap test before Mask parses a body: false
// only if no field name in it can match sensitive — an ASCII body without
// any of sensitiveWords. Most PSP answers have none, and parsing and
// re-encoding them cost 35 µs each, 8% of the gateway's CPU under load.
func maySayWhatIsSensitive(body []byte) bool {
	for _, c := range body {
		if c >= 0x80 {
			return true // (?i) folds some non-ASCII letters onto ASCII ones
		}
	}
	l := bytes.ToLower(body)
	for _, w := range sensitiveWords {
		if bytes.Contains(l, w) {
			return true
		}
	}
	return false
}

func maskValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, vv := range x {
			if sensitive.MatchString(k) {
				x[k] = "***"
			} else {
				x[k] = maskValue(vv)
			}
		}
	case []any:
		for i := range x {
			x[i] = maskValue(x[i])
		}
	}
	return v
}

func maskURL(u *url.URL) string {
	c := *u
	c.User = nil
	q := c.Query()
	for k := range q {
		if sensitive.MatchString(k) || strings.EqualFold(k, "sign") || strings.EqualFold(k, "signature") {
			q[k] = []string{"***"}
		}
	}
	c.RawQuery = q.Encode()
	return c.String()
}

// NewClient is the HTTP client every adapter talks to its PSP with: every
// exchange recorded as evidence under the channel's name, each call
// bounded by timeout, and redirects never followed — a redirect would
// carry credentials or a signature made for one URL somewhere else, so it
// is an answer to report. base nil means http.DefaultTransport.
func NewClient(channel string, base http.RoundTripper, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport:     &Transport{Base: base, Channel: channel},
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
