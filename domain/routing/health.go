package routing

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Outcome is what one attempt told routing about its channel.
type Outcome struct{ s string }

// The outcomes. Initiated and InitiateFailed are Initiate's answer (the
// fast clock, seconds after the decision): they feed the breaker.
// Paid, Declined and Abandoned are the attempt's end (the slow clock,
// minutes later): they feed the success rate. InitiateFailed feeds both:
// the channel failed to take the payment.
var (
	Initiated      = Outcome{"initiated"}
	InitiateFailed = Outcome{"initiate_failed"}
	Paid           = Outcome{"paid"}
	Declined       = Outcome{"declined"}
	Abandoned      = Outcome{"abandoned"}
)

var outcomes = []Outcome{Initiated, InitiateFailed, Paid, Declined, Abandoned}

// ParseOutcome reads an outcome's name.
func ParseOutcome(s string) (Outcome, error) {
	for _, o := range outcomes {
		if o.s == s {
			return o, nil
		}
	}
	return Outcome{}, fmt.Errorf("unknown routing outcome %q", s)
}

func (o Outcome) String() string { return o.s }

// Arm is one channel in one segment: what health is kept for.
type Arm struct {
	Channel string
	Segment string
}

func (a Arm) String() string { return a.Channel + "/" + a.Segment }

// Feedback is one attempt's outcome, attributed to the segment and policy
// of the decision that made the attempt.
type Feedback struct {
	Outcome         Outcome
	TransactionCode string
	Channel         string
	Segment         string
	PolicyVersion   int64
	// DecidedAt is when the attempt was routed: outcomes are weighted by
	// their age from it, so a late outcome counts for the time the PSP
	// behaved so, not for the time paygate heard of it.
	DecidedAt time.Time
	// At is when the outcome happened.
	At      time.Time
	Explore bool
	// Hop is 0 for a pay request's first channel, n for its n-th failover.
	Hop int
}

// ID is the feedback's stable id: one per attempt and clock, so that a
// feedback delivered twice counts once, and an attempt's first end (paid
// or declined) is its only one.
func (f Feedback) ID() string {
	switch f.Outcome {
	case Initiated, InitiateFailed:
		return "routing/initiate/" + f.TransactionCode
	case Abandoned:
		return "routing/abandoned/" + f.TransactionCode
	default:
		return "routing/outcome/" + f.TransactionCode
	}
}

// Arm is the arm the feedback is about.
func (f Feedback) Arm() Arm { return Arm{Channel: f.Channel, Segment: f.Segment} }

// Ring sizes: how much of each arm's history is kept. The breaker needs
// the recent Initiates; the success rate at most maxWindow outcomes.
const (
	initRing = 256
	outRing  = maxWindow
)

type initEntry struct {
	id   string
	code string
	at   time.Time
	ok   bool
}

type outEntry struct {
	id      string
	code    string
	decided time.Time
	outcome Outcome
}

// ring keeps the last entries pushed, up to a capacity.
type ring[T any] struct {
	buf  []T
	next int
}

func (r *ring[T]) push(v T, capacity int) (evicted T, wasFull bool) {
	if len(r.buf) < capacity {
		r.buf = append(r.buf, v)
		return evicted, false
	}
	evicted, r.buf[r.next] = r.buf[r.next], v
	r.next = (r.next + 1) % capacity
	return evicted, true
}

// len is how many entries the ring holds.
func (r *ring[T]) len() int { return len(r.buf) }

// at is the i-th entry, oldest first.
func (r *ring[T]) at(i int) T { return r.buf[(r.next+i)%len(r.buf)] }

type armState struct {
	inits    ring[initEntry]
	outs     ring[outEntry]
	initSeen map[string]bool
	outSeen  map[string]bool
}

// Health is every arm's recent history, folded from feedback in the order
// it arrives. Feedback of one arm must arrive in one order everywhere
// (paygate keys the feedback topic by arm): then every process that folds
// the same feedback holds the same health, and so judges breakers and
// rates alike. Health is not safe for concurrent use.
type Health struct {
	arms map[Arm]*armState
	seq  uint64
}

// NewHealth is an empty health.
func NewHealth() *Health { return &Health{arms: map[Arm]*armState{}} }

// Seq counts the feedback applied: a view is stale once it differs.
func (h *Health) Seq() uint64 { return h.seq }

// Apply folds one feedback in; it reports false (and changes nothing)
// for a feedback it holds already.
func (h *Health) Apply(f Feedback) bool {
	a := h.arms[f.Arm()]
	if a == nil {
		a = &armState{initSeen: map[string]bool{}, outSeen: map[string]bool{}}
		h.arms[f.Arm()] = a
	}
	id := f.ID()
	applied := false
	if f.Outcome == Initiated || f.Outcome == InitiateFailed {
		if !a.initSeen[id] {
			a.initSeen[id] = true
			if old, full := a.inits.push(initEntry{id: id, code: f.TransactionCode, at: f.At, ok: f.Outcome == Initiated}, initRing); full {
				delete(a.initSeen, old.id)
			}
			applied = true
		}
	}
	if f.Outcome != Initiated && !a.outSeen[id] {
		a.outSeen[id] = true
		if old, full := a.outs.push(outEntry{id: id, code: f.TransactionCode, decided: f.DecidedAt, outcome: f.Outcome}, outRing); full {
			delete(a.outSeen, old.id)
		}
		applied = true
	}
	if applied {
		h.seq++
	}
	return applied
}

// BreakerState is a breaker's state.
type BreakerState struct{ s string }

// The breaker states.
var (
	BreakerClosed   = BreakerState{"closed"}
	BreakerOpen     = BreakerState{"open"}
	BreakerHalfOpen = BreakerState{"half_open"}
)

func (s BreakerState) String() string { return s.s }

// Why a breaker opened.
const (
	TripConsecutive = "consecutive_failures"
	TripFailureRate = "failure_rate"
	TripProbe       = "half_open_failure"
	TripSuccessRate = "success_rate"
)

// Breaker is a breaker's state at one moment.
type Breaker struct {
	State BreakerState
	// Reason is why it is open or half-open ("" when closed).
	Reason string
	// Since is when it entered State; Until when an open breaker turns
	// half-open.
	Since, Until time.Time
	// Trips counts the openings in the history kept.
	Trips int
	// Requests and Failures are the Initiates within the breaker window.
	Requests, Failures int
}

// Technical reports whether the breaker keeps the channel out for
// technical failures (as opposed to a low success rate, which exploration
// still reaches).
func (b Breaker) Technical() bool { return b.State == BreakerOpen && b.Reason != TripSuccessRate }

// breakerAt runs the breaker's state machine over an arm's Initiates,
// oldest first, and returns its state at now. It is a pure function of the
// history: processes holding the same history agree on the breaker.
func breakerAt(inits *ring[initEntry], now time.Time, cfg BreakerConfig) Breaker {
	b := Breaker{State: BreakerClosed}
	consecutive, reopens, closeRun := 0, 0, 0
	// The Initiates counted toward the failure rate are inits[start:i+1]
	// (within the window, since the breaker last closed); fails counts
	// the failures among them.
	start, fails := 0, 0
	open := func(i int, at time.Time, why string) {
		d := cfg.OpenFor << min(reopens, 20)
		if d > cfg.MaxOpenFor || d <= 0 {
			d = cfg.MaxOpenFor
		}
		b = Breaker{State: BreakerOpen, Reason: why, Since: at, Until: at.Add(d), Trips: b.Trips + 1}
		reopens++
		consecutive, closeRun, start, fails = 0, 0, i+1, 0
	}
	n := inits.len()
	for i := 0; i < n; i++ {
		e := inits.at(i)
		if b.State == BreakerOpen && !e.at.Before(b.Until) {
			b.State, b.Since, closeRun = BreakerHalfOpen, b.Until, 0
		}
		switch b.State {
		case BreakerOpen:
			// An Initiate decided before the breaker opened, answered
			// since: it says nothing new.
			start = i + 1
		case BreakerHalfOpen:
			start = i + 1
			if !e.ok {
				open(i, e.at, TripProbe)
				continue
			}
			if closeRun++; closeRun >= cfg.CloseAfter {
				b = Breaker{State: BreakerClosed, Since: e.at, Trips: b.Trips}
				reopens, consecutive = 0, 0
			}
		case BreakerClosed:
			if !e.ok {
				fails++
			}
			for start <= i && inits.at(start).at.Before(e.at.Add(-cfg.Window)) {
				if !inits.at(start).ok {
					fails--
				}
				start++
			}
			if e.ok {
				consecutive = 0
			} else {
				consecutive++
			}
			if consecutive >= cfg.ConsecutiveFailures {
				open(i, e.at, TripConsecutive)
				continue
			}
			if w := i + 1 - start; w >= cfg.MinRequests && float64(fails) >= cfg.FailureRate*float64(w) {
				open(i, e.at, TripFailureRate)
			}
		}
	}
	if b.State == BreakerOpen && !now.Before(b.Until) {
		b.State, b.Since = BreakerHalfOpen, b.Until
	}
	for i := n - 1; i >= 0; i-- {
		e := inits.at(i)
		if e.at.After(now) {
			continue
		}
		if e.at.Before(now.Add(-cfg.Window)) {
			break
		}
		b.Requests++
		if !e.ok {
			b.Failures++
		}
	}
	return b
}

// ArmStats is an arm's health at one moment.
type ArmStats struct {
	Arm
	// Successes and Failures are the discounted paid and failed
	// (declined, or Initiate failed) outcomes among the last Window;
	// Abandoned the discounted abandonments, kept apart unless the policy
	// counts them as failures.
	Successes, Failures, Abandoned float64
	// Resolved counts the outcomes behind Successes and Failures.
	Resolved int
	// SuccessRate is Successes/(Successes+Failures), -1 without outcomes.
	SuccessRate float64
	// WindowRate is the plain success rate of the last Window outcomes
	// (the sliding-window algorithm's score), -1 without outcomes.
	WindowRate float64
	// Pending counts the recent attempts the PSP accepted that have no
	// outcome yet: feedback still to come.
	Pending int
	Breaker Breaker
}

// View is the health of every arm at one moment, under one policy's
// knobs: what a batch of decisions reads.
type View struct {
	At  time.Time
	Seq uint64
	// PolicyVersion is the version of the policy whose knobs made it.
	PolicyVersion int64
	arms          map[Arm]ArmStats
	channels      map[string][2]float64
	segments      map[string][2]float64
	mu            sync.Mutex // guards propensity, filled as decisions need it
	propensity    map[string][]float64
}

// View computes every arm's health at now under the policy's knobs.
func (h *Health) View(p *Policy, now time.Time) *View {
	v := &View{At: now, Seq: h.seq, PolicyVersion: p.Version, arms: make(map[Arm]ArmStats, len(h.arms)),
		channels: map[string][2]float64{}, segments: map[string][2]float64{}, propensity: map[string][]float64{}}
	halfLife := p.Health.HalfLife.Seconds()
	// In a fixed order: the pooled sums below are floating point, and
	// their order must not depend on the map's.
	arms := make([]Arm, 0, len(h.arms))
	for arm := range h.arms {
		arms = append(arms, arm)
	}
	slices.SortFunc(arms, func(a, b Arm) int {
		return cmp.Or(cmp.Compare(a.Segment, b.Segment), cmp.Compare(a.Channel, b.Channel))
	})
	for _, arm := range arms {
		a := h.arms[arm]
		st := ArmStats{Arm: arm, SuccessRate: -1, WindowRate: -1}
		first := max(a.outs.len()-p.Health.Window, 0)
		paid, counted := 0, 0
		for i := first; i < a.outs.len(); i++ {
			o := a.outs.at(i)
			age := now.Sub(o.decided).Seconds()
			w := 1.0
			if age > 0 {
				w = math.Exp2(-age / halfLife)
			}
			switch {
			case o.outcome == Paid:
				st.Successes += w
				paid++
				counted++
			case o.outcome == Abandoned && !p.Health.AbandonedIsFailure:
				st.Abandoned += w
			default: // declined, Initiate failed, abandoned counted as failure
				st.Failures += w
				counted++
			}
		}
		st.Resolved = counted
		if st.Successes+st.Failures > 0 {
			st.SuccessRate = st.Successes / (st.Successes + st.Failures)
		}
		if counted > 0 {
			st.WindowRate = float64(paid) / float64(counted)
		}
		for i := 0; i < a.inits.len(); i++ {
			if e := a.inits.at(i); e.ok && !a.outSeen["routing/outcome/"+e.code] && !a.outSeen["routing/abandoned/"+e.code] {
				st.Pending++
			}
		}
		st.Breaker = breakerAt(&a.inits, now, p.Breaker)
		if b := p.Breaker; b.MinSuccessRate > 0 && st.Breaker.State == BreakerClosed && st.Resolved >= b.MinOutcomes &&
			st.SuccessRate >= 0 && st.SuccessRate < b.MinSuccessRate {
			st.Breaker.State, st.Breaker.Reason = BreakerOpen, TripSuccessRate
		}
		v.arms[arm] = st
		c, s := v.channels[arm.Channel], v.segments[arm.Segment]
		v.channels[arm.Channel] = [2]float64{c[0] + st.Successes, c[1] + st.Failures}
		v.segments[arm.Segment] = [2]float64{s[0] + st.Successes, s[1] + st.Failures}
	}
	return v
}

// Arm is one arm's health; an arm without history has no outcomes and a
// closed breaker.
func (v *View) Arm(channel, segment string) ArmStats {
	if st, ok := v.arms[Arm{channel, segment}]; ok {
		return st
	}
	return ArmStats{Arm: Arm{channel, segment}, SuccessRate: -1, WindowRate: -1, Breaker: Breaker{State: BreakerClosed}}
}

// Arms lists every arm with history, by segment and channel.
func (v *View) Arms() []ArmStats {
	out := make([]ArmStats, 0, len(v.arms))
	for _, st := range v.arms {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b ArmStats) int {
		return cmp.Or(cmp.Compare(a.Segment, b.Segment), cmp.Compare(a.Channel, b.Channel))
	})
	return out
}

// prior is the Beta prior of an arm: the channel's rate over all its
// segments where that has enough outcomes, else the segment's over all
// its channels, else one half; with strength pseudo-outcomes.
func (v *View) prior(arm Arm, p *Policy) (alpha, beta float64) {
	mean := 0.5
	min := float64(max(p.Health.MinSamples, 1))
	if c := v.channels[arm.Channel]; c[0]+c[1] >= min {
		mean = c[0] / (c[0] + c[1])
	} else if s := v.segments[arm.Segment]; s[0]+s[1] >= min {
		mean = s[0] / (s[0] + s[1])
	}
	mean = math.Min(math.Max(mean, 0.01), 0.99)
	return mean * p.Health.PriorStrength, (1 - mean) * p.Health.PriorStrength
}

// Mean is the arm's posterior mean success rate: its discounted outcomes
// over its prior. It orders the failover of an adaptive segment.
func (v *View) Mean(arm Arm, p *Policy) float64 {
	a, b := v.prior(arm, p)
	st := v.Arm(arm.Channel, arm.Segment)
	return (a + st.Successes) / (a + b + st.Successes + st.Failures)
}
