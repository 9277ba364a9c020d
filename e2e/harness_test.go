// Package e2e tests paygate end to end: the same wiring as `paygate dev`
// (internal/app), the embedded Kafka-protocol broker over TCP, real
// PostgreSQL, the simulator PSP over HTTP, and kafka-go consumers reading
// the topics as the order center would. Nothing of ours is mocked.
package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/consumers/payinit"
	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/broker"
	"github.com/paygate/paygate/internal/ingress"
	"github.com/paygate/paygate/internal/pgtest"
	"github.com/paygate/paygate/internal/psp/sim"
	"github.com/paygate/paygate/internal/signature"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/schemas"
)

// env is one running paygate with its database.
type env struct {
	t   *testing.T
	app *app.App
	db  *sql.DB
	// metrics are for the consumer group members a test runs itself, so
	// that watchGroups sees them as it sees paygate's own.
	metrics *consumers.Metrics
	// stuck is closed when a consumer group (paygate's or the test's) has
	// failed stuckAfter attempts in a row; stuckErr says which.
	stuck    chan struct{}
	stuckErr error
}

func testConfig(t testing.TB) app.Config {
	returnHosts := []string{"shop.example"} // the ingress's and payinit's
	return app.Config{
		// Several tests run at once against one shared server
		// (pgtest.Slots): each takes a few connections, not the 16
		// a production process may.
		Store:     store.Config{URL: pgtest.New(t), MaxConns: 6},
		HTTPAddr:  "127.0.0.1:0",
		APIAddr:   "127.0.0.1:0",
		AdminAddr: "127.0.0.1:0",
		SimAddr:   "127.0.0.1:0",
		Broker:    broker.EmbeddedConfig{Addr: "127.0.0.1:0"},
		Ingress: ingress.Config{
			MallKeys:    map[string][]string{app.DevMallKeyID: {app.DevMallSecret}},
			ReturnHosts: returnHosts,
		},
		Payinit:   payinit.Config{ReturnHosts: returnHosts},
		Topics:    broker.TopicConfig{Partitions: 4},
		Consumers: consumers.Config{BatchSize: 128},
	}
}

func logger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("PAYGATE_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// start runs paygate with the given roles on a fresh database and broker.
func start(t *testing.T, roles app.Roles) *env {
	return startWith(t, testConfig(t), roles)
}

func startWith(t *testing.T, cfg app.Config, roles app.Roles) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Start(ctx, cfg, roles, logger())
	if err != nil {
		cancel()
		t.Fatalf("start paygate: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := a.Wait(); err != nil {
			t.Errorf("paygate stopped with: %v", err)
		}
	})
	db, err := sql.Open("postgres", cfg.Store.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := prometheus.NewRegistry()
	e := &env{t: t, app: a, db: db, metrics: consumers.NewMetrics(reg), stuck: make(chan struct{})}
	go e.watchGroups(ctx, prometheus.Gatherers{a.Registry, reg})
	return e
}

// stuckAfter is how many failed attempts in a row make a consumer group
// stuck. The runner's backoff (100 ms doubling to 10 s) puts the eighth
// some 13 s after the first: far beyond a transient error of a healthy
// run, far sooner than the waits' deadlines.
const stuckAfter = 8

// watchGroups samples the consumer metrics in g until ctx ends and closes
// e.stuck when a group has retried stuckAfter times without handling a
// message: its batch fails on every attempt (a broken statement, say), so
// no wait of the test can succeed, and none should run to its deadline.
func (e *env) watchGroups(ctx context.Context, g prometheus.Gatherer) {
	type mark struct{ handled, retries float64 }
	since := map[string]mark{} // per group, the counts at its last progress
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		handled, retries := consumerCounts(g)
		for group, r := range retries {
			if m := since[group]; handled[group] != m.handled {
				since[group] = mark{handled[group], r}
			} else if r-m.retries >= stuckAfter {
				e.stuckErr = fmt.Errorf("consumer group %s failed %.0f attempts in a row (its errors are in the log)", group, r-m.retries)
				close(e.stuck)
				return
			}
		}
	}
}

// consumerCounts returns per group the messages handled (ok or dead-
// lettered) and the batches retried.
func consumerCounts(g prometheus.Gatherer) (handled, retries map[string]float64) {
	handled, retries = map[string]float64{}, map[string]float64{}
	mfs, _ := g.Gather() // an error leaves out what it could not gather: this sample sees less
	for _, mf := range mfs {
		var into map[string]float64
		switch mf.GetName() {
		case "paygate_consumer_messages_total":
			into = handled
		case "paygate_consumer_retries_total":
			into = retries
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "group" {
					into[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return handled, retries
}

// payBody is a pay request as the mall sends it.
func payBody(orderID string, amount int64) []byte { return payBodyOn(orderID, amount, "") }

// payBodyOn is a pay request pinned to a channel ("" lets paygate route).
func payBodyOn(orderID string, amount int64, channel string) []byte {
	b, _ := json.Marshal(schemas.PayRequest{
		OrderID: orderID, Amount: amount, Currency: "USD", Country: "US", Method: "card", Description: "Phone case", Channel: channel,
		Buyer:      schemas.Buyer{ID: "u42", Email: "a@example.com", IP: "203.0.113.7"},
		ReturnURLs: schemas.ReturnURLs{Success: "https://shop.example/ok", Failure: "https://shop.example/fail", Pending: "https://shop.example/wait"},
	})
	return b
}

// signed returns headers that sign body as the dev mall does at time at.
func signed(body []byte, at time.Time, secret string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Paygate-Key-Id", app.DevMallKeyID)
	h.Set("X-Paygate-Timestamp", strconv.FormatInt(at.Unix(), 10))
	h.Set("X-Paygate-Signature", signature.Header([]byte(secret), at.Unix(), body))
	return h
}

// do sends a request to paygate on the listener its path is served on —
// the API's for /v1/payments, /v1/refunds, /v1/recon, /v1/routing and /v1/risk, the admin one
// for /metrics, /healthz and /readyz, the public one for the rest — and
// returns status and body. A read of the API without headers is signed
// as the mall signs it (v2, over its method and target).
func (e *env) do(method, path string, body []byte, h http.Header) (int, []byte) {
	e.t.Helper()
	base := e.app.IngressURL
	switch {
	case apiPath(path):
		base = e.app.APIURL
		if h == nil && method == http.MethodGet {
			h = signedRead(method, path, time.Now(), app.DevMallSecret)
		}
	case adminPath(path):
		base = e.app.AdminURL
	}
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// apiPath and adminPath say which listener serves a path.
func apiPath(path string) bool {
	for _, p := range []string{"/v1/payments", "/v1/refunds", "/v1/recon/", "/v1/routing/", "/v1/risk/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func adminPath(path string) bool {
	for _, p := range []string{"/metrics", "/healthz", "/readyz", "/debug/pprof/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// signedRead returns headers that sign a read (v2) of target (path and
// query) as the dev mall does at time at.
func signedRead(method, target string, at time.Time, secret string) http.Header {
	h := http.Header{}
	h.Set("X-Paygate-Key-Id", app.DevMallKeyID)
	h.Set("X-Paygate-Timestamp", strconv.FormatInt(at.Unix(), 10))
	h.Set("X-Paygate-Signature", signature.RequestHeader([]byte(secret), at.Unix(), signature.Request{Method: method, Target: target}))
	return h
}

var noRedirect = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// requestPayment sends a signed pay request and waits for its session.
func (e *env) requestPayment(orderID string, amount int64) schemas.Attempt {
	e.t.Helper()
	return e.requestAttempt(orderID, amount, "", 0)
}

// requestAttempt sends a (repeat) pay request, pinned to channel if not
// "", and waits for the order's attempt number n+1.
func (e *env) requestAttempt(orderID string, amount int64, channel string, n int) schemas.Attempt {
	e.t.Helper()
	body := payBodyOn(orderID, amount, channel)
	if code, b := e.do("POST", "/v1/payments", body, signed(body, time.Now(), app.DevMallSecret)); code != http.StatusAccepted {
		e.t.Fatalf("pay request %s: %d %s", orderID, code, b)
	}
	return e.waitSession(orderID, n)
}

// eventually polls cond until it holds; see await.
func (e *env) eventually(timeout time.Duration, what string, cond func() bool) {
	e.t.Helper()
	e.await(e.t, timeout, what, cond)
}

// await polls cond until it holds, and fails t naming what it waited for:
// at once if paygate stopped (with its error) or a consumer group is
// stuck (watchGroups), else after timeout. Every wait of these tests goes
// through it, so that a broken pipeline fails a test within seconds
// instead of leaving each wait to run to its deadline.
func (e *env) await(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-e.app.Done():
			t.Fatalf("paygate stopped while waiting for %s: %v", what, e.app.Err())
		case <-e.stuck:
			t.Fatalf("gave up waiting for %s: %v", what, e.stuckErr)
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

// received takes a value from c if one is ready (or c is closed), without
// blocking: a channel as an await condition.
func received[T any](c <-chan T) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// waitSession waits until the order has more than n attempts, the newest
// with a pay URL, and returns it.
func (e *env) waitSession(orderID string, n int) schemas.Attempt {
	e.t.Helper()
	var a schemas.Attempt
	e.eventually(30*time.Second, fmt.Sprintf("pay session %d of %s", n+1, orderID), func() bool {
		code, b := e.do("GET", "/v1/payments/"+orderID+"?wait=5s", nil, nil)
		if code != http.StatusOK {
			return false
		}
		var p schemas.Payment
		if err := json.Unmarshal(b, &p); err != nil {
			e.t.Fatal(err)
		}
		if len(p.Attempts) <= n || p.Attempts[len(p.Attempts)-1].PayURL == "" {
			return false
		}
		a = p.Attempts[len(p.Attempts)-1]
		return true
	})
	return a
}

// pay clicks the simulator's pay button and follows the browser's
// redirect to the ingress's sync return, stopping at the mall's page.
// It returns the mall page the buyer lands on ("" if none).
func (e *env) pay(payURL string, form url.Values) string {
	e.t.Helper()
	resp, err := sim.Pay(context.Background(), noRedirect, payURL, form)
	if err != nil {
		e.t.Fatalf("pay %s: %v", payURL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		if resp.StatusCode != http.StatusOK {
			e.t.Fatalf("pay %s: %s", payURL, resp.Status)
		}
		return ""
	}
	ret, err := noRedirect.Get(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatalf("sync return: %v", err)
	}
	ret.Body.Close()
	if ret.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("sync return answered %s", ret.Status)
	}
	return ret.Header.Get("Location")
}

// event is a record read from a topic.
type event struct {
	Key     string
	ID      string
	Type    string
	Payment schemas.PaymentEvent
	Headers map[string]string
	Value   []byte
}

// orderCenter reads a topic with its own consumer group, as a separate
// kafka-go client would, until stop is closed or ctx ends.
type orderCenter struct {
	e      *env
	mu     sync.Mutex
	events []event
	done   chan struct{}
	cancel context.CancelFunc
}

func (e *env) consume(topic, group string) *orderCenter {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	oc := &orderCenter{e: e, done: make(chan struct{}), cancel: cancel}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.app.Brokers, GroupID: group, Topic: topic,
		StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond, CommitInterval: 0})
	go func() {
		defer close(oc.done)
		defer r.Close()
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				return
			}
			ev := event{Key: string(m.Key), Value: m.Value, Headers: map[string]string{}}
			for _, h := range m.Headers {
				ev.Headers[h.Key] = string(h.Value)
			}
			ev.ID, ev.Type = ev.Headers[schemas.HeaderID], ev.Headers[schemas.HeaderType]
			_ = json.Unmarshal(m.Value, &ev.Payment)
			oc.mu.Lock()
			oc.events = append(oc.events, ev)
			oc.mu.Unlock()
			_ = r.CommitMessages(ctx, m)
		}
	}()
	e.t.Cleanup(oc.stop)
	return oc
}

func (oc *orderCenter) stop() {
	oc.cancel()
	<-oc.done
}

// snapshot returns what was read so far.
func (oc *orderCenter) snapshot() []event {
	oc.mu.Lock()
	defer oc.mu.Unlock()
	return append([]event(nil), oc.events...)
}

// waitFor polls until cond holds over the events read, and returns them;
// it fails as await does.
func (oc *orderCenter) waitFor(t *testing.T, timeout time.Duration, what string, cond func([]event) bool) []event {
	t.Helper()
	var evs []event
	held := false
	defer func() {
		if !held { // await failed t: say how far the events got
			t.Logf("waiting for %s: have %d events", what, len(evs))
		}
	}()
	oc.e.await(t, timeout, what, func() bool {
		evs = oc.snapshot()
		held = cond(evs)
		return held
	})
	return evs
}

func countType(evs []event, typ string) int {
	n := 0
	for _, e := range evs {
		if e.Payment.Type == typ {
			n++
		}
	}
	return n
}

// scalar runs a one-value query.
func (e *env) scalar(q string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.QueryRow(q, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// parallel runs fn(i) for i in [0, n) on k workers. fn may call
// t.Fatal: its worker ends, the others go on, and nothing blocks.
func parallel(n, k int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int, n)
	for w := 0; w < k; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

func orderID(prefix string, i int) string { return fmt.Sprintf("%s-%04d", prefix, i) }
