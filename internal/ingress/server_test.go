package ingress_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/internal/ingress"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/signature"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/schemas"
)

// These tests run the ingress alone, over HTTP, with Kafka and the store
// replaced by fakes: what it answers and what it writes, without a broker
// or a database. The end-to-end tests (e2e) run it for real.

const (
	keyID  = "mall-1"
	secret = "mall-secret"
)

var now = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// kafka records what the ingress wrote; with down set, every write fails.
type kafka struct {
	mu   sync.Mutex
	msgs []producers.Message
	down bool
}

func (k *kafka) Write(_ context.Context, msgs ...producers.Message) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.down {
		return errors.New("kafka: leader not available")
	}
	k.msgs = append(k.msgs, msgs...)
	return nil
}

func (k *kafka) written() []producers.Message {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]producers.Message(nil), k.msgs...)
}

// db answers reads from payments; err, if set, is every read's error.
type db struct {
	payments map[string]schemas.Payment
	err      error
}

func (d *db) Payment(_ context.Context, orderID string) (schemas.Payment, error) {
	if d.err != nil {
		return schemas.Payment{}, d.err
	}
	p, ok := d.payments[orderID]
	if !ok {
		return p, store.ErrNotFound
	}
	return p, nil
}

func (d *db) ReturnTarget(context.Context, string) (store.ReturnTarget, error) {
	return store.ReturnTarget{}, store.ErrNotFound
}

func (d *db) Refund(context.Context, string) (schemas.Refund, []byte, error) {
	return schemas.Refund{}, nil, store.ErrNotFound
}

func (d *db) ReconReport(context.Context, store.ReconRunFilter, bool) ([]schemas.ReconRun, error) {
	return nil, d.err
}

type noChannels struct{}

func (noChannels) Channel(string) (psp.Channel, bool) { return nil, false }

func newServer(t *testing.T, k *kafka, d *db) *httptest.Server {
	t.Helper()
	s := ingress.New(ingress.Config{MallKeys: map[string][]string{keyID: {secret}}, ReturnHosts: []string{"shop.example"},
		Now: func() time.Time { return now }}, k, d, noChannels{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	srv := httptest.NewServer(s.Handler(ingress.Public, ingress.API))
	t.Cleanup(srv.Close)
	return srv
}

func payBody(orderID string) []byte {
	b, _ := json.Marshal(schemas.PayRequest{OrderID: orderID, Amount: 1999, Currency: "USD", Country: "US", Method: "card",
		Description: "Phone case", Buyer: schemas.Buyer{ID: "u42", Email: "a@example.com", IP: "203.0.113.7"},
		ReturnURLs: schemas.ReturnURLs{Success: "https://shop.example/ok", Failure: "https://shop.example/fail", Pending: "https://shop.example/wait"}})
	return b
}

// post sends body signed with sec (unsigned if sec is "") and returns the
// status, the answer and its headers.
func post(t *testing.T, srv *httptest.Server, path string, body []byte, sec string, extra http.Header) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if sec != "" {
		req.Header.Set("X-Paygate-Key-Id", keyID)
		req.Header.Set("X-Paygate-Timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("X-Paygate-Signature", signature.Header([]byte(sec), now.Unix(), body))
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	return do(t, req)
}

// get sends a read signed as the mall signs it (v2, over GET and path).
func get(t *testing.T, srv *httptest.Server, path string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Paygate-Key-Id", keyID)
	req.Header.Set("X-Paygate-Timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("X-Paygate-Signature", signature.RequestHeader([]byte(secret), now.Unix(), signature.Request{Method: http.MethodGet, Target: path}))
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// A signed pay request is answered 202 once it is on the pay-requests
// topic, keyed by its order id, with its raw body; retries with one
// Idempotency-Key carry one message id.
func TestPayRequestAcceptedOnceWritten(t *testing.T) {
	t.Parallel()
	k := &kafka{}
	srv := newServer(t, k, &db{})
	body := payBody("A1001")
	code, b, _ := post(t, srv, "/v1/payments", body, secret, nil)
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, b)
	}
	var got schemas.PayAccepted
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(schemas.PayAccepted{OrderID: "A1001", StatusURL: "/v1/payments/A1001"}, got); d != "" {
		t.Errorf("answer (-want +got):\n%s", d)
	}
	msgs := k.written()
	if len(msgs) != 1 {
		t.Fatalf("%d messages written, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Topic != schemas.TopicPayRequests || m.Key != "A1001" || m.Type != schemas.TypePayRequest || !bytes.Equal(m.Value, body) || m.ID == "" {
		t.Errorf("message %+v", m)
	}

	idem := http.Header{"Idempotency-Key": {"retry-1"}}
	for range 2 {
		if code, b, _ := post(t, srv, "/v1/payments", body, secret, idem); code != http.StatusAccepted {
			t.Fatalf("POST with Idempotency-Key: %d %s", code, b)
		}
	}
	msgs = k.written()[1:]
	if len(msgs) != 2 || msgs[0].ID != msgs[1].ID || msgs[0].ID != "pay_request/"+keyID+"/retry-1" {
		t.Errorf("retries' message ids: %q, %q; want one id of the key", msgs[0].ID, msgs[1].ID)
	}
}

// What is not signed by a known key, or signed over other bytes, or not
// JSON, is refused and nothing is written.
func TestPayRequestRefusedWritesNothing(t *testing.T) {
	t.Parallel()
	k := &kafka{}
	srv := newServer(t, k, &db{})
	body := payBody("A1002")
	cases := []struct {
		name string
		send func() (int, []byte, http.Header)
		want int
	}{
		{"unsigned", func() (int, []byte, http.Header) { return post(t, srv, "/v1/payments", body, "", nil) }, http.StatusUnauthorized},
		{"wrong secret", func() (int, []byte, http.Header) { return post(t, srv, "/v1/payments", body, "guess", nil) }, http.StatusUnauthorized},
		{"not JSON", func() (int, []byte, http.Header) {
			return post(t, srv, "/v1/payments", body, secret, http.Header{"Content-Type": {"text/plain"}})
		}, http.StatusUnsupportedMediaType},
		{"schema", func() (int, []byte, http.Header) {
			return post(t, srv, "/v1/payments", []byte(`{"order_id": "A1002"}`), secret, nil)
		}, http.StatusBadRequest},
		{"Idempotency-Key with a space", func() (int, []byte, http.Header) {
			return post(t, srv, "/v1/payments", body, secret, http.Header{"Idempotency-Key": {"a b"}})
		}, http.StatusBadRequest},
	}
	for _, c := range cases {
		code, b, _ := c.send()
		var e schemas.Error
		if code != c.want || json.Unmarshal(b, &e) != nil || e.Error == "" || e.Detail == "" {
			t.Errorf("%s: %d %s, want %d with an error and its detail", c.name, code, b, c.want)
		}
	}
	if n := len(k.written()); n != 0 {
		t.Errorf("%d messages written for refused requests", n)
	}
}

// With Kafka down nothing is accepted: 503 with Retry-After.
func TestPayRequestWhileKafkaIsDown(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &kafka{down: true}, &db{})
	code, b, h := post(t, srv, "/v1/payments", payBody("A1003"), secret, nil)
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("Kafka down: %d %s (Retry-After %q), want 503 with Retry-After", code, b, h.Get("Retry-After"))
	}
}

// GET /v1/payments answers the store's read model: the order, 404 for one
// not (yet) there, 503 while the database is down, 400 for a bad id, 401
// unsigned.
func TestGetPayment(t *testing.T) {
	t.Parallel()
	p := schemas.Payment{OrderID: "A1004", Status: "pending", Amount: 1999, Currency: "USD"}
	srv := newServer(t, &kafka{}, &db{payments: map[string]schemas.Payment{"A1004": p}})
	code, b, _ := get(t, srv, "/v1/payments/A1004")
	var got schemas.Payment
	if code != http.StatusOK || json.Unmarshal(b, &got) != nil {
		t.Fatalf("GET: %d %s", code, b)
	}
	if d := cmp.Diff(p, got); d != "" {
		t.Errorf("payment (-want +got):\n%s", d)
	}
	if code, b, _ := get(t, srv, "/v1/payments/NOPE"); code != http.StatusNotFound {
		t.Errorf("unknown order: %d %s", code, b)
	}
	if code, b, _ := get(t, srv, "/v1/payments/A1004?wait=soon"); code != http.StatusBadRequest {
		t.Errorf("bad wait: %d %s", code, b)
	}

	down := newServer(t, &kafka{}, &db{err: &net503{}})
	if code, b, h := get(t, down, "/v1/payments/A1004"); code != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" {
		t.Errorf("database down: %d %s, want 503 with Retry-After: 1", code, b)
	}
	// /readyz and /healthz are the admin listener's (internal/app).
	if code, _, _ := get(t, srv, "/readyz"); code != http.StatusNotFound {
		t.Errorf("/readyz on the ingress's listeners: %d, want 404", code)
	}
	// Unsigned, the read is refused before the store is asked.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/payments/A1004", nil)
	if code, b, _ := do(t, req); code != http.StatusUnauthorized {
		t.Errorf("unsigned read: %d %s, want 401", code, b)
	}
}

// A callback for a channel paygate does not have is refused, nothing
// written.
func TestCallbackForAnUnknownChannel(t *testing.T) {
	t.Parallel()
	k := &kafka{}
	srv := newServer(t, k, &db{})
	code, b, _ := post(t, srv, "/v1/callbacks/nowhere", []byte(`{}`), "", nil)
	if code < 400 || code >= 500 {
		t.Errorf("unknown channel: %d %s, want a 4xx", code, b)
	}
	if n := len(k.written()); n != 0 {
		t.Errorf("%d messages written", n)
	}
}

// net503 is a network error, as a database that cannot be reached gives.
type net503 struct{}

func (*net503) Error() string   { return "dial tcp 127.0.0.1:5432: connect: connection refused" }
func (*net503) Timeout() bool   { return false }
func (*net503) Temporary() bool { return true }
