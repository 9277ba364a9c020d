package routing_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/paygate/paygate/domain/routing"
)

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func policy(t testing.TB, doc string) *routing.Policy {
	t.Helper()
	p, err := routing.Parse([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const twoSims = `{"exploration":0.05,"health":{"min_samples":20},"segments":[{"name":"default","split":"adaptive","match":{},
  "candidates":[{"channel":"sim","weight":1},{"channel":"sim2","weight":1}]}]}`

type feeder struct {
	h *routing.Health
	n int
}

func (f *feeder) add(ch string, o routing.Outcome, decided, at time.Time) routing.Feedback {
	f.n++
	fb := routing.Feedback{Outcome: o, TransactionCode: fmt.Sprintf("T%d", f.n), Channel: ch, Segment: "default", DecidedAt: decided, At: at}
	f.h.Apply(fb)
	return fb
}

func (f *feeder) initiates(ch string, at time.Time, oks ...bool) {
	for _, ok := range oks {
		o := routing.Initiated
		if !ok {
			o = routing.InitiateFailed
		}
		f.add(ch, o, at, at)
		at = at.Add(time.Second)
	}
}

func TestHealthCountsEachFeedbackOnce(t *testing.T) {
	h := routing.NewHealth()
	fb := routing.Feedback{Outcome: routing.Paid, TransactionCode: "T1", Channel: "sim", Segment: "default", DecidedAt: t0, At: t0}
	if !h.Apply(fb) || h.Apply(fb) {
		t.Fatal("the second delivery of a feedback must change nothing")
	}
	// Declined after paid is the same attempt's end: the first stands.
	late := fb
	late.Outcome = routing.Declined
	if h.Apply(late) {
		t.Fatal("an attempt's second end must not count")
	}
	// The initiate clock of the same attempt is another fact.
	in := fb
	in.Outcome = routing.Initiated
	if !h.Apply(in) {
		t.Fatal("the Initiate feedback of an attempt is its own fact")
	}
	v := h.View(policy(t, twoSims), t0)
	st := v.Arm("sim", "default")
	if st.Resolved != 1 || st.SuccessRate != 1 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHealthDiscountsByDecisionAge(t *testing.T) {
	p := policy(t, twoSims) // half-life 15m
	f := &feeder{h: routing.NewHealth()}
	f.add("sim", routing.Paid, t0.Add(-15*time.Minute), t0) // weight 0.5
	f.add("sim", routing.Declined, t0, t0)                  // weight 1
	f.add("sim", routing.Declined, t0.Add(time.Minute), t0) // decided in the future: weight 1
	st := f.h.View(p, t0).Arm("sim", "default")
	if math.Abs(st.Successes-0.5) > 1e-9 || math.Abs(st.Failures-2) > 1e-9 {
		t.Fatalf("successes %v failures %v, want 0.5 and 2", st.Successes, st.Failures)
	}
	if math.Abs(st.SuccessRate-0.2) > 1e-9 || math.Abs(st.WindowRate-1.0/3) > 1e-9 {
		t.Fatalf("success rate %v window rate %v", st.SuccessRate, st.WindowRate)
	}
	// Order does not matter for the counts.
	g := &feeder{h: routing.NewHealth()}
	g.add("sim", routing.Declined, t0.Add(time.Minute), t0)
	g.add("sim", routing.Declined, t0, t0)
	g.add("sim", routing.Paid, t0.Add(-15*time.Minute), t0)
	if st2 := g.h.View(p, t0).Arm("sim", "default"); math.Abs(st2.Successes-st.Successes) > 1e-12 || math.Abs(st2.Failures-st.Failures) > 1e-12 {
		t.Fatalf("order changed the counts: %+v vs %+v", st2, st)
	}
}

func TestHealthKeepsAbandonedApart(t *testing.T) {
	f := &feeder{h: routing.NewHealth()}
	f.add("sim", routing.Paid, t0, t0)
	f.add("sim", routing.Abandoned, t0, t0)
	f.add("sim", routing.Abandoned, t0, t0)
	st := f.h.View(policy(t, twoSims), t0).Arm("sim", "default")
	if st.SuccessRate != 1 || st.Abandoned != 2 || st.Resolved != 1 {
		t.Fatalf("abandoned must stay apart: %+v", st)
	}
	counted := policy(t, `{"health":{"abandoned_is_failure":true},"segments":[{"name":"default","match":{},"candidates":[{"channel":"sim","weight":1}]}]}`)
	st = f.h.View(counted, t0).Arm("sim", "default")
	if math.Abs(st.SuccessRate-1.0/3) > 1e-9 || st.Abandoned != 0 {
		t.Fatalf("abandoned counted as failure: %+v", st)
	}
}

func TestHealthWindowAndPending(t *testing.T) {
	p := policy(t, `{"health":{"window":10},"segments":[{"name":"default","match":{},"candidates":[{"channel":"sim","weight":1}]}]}`)
	f := &feeder{h: routing.NewHealth()}
	for range 20 {
		f.add("sim", routing.Declined, t0, t0)
	}
	for range 10 {
		f.add("sim", routing.Paid, t0, t0)
	}
	if st := f.h.View(p, t0).Arm("sim", "default"); st.WindowRate != 1 || st.Resolved != 10 {
		t.Fatalf("only the last 10 outcomes count: %+v", st)
	}
	// Two accepted Initiates, one of them ended: one pending.
	a := f.add("sim", routing.Initiated, t0, t0)
	f.add("sim", routing.Initiated, t0, t0)
	f.h.Apply(routing.Feedback{Outcome: routing.Paid, TransactionCode: a.TransactionCode, Channel: "sim", Segment: "default", DecidedAt: t0, At: t0})
	if st := f.h.View(p, t0).Arm("sim", "default"); st.Pending != 1 {
		t.Fatalf("pending %d, want 1", st.Pending)
	}
}

func TestBreakerOpensOnConsecutiveFailures(t *testing.T) {
	p := policy(t, twoSims) // 5 in a row, open 30s, close after 5
	f := &feeder{h: routing.NewHealth()}
	f.initiates("sim2", t0, true, false, false, false, false)
	if b := f.h.View(p, t0.Add(5*time.Second)).Arm("sim2", "default").Breaker; b.State != routing.BreakerClosed {
		t.Fatalf("4 failures in a row: %+v", b)
	}
	f.initiates("sim2", t0.Add(5*time.Second), false)
	b := f.h.View(p, t0.Add(6*time.Second)).Arm("sim2", "default").Breaker
	if b.State != routing.BreakerOpen || b.Reason != routing.TripConsecutive || !b.Until.Equal(t0.Add(35*time.Second)) || b.Trips != 1 {
		t.Fatalf("5 failures in a row: %+v", b)
	}
	// Initiates answered while open (decided before it opened) change nothing.
	f.initiates("sim2", t0.Add(10*time.Second), true, true, true, true, true, true)
	if b := f.h.View(p, t0.Add(20*time.Second)).Arm("sim2", "default").Breaker; b.State != routing.BreakerOpen {
		t.Fatalf("in-flight answers while open: %+v", b)
	}
	if b := f.h.View(p, t0.Add(35*time.Second)).Arm("sim2", "default").Breaker; b.State != routing.BreakerHalfOpen {
		t.Fatalf("after open_for: %+v", b)
	}
	// A probe fails: open again for twice as long.
	f.initiates("sim2", t0.Add(40*time.Second), false)
	b = f.h.View(p, t0.Add(41*time.Second)).Arm("sim2", "default").Breaker
	if b.State != routing.BreakerOpen || b.Reason != routing.TripProbe || !b.Until.Equal(t0.Add(100*time.Second)) || b.Trips != 2 {
		t.Fatalf("failed probe: %+v", b)
	}
	// Half-open again; four good probes are not enough, five close it.
	f.initiates("sim2", t0.Add(100*time.Second), true, true, true, true)
	if b := f.h.View(p, t0.Add(104*time.Second)).Arm("sim2", "default").Breaker; b.State != routing.BreakerHalfOpen {
		t.Fatalf("4 good probes: %+v", b)
	}
	f.initiates("sim2", t0.Add(104*time.Second), true)
	if b := f.h.View(p, t0.Add(105*time.Second)).Arm("sim2", "default").Breaker; b.State != routing.BreakerClosed {
		t.Fatalf("5 good probes: %+v", b)
	}
	// Closed again, the next opening starts from open_for once more.
	f.initiates("sim2", t0.Add(200*time.Second), false, false, false, false, false)
	if b := f.h.View(p, t0.Add(205*time.Second)).Arm("sim2", "default").Breaker; b.State != routing.BreakerOpen || !b.Until.Equal(t0.Add(234*time.Second)) {
		t.Fatalf("reopened after closing: %+v", b)
	}
}

func TestBreakerOpensOnFailureRate(t *testing.T) {
	p := policy(t, twoSims) // 50% of >= 20 within 60s
	f := &feeder{h: routing.NewHealth()}
	at := t0
	for i := range 19 {
		f.initiates("sim", at, i%2 == 0) // 10 ok, 9 failed, never 5 in a row
		at = at.Add(time.Second)
	}
	if b := f.h.View(p, at).Arm("sim", "default").Breaker; b.State != routing.BreakerClosed || b.Requests != 19 || b.Failures != 9 {
		t.Fatalf("19 requests: %+v", b)
	}
	f.initiates("sim", at, false) // 10 of 20
	if b := f.h.View(p, at.Add(time.Second)).Arm("sim", "default").Breaker; b.State != routing.BreakerOpen || b.Reason != routing.TripFailureRate {
		t.Fatalf("10 of 20 failed: %+v", b)
	}
	// Failures spread over more than the window do not add up.
	g := &feeder{h: routing.NewHealth()}
	at = t0
	for i := range 40 {
		g.initiates("sim", at, i%2 == 0)
		at = at.Add(7 * time.Second) // 8-9 within any 60s
	}
	if b := g.h.View(p, at).Arm("sim", "default").Breaker; b.State != routing.BreakerClosed {
		t.Fatalf("sparse failures: %+v", b)
	}
}

func TestBreakerOnLowSuccessRate(t *testing.T) {
	p := policy(t, `{"breaker":{"min_success_rate":0.3,"min_outcomes":20},"segments":[{"name":"default","match":{},"candidates":[{"channel":"sim","weight":1}]}]}`)
	f := &feeder{h: routing.NewHealth()}
	for i := range 19 {
		o := routing.Declined
		if i%5 == 0 {
			o = routing.Paid
		}
		f.add("sim", o, t0, t0)
	}
	if b := f.h.View(p, t0).Arm("sim", "default").Breaker; b.State != routing.BreakerClosed {
		t.Fatalf("below min_outcomes: %+v", b)
	}
	f.add("sim", routing.Declined, t0, t0)
	b := f.h.View(p, t0).Arm("sim", "default").Breaker
	if b.State != routing.BreakerOpen || b.Reason != routing.TripSuccessRate || b.Technical() {
		t.Fatalf("20%% over 20 outcomes: %+v", b)
	}
}

func TestHealthSnapshotRestores(t *testing.T) {
	p := policy(t, twoSims)
	f := &feeder{h: routing.NewHealth()}
	f.initiates("sim2", t0, true, false, false, false, false, false)
	for i := range 50 {
		o := routing.Paid
		if i%3 == 0 {
			o = routing.Declined
		}
		f.add("sim", o, t0.Add(-time.Duration(i)*time.Minute), t0)
	}
	f.add("sim", routing.Abandoned, t0, t0)
	b, err := f.h.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	g, err := routing.RestoreHealth(b)
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(10 * time.Second)
	for _, ch := range []string{"sim", "sim2"} {
		want, got := f.h.View(p, now).Arm(ch, "default"), g.View(p, now).Arm(ch, "default")
		if want != got {
			t.Fatalf("%s restored as %+v, want %+v", ch, got, want)
		}
	}
	if g.Seq() != f.h.Seq() {
		t.Fatalf("seq %d, want %d", g.Seq(), f.h.Seq())
	}
	// What the snapshot held is still known: a redelivery counts nothing.
	again := routing.Feedback{Outcome: routing.Abandoned, TransactionCode: fmt.Sprintf("T%d", f.n), Channel: "sim", Segment: "default", DecidedAt: t0, At: t0}
	if g.Apply(again) {
		t.Fatal("a feedback the snapshot held counted again after the restore")
	}
	if _, err := routing.RestoreHealth([]byte(`{"version":99}`)); err == nil {
		t.Fatal("another snapshot format must be refused")
	}
}
