// Package routingtest generates recorded traffic for routing's tests and
// backtests: pay requests routed by a known split to channels whose
// success rates change at known times, so that the right answer is known.
package routingtest

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/paygate/paygate/domain/routing"
)

// Phase is a stretch of time in which each channel behaves one way.
type Phase struct {
	Until time.Time
	// PaidRate is each channel's chance that an attempt it started is
	// paid; InitiateFailRate its chance of failing to start one.
	PaidRate         map[string]float64
	InitiateFailRate map[string]float64
}

// Rate is a phase's channel success rate per attempt: started and paid.
func (ph Phase) Rate(ch string) float64 { return (1 - ph.InitiateFailRate[ch]) * ph.PaidRate[ch] }

// History describes the traffic to generate.
type History struct {
	Start    time.Time
	Interval time.Duration // between pay requests
	Phases   []Phase
	// Split is the recorded routing: each channel's share of first
	// attempts (an even, logged split makes every attempt explorable).
	Split   map[string]float64
	Segment string
	Request routing.Request
	Seed    uint64
	// Delay is the time from decision to outcome.
	Delay time.Duration
}

// Records generates the attempts: a first attempt per pay request by
// Split, failing over to the other channels in name order when Initiate
// fails, as the gateway does.
func (h History) Records() []routing.Record {
	rng := rand.New(rand.NewPCG(h.Seed, 7))
	var channels []string
	for ch := range h.Split {
		channels = append(channels, ch)
	}
	sortStrings(channels)
	var out []routing.Record
	t := h.Start
	n := 0
	for _, ph := range h.Phases {
		for ; t.Before(ph.Until); t = t.Add(h.Interval) {
			n++
			id := fmt.Sprintf("R%06d", n)
			r := rng.Float64()
			first := channels[len(channels)-1]
			for _, ch := range channels {
				if r < h.Split[ch] {
					first = ch
					break
				}
				r -= h.Split[ch]
			}
			order := []string{first}
			for _, ch := range channels {
				if ch != first {
					order = append(order, ch)
				}
			}
			at := t
			for hop, ch := range order {
				rec := routing.Record{TransactionCode: fmt.Sprintf("%s-%d", id, hop), RequestID: id, Request: h.Request, Channel: ch,
					Segment: h.Segment, DecidedAt: at, Hop: hop, Explore: hop == 0, Propensity: 1}
				if hop == 0 {
					rec.Propensity = h.Split[ch]
				}
				if rng.Float64() < ph.InitiateFailRate[ch] {
					rec.Outcome, rec.ResolvedAt = routing.InitiateFailed, at.Add(time.Second)
					out = append(out, rec)
					at = at.Add(time.Second)
					continue
				}
				rec.ResolvedAt = at.Add(h.Delay)
				if rng.Float64() < ph.PaidRate[ch] {
					rec.Outcome = routing.Paid
				} else {
					rec.Outcome = routing.Declined
				}
				out = append(out, rec)
				break
			}
		}
	}
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
