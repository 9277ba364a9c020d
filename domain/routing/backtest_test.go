package routing_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/paygate/paygate/domain/routing"
	"github.com/paygate/paygate/domain/routing/routingtest"
)

// outage is six hours of traffic split 50/50 between two channels that
// both pay 85% of the time, but for hours 2 and 3, when sim2 pays 20% and
// fails a third of its Initiates. The right answer is known: send
// everything to sim during the outage.
func outage() []routing.Record {
	healthy := routingtest.Phase{PaidRate: map[string]float64{"sim": 0.85, "sim2": 0.85}, InitiateFailRate: map[string]float64{}}
	bad := routingtest.Phase{PaidRate: map[string]float64{"sim": 0.85, "sim2": 0.2}, InitiateFailRate: map[string]float64{"sim2": 0.35}}
	h := routingtest.History{Start: t0, Interval: 3 * time.Second, Segment: "default", Seed: 7, Delay: 90 * time.Second,
		Split:   map[string]float64{"sim": 0.5, "sim2": 0.5},
		Request: routing.Request{Country: "US", Currency: "USD", Method: "card", Amount: 1999}}
	healthy.Until, bad.Until = t0.Add(2*time.Hour), t0.Add(4*time.Hour)
	after := healthy
	after.Until = t0.Add(6 * time.Hour)
	h.Phases = []routingtest.Phase{healthy, bad, after}
	return h.Records()
}

const static5050 = `{"segments":[{"name":"default","match":{},"candidates":[{"channel":"sim","weight":1},{"channel":"sim2","weight":1}]}]}`

// static5050NoBreaker is the split that made the records: no breaker.
const static5050NoBreaker = `{"breaker":{"consecutive_failures":1000,"failure_rate":1,"min_requests":100000},
  "segments":[{"name":"default","match":{},"candidates":[{"channel":"sim","weight":1},{"channel":"sim2","weight":1}]}]}`

func adaptive(algorithm string) string {
	return `{"algorithm":"` + algorithm + `","exploration":0.05,"segments":[{"name":"default","split":"adaptive","match":{},
	  "candidates":[{"channel":"sim","weight":1},{"channel":"sim2","weight":1}]}]}`
}

func backtest(t *testing.T, recs []routing.Record, doc string, seed uint64) routing.BacktestReport {
	t.Helper()
	rep, err := routing.Backtest(recs, routing.BacktestConfig{Policy: policy(t, doc), Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestBacktestFindsTheOutage(t *testing.T) {
	recs := outage()
	logged := backtest(t, recs, static5050NoBreaker, 1)
	static := backtest(t, recs, static5050, 1)
	smart := backtest(t, recs, adaptive("thompson"), 1)
	t.Logf("requests %d; actual %.4f; logged split %.4f; static with breaker %.4f; adaptive expected %.4f simulated %.4f; oracle %.4f (lower %.4f); regret static %.0f adaptive %.0f; trips %v",
		static.Requests, static.Actual.Rate, logged.Expected, static.Expected, smart.Expected, smart.Simulated.Rate, smart.Oracle, smart.OracleLower, static.Regret, smart.Regret, smart.Trips)

	// Replaying the policy that made the records gives back what happened.
	if d := logged.Expected - logged.Actual.Rate; d > 0.015 || d < -0.015 {
		t.Errorf("the logged policy's replay %.4f differs from what happened %.4f", logged.Expected, logged.Actual.Rate)
	}
	// The breaker alone helps (sim2 fails a third of its Initiates)...
	if static.Expected <= logged.Expected {
		t.Errorf("the breaker did not help the static split: %.4f vs %.4f", static.Expected, logged.Expected)
	}
	// ...the adaptive policy beats both, and comes close to the oracle.
	if smart.Expected < static.Expected+0.03 {
		t.Errorf("adaptive %.4f does not beat static %.4f by 3 points", smart.Expected, static.Expected)
	}
	if smart.Oracle-smart.Expected > 0.03 {
		t.Errorf("adaptive %.4f is more than 3 points under the oracle %.4f", smart.Expected, smart.Oracle)
	}
	if smart.Regret >= logged.Regret/3 {
		t.Errorf("adaptive regret %.0f is not a third of the logged split's %.0f", smart.Regret, logged.Regret)
	}
	// During the outage sim2's share falls; after it, it comes back.
	outageShare, afterShare := 0.0, 0.0
	for _, s := range smart.Shares {
		if s.Channel != "sim2" {
			continue
		}
		switch h := s.Bucket.Sub(t0); {
		case h >= 2*time.Hour+time.Hour && h < 4*time.Hour: // the outage's second hour
			outageShare = s.Policy
		case h >= 5*time.Hour:
			afterShare = s.Policy
		}
	}
	if outageShare > 0.15 || afterShare < 0.25 {
		t.Errorf("sim2's share: %.3f in the outage's second hour (want ≤ 0.15), %.3f in the last hour (want ≥ 0.25)", outageShare, afterShare)
	}
	if smart.Trips[routing.Arm{Channel: "sim2", Segment: "default"}] == 0 {
		t.Error("sim2 failing a third of its Initiates never tripped its breaker")
	}
	if smart.Trips[routing.Arm{Channel: "sim", Segment: "default"}] != 0 {
		t.Error("the healthy channel's breaker tripped")
	}
	if smart.Coverage != 1 || smart.Unsupported != 0 {
		t.Errorf("coverage %v, unsupported %d", smart.Coverage, smart.Unsupported)
	}
	// Exploration was even in the records (50/50), so the replay and IPS
	// estimates exist and say the same as the model.
	if smart.Replay.N == 0 || smart.IPSMatched == 0 || smart.IPS < logged.Actual.Rate {
		t.Errorf("replay %+v, IPS %.4f over %d", smart.Replay, smart.IPS, smart.IPSMatched)
	}
}

func TestBacktestIsDeterministicForASeed(t *testing.T) {
	recs := outage()[:3000]
	a := backtest(t, recs, adaptive("thompson"), 5)
	b := backtest(t, recs, adaptive("thompson"), 5)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two backtests with one seed differ")
	}
	c := backtest(t, recs, adaptive("thompson"), 6)
	if reflect.DeepEqual(a.Shares, c.Shares) {
		t.Fatal("another seed gave the very same shares: the seed is not used")
	}
}

// TestThompsonBeatsTheSlidingWindow is the comparison docs/routing.md
// reports: the default algorithm must be the better of the two on the
// outage, over several seeds.
func TestThompsonBeatsTheSlidingWindow(t *testing.T) {
	recs := outage()
	var ts, sw float64
	for seed := uint64(1); seed <= 4; seed++ {
		ts += backtest(t, recs, adaptive("thompson"), seed).Expected
		sw += backtest(t, recs, adaptive("sliding_window"), seed).Expected
	}
	t.Logf("mean expected success rate: thompson %.4f, sliding window %.4f", ts/4, sw/4)
	if ts < sw {
		t.Fatalf("thompson %.4f is worse than the sliding window %.4f: change the default", ts/4, sw/4)
	}
}

func TestBacktestWithoutRecords(t *testing.T) {
	if _, err := routing.Backtest(nil, routing.BacktestConfig{Policy: policy(t, static5050)}); !errors.Is(err, routing.ErrNoRecords) {
		t.Fatalf("no records: %v", err)
	}
}

func TestBacktestLeavesUnsupportedChannelsOut(t *testing.T) {
	recs := outage()[:2000]
	p := `{"segments":[{"name":"default","match":{},"candidates":[{"channel":"sim","weight":1},{"channel":"nowhere","weight":1}]}]}`
	rep := backtest(t, recs, p, 1)
	if rep.Unsupported == 0 || rep.Coverage > 0.6 || rep.Coverage < 0.4 {
		t.Fatalf("a channel without records must be unsupported: coverage %v, unsupported %d", rep.Coverage, rep.Unsupported)
	}
}
