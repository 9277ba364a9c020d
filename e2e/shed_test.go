package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/promtest"
	"github.com/paygate/paygate/internal/psp/sim"
	"github.com/paygate/paygate/schemas"
)

// The ingress works on at most PAYGATE_INGRESS_MAX_INFLIGHT requests that
// store something. One more waits up to PAYGATE_INGRESS_QUEUE_WAIT for a
// slot: taken when one comes free in time, else answered 503 with
// Retry-After, nothing stored. The routes that store nothing still
// answer; the shed webhook sent again once a slot is free is accepted;
// and the topic holds exactly the callbacks that were answered 200.
func TestIngressShedsPastItsBound(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts paygate")
	}
	cfg := testConfig(t)
	cfg.Ingress.MaxInFlight = 2
	cfg.Ingress.QueueWait = 300 * time.Millisecond
	e := startWith(t, cfg, app.Roles{Broker: true, Migrate: true, Ingress: true})
	u, err := url.Parse(e.app.IngressURL)
	if err != nil {
		t.Fatal(err)
	}
	gauge := func(name string) float64 { return promtest.Gauges(t, e.app.Registry)[name] }

	// Two PSPs that send their headers and then trickle the body hold
	// both slots.
	const slowBody = `{"event_id":"evt_slow"}`
	slow := make([]net.Conn, 2)
	for i := range slow {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "POST /v1/callbacks/sim HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", u.Host, len(slowBody), slowBody[:5])
		slow[i] = c
	}
	e.eventually(10*time.Second, "both slots held", func() bool { return gauge("paygate_ingress_in_flight") == 2 })

	body := []byte(`{"event_id":"evt_shed","type":"payment.succeeded","payment_id":"sp_x","merchant_ref":"T1","status":"succeeded","amount":100,"currency":"USD","occurred_at":"2026-11-25T10:00:00Z"}`)
	h := http.Header{"X-Sim-Timestamp": {strconv.FormatInt(time.Now().Unix(), 10)}, "X-Sim-Signature": {"v1=00"}, "Content-Type": {"application/json"}}
	req, err := http.NewRequest("POST", e.app.IngressURL+"/v1/callbacks/sim", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h.Clone()
	sent := time.Now()
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	waited := time.Since(sent)
	var problem struct{ Error, Detail string }
	err = json.NewDecoder(resp.Body).Decode(&problem)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || err != nil || problem.Error != "overloaded" || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("webhook past the bound: %d Retry-After %q %+v (%v); want 503, Retry-After 1, error overloaded",
			resp.StatusCode, resp.Header.Get("Retry-After"), problem, err)
	}
	if waited < cfg.Ingress.QueueWait {
		t.Errorf("shed after %s; want after waiting %s for a slot", waited, cfg.Ingress.QueueWait)
	}
	pay := payBody("SHED-1", 100)
	if code, resp := e.do("POST", "/v1/payments", pay, signed(pay, time.Now(), app.DevMallSecret)); code != http.StatusServiceUnavailable {
		t.Fatalf("pay request past the bound: %d %s; want 503", code, resp)
	}
	if code, _ := e.do("GET", "/healthz", nil, nil); code != 200 {
		t.Errorf("/healthz while the storing routes are full: %d", code)
	}
	if code, resp := e.do("GET", "/v1/payments/SHED-1", nil, nil); code != http.StatusNotFound {
		t.Errorf("GET of an order while the storing routes are full: %d %s; want 404 (served, and the shed pay request not stored)", code, resp)
	}
	shed := promtest.Counters(t, e.app.Registry)
	if got := shed[`paygate_ingress_shed_total{route="/v1/callbacks/:channel"}`]; got != 1 {
		t.Errorf("shed callbacks counted %v, want 1", got)
	}
	if got := shed[`paygate_ingress_shed_total{route="/v1/payments"}`]; got != 1 {
		t.Errorf("shed pay requests counted %v, want 1", got)
	}
	if w := gauge("paygate_ingress_waiting"); w != 0 {
		t.Errorf("%v requests waiting after both were answered", w)
	}

	// A webhook that finds the slots full waits; one slow PSP finishes
	// meanwhile, and the waiting webhook takes its slot.
	queued := []byte(`{"event_id":"evt_queued"}`)
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.app.IngressURL+"/v1/callbacks/sim", bytes.NewReader(queued))
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	e.eventually(10*time.Second, "a webhook waiting for a slot", func() bool { return gauge("paygate_ingress_waiting") == 1 })
	if _, err := slow[0].Write([]byte(slowBody[5:])); err != nil {
		t.Fatal(err)
	}
	slowResp, err := http.ReadResponse(bufio.NewReader(slow[0]), nil)
	if err != nil {
		t.Fatal(err)
	}
	slowResp.Body.Close()
	if slowResp.StatusCode != 200 {
		t.Fatalf("the slow callback once complete: %d; want 200", slowResp.StatusCode)
	}
	if code := <-answered; code != 200 {
		t.Fatalf("the webhook that waited for a slot: %d; want 200", code)
	}
	e.eventually(10*time.Second, "a slot freed", func() bool { return gauge("paygate_ingress_in_flight") == 1 })
	if code, resp := e.do("POST", "/v1/callbacks/sim", body, h); code != 200 {
		t.Fatalf("the shed webhook retried with a slot free: %d %s", code, resp)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stored []string
	for p := range cfg.Topics.Partitions {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.app.Brokers, Topic: schemas.TopicPSPCallbacks, Partition: p, MaxWait: 100 * time.Millisecond})
		lag, err := r.ReadLag(ctx)
		for range lag {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var raw schemas.RawCallback
			if err := json.Unmarshal(m.Value, &raw); err != nil {
				t.Fatal(err)
			}
			stored = append(stored, string(raw.Body))
		}
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{slowBody, string(queued), string(body)}
	slices.Sort(stored)
	slices.Sort(want)
	if !slices.Equal(stored, want) {
		t.Errorf("callbacks stored: %q; want the slow one, the one that waited and the shed one's retry, once each", stored)
	}
}

// A browser return holds its slot only until it is stored: while it waits
// for the payment to be applied (here for good: no callbacks group runs),
// a webhook is taken by an ingress bounded to one request at once.
func TestReturnWaitingHoldsNoSlot(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts paygate")
	}
	cfg := testConfig(t)
	cfg.Ingress.MaxInFlight = 1
	e := startWith(t, cfg, app.Roles{Broker: true, Migrate: true, Sim: true, Ingress: true, Payinit: true})
	a := e.requestPayment("RET-1", 500)
	returns := e.consume(schemas.TopicPSPCallbacks, "test-returns")

	landed := make(chan string, 1)
	go func() {
		resp, err := sim.Pay(context.Background(), noRedirect, a.PayURL, url.Values{"result": {"success"}, "callbacks": {"sync"}})
		if err != nil {
			landed <- err.Error()
			return
		}
		resp.Body.Close()
		ret, err := noRedirect.Get(resp.Header.Get("Location"))
		if err != nil {
			landed <- err.Error()
			return
		}
		ret.Body.Close()
		landed <- fmt.Sprintf("%d %s", ret.StatusCode, ret.Header.Get("Location"))
	}()
	returns.waitFor(t, 30*time.Second, "the buyer's return stored", func(evs []event) bool { return len(evs) > 0 })

	body := []byte(`{"event_id":"evt_during_return"}`)
	h := http.Header{"Content-Type": {"application/json"}}
	code, resp := e.do("POST", "/v1/callbacks/sim", body, h)
	select {
	case got := <-landed:
		t.Fatalf("the return answered (%s) before the webhook was sent: the test did not overlap them", got)
	default:
	}
	if code != 200 {
		t.Fatalf("a webhook while the return waits: %d %s; want 200 (the waiting return holds no slot)", code, resp)
	}
	if got := <-landed; got != "303 https://shop.example/wait" {
		t.Errorf("the return, the payment never applied: %q; want 303 to the pending page", got)
	}
}
