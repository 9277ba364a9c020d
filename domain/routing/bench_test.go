package routing_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/domain/routing"
)

// BenchmarkDecide is routing's cost per pay request: one decision from a
// view computed beforehand (as payinit decides a batch from one view).
func BenchmarkDecide(b *testing.B) {
	for _, tc := range []struct{ name, doc string }{
		{"static-weights-2", `{"segments":[{"name":"default","match":{},"candidates":[{"channel":"c0","weight":1},{"channel":"c1","weight":1}]}]}`},
		{"adaptive-thompson-2", `{"exploration":0.05,"segments":[{"name":"default","split":"adaptive","match":{},"candidates":[{"channel":"c0","weight":1},{"channel":"c1","weight":1}]}]}`},
		{"adaptive-thompson-5", `{"exploration":0.05,"segments":[{"name":"default","split":"adaptive","match":{},"candidates":[{"channel":"c0","weight":1},{"channel":"c1","weight":1},{"channel":"c2","weight":1},{"channel":"c3","weight":1},{"channel":"c4","weight":1}]}]}`},
		{"adaptive-window-5", `{"algorithm":"sliding_window","exploration":0.05,"segments":[{"name":"default","split":"adaptive","match":{},"candidates":[{"channel":"c0","weight":1},{"channel":"c1","weight":1},{"channel":"c2","weight":1},{"channel":"c3","weight":1},{"channel":"c4","weight":1}]}]}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := policy(b, tc.doc)
			h := routing.NewHealth()
			for i := range 5000 {
				o := routing.Paid
				if i%7 == 0 {
					o = routing.Declined
				}
				h.Apply(routing.Feedback{Outcome: o, TransactionCode: fmt.Sprint("T", i), Channel: fmt.Sprint("c", i%5), Segment: "default",
					DecidedAt: t0.Add(-time.Duration(i) * time.Second), At: t0})
			}
			v := h.View(p, t0)
			r := rng(1)
			usable := func(string) error { return nil }
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := routing.Decide(p, usd, v, usable, r, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkView is the cost of recomputing the health a batch decides
// from (at most every 100 ms per process, when feedback arrived): five
// channels with full windows.
func BenchmarkView(b *testing.B) {
	p := policy(b, `{"segments":[{"name":"default","split":"adaptive","match":{},"candidates":[{"channel":"c0","weight":1},{"channel":"c1","weight":1},{"channel":"c2","weight":1},{"channel":"c3","weight":1},{"channel":"c4","weight":1}]}]}`)
	h := routing.NewHealth()
	for i := range 20000 {
		h.Apply(routing.Feedback{Outcome: routing.Paid, TransactionCode: fmt.Sprint("T", i), Channel: fmt.Sprint("c", i%5), Segment: "default", DecidedAt: t0, At: t0})
		h.Apply(routing.Feedback{Outcome: routing.Initiated, TransactionCode: fmt.Sprint("T", i), Channel: fmt.Sprint("c", i%5), Segment: "default", DecidedAt: t0, At: t0})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		h.View(p, t0)
	}
}

// BenchmarkApply is the cost of folding one feedback in.
func BenchmarkApply(b *testing.B) {
	h := routing.NewHealth()
	b.ReportAllocs()
	for i := range b.N {
		h.Apply(routing.Feedback{Outcome: routing.Paid, TransactionCode: fmt.Sprint("T", i), Channel: "c0", Segment: "default", DecidedAt: t0, At: t0})
	}
}
