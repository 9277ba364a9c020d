package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/signature"
)

const (
	testMerchant = "m1"
	testSecret   = "secret-m1-0123456789"
)

// env is a simulator on a real HTTP server, an adapter pointed at it,
// and receivers for webhooks and sync returns.
type env struct {
	t       *testing.T
	srv     *Server
	api     *httptest.Server
	ch      *Channel
	hooks   *receiver
	returns *receiver
	// calls counts the adapter's HTTP requests.
	calls atomic.Int64
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// newEnv starts an env. cfg gets the test merchant, no callback delay and
// short webhook retries unless it says otherwise; edit may change the
// channel's config.
func newEnv(t *testing.T, cfg ServerConfig, edit ...func(*ChannelConfig)) *env {
	t.Helper()
	if cfg.Merchants == nil {
		cfg.Merchants = map[string]string{testMerchant: testSecret}
	}
	if cfg.CallbackDelay == 0 {
		cfg.CallbackDelay = -1
	}
	if cfg.WebhookRetry == nil {
		cfg.WebhookRetry = []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}
	}
	e := &env{t: t}
	e.hooks = newReceiver(t, domain.CallbackAsync)
	e.returns = newReceiver(t, domain.CallbackSync)
	e.srv = NewServer(cfg)
	e.api = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.api.Close)
	t.Cleanup(e.srv.Close) // runs first: stops callbacks before the servers go
	cc := ChannelConfig{
		BaseURL: e.api.URL, MerchantID: testMerchant, Secrets: []string{testSecret},
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			e.calls.Add(1)
			return http.DefaultTransport.RoundTrip(r)
		}),
		Now: cfg.Now,
	}
	for _, f := range edit {
		f(&cc)
	}
	ch, err := NewChannel(cc)
	if err != nil {
		t.Fatalf("NewChannel: %v", err)
	}
	e.ch = ch
	return e
}

// initiate creates a payment through the adapter.
func (e *env) initiate(code string, amount domain.Money) psp.Session {
	e.t.Helper()
	s, err := e.ch.Initiate(context.Background(), e.initiateRequest(code, amount))
	if err != nil {
		e.t.Fatalf("Initiate %s: %v", code, err)
	}
	return s
}

func (e *env) initiateRequest(code string, amount domain.Money) psp.InitiateRequest {
	return psp.InitiateRequest{
		TransactionCode: code, OrderID: "A-" + code, Amount: amount, Description: "Phone case",
		NotifyURL: e.hooks.srv.URL + "/v1/callbacks/sim", ReturnURL: e.returns.srv.URL + "/v1/return/sim?shop=1",
	}
}

// pay posts the pay form without following the redirect; it returns the
// status, the Location and the body.
func (e *env) pay(payURL string, form url.Values) (int, string, string) {
	e.t.Helper()
	resp, err := Pay(context.Background(), nil, payURL, form)
	if err != nil {
		e.t.Fatalf("Pay: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// syncCallback is the callback the gateway receives when the browser
// follows location.
func syncCallback(t *testing.T, location string) domain.Callback {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil {
		t.Fatalf("Location %q: %v", location, err)
	}
	return domain.Callback{Kind: domain.CallbackSync, Method: http.MethodGet, Path: u.Path, Query: u.Query(), Headers: http.Header{}, ReceivedAt: time.Now()}
}

// receiver is an httptest server that records callbacks as the ingress
// would and answers them with statuses in order (200 once exhausted).
type receiver struct {
	srv  *httptest.Server
	kind domain.CallbackKind
	mu   sync.Mutex
	got  []domain.Callback
	// answers are the statuses of the next requests.
	answers []int
	// hold, if set, is called before answering.
	hold func()
}

func newReceiver(t *testing.T, kind domain.CallbackKind) *receiver {
	rc := &receiver{kind: kind}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, domain.Callback{
			Kind: kind, Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(),
			Headers: r.Header.Clone(), Body: body, ReceivedAt: time.Now(),
		})
		status := http.StatusOK
		if len(rc.answers) > 0 {
			status, rc.answers = rc.answers[0], rc.answers[1:]
		}
		hold := rc.hold
		rc.mu.Unlock()
		if hold != nil {
			hold()
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "OK")
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) answer(statuses ...int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answers = statuses
}

func (rc *receiver) received() []domain.Callback {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]domain.Callback(nil), rc.got...)
}

// wait returns the callbacks received once there are at least n, or
// fails after 5 s.
func (rc *receiver) wait(t *testing.T, n int) []domain.Callback {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := rc.received()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s receiver: %d callbacks after 5s, want %d", rc.kind, len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// quiet asserts that the receiver got exactly n callbacks once every
// delivery srv started has ended (acknowledged, or out of retries): a
// barrier on the simulator's own deliveries, not a pause for nothing more
// to come. Callers make no payment meanwhile.
func (rc *receiver) quiet(t *testing.T, n int, srv *Server) {
	t.Helper()
	done := make(chan struct{})
	go func() { srv.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s receiver: the simulator's deliveries still run after 10s", rc.kind)
	}
	if got := len(rc.received()); got != n {
		t.Errorf("%s receiver: %d callbacks, want %d", rc.kind, got, n)
	}
}

// signedCallback is a callback stating n, signed at `at` with secret, in
// the simulator's own encoding (the server's code builds it).
func signedCallback(kind domain.CallbackKind, n domain.Notification, at time.Time, secret string) domain.Callback {
	ev := webhookJSON{
		EventID: n.EventID, Type: eventFailed, PaymentID: n.PSPReference, MerchantRef: n.TransactionCode,
		Status: n.Status.String(), Amount: n.Amount.Minor(), Currency: n.Amount.Currency().Code(), OccurredAt: n.OccurredAt,
	}
	if n.Status == domain.PSPSucceeded {
		ev.Type = eventSucceeded
	}
	if kind == domain.CallbackSync {
		u, _ := url.Parse(signedReturn("https://gw.example/v1/return/sim?shop=1", ev, []byte(secret), at.Unix()))
		return domain.Callback{Kind: domain.CallbackSync, Method: http.MethodGet, Path: u.Path, Query: u.Query(), Headers: http.Header{}}
	}
	body, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	signWebhook(h, testMerchant, []byte(secret), at.Unix(), body)
	return domain.Callback{Kind: domain.CallbackAsync, Method: http.MethodPost, Path: "/v1/callbacks/sim", Headers: h, Query: url.Values{}, Body: body}
}

// signedAPI sends a raw API request signed with secret at ts.
func signedAPI(t *testing.T, base, method, pathQuery string, body []byte, merchant, secret string, ts time.Time) (int, errorJSON) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, base+pathQuery, rd)
	if err != nil {
		t.Fatal(err)
	}
	if merchant != "" {
		req.Header.Set(headerMerchant, merchant)
	}
	if secret != "" {
		req.Header.Set(headerTimestamp, strconv.FormatInt(ts.Unix(), 10))
		req.Header.Set(headerSignature, signature.Header([]byte(secret), ts.Unix(), apiMessage(method, req.URL.RequestURI(), body)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, pathQuery, err)
	}
	defer resp.Body.Close()
	var ej errorJSON
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &ej)
	return resp.StatusCode, ej
}
