package routing

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Reason is why a decision chose its channel.
type Reason struct{ s string }

// The reasons.
var (
	// ReasonPin: the pay request named the channel.
	ReasonPin = Reason{"pin"}
	// ReasonWeight: drawn by weight (a weighted split, or an adaptive one
	// without enough outcomes yet).
	ReasonWeight = Reason{"weight"}
	// ReasonPriority: the healthy candidate of the lowest priority number.
	ReasonPriority = Reason{"priority"}
	// ReasonScore: the adaptive algorithm's pick from the success rates.
	ReasonScore = Reason{"score"}
	// ReasonExploration: the exploration share, evenly over the candidates.
	ReasonExploration = Reason{"exploration"}
	// ReasonControl: the control share, by weight whatever the rates.
	ReasonControl = Reason{"control"}
	// ReasonProbe: a half-open breaker's probe.
	ReasonProbe = Reason{"probe"}
	// ReasonAllOpen: every candidate's breaker is open; the least bad one.
	ReasonAllOpen = Reason{"all_open"}
	// ReasonFailover: the channel before failed to start the payment.
	ReasonFailover = Reason{"failover"}
)

var reasons = []Reason{ReasonPin, ReasonWeight, ReasonPriority, ReasonScore, ReasonExploration, ReasonControl, ReasonProbe, ReasonAllOpen, ReasonFailover}

// Reasons lists every reason (metrics label values).
func Reasons() []string {
	out := make([]string, len(reasons))
	for i, r := range reasons {
		out[i] = r.s
	}
	return out
}

// ParseReason reads a reason's name.
func ParseReason(s string) (Reason, error) {
	for _, r := range reasons {
		if r.s == s {
			return r, nil
		}
	}
	return Reason{}, fmt.Errorf("unknown routing reason %q", s)
}

func (r Reason) String() string { return r.s }

// Scored is one candidate as a decision saw it.
type Scored struct {
	Channel  string
	Weight   int
	Priority int
	// SuccessRate and Resolved are the arm's health (-1: no outcomes).
	SuccessRate float64
	Resolved    int
	// Score is what the split compared: the Thompson draw, the window's
	// rate, or the weight's share; 0 where the candidate was not scored.
	Score      float64
	Breaker    BreakerState
	Propensity float64
	// Excluded says why the candidate could not be chosen ("" if it could).
	Excluded string
}

// Decision is a routing decision, kept with the attempt as evidence.
type Decision struct {
	PolicyVersion int64
	Segment       string
	// Request is what the decision routed; RequestID the pay request's
	// message id (set by the caller), which groups a request's attempts.
	Request    Request
	RequestID  string
	Split      Split
	Algorithm  Algorithm
	Candidates []Scored
	Chosen     string
	Reason     Reason
	// Explore is true when the exploration share chose (the backtest's
	// replay uses these attempts alone).
	Explore bool
	// Propensity is the probability that the decision chose this channel.
	Propensity float64
	// Failover is the order of the channels to try next if Chosen fails
	// to start the payment.
	Failover []string
	// Hop is 0 for the pay request's first channel, n for its n-th
	// failover; Previous is the attempt failed over from, and Tried the
	// channels that failed before this one.
	Hop      int
	Previous string
	Tried    []string
	At       time.Time
}

// Rand is the randomness a decision draws on.
type Rand interface {
	Float64() float64
	NormFloat64() float64
	IntN(n int) int
}

// ErrNoChannel means no channel can take the payment.
var ErrNoChannel = errors.New("no channel for this payment")

// Usable says whether a channel can take a request: nil, or why not (not
// configured, disabled, does not take that country, currency or method).
type Usable func(channel string) error

// Decide routes one request: the segment that matches it, then its
// candidates by the segment's split, the health in v and the breakers.
func Decide(p *Policy, r Request, v *View, usable Usable, rng Rand, now time.Time) (Decision, error) {
	seg := p.Segment(r)
	if seg == nil {
		return Decision{}, fmt.Errorf("%w: no segment of policy %d matches %s", ErrNoChannel, p.Version, r)
	}
	d := Decision{PolicyVersion: p.Version, Segment: seg.Name, Split: seg.Split, Request: r, At: now}
	if seg.Split == SplitAdaptive {
		d.Algorithm = p.Algorithm
	}
	if r.Channel != "" {
		if err := usable(r.Channel); err != nil {
			return d, fmt.Errorf("%w: channel %q: %v", ErrNoChannel, r.Channel, err)
		}
		d.Chosen, d.Reason, d.Propensity = r.Channel, ReasonPin, 1
		st := v.Arm(r.Channel, seg.Name)
		d.Candidates = []Scored{{Channel: r.Channel, SuccessRate: st.SuccessRate, Resolved: st.Resolved, Breaker: st.Breaker.State, Propensity: 1}}
		return d, nil
	}
	pools, err := d.evaluate(p, seg, v, usable, r)
	if err != nil {
		return d, err
	}
	if pools.allOpen >= 0 {
		d.choose(pools.allOpen, ReasonAllOpen, 1)
		d.Failover = failoverOrder(p, seg, v, d.Chosen, nil)
		return d, nil
	}
	closed, halfOpen, lowRate, pool, probeShare := pools.closed, pools.halfOpen, pools.lowRate, pools.pool, pools.probeShare
	if rng.Float64() < probeShare {
		d.choose(halfOpen[rng.IntN(len(halfOpen))], ReasonProbe, 0)
	} else {
		i, why := d.pick(p, seg, v, pool, closed, lowRate, rng)
		d.choose(i, why, 0)
	}
	d.Failover = failoverOrder(p, seg, v, d.Chosen, nil)
	return d, nil
}

// pools are a segment's candidates by their breakers' state.
type pools struct {
	closed, halfOpen, lowRate, pool []int
	probeShare                      float64
	// allOpen is the candidate to take when every breaker is open, else -1.
	allOpen int
}

// evaluate scores a segment's candidates: their health, why any is
// excluded, and each one's chance of being chosen.
func (d *Decision) evaluate(p *Policy, seg *Segment, v *View, usable Usable, r Request) (pools, error) {
	var ps pools
	ps.allOpen = -1
	var open []int
	d.Candidates = make([]Scored, len(seg.Candidates))
	for i, c := range seg.Candidates {
		st := v.Arm(c.Channel, seg.Name)
		sc := Scored{Channel: c.Channel, Weight: c.Weight, Priority: c.Priority, SuccessRate: st.SuccessRate,
			Resolved: st.Resolved, Breaker: st.Breaker.State}
		switch err := usable(c.Channel); {
		case err != nil:
			sc.Excluded = err.Error()
		case st.Breaker.Technical():
			sc.Excluded = "breaker open (" + st.Breaker.Reason + ")"
			open = append(open, i)
		case st.Breaker.State == BreakerHalfOpen:
			ps.halfOpen = append(ps.halfOpen, i)
		case st.Breaker.State == BreakerOpen: // a low success rate
			sc.Excluded = "success rate below the breaker's minimum (exploration only)"
			ps.lowRate = append(ps.lowRate, i)
		default:
			ps.closed = append(ps.closed, i)
		}
		d.Candidates[i] = sc
	}
	if len(ps.closed)+len(ps.halfOpen)+len(ps.lowRate) == 0 {
		if len(open) == 0 {
			return ps, fmt.Errorf("%w: no candidate of segment %q can take %s", ErrNoChannel, seg.Name, r)
		}
		// Never leave a payment without a channel: the breaker that
		// reopens first, as the anchor engines do.
		ps.allOpen = slices.MinFunc(open, func(a, b int) int {
			return v.Arm(seg.Candidates[a].Channel, seg.Name).Breaker.Until.Compare(v.Arm(seg.Candidates[b].Channel, seg.Name).Breaker.Until)
		})
		d.Candidates[ps.allOpen].Propensity = 1
		return ps, nil
	}
	ps.pool = ps.closed
	if len(ps.pool) == 0 {
		ps.pool = ps.lowRate
	}
	if len(ps.halfOpen) > 0 {
		ps.probeShare = math.Min(p.Breaker.ProbeShare*float64(len(ps.halfOpen)), 0.5)
		if len(ps.pool) == 0 {
			ps.probeShare = 1
		}
	}
	probs := d.exploitProbs(p, seg, v, ps.pool, ps.closed, ps.lowRate)
	for i := range d.Candidates {
		d.Candidates[i].Propensity = (1 - ps.probeShare) * probs[i]
	}
	for _, i := range ps.halfOpen {
		d.Candidates[i].Propensity += ps.probeShare / float64(len(ps.halfOpen))
	}
	return ps, nil
}

// Shares is each candidate of a segment with its health and its current
// share of the segment's traffic (every channel taken as usable): what
// /v1/routing/health and the metrics show.
func Shares(p *Policy, segment string, v *View) ([]Scored, error) {
	seg := p.SegmentNamed(segment)
	if seg == nil {
		return nil, fmt.Errorf("policy %d has no segment %q", p.Version, segment)
	}
	d := Decision{}
	if _, err := d.evaluate(p, seg, v, func(string) error { return nil }, Request{}); err != nil {
		return nil, err
	}
	return d.Candidates, nil
}

// choose records candidate i as the choice.
func (d *Decision) choose(i int, why Reason, propensity float64) {
	d.Chosen, d.Reason = d.Candidates[i].Channel, why
	d.Explore = why == ReasonExploration
	d.Propensity = d.Candidates[i].Propensity
	if propensity > 0 {
		d.Propensity = propensity
		d.Candidates[i].Propensity = propensity
	}
}

// exploitProbs is each candidate's probability of being chosen outside the
// probe share: the split's own rule over pool, plus, in an adaptive
// segment, the exploration share over every candidate not technically
// out and the control share by weight.
func (d *Decision) exploitProbs(p *Policy, seg *Segment, v *View, pool, closed, lowRate []int) []float64 {
	probs := make([]float64, len(seg.Candidates))
	add := func(share float64, part []float64) {
		for i, q := range part {
			probs[i] += share * q
		}
	}
	switch seg.Split {
	case SplitWeighted:
		add(1, weightShares(seg, pool))
	case SplitPriority:
		add(1, priorityShares(seg, pool))
	case SplitAdaptive:
		explore := append(slices.Clone(closed), lowRate...)
		even := make([]float64, len(seg.Candidates))
		for _, i := range explore {
			even[i] = 1 / float64(len(explore))
		}
		add(p.Exploration, even)
		add(p.ControlShare, weightShares(seg, pool))
		rest := 1 - p.Exploration - p.ControlShare
		if !enoughOutcomes(p, seg, v) {
			add(rest, weightShares(seg, pool))
		} else {
			add(rest, v.scoreShares(p, seg, pool))
		}
	}
	return probs
}

// pick draws the candidate outside the probe share.
func (d *Decision) pick(p *Policy, seg *Segment, v *View, pool, closed, lowRate []int, rng Rand) (int, Reason) {
	switch seg.Split {
	case SplitPriority:
		return drawShares(priorityShares(seg, pool), rng), ReasonPriority
	case SplitWeighted:
		return drawShares(weightShares(seg, pool), rng), ReasonWeight
	}
	r := rng.Float64()
	switch {
	case r < p.Exploration:
		explore := append(slices.Clone(closed), lowRate...)
		return explore[rng.IntN(len(explore))], ReasonExploration
	case r < p.Exploration+p.ControlShare:
		return drawShares(weightShares(seg, pool), rng), ReasonControl
	case !enoughOutcomes(p, seg, v):
		return drawShares(weightShares(seg, pool), rng), ReasonWeight
	}
	scores := v.scores(p, seg, pool, rng)
	best := -1
	ties := 0
	for _, i := range pool {
		switch {
		case best < 0 || scores[i] > scores[best]:
			best, ties = i, 1
		case scores[i] == scores[best]:
			// Ties broken evenly at random, never by position.
			if ties++; rng.IntN(ties) == 0 {
				best = i
			}
		}
	}
	for _, i := range pool {
		d.Candidates[i].Score = scores[i]
	}
	return best, ReasonScore
}

// enoughOutcomes reports whether the segment's candidates have the
// outcomes an adaptive split needs to trust their rates.
func enoughOutcomes(p *Policy, seg *Segment, v *View) bool {
	n := 0
	for _, c := range seg.Candidates {
		n += v.Arm(c.Channel, seg.Name).Resolved
	}
	return n >= p.Health.MinSamples
}

// weightShares is each pool candidate's share by weight; where every
// weight in the pool is 0 (only backups are left), they share evenly.
func weightShares(seg *Segment, pool []int) []float64 {
	out := make([]float64, len(seg.Candidates))
	total := 0
	for _, i := range pool {
		total += seg.Candidates[i].Weight
	}
	for _, i := range pool {
		if total == 0 {
			out[i] = 1 / float64(len(pool))
		} else {
			out[i] = float64(seg.Candidates[i].Weight) / float64(total)
		}
	}
	return out
}

// priorityShares gives the pool candidates of the lowest priority number
// their weight shares among themselves.
func priorityShares(seg *Segment, pool []int) []float64 {
	best := math.MaxInt
	for _, i := range pool {
		best = min(best, seg.Candidates[i].Priority)
	}
	var top []int
	for _, i := range pool {
		if seg.Candidates[i].Priority == best {
			top = append(top, i)
		}
	}
	return weightShares(seg, top)
}

func drawShares(shares []float64, rng Rand) int {
	r := rng.Float64()
	last := -1
	for i, s := range shares {
		if s <= 0 {
			continue
		}
		if r < s {
			return i
		}
		r -= s
		last = i
	}
	return last
}

// scores is the adaptive algorithm's score of each pool candidate.
func (v *View) scores(p *Policy, seg *Segment, pool []int, rng Rand) []float64 {
	out := make([]float64, len(seg.Candidates))
	for _, i := range pool {
		arm := Arm{seg.Candidates[i].Channel, seg.Name}
		switch p.Algorithm {
		case SlidingWindow:
			out[i] = v.Arm(arm.Channel, arm.Segment).WindowRate
			if out[i] < 0 {
				a, b := v.prior(arm, p)
				out[i] = a / (a + b)
			}
		default:
			a, b := v.prior(arm, p)
			st := v.Arm(arm.Channel, arm.Segment)
			out[i] = betaSample(rng, a+st.Successes, b+st.Failures)
		}
	}
	return out
}

// propensityDraws is how many Thompson draws estimate a candidate's
// chance of winning (±0.035 at worst, 95%).
const propensityDraws = 256

// scoreShares is each pool candidate's chance of the algorithm picking it:
// exact for the sliding window (even among the ties for the best rate);
// estimated by repeated Thompson draws, once per view and segment, from a
// source seeded by both, so that the same view gives the same estimate.
func (v *View) scoreShares(p *Policy, seg *Segment, pool []int) []float64 {
	key := fmt.Sprint(seg.Name, pool)
	v.mu.Lock()
	cached, ok := v.propensity[key]
	v.mu.Unlock()
	if ok {
		return cached
	}
	out := make([]float64, len(seg.Candidates))
	if p.Algorithm == SlidingWindow {
		s := v.scores(p, seg, pool, nil)
		best := math.Inf(-1)
		for _, i := range pool {
			best = math.Max(best, s[i])
		}
		var top []int
		for _, i := range pool {
			if s[i] == best {
				top = append(top, i)
			}
		}
		for _, i := range top {
			out[i] = 1 / float64(len(top))
		}
	} else {
		rng := rand.New(rand.NewPCG(v.Seq, uint64(len(seg.Name))<<32|uint64(v.At.UnixNano()&0xffffffff)))
		for range propensityDraws {
			s := v.scores(p, seg, pool, rng)
			best := pool[0]
			for _, i := range pool[1:] {
				if s[i] > s[best] {
					best = i
				}
			}
			out[best]++
		}
		for i := range out {
			out[i] /= propensityDraws
		}
	}
	v.mu.Lock()
	v.propensity[key] = out
	v.mu.Unlock()
	return out
}

// failoverOrder is the order in which a pay request tries the rest of its
// segment's candidates after chosen (and the channels in tried) failed to
// start it: closed breakers first, then half-open, then those with a low
// rate; an open breaker never. Within each, the adaptive split orders by
// posterior mean, the others by priority and weight.
func failoverOrder(p *Policy, seg *Segment, v *View, chosen string, tried []string) []string {
	type cand struct {
		c    Candidate
		rank int
		mean float64
	}
	var cs []cand
	for _, c := range seg.Candidates {
		if c.Channel == chosen || slices.Contains(tried, c.Channel) {
			continue
		}
		st := v.Arm(c.Channel, seg.Name)
		rank := 0
		switch {
		case st.Breaker.Technical():
			continue
		case st.Breaker.State == BreakerHalfOpen:
			rank = 1
		case st.Breaker.State == BreakerOpen:
			rank = 2
		}
		cs = append(cs, cand{c: c, rank: rank, mean: v.Mean(Arm{c.Channel, seg.Name}, p)})
	}
	slices.SortStableFunc(cs, func(a, b cand) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		if seg.Split == SplitAdaptive && a.mean != b.mean {
			if a.mean > b.mean {
				return -1
			}
			return 1
		}
		if a.c.Priority != b.c.Priority {
			return a.c.Priority - b.c.Priority
		}
		return b.c.Weight - a.c.Weight
	})
	limit := p.MaxChannels - len(tried)
	if chosen != "" {
		limit--
	}
	var out []string
	for _, c := range cs {
		if len(out) >= limit {
			break
		}
		out = append(out, c.c.Channel)
	}
	return out
}

// Next is the decision to fail over to after the decision's channel
// failed to start the payment (the attempt previous), or false when no
// channel is left to try. It rereads the health in v, so a breaker opened
// meanwhile takes its channel out of the order; under a policy that no
// longer has the decision's segment, the order decided with the old one
// stands.
func (d Decision) Next(p *Policy, v *View, previous string, now time.Time) (Decision, bool) {
	tried := append(slices.Clone(d.Tried), d.Chosen)
	if len(tried) >= p.MaxChannels || d.Reason == ReasonPin {
		return Decision{}, false
	}
	var order []string
	if seg := p.SegmentNamed(d.Segment); seg != nil {
		order = failoverOrder(p, seg, v, "", tried)
	} else {
		order = slices.DeleteFunc(slices.Clone(d.Failover), func(c string) bool { return slices.Contains(tried, c) })
	}
	if len(order) == 0 {
		return Decision{}, false
	}
	n := d
	n.Candidates = slices.Clone(d.Candidates)
	n.Chosen, n.Reason, n.Explore, n.Propensity = order[0], ReasonFailover, false, 1
	n.Failover, n.Tried, n.Hop, n.Previous, n.At = order[1:], tried, d.Hop+1, previous, now
	return n, true
}

// betaSample draws from Beta(a, b) as X/(X+Y) with X ~ Gamma(a), Y ~ Gamma(b).
func betaSample(rng Rand, a, b float64) float64 {
	x, y := gammaSample(rng, a), gammaSample(rng, b)
	if x+y == 0 {
		return 0.5
	}
	return x / (x + y)
}

// gammaSample draws from Gamma(k, 1) (Marsaglia and Tsang, 2000); below
// k = 1 it draws Gamma(k+1) and scales by U^(1/k).
func gammaSample(rng Rand, k float64) float64 {
	if k < 1 {
		u := rng.Float64()
		for u == 0 {
			u = rng.Float64()
		}
		return gammaSample(rng, k+1) * math.Pow(u, 1/k)
	}
	d := k - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
