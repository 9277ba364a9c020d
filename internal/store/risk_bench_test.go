package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/domain/risk"
	"github.com/paygate/paygate/internal/pgtest"
	"github.com/paygate/paygate/internal/store"
)

// benchRules are rules as a shop would run them: three velocity windows on
// three keys, a new-buyer look-back, limits and lists.
const benchRules = `{"thresholds":{"review":50,"deny":100},
  "limits":[{"id":"usd-max","currency":"USD","max":500000,"points":100}],
  "velocity":[
    {"id":"buyer-10m","key":"buyer_id","window":"10m","max_count":5,"points":100},
    {"id":"email-day","key":"email","window":"24h","max_amount":200000,"currency":"USD","points":60},
    {"id":"ipnet-hour","key":"ip_net","window":"1h","max_count":1000,"points":30}],
  "new_buyer":{"id":"new-big","first_seen_within":"24h","above":{"USD":50000},"points":40},
  "block":[{"email_domain":"fraud.example","reason":"x"},{"cidr":"198.51.100.0/24","reason":"x"}],
  "ip_country":{"points":20},"ip_countries":[{"cidr":"203.0.113.0/24","country":"AU"}]}`

// BenchmarkPlanAttemptsRisk is payinit's planning transaction for a batch
// of 100 new pay requests (100 new buyers a batch, their /24s shared
// across batches; nothing is denied), with risk
// control off and on: what the check costs per pay request, in time and
// in database round trips per batch. Real PostgreSQL.
//
//	go test ./internal/store -run '^$' -bench PlanAttemptsRisk -benchtime 30x
func BenchmarkPlanAttemptsRisk(b *testing.B) {
	const batch = 100
	rules, err := risk.Parse([]byte(benchRules))
	if err != nil {
		b.Fatal(err)
	}
	rules.Version = 1
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			s, err := store.Open(context.Background(), store.Config{URL: pgtest.New(b)}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			code := counter()
			decide := func(ex *domain.Order, in domain.PayIntent, seen domain.RiskSeen) (domain.Planned, error) {
				o, err := domain.NewOrder(in.OrderID, in.Amount)
				if err != nil {
					return domain.Planned{}, err
				}
				p := domain.Planned{Order: o}
				if on {
					a := rules.Assess(in.RiskRequest(), seen.Tally, nil, time.Now())
					p.Risk = &a
					if a.Decision == risk.Deny {
						return p, domain.ErrRiskDenied
					}
					if a.Decision == risk.Review {
						return p, nil
					}
				}
				p.Attempt, err = domain.NewAttempt(code(), in.OrderID, "sim", in.Amount)
				return p, err
			}
			var trips, stmts int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				intents := make([]domain.PayIntent, batch)
				for j := range intents {
					in := intent(fmt.Sprintf("m-%d-%d", i, j), fmt.Sprintf("B-%d-%d", i, j), 1999)
					in.Buyer = domain.Buyer{ID: fmt.Sprintf("u%d-%d", i, j), Email: fmt.Sprintf("b%d-%d@shop.example", i, j), IP: fmt.Sprintf("192.0.%d.%d", j%200, j%250)}
					intents[j] = in
				}
				var screen domain.Screen
				if on {
					at := time.Now()
					screen = domain.Screen{At: at, Probes: func(in domain.PayIntent) []risk.Probe { return rules.Probes(in.RiskRequest(), at) }}
				}
				before := s.Counts()
				b.StartTimer()
				plans, err := s.PlanAttempts(ctx, intents, screen, decide)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				for _, p := range plans {
					if p.Rejected != "" || p.Held {
						b.Fatalf("%s: %q held %v", p.Intent.OrderID, p.Rejected, p.Held)
					}
				}
				after := s.Counts()
				trips += after.RoundTrips() - before.RoundTrips()
				stmts += after.Statements - before.Statements
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*batch), "µs/request")
			b.ReportMetric(float64(trips)/float64(b.N), "round_trips/batch")
			b.ReportMetric(float64(stmts)/float64(b.N*batch), "statements/request")
		})
	}
}

// Risk control within one batch, now that a batch's decisions are taken
// in memory and written in one statement: each decision sees the batch's
// requests let through before it (the third request of a buyer whose
// limit is two in ten minutes is held), a request of an order held
// earlier in the batch is refused as waiting for its review, the requests
// counted are summed under their keys, and each decision and the review
// are stored.
func TestPlanAttemptsRiskWithinOneBatch(t *testing.T) {
	t.Parallel()
	s, url := openURL(t)
	ctx := context.Background()
	rules, err := risk.Parse([]byte(`{"thresholds":{"review":50,"deny":100},
	  "velocity":[{"id":"buyer-10m","key":"buyer_id","window":"10m","max_count":2,"points":60}]}`))
	if err != nil {
		t.Fatal(err)
	}
	rules.Version = 7
	code := counter()
	decide := func(ex *domain.Order, in domain.PayIntent, seen domain.RiskSeen) (domain.Planned, error) {
		o, err := domain.OrderFor(ex, in)
		if err != nil {
			return domain.Planned{Order: o}, err
		}
		p := domain.Planned{Order: o}
		if seen.ReviewPending {
			return p, domain.ErrReviewPending
		}
		a := rules.Assess(in.RiskRequest(), seen.Tally, nil, time.Now())
		p.Risk = &a
		switch a.Decision {
		case risk.Deny:
			return p, domain.ErrRiskDenied
		case risk.Review:
			return p, nil
		}
		p.Attempt, err = domain.NewAttempt(code(), in.OrderID, "sim", in.Amount)
		return p, err
	}
	buyer := func(in domain.PayIntent, id string) domain.PayIntent {
		in.Buyer = domain.Buyer{ID: id}
		return in
	}
	intents := []domain.PayIntent{
		buyer(intent("r1", "R1", 100), "u1"), buyer(intent("r2", "R2", 200), "u1"), buyer(intent("r3", "R3", 300), "u1"),
		buyer(intent("r4", "R3", 300), "u1"), buyer(intent("r5", "R5", 500), "u2"),
	}
	at := time.Now()
	screen := domain.Screen{At: at, Probes: func(in domain.PayIntent) []risk.Probe { return rules.Probes(in.RiskRequest(), at) }}
	plans, err := s.PlanAttempts(ctx, intents, screen, decide)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(plans))
	for i, p := range plans {
		switch {
		case p.Held:
			got[i] = "held"
		case p.Rejected != "":
			got[i] = p.Rejected
		default:
			got[i] = "accepted"
		}
	}
	if want := []string{"accepted", "accepted", "held", domain.ErrReviewPending.Error(), "accepted"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("plans %v; want %v", got, want)
	}
	db := sqlx.MustOpen("postgres", url)
	defer db.Close()
	var n, amount int64
	if err := db.QueryRow(`SELECT sum(n), sum(amount) FROM risk_counts WHERE key = 'buyer_id:u1' AND kind = 'request'`).Scan(&n, &amount); err != nil {
		t.Fatal(err)
	}
	// Counted: the two let through and the one held (not the refusal).
	if n != 3 || amount != 600 {
		t.Errorf("u1 counted %d requests of %d; want 3 of 600", n, amount)
	}
	var decisions, reviews, version int64
	var keys string
	db.QueryRow(`SELECT count(*), max(rules_version) FROM risk_decisions`).Scan(&decisions, &version)
	db.QueryRow(`SELECT array_to_string(keys, ',') FROM risk_decisions WHERE message_id = 'r3'`).Scan(&keys)
	db.QueryRow(`SELECT count(*) FROM risk_reviews WHERE order_id = 'R3' AND message_id = 'r3' AND status = 'pending'`).Scan(&reviews)
	if decisions != 4 || version != 7 || reviews != 1 || !strings.Contains(keys, "buyer_id:u1") {
		t.Errorf("%d decisions (rules %d), %d reviews, r3's keys %q; want 4 decisions of rules 7, R3's review, and its keys", decisions, version, reviews, keys)
	}
}
