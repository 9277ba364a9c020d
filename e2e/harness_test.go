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
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/pgtest"
	"github.com/paygate/paygate/internal/psp/sim"
	"github.com/paygate/paygate/internal/signature"
	"github.com/paygate/paygate/schemas"
)

// env is one running paygate with its database.
type env struct {
	t   *testing.T
	app *app.App
	db  *sql.DB
}

func testConfig(t *testing.T) app.Config {
	return app.Config{
		DatabaseURL: pgtest.New(t),
		HTTPAddr:    "127.0.0.1:0",
		SimAddr:     "127.0.0.1:0",
		KafkaAddr:   "127.0.0.1:0",
		MallKeys:    map[string][]string{app.DevMallKeyID: {app.DevMallSecret}},
		ReturnHosts: []string{"shop.example"},
		Partitions:  4,
		BatchSize:   128,
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
	db, err := sql.Open("postgres", cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &env{t: t, app: a, db: db}
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

// do sends a request to the ingress and returns status and body.
func (e *env) do(method, path string, body []byte, h http.Header) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.app.IngressURL+path, bytes.NewReader(body))
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

// eventually polls cond until it holds, or fails after timeout.
func (e *env) eventually(timeout time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSession waits until the order has more than n attempts, the newest
// with a pay URL, and returns it.
func (e *env) waitSession(orderID string, n int) schemas.Attempt {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		code, b := e.do("GET", "/v1/payments/"+orderID+"?wait=5s", nil, nil)
		if code == http.StatusOK {
			var p schemas.Payment
			if err := json.Unmarshal(b, &p); err != nil {
				e.t.Fatal(err)
			}
			if len(p.Attempts) > n && p.Attempts[len(p.Attempts)-1].PayURL != "" {
				return p.Attempts[len(p.Attempts)-1]
			}
		}
	}
	e.t.Fatalf("no pay session for %s", orderID)
	return schemas.Attempt{}
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
	mu     sync.Mutex
	events []event
	done   chan struct{}
	cancel context.CancelFunc
}

func (e *env) consume(topic, group string) *orderCenter {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	oc := &orderCenter{done: make(chan struct{}), cancel: cancel}
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

// waitFor polls until cond holds over the events read, or fails.
func (oc *orderCenter) waitFor(t *testing.T, timeout time.Duration, what string, cond func([]event) bool) []event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		evs := oc.snapshot()
		if cond(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; have %d events", timeout, what, len(evs))
		}
		time.Sleep(50 * time.Millisecond)
	}
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
