package routing

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Record is one recorded attempt, as the backtest reads it.
type Record struct {
	TransactionCode string
	// RequestID groups the attempts of one pay request (its first and its
	// failovers).
	RequestID string
	Request   Request
	Channel   string
	// Segment is the segment the recorded decision matched (under the
	// policy of that time).
	Segment   string
	DecidedAt time.Time
	// Outcome is Paid, Declined, InitiateFailed or Abandoned; the zero
	// Outcome is an attempt still open.
	Outcome    Outcome
	ResolvedAt time.Time
	Explore    bool
	// Propensity is the recorded probability of the decision choosing
	// Channel (0 when not recorded).
	Propensity float64
	Hop        int
}

// BacktestConfig says what to replay through.
type BacktestConfig struct {
	Policy *Policy
	// Seed makes the replay's draws (decisions and simulated outcomes)
	// repeatable: the same records, policy and seed give the same report.
	Seed uint64
	// Bucket is the time bucket of the outcome model and the shares.
	// Default 1h.
	Bucket time.Duration
	// MinCell is how many resolved attempts a (segment, channel, bucket)
	// cell needs to estimate the channel's rate there. Default 30.
	MinCell int
}

// CellRate is what the records say of one channel in one segment and
// time bucket.
type CellRate struct {
	Segment string
	Channel string
	Bucket  time.Time
	// N counts the resolved attempts (Initiate failures included;
	// abandoned ones only if the policy counts them as failures).
	N, Paid, InitiateFailed int
	Rate, Low, High         float64 // Wilson 95% interval
}

// ShareRow is a channel's share of one bucket's pay requests.
type ShareRow struct {
	Bucket  time.Time
	Channel string
	// Policy is the replayed policy's share; Actual the recorded first
	// attempts'.
	Policy, Actual float64
}

// BacktestReport is what a replay found.
type BacktestReport struct {
	From, To time.Time
	// Requests counts the pay requests replayed; Unsupported those whose
	// chosen channel had no outcomes to estimate from (left out of the
	// rates, never extrapolated).
	Requests, Unsupported int
	// Coverage is the share of the requests the estimate covers.
	Coverage float64
	// Actual is the recorded success rate of the pay requests (paid at
	// any of their attempts), over those with an outcome.
	Actual Interval
	// Simulated is the replayed policy's success rate over its own draws
	// (failover included); Expected the same from the model's rates
	// without drawing.
	Simulated Interval
	Expected  float64
	// Oracle picks, per segment and bucket, the channel with the best
	// rate: as a plain maximum (optimistic: a maximum of noisy rates
	// overstates), and as the best Wilson lower bound.
	Oracle, OracleLower float64
	// Regret is the pay requests lost against the oracle:
	// Requests×(Oracle−Expected) and against its lower bound.
	Regret, RegretLower float64
	// Trips counts the breaker openings during the replay, per arm.
	Trips map[Arm]int
	// Replay estimates the policy's rate from the explored attempts where
	// it picks the recorded channel (Li et al. 2011): unbiased, since
	// exploration was even, but on few attempts.
	Replay Interval
	// IPS is the self-normalised inverse-propensity estimate over every
	// first attempt with a recorded propensity.
	IPS         float64
	IPSMatched  int
	Shares      []ShareRow
	Cells       []CellRate
	Algorithm   string
	PolicyLabel string
}

// Interval is a rate with its sample and Wilson 95% interval.
type Interval struct {
	N, Successes int
	Rate         float64
	Low, High    float64
}

func newInterval(successes, n int) Interval {
	iv := Interval{N: n, Successes: successes, Rate: math.NaN(), Low: math.NaN(), High: math.NaN()}
	if n > 0 {
		iv.Rate = float64(successes) / float64(n)
		iv.Low, iv.High = wilson(successes, n)
	}
	return iv
}

// wilson is the Wilson score 95% interval of k successes in n.
func wilson(k, n int) (lo, hi float64) {
	const z = 1.959963984540054
	p, nf := float64(k)/float64(n), float64(n)
	den := 1 + z*z/nf
	center := (p + z*z/(2*nf)) / den
	half := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / den
	return math.Max(0, center-half), math.Min(1, center+half)
}

// ErrNoRecords means the window holds no pay request to replay.
var ErrNoRecords = errors.New("no recorded pay requests in the window")

// viewEvery is how often, in the replay's time, its health view is
// recomputed when feedback has arrived.
const viewEvery = 5 * time.Second

type cellKey struct {
	seg, ch string
	bucket  int64
}

type cellCount struct {
	n, paid, initFailed, abandoned, initiated int
	delays                                    []time.Duration
}

// Backtest replays the recorded attempts, in the order of their
// decisions, through cfg.Policy: each pay request is routed as the policy
// would have routed it then, its outcome drawn from the rate the records
// show for the chosen channel in that segment and hour (falling back to
// the whole window where the hour has too few), and the drawn outcome fed
// back into the replay's health when it would have arrived (the recorded
// delay). A request whose chosen channel has no recorded outcomes at all
// in its segment is counted as unsupported and left out. What a declined
// payment would have done at another channel is never seen: issuer
// declines are correlated across channels, so the rates of the channels
// not chosen are estimates, and the report says how sure.
func Backtest(records []Record, cfg BacktestConfig) (BacktestReport, error) {
	p := cfg.Policy
	if cfg.Bucket <= 0 {
		cfg.Bucket = time.Hour
	}
	if cfg.MinCell <= 0 {
		cfg.MinCell = 30
	}
	recs := slices.Clone(records)
	slices.SortStableFunc(recs, func(a, b Record) int {
		return cmp.Or(a.DecidedAt.Compare(b.DecidedAt), cmp.Compare(a.RequestID, b.RequestID), cmp.Compare(a.Hop, b.Hop))
	})
	rep := BacktestReport{Trips: map[Arm]int{}, Algorithm: p.Algorithm.s, PolicyLabel: p.Name}
	bucketOf := func(t time.Time) int64 { return t.UnixNano() / int64(cfg.Bucket) }
	bucketTime := func(b int64) time.Time { return time.Unix(0, b*int64(cfg.Bucket)).UTC() }

	// The outcome model: per (candidate segment, channel, bucket) and
	// per (candidate segment, channel) over the window.
	cells, whole := map[cellKey]*cellCount{}, map[cellKey]*cellCount{}
	type request struct {
		first Record
		paid  bool
		done  bool
	}
	var requests []*request
	byID := map[string]*request{}
	for _, r := range recs {
		seg := p.Segment(r.Request)
		if seg == nil {
			continue
		}
		for _, k := range []cellKey{{seg.Name, r.Channel, bucketOf(r.DecidedAt)}, {seg.Name, r.Channel, math.MinInt64}} {
			m := cells
			if k.bucket == math.MinInt64 {
				m = whole
			}
			c := m[k]
			if c == nil {
				c = &cellCount{}
				m[k] = c
			}
			switch r.Outcome {
			case Paid:
				c.n++
				c.paid++
				c.initiated++
				c.delays = append(c.delays, r.ResolvedAt.Sub(r.DecidedAt))
			case Declined:
				c.n++
				c.initiated++
				c.delays = append(c.delays, r.ResolvedAt.Sub(r.DecidedAt))
			case InitiateFailed:
				c.n++
				c.initFailed++
			case Abandoned:
				c.initiated++
				c.abandoned++
				if p.Health.AbandonedIsFailure {
					c.n++
				}
			}
		}
		q := byID[r.RequestID]
		if q == nil {
			if r.Hop != 0 {
				continue // a failover whose first attempt is outside the window
			}
			q = &request{first: r}
			byID[r.RequestID] = q
			requests = append(requests, q)
		}
		switch r.Outcome {
		case Paid:
			q.paid, q.done = true, true
		case Declined, Abandoned:
			q.done = true
		case InitiateFailed:
			// the request goes on at its next attempt, if any
		}
	}
	if len(requests) == 0 {
		return rep, ErrNoRecords
	}
	rep.From, rep.To = requests[0].first.DecidedAt, requests[len(requests)-1].first.DecidedAt
	model := func(seg, ch string, at time.Time) (*cellCount, bool) {
		if c := cells[cellKey{seg, ch, bucketOf(at)}]; c != nil && c.n >= cfg.MinCell {
			return c, true
		}
		if c := whole[cellKey{seg, ch, math.MinInt64}]; c != nil && c.n > 0 {
			return c, true
		}
		return nil, false
	}

	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	health := NewHealth()
	var pending feedbackQueue
	var view *View
	lastOpen := map[Arm]bool{}
	actualPaid, actualN, simPaid, simN := 0, 0, 0, 0
	expected := 0.0
	policyShares, actualShares := map[int64]map[string]int{}, map[int64]map[string]int{}
	bucketTotals := map[int64]int{}
	replayPaid, replayN := 0, 0
	ipsNum, ipsDen := 0.0, 0.0
	usable := func(string) error { return nil }
	seq := 0
	for _, q := range requests {
		at := q.first.DecidedAt
		for pending.Len() > 0 && !pending[0].f.At.After(at) {
			health.Apply(heap.Pop(&pending).(queued).f)
		}
		// The live router refreshes its view as feedback arrives, at most a
		// few times a second; the replay every few seconds of its time.
		if view == nil || (view.Seq != health.Seq() && at.Sub(view.At) >= viewEvery) || at.Sub(view.At) >= time.Minute {
			view = health.View(p, at)
			for _, st := range view.Arms() {
				isOpen := st.Breaker.State == BreakerOpen
				if isOpen && !lastOpen[st.Arm] {
					rep.Trips[st.Arm]++
				}
				lastOpen[st.Arm] = isOpen
			}
		}
		if q.done {
			actualN++
			if q.paid {
				actualPaid++
			}
		}
		b := bucketOf(at)
		bucketTotals[b]++
		if actualShares[b] == nil {
			actualShares[b], policyShares[b] = map[string]int{}, map[string]int{}
		}
		actualShares[b][q.first.Channel]++
		req := q.first.Request
		req.Channel = "" // a pin is the mall's, not the policy's: route it
		d, err := Decide(p, req, view, usable, rng, at)
		if err != nil {
			rep.Unsupported++
			continue
		}
		policyShares[b][d.Chosen]++
		if q.first.Propensity > 0 && q.first.Outcome != (Outcome{}) && q.first.Outcome != Abandoned && d.Chosen == q.first.Channel {
			w := 1 / q.first.Propensity
			ipsDen += w
			if q.first.Outcome == Paid {
				ipsNum += w
			}
			rep.IPSMatched++
		}
		if q.first.Explore && q.first.Outcome != (Outcome{}) && q.first.Outcome != Abandoned && d.Chosen == q.first.Channel {
			replayN++
			if q.first.Outcome == Paid {
				replayPaid++
			}
		}
		// Draw the outcome, failing over as the gateway would.
		// The expected outcome, over the decision's failover order.
		expPaid, reach := 0.0, 1.0
		for _, ch := range append([]string{d.Chosen}, d.Failover...) {
			c, ok := model(d.Segment, ch, at)
			if !ok {
				break
			}
			f, p := rates(c)
			expPaid += reach * (1 - f) * p
			reach *= f
		}
		paid, supported := false, true
		t := at
		for hop := 0; ; hop++ {
			c, ok := model(d.Segment, d.Chosen, t)
			if !ok {
				supported = false
				break
			}
			seq++
			code := fmt.Sprintf("bt-%d-%d", seq, hop)
			fb := Feedback{TransactionCode: code, Channel: d.Chosen, Segment: d.Segment, PolicyVersion: p.Version, DecidedAt: t, Explore: d.Explore, Hop: hop}
			pInitFail, pPaid := rates(c)
			if rng.Float64() < pInitFail {
				fb.Outcome, fb.At = InitiateFailed, t.Add(time.Second)
				heap.Push(&pending, queued{fb, seq})
				n, ok := d.Next(p, view, code, t.Add(time.Second))
				if !ok {
					break
				}
				d, t = n, t.Add(time.Second)
				continue
			}
			init := fb
			init.Outcome, init.At = Initiated, t.Add(time.Second)
			heap.Push(&pending, queued{init, seq})
			delay := 2 * time.Minute
			if len(c.delays) > 0 {
				delay = c.delays[rng.IntN(len(c.delays))]
			}
			fb.At = t.Add(max(delay, time.Second))
			if rng.Float64() < pPaid {
				fb.Outcome, paid = Paid, true
			} else {
				fb.Outcome = Declined
			}
			heap.Push(&pending, queued{fb, seq})
			break
		}
		if !supported {
			rep.Unsupported++
			continue
		}
		simN++
		expected += expPaid
		if paid {
			simPaid++
		}
	}
	rep.Requests = len(requests)
	rep.Coverage = float64(rep.Requests-rep.Unsupported) / float64(rep.Requests)
	rep.Actual = newInterval(actualPaid, actualN)
	rep.Simulated = newInterval(simPaid, simN)
	if simN > 0 {
		rep.Expected = expected / float64(simN)
	}
	rep.Replay = newInterval(replayPaid, replayN)
	rep.IPS = math.NaN()
	if ipsDen > 0 {
		rep.IPS = ipsNum / ipsDen
	}

	// The oracle: per segment and bucket, the best supported channel.
	type sb struct {
		seg    string
		bucket int64
	}
	volume := map[sb]int{}
	for _, q := range requests {
		if seg := p.Segment(q.first.Request); seg != nil {
			volume[sb{seg.Name, bucketOf(q.first.DecidedAt)}]++
		}
	}
	oracle, oracleLo, oracleN := 0.0, 0.0, 0
	keys := make([]sb, 0, len(volume))
	for k := range volume {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b sb) int { return cmp.Or(cmp.Compare(a.seg, b.seg), cmp.Compare(a.bucket, b.bucket)) })
	for _, k := range keys {
		n := volume[k]
		best, bestLo, any := 0.0, 0.0, false
		for _, ch := range p.Channels() {
			c, ok := model(k.seg, ch, bucketTime(k.bucket))
			if !ok || c.n == 0 {
				continue
			}
			r := float64(c.paid) / float64(c.n)
			lo, _ := wilson(c.paid, c.n)
			best, bestLo, any = math.Max(best, r), math.Max(bestLo, lo), true
		}
		if any {
			oracle += best * float64(n)
			oracleLo += bestLo * float64(n)
			oracleN += n
		}
	}
	if oracleN > 0 {
		rep.Oracle, rep.OracleLower = oracle/float64(oracleN), oracleLo/float64(oracleN)
		rep.Regret = float64(simN) * (rep.Oracle - rep.Expected)
		rep.RegretLower = float64(simN) * (rep.OracleLower - rep.Expected)
	}

	buckets := make([]int64, 0, len(bucketTotals))
	for b := range bucketTotals {
		buckets = append(buckets, b)
	}
	slices.Sort(buckets)
	for _, b := range buckets {
		for _, ch := range p.Channels() {
			rep.Shares = append(rep.Shares, ShareRow{Bucket: bucketTime(b), Channel: ch,
				Policy: float64(policyShares[b][ch]) / float64(bucketTotals[b]),
				Actual: float64(actualShares[b][ch]) / float64(bucketTotals[b])})
		}
	}
	for k, c := range cells {
		if c.n == 0 {
			continue
		}
		lo, hi := wilson(c.paid, c.n)
		rep.Cells = append(rep.Cells, CellRate{Segment: k.seg, Channel: k.ch, Bucket: bucketTime(k.bucket), N: c.n, Paid: c.paid,
			InitiateFailed: c.initFailed, Rate: float64(c.paid) / float64(c.n), Low: lo, High: hi})
	}
	slices.SortFunc(rep.Cells, func(a, b CellRate) int {
		return cmp.Or(a.Bucket.Compare(b.Bucket), cmp.Compare(a.Segment, b.Segment), cmp.Compare(a.Channel, b.Channel))
	})
	return rep, nil
}

// rates are a cell's chance of Initiate failing, and of a started
// attempt being paid.
func rates(c *cellCount) (initFail, paid float64) {
	initFail = float64(c.initFailed) / float64(max(c.initFailed+c.initiated, 1))
	if c.n-c.initFailed > 0 {
		paid = float64(c.paid) / float64(c.n-c.initFailed)
	}
	return initFail, paid
}

type queued struct {
	f   Feedback
	seq int
}

// feedbackQueue orders the replay's feedback by when it arrives.
type feedbackQueue []queued

func (q feedbackQueue) Len() int { return len(q) }
func (q feedbackQueue) Less(i, j int) bool {
	if c := q[i].f.At.Compare(q[j].f.At); c != 0 {
		return c < 0
	}
	return q[i].seq < q[j].seq
}
func (q feedbackQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *feedbackQueue) Push(x any)   { *q = append(*q, x.(queued)) }
func (q *feedbackQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
