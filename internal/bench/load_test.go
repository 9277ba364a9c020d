package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/psp/sim"
)

// TestPresignBuildsTheLeadAhead: before presign returns, every webhook due
// within signLead is built and signed, once per order (a duplicate reuses
// its first delivery's); later ones are left for later, and nothing is
// built after stop.
func TestPresignBuildsTheLeadAhead(t *testing.T) {
	var mu sync.Mutex
	built := map[string]int{}
	tg := &target{webhook: func(o *order, _ bool) (sim.Webhook, error) {
		mu.Lock()
		defer mu.Unlock()
		built[o.id]++
		return sim.Webhook{Body: []byte(o.id)}, nil
	}}
	a, b, c, d := &order{id: "a"}, &order{id: "b"}, &order{id: "c"}, &order{id: "d"}
	sched := []send{
		{at: 0, o: a},
		{at: time.Second, o: a, dup: true},
		{at: 30 * time.Second, o: b},
		{at: signLead - time.Millisecond, o: c},
		{at: signLead + time.Second, o: d},
	}
	stop := presign(context.Background(), tg, sched)
	stop()
	w, err := a.webhook(tg) // what the send of a will use
	mu.Lock()
	defer mu.Unlock()
	if built["a"] != 1 || built["b"] != 1 || built["c"] != 1 {
		t.Errorf("within the lead, built %v; want a, b and c once each", built)
	}
	if built["d"] != 0 {
		t.Errorf("d, due after the lead, was built before its time: %v", built)
	}
	if err != nil || string(w.Body) != "a" || built["a"] != 1 {
		t.Errorf("the send got %q, %v after %d builds; want the presigned webhook", w.Body, err, built["a"])
	}
}

// TestPostWebhookRetriesAsAPSPDoes: a 503 with Retry-After is tried again
// after it, a 5xx without one 100 ms later, and a 4xx is not tried again;
// the tries are counted, the shed ones apart.
func TestPostWebhookRetriesAsAPSPDoes(t *testing.T) {
	var mu sync.Mutex
	var answers []int
	var at []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, time.Now())
		code := http.StatusOK
		if len(answers) > 0 {
			code, answers = answers[0], answers[1:]
		}
		if code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(code)
	}))
	defer srv.Close()
	tg := &target{webhook: func(o *order, _ bool) (sim.Webhook, error) {
		return sim.Webhook{URL: srv.URL, Body: []byte(o.id)}, nil
	}}

	answers = []int{http.StatusServiceUnavailable, http.StatusBadGateway}
	var n tries
	if err := postWebhook(context.Background(), tg, &order{id: "a"}, &n); err != nil {
		t.Fatalf("delivered after a shed and a 502: %v", err)
	}
	if len(at) != 3 || n.retries.Load() != 2 || n.shed.Load() != 1 {
		t.Fatalf("%d tries, %d retries, %d shed; want 3, 2, 1", len(at), n.retries.Load(), n.shed.Load())
	}
	if d := at[1].Sub(at[0]); d < time.Second {
		t.Errorf("the try after a 503 with Retry-After: 1 came %s later", d)
	}
	if d := at[2].Sub(at[1]); d < 100*time.Millisecond || d > 900*time.Millisecond {
		t.Errorf("the try after a 502 came %s later; want about 100 ms", d)
	}

	answers, at = []int{http.StatusBadRequest}, nil
	n = tries{}
	if err := postWebhook(context.Background(), tg, &order{id: "b"}, &n); err == nil || len(at) != 1 || n.retries.Load() != 0 {
		t.Errorf("a 400: %v after %d tries; want an error after one", err, len(at))
	}

	answers, at = []int{502, 502, 502, 502}, nil
	n = tries{}
	if err := postWebhook(context.Background(), tg, &order{id: "c"}, &n); err == nil || len(at) != 3 {
		t.Errorf("502s: %v after %d tries; want an error after three", err, len(at))
	}
}

// TestDriveRetriesOutsideTheSenders: a shed webhook waits out its
// Retry-After in the PSP's retry queue, not in a sender, so one sender
// still starts every later send on time; every webhook is delivered in
// the end, and drive returns only then.
func TestDriveRetriesOutsideTheSenders(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if seen[string(b)]++; seen[string(b)] == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	tg := &target{webhook: func(o *order, _ bool) (sim.Webhook, error) {
		return sim.Webhook{URL: srv.URL, Body: []byte(o.id)}, nil
	}}
	var sched []send
	for i := range 5 {
		sched = append(sched, send{at: time.Duration(i) * 50 * time.Millisecond, o: &order{id: fmt.Sprint(i)}})
	}
	res := drive(context.Background(), &Config{MaxInFlight: 1}, tg, sched)
	// A retry held in the sender would start every later send a second
	// (the Retry-After) late; a busy machine delays a start by some
	// milliseconds, which says nothing.
	if late := time.Duration(res.maxLate.Load()); late > 500*time.Millisecond || res.errors.Load() != 0 {
		t.Errorf("a send started %s after its slot, %d errors; want every start well within the 1 s Retry-After, and no error", late, res.errors.Load())
	}
	if res.tries.shed.Load() != 5 || res.tries.retries.Load() != 5 {
		t.Errorf("%d retries, %d shed; want 5 and 5", res.tries.retries.Load(), res.tries.shed.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range sched {
		if seen[s.o.id] != 2 {
			t.Errorf("webhook %s tried %d times; want 2", s.o.id, seen[s.o.id])
		}
	}
	for i, d := range res.ingress {
		if d < time.Second {
			t.Errorf("send %d answered %s after its slot; its retry came before Retry-After", i, d)
		}
	}
}

// TestDrainWaitsWhileThePipelineCarries: the drain timeout runs from the
// last paid event read, so a backlog read slowly but steadily, for longer
// than the timeout in all, is waited for; when nothing more is read for
// the timeout, drain gives up on what is missing.
func TestDrainWaitsWhileThePipelineCarries(t *testing.T) {
	var sched []send
	for i := range 6 {
		sched = append(sched, send{o: &order{id: fmt.Sprint(i)}})
	}
	sched = append(sched, send{o: sched[0].o, dup: true}, send{o: &order{id: "forged", forged: true}})
	const idle = 300 * time.Millisecond
	go func() {
		// Five of the six, one every 150 ms: 750 ms in all, more than
		// twice the timeout; then nothing.
		for _, s := range sched[:5] {
			time.Sleep(150 * time.Millisecond)
			s.o.paidAt.Store(time.Now().UnixNano())
		}
	}()
	start := time.Now()
	drain(context.Background(), sched, idle, func(string, ...any) {})
	took := time.Since(start)
	for _, s := range sched[:5] {
		if s.o.paidAt.Load() == 0 {
			t.Errorf("drain returned after %s with order %s not yet paid; the pipeline was still carrying", took, s.o.id)
		}
	}
	if took < 750*time.Millisecond+idle || took > 5*time.Second {
		t.Errorf("drain took %s; want the last paid event's time plus the %s timeout", took, idle)
	}
}
