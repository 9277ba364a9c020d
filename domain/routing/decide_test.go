package routing_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/paygate/paygate/domain/routing"
)

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1)) }

func allUsable(string) error { return nil }

var usd = routing.Request{Country: "US", Currency: "USD", Method: "card", Amount: 1999}

// shares routes n requests and counts each channel's picks and reasons.
func shares(t *testing.T, p *routing.Policy, v *routing.View, n int) (map[string]float64, map[routing.Reason]int) {
	t.Helper()
	r := rng(42)
	picks, why := map[string]float64{}, map[routing.Reason]int{}
	for range n {
		d, err := routing.Decide(p, usd, v, allUsable, r, t0)
		if err != nil {
			t.Fatal(err)
		}
		picks[d.Chosen]++
		why[d.Reason]++
		sum := 0.0
		for _, c := range d.Candidates {
			sum += c.Propensity
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Fatalf("propensities sum to %v: %+v", sum, d.Candidates)
		}
	}
	for k := range picks {
		picks[k] /= float64(n)
	}
	return picks, why
}

func TestDecideWeighted(t *testing.T) {
	p := policy(t, `{"segments":[{"name":"default","match":{},"candidates":[{"channel":"a","weight":3},{"channel":"b","weight":1},{"channel":"c","weight":0}]}]}`)
	got, why := shares(t, p, routing.NewHealth().View(p, t0), 20000)
	if math.Abs(got["a"]-0.75) > 0.02 || math.Abs(got["b"]-0.25) > 0.02 || got["c"] != 0 || why[routing.ReasonWeight] != 20000 {
		t.Fatalf("shares %v reasons %v", got, why)
	}
	d, _ := routing.Decide(p, usd, routing.NewHealth().View(p, t0), allUsable, rng(1), t0)
	if len(d.Failover) != 2 || d.Segment != "default" || d.Split != routing.SplitWeighted {
		t.Fatalf("decision %+v", d)
	}
}

func TestDecidePinnedAndUnusable(t *testing.T) {
	p := policy(t, twoSims)
	v := routing.NewHealth().View(p, t0)
	pinned := usd
	pinned.Channel = "sim2"
	d, err := routing.Decide(p, pinned, v, allUsable, rng(1), t0)
	if err != nil || d.Chosen != "sim2" || d.Reason != routing.ReasonPin || d.Propensity != 1 || len(d.Failover) != 0 {
		t.Fatalf("pinned: %+v %v", d, err)
	}
	if _, ok := d.Next(p, v, "T1", t0); ok {
		t.Fatal("a pinned request never fails over")
	}
	noSim2 := func(c string) error {
		if c == "sim2" {
			return errors.New("disabled")
		}
		return nil
	}
	if _, err := routing.Decide(p, pinned, v, noSim2, rng(1), t0); !errors.Is(err, routing.ErrNoChannel) {
		t.Fatalf("pinned to an unusable channel: %v", err)
	}
	for range 50 {
		d, err := routing.Decide(p, usd, v, noSim2, rng(uint64(time.Now().UnixNano())), t0)
		if err != nil || d.Chosen != "sim" {
			t.Fatalf("an unusable candidate is never chosen: %+v %v", d, err)
		}
	}
	none := func(string) error { return errors.New("no") }
	if _, err := routing.Decide(p, usd, v, none, rng(1), t0); !errors.Is(err, routing.ErrNoChannel) {
		t.Fatalf("no usable candidate: %v", err)
	}
}

func TestDecidePriorityFallsBackWhenTheBreakerOpens(t *testing.T) {
	p := policy(t, `{"segments":[{"name":"default","split":"priority","match":{},"candidates":[{"channel":"primary","priority":0,"weight":1},{"channel":"backup","priority":1,"weight":1}]}]}`)
	f := &feeder{h: routing.NewHealth()}
	got, _ := shares(t, p, f.h.View(p, t0), 1000)
	if got["primary"] != 1 {
		t.Fatalf("healthy primary takes all: %v", got)
	}
	f.initiates("primary", t0, false, false, false, false, false)
	got, _ = shares(t, p, f.h.View(p, t0.Add(10*time.Second)), 1000)
	if got["backup"] != 1 {
		t.Fatalf("primary's breaker open: %v", got)
	}
	// Half-open: the probe share goes to the primary.
	got, why := shares(t, p, f.h.View(p, t0.Add(40*time.Second)), 20000)
	if math.Abs(got["primary"]-0.02) > 0.005 || why[routing.ReasonProbe] == 0 {
		t.Fatalf("half-open primary: %v %v", got, why)
	}
}

func TestDecideAllOpenTakesTheLeastBad(t *testing.T) {
	p := policy(t, twoSims)
	f := &feeder{h: routing.NewHealth()}
	f.initiates("sim", t0, false, false, false, false, false)
	f.initiates("sim2", t0.Add(10*time.Second), false, false, false, false, false)
	d, err := routing.Decide(p, usd, f.h.View(p, t0.Add(20*time.Second)), allUsable, rng(1), t0.Add(20*time.Second))
	if err != nil || d.Chosen != "sim" || d.Reason != routing.ReasonAllOpen {
		t.Fatalf("both open: the one reopening first: %+v %v", d, err)
	}
}

func TestDecideAdaptive(t *testing.T) {
	p := policy(t, twoSims) // exploration 0.05, min_samples 20
	f := &feeder{h: routing.NewHealth()}
	got, why := shares(t, p, f.h.View(p, t0), 10000)
	if why[routing.ReasonScore] != 0 || math.Abs(got["sim"]-0.5) > 0.03 {
		t.Fatalf("without outcomes the weights split: %v %v", got, why)
	}
	for i := range 100 {
		o := routing.Declined
		if i%10 != 0 {
			o = routing.Paid
		}
		f.add("sim", o, t0, t0) // 90%
		o = routing.Declined
		if i%5 == 0 {
			o = routing.Paid
		}
		f.add("sim2", o, t0, t0) // 20%
	}
	got, why = shares(t, p, f.h.View(p, t0), 20000)
	if got["sim2"] > 0.04 || got["sim2"] < 0.015 || why[routing.ReasonExploration] == 0 {
		// sim2 gets about half the 5% exploration share and nothing else.
		t.Fatalf("a clearly worse channel keeps only exploration: %v %v", got, why)
	}
	d, _ := routing.Decide(p, usd, f.h.View(p, t0), allUsable, rng(3), t0)
	if d.Failover[0] != "sim2" && d.Chosen != "sim2" {
		t.Fatalf("failover order %+v", d)
	}
	var simProp float64
	for _, c := range d.Candidates {
		if c.Channel == "sim" {
			simProp = c.Propensity
		}
	}
	if simProp < 0.97 || simProp > 0.98 {
		t.Fatalf("sim's propensity %v, want 0.975 (0.95 + 0.05/2)", simProp)
	}
}

func TestDecideSlidingWindowBreaksTiesAtRandom(t *testing.T) {
	p := policy(t, `{"algorithm":"sliding_window","exploration":0,"health":{"min_samples":2},"segments":[{"name":"default","split":"adaptive","match":{},
	  "candidates":[{"channel":"sim","weight":1},{"channel":"sim2","weight":1}]}]}`)
	f := &feeder{h: routing.NewHealth()}
	f.add("sim", routing.Paid, t0, t0)
	f.add("sim2", routing.Paid, t0, t0)
	got, why := shares(t, p, f.h.View(p, t0), 4000)
	if math.Abs(got["sim"]-0.5) > 0.05 || why[routing.ReasonScore] != 4000 {
		t.Fatalf("tied rates must split evenly, not by position: %v", got)
	}
	f.add("sim2", routing.Declined, t0, t0)
	got, _ = shares(t, p, f.h.View(p, t0), 1000)
	if got["sim"] != 1 {
		t.Fatalf("the higher window rate takes all without exploration: %v", got)
	}
}

func TestFailoverIsBounded(t *testing.T) {
	p := policy(t, `{"max_channels":3,"segments":[{"name":"default","match":{},"candidates":[{"channel":"a","weight":4},{"channel":"b","weight":3},{"channel":"c","weight":2},{"channel":"d","weight":1}]}]}`)
	f := &feeder{h: routing.NewHealth()}
	v := f.h.View(p, t0)
	d, err := routing.Decide(p, usd, v, allUsable, rng(9), t0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{d.Chosen: true}
	hops := 0
	for {
		n, ok := d.Next(p, v, "T", t0)
		if !ok {
			break
		}
		hops++
		if seen[n.Chosen] || n.Reason != routing.ReasonFailover || n.Hop != hops || n.Propensity != 1 {
			t.Fatalf("hop %d: %+v", hops, n)
		}
		seen[n.Chosen] = true
		d = n
	}
	if hops != 2 {
		t.Fatalf("max_channels 3 allows 2 failovers, got %d", hops)
	}
	// A breaker opened meanwhile takes its channel out of the order.
	d, _ = routing.Decide(p, usd, v, allUsable, rng(9), t0)
	for _, c := range []string{"a", "b", "c", "d"} {
		if c != d.Chosen && c != d.Failover[0] {
			continue
		}
		if c == d.Failover[0] {
			f.initiates(c, t0, false, false, false, false, false)
		}
	}
	n, ok := d.Next(p, f.h.View(p, t0.Add(10*time.Second)), "T", t0)
	if !ok || n.Chosen == d.Failover[0] {
		t.Fatalf("failover into an open breaker: %+v (order was %v)", n, d.Failover)
	}
}
