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
	m := &outcomeModel{cells: map[cellKey]*cellCount{}, whole: map[cellKey]*cellCount{}, bucket: cfg.Bucket, minCell: cfg.MinCell}
	requests := m.read(recs, p)
	if len(requests) == 0 {
		return BacktestReport{Trips: map[Arm]int{}, Algorithm: p.Algorithm.s, PolicyLabel: p.Name}, ErrNoRecords
	}
	r := &replay{
		p: p, model: m,
		rep:          BacktestReport{Trips: map[Arm]int{}, Algorithm: p.Algorithm.s, PolicyLabel: p.Name},
		rng:          rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		health:       NewHealth(),
		lastOpen:     map[Arm]bool{},
		policyShares: map[int64]map[string]int{}, actualShares: map[int64]map[string]int{}, bucketTotals: map[int64]int{},
	}
	r.rep.From, r.rep.To = requests[0].first.DecidedAt, requests[len(requests)-1].first.DecidedAt
	for _, q := range requests {
		r.route(q)
	}
	rep := r.report(len(requests))
	m.oracle(&rep, p, requests, r.simN)
	rep.Shares = r.shares()
	rep.Cells = m.cellRates()
	return rep, nil
}

// outcomeModel is what the records show of each channel: per (candidate
// segment, channel, bucket) and per (candidate segment, channel) over the
// window, the latter where a bucket has fewer than minCell outcomes.
type outcomeModel struct {
	cells, whole map[cellKey]*cellCount
	bucket       time.Duration
	minCell      int
}

func (m *outcomeModel) bucketOf(t time.Time) int64 { return t.UnixNano() / int64(m.bucket) }
func (m *outcomeModel) bucketTime(b int64) time.Time {
	return time.Unix(0, b*int64(m.bucket)).UTC()
}

// replayRequest is one pay request of the records: its first attempt,
// and how it ended.
type replayRequest struct {
	first Record
	paid  bool
	done  bool
}

// read counts the records, sorted by decision, into the model and
// returns their pay requests in that order (a failover whose first
// attempt is outside the window is counted but starts no request).
func (m *outcomeModel) read(recs []Record, p *Policy) []*replayRequest {
	var requests []*replayRequest
	byID := map[string]*replayRequest{}
	for _, r := range recs {
		seg := p.Segment(r.Request)
		if seg == nil {
			continue
		}
		m.count(m.cell(m.cells, cellKey{seg.Name, r.Channel, m.bucketOf(r.DecidedAt)}), r, p.Health.AbandonedIsFailure)
		m.count(m.cell(m.whole, cellKey{seg.Name, r.Channel, math.MinInt64}), r, p.Health.AbandonedIsFailure)
		q := byID[r.RequestID]
		if q == nil {
			if r.Hop != 0 {
				continue
			}
			q = &replayRequest{first: r}
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
	return requests
}

func (m *outcomeModel) cell(cells map[cellKey]*cellCount, k cellKey) *cellCount {
	c := cells[k]
	if c == nil {
		c = &cellCount{}
		cells[k] = c
	}
	return c
}

func (m *outcomeModel) count(c *cellCount, r Record, abandonedIsFailure bool) {
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
		if abandonedIsFailure {
			c.n++
		}
	}
}

// at is the cell that models channel ch in segment seg at a time: its
// bucket's where that has enough outcomes, else the whole window's.
func (m *outcomeModel) at(seg, ch string, at time.Time) (*cellCount, bool) {
	if c := m.cells[cellKey{seg, ch, m.bucketOf(at)}]; c != nil && c.n >= m.minCell {
		return c, true
	}
	if c := m.whole[cellKey{seg, ch, math.MinInt64}]; c != nil && c.n > 0 {
		return c, true
	}
	return nil, false
}

// oracle fills in the rate of an oracle that, per segment and bucket,
// always chose the best supported channel, and the regret against it.
func (m *outcomeModel) oracle(rep *BacktestReport, p *Policy, requests []*replayRequest, simN int) {
	type sb struct {
		seg    string
		bucket int64
	}
	volume := map[sb]int{}
	for _, q := range requests {
		if seg := p.Segment(q.first.Request); seg != nil {
			volume[sb{seg.Name, m.bucketOf(q.first.DecidedAt)}]++
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
			c, ok := m.at(k.seg, ch, m.bucketTime(k.bucket))
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
}

// cellRates are the model's buckets as the report shows them.
func (m *outcomeModel) cellRates() []CellRate {
	var out []CellRate
	for k, c := range m.cells {
		if c.n == 0 {
			continue
		}
		lo, hi := wilson(c.paid, c.n)
		out = append(out, CellRate{Segment: k.seg, Channel: k.ch, Bucket: m.bucketTime(k.bucket), N: c.n, Paid: c.paid,
			InitiateFailed: c.initFailed, Rate: float64(c.paid) / float64(c.n), Low: lo, High: hi})
	}
	slices.SortFunc(out, func(a, b CellRate) int {
		return cmp.Or(a.Bucket.Compare(b.Bucket), cmp.Compare(a.Segment, b.Segment), cmp.Compare(a.Channel, b.Channel))
	})
	return out
}

// replay routes the recorded pay requests, one after another, through
// the policy, with health fed by the outcomes it draws.
type replay struct {
	p       *Policy
	model   *outcomeModel
	rep     BacktestReport
	rng     *rand.Rand
	health  *Health
	pending feedbackQueue
	view    *View
	// lastOpen is each arm's breaker at the last view, to count trips.
	lastOpen map[Arm]bool
	seq      int

	actualPaid, actualN, simPaid, simN int
	expected                           float64
	replayPaid, replayN                int
	ipsNum, ipsDen                     float64

	policyShares, actualShares map[int64]map[string]int
	bucketTotals               map[int64]int
}

// refresh applies the feedback that has arrived by at, and takes a new
// view as the live router would: as feedback arrives, at most a few
// times a second (every few seconds of the replay's time), and at least
// every minute.
func (r *replay) refresh(at time.Time) {
	for r.pending.Len() > 0 && !r.pending[0].f.At.After(at) {
		r.health.Apply(heap.Pop(&r.pending).(queued).f)
	}
	if r.view != nil && (r.view.Seq == r.health.Seq() || at.Sub(r.view.At) < viewEvery) && at.Sub(r.view.At) < time.Minute {
		return
	}
	r.view = r.health.View(r.p, at)
	for _, st := range r.view.Arms() {
		isOpen := st.Breaker.State == BreakerOpen
		if isOpen && !r.lastOpen[st.Arm] {
			r.rep.Trips[st.Arm]++
		}
		r.lastOpen[st.Arm] = isOpen
	}
}

// route replays one pay request: routes it as the policy would have,
// draws its outcome (failing over as the gateway would), and counts.
func (r *replay) route(q *replayRequest) {
	at := q.first.DecidedAt
	r.refresh(at)
	if q.done {
		r.actualN++
		if q.paid {
			r.actualPaid++
		}
	}
	b := r.model.bucketOf(at)
	r.bucketTotals[b]++
	if r.actualShares[b] == nil {
		r.actualShares[b], r.policyShares[b] = map[string]int{}, map[string]int{}
	}
	r.actualShares[b][q.first.Channel]++
	req := q.first.Request
	req.Channel = "" // a pin is the mall's, not the policy's: route it
	d, err := Decide(r.p, req, r.view, func(string) error { return nil }, r.rng, at)
	if err != nil {
		r.rep.Unsupported++
		return
	}
	r.policyShares[b][d.Chosen]++
	r.offPolicy(q.first, d.Chosen)
	expPaid := r.expectedPaid(d, at)
	paid, supported := r.draw(d, at)
	if !supported {
		r.rep.Unsupported++
		return
	}
	r.simN++
	r.expected += expPaid
	if paid {
		r.simPaid++
	}
}

// offPolicy counts a request whose recorded channel is the one the
// policy chose: weighted by its propensity (IPS), and, if it was an
// exploration, as a replay of a random choice.
func (r *replay) offPolicy(first Record, chosen string) {
	if first.Outcome == (Outcome{}) || first.Outcome == Abandoned || chosen != first.Channel {
		return
	}
	if first.Propensity > 0 {
		w := 1 / first.Propensity
		r.ipsDen += w
		if first.Outcome == Paid {
			r.ipsNum += w
		}
		r.rep.IPSMatched++
	}
	if first.Explore {
		r.replayN++
		if first.Outcome == Paid {
			r.replayPaid++
		}
	}
}

// expectedPaid is the chance the decision ends paid, over its failover
// order, by the model.
func (r *replay) expectedPaid(d Decision, at time.Time) float64 {
	expPaid, reach := 0.0, 1.0
	for _, ch := range append([]string{d.Chosen}, d.Failover...) {
		c, ok := r.model.at(d.Segment, ch, at)
		if !ok {
			break
		}
		f, p := rates(c)
		expPaid += reach * (1 - f) * p
		reach *= f
	}
	return expPaid
}

// draw draws the outcome of a decision from the model, failing over
// while Initiate fails, and queues each attempt's feedback for when it
// would have arrived. Unsupported: a chosen channel the records never
// show in the segment.
func (r *replay) draw(d Decision, at time.Time) (paid, supported bool) {
	t := at
	for hop := 0; ; hop++ {
		c, ok := r.model.at(d.Segment, d.Chosen, t)
		if !ok {
			return false, false
		}
		r.seq++
		code := fmt.Sprintf("bt-%d-%d", r.seq, hop)
		fb := Feedback{TransactionCode: code, Channel: d.Chosen, Segment: d.Segment, PolicyVersion: r.p.Version, DecidedAt: t, Explore: d.Explore, Hop: hop}
		pInitFail, pPaid := rates(c)
		if r.rng.Float64() < pInitFail {
			fb.Outcome, fb.At = InitiateFailed, t.Add(time.Second)
			heap.Push(&r.pending, queued{fb, r.seq})
			n, ok := d.Next(r.p, r.view, code, t.Add(time.Second))
			if !ok {
				return false, true
			}
			d, t = n, t.Add(time.Second)
			continue
		}
		init := fb
		init.Outcome, init.At = Initiated, t.Add(time.Second)
		heap.Push(&r.pending, queued{init, r.seq})
		delay := 2 * time.Minute
		if len(c.delays) > 0 {
			delay = c.delays[r.rng.IntN(len(c.delays))]
		}
		fb.At = t.Add(max(delay, time.Second))
		if r.rng.Float64() < pPaid {
			fb.Outcome, paid = Paid, true
		} else {
			fb.Outcome = Declined
		}
		heap.Push(&r.pending, queued{fb, r.seq})
		return paid, true
	}
}

// report is the replay's rates.
func (r *replay) report(requests int) BacktestReport {
	rep := r.rep
	rep.Requests = requests
	rep.Coverage = float64(rep.Requests-rep.Unsupported) / float64(rep.Requests)
	rep.Actual = newInterval(r.actualPaid, r.actualN)
	rep.Simulated = newInterval(r.simPaid, r.simN)
	if r.simN > 0 {
		rep.Expected = r.expected / float64(r.simN)
	}
	rep.Replay = newInterval(r.replayPaid, r.replayN)
	rep.IPS = math.NaN()
	if r.ipsDen > 0 {
		rep.IPS = r.ipsNum / r.ipsDen
	}
	return rep
}

// shares are the policy's and the records' shares per bucket and channel.
func (r *replay) shares() []ShareRow {
	buckets := make([]int64, 0, len(r.bucketTotals))
	for b := range r.bucketTotals {
		buckets = append(buckets, b)
	}
	slices.Sort(buckets)
	var out []ShareRow
	for _, b := range buckets {
		for _, ch := range r.p.Channels() {
			out = append(out, ShareRow{Bucket: r.model.bucketTime(b), Channel: ch,
				Policy: float64(r.policyShares[b][ch]) / float64(r.bucketTotals[b]),
				Actual: float64(r.actualShares[b][ch]) / float64(r.bucketTotals[b])})
		}
	}
	return out
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
