package risk_test

import (
	"testing"
	"time"

	"github.com/paygate/paygate/domain/risk"
)

// BenchmarkAssess is one decision, pure: the rules of fullRules on a
// request with every key, its tally loaded.
//
//	go test ./domain/risk -run '^$' -bench . -benchmem
func BenchmarkAssess(b *testing.B) {
	rules, err := risk.Parse([]byte(fullRules))
	if err != nil {
		b.Fatal(err)
	}
	r := req()
	r.CardFingerprint, r.BankAccount = "fp", "ba"
	t := tally(rules, r, map[string][3]int64{"buyer_id:u42": {2, 3000, 1}, "email:a@example.com": {2, 3000, 0}}, nil)
	b.ReportAllocs()
	for b.Loop() {
		a := rules.Assess(r, t, nil, now)
		if a.Decision != risk.Allow {
			b.Fatal(a.Decision)
		}
	}
}

// BenchmarkProbes is what a request's decision reads, listed.
func BenchmarkProbes(b *testing.B) {
	rules, err := risk.Parse([]byte(fullRules))
	if err != nil {
		b.Fatal(err)
	}
	r := req()
	b.ReportAllocs()
	for b.Loop() {
		_ = rules.Probes(r, time.Now())
	}
}
