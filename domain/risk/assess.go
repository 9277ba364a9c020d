package risk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Request is what risk control knows of a pay request. Every field but
// the amount may be empty: a rule needing a field the request lacks does
// not apply.
type Request struct {
	OrderID  string `json:"order_id"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Country  string `json:"country"`
	Method   string `json:"method,omitempty"`
	BuyerID  string `json:"buyer_id,omitempty"`
	Email    string `json:"email,omitempty"`
	IP       string `json:"ip,omitempty"`
	// IPCountry is the IP's country as the mall says (buyer.ip_country).
	IPCountry       string `json:"ip_country,omitempty"`
	Device          string `json:"device,omitempty"`
	CardFingerprint string `json:"card_fingerprint,omitempty"`
	BankAccount     string `json:"bank_account,omitempty"`
	// BillingCountry is the billing address's country; the request's
	// Country stands in for it when absent.
	BillingCountry string `json:"billing_country,omitempty"`
}

// Key is the counter key of kind for req ("email:a@example.com"), false
// if the request has no such value. Emails are compared in lower case, IP
// addresses in their canonical form.
func (req Request) Key(kind KeyKind) (string, bool) {
	var v string
	switch kind {
	case KeyBuyerID:
		v = req.BuyerID
	case KeyEmail:
		v = strings.ToLower(strings.TrimSpace(req.Email))
	case KeyIP:
		if a, ok := req.addr(); ok {
			v = a.String()
		}
	case KeyIPNet:
		if a, ok := req.addr(); ok {
			bits := 64
			if a.Is4() {
				bits = 24
			}
			p, _ := a.Prefix(bits)
			v = p.String()
		}
	case KeyDevice:
		v = req.Device
	case KeyCardFingerprint:
		v = req.CardFingerprint
	case KeyBankAccount:
		v = req.BankAccount
	}
	if v == "" {
		return "", false
	}
	return kind.s + ":" + v, true
}

// Keys are every key the request has, in KeyKinds' order: what it is
// counted under, and what its order's events after the money count under.
func (req Request) Keys() []string {
	var out []string
	for _, k := range KeyKinds {
		if key, ok := req.Key(k); ok {
			out = append(out, key)
		}
	}
	return out
}

func (req Request) addr() (netip.Addr, bool) {
	a, err := netip.ParseAddr(req.IP)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func (req Request) emailDomain() string {
	_, d, ok := strings.Cut(strings.ToLower(strings.TrimSpace(req.Email)), "@")
	if !ok {
		return ""
	}
	return d
}

func (req Request) billingCountry() string {
	if req.BillingCountry != "" {
		return req.BillingCountry
	}
	return req.Country
}

// IPCountryOf is the request's IP country: the mall's word for it, else
// the longest prefix of the rules' table that holds the IP ("" if none).
func (r *Rules) IPCountryOf(req Request) string {
	if req.IPCountry != "" {
		return req.IPCountry
	}
	a, ok := req.addr()
	if !ok {
		return ""
	}
	best, bits := "", -1
	for _, c := range r.IPCountries {
		if c.Prefix.Contains(a) && c.Prefix.Bits() > bits {
			best, bits = c.Country, c.Prefix.Bits()
		}
	}
	return best
}

// Probe is one count a decision reads: what was counted under Key in the
// minutes from Since, and before Until (zero: up to now).
type Probe struct {
	Key   string
	Since time.Time
	Until time.Time
}

func (p Probe) id() probeID { return probeID{p.Key, p.Since.Unix(), p.Until.Unix()} }

type probeID struct {
	key          string
	since, until int64
}

// openUntil is the until of a probe without one (up to now).
var openUntil = time.Time{}.Unix()

// windowStart is the first minute a window of w ending at now counts: the
// whole minute now-w falls in, so that a window never counts less than w.
func windowStart(now time.Time, w time.Duration) time.Time {
	return now.Add(-w).UTC().Truncate(bucket)
}

// Probes are the counts the rules need to decide req at now.
func (r *Rules) Probes(req Request, now time.Time) []Probe {
	var out []Probe
	seen := map[probeID]bool{}
	add := func(p Probe) {
		if !seen[p.id()] {
			seen[p.id()] = true
			out = append(out, p)
		}
	}
	for _, v := range r.Velocity {
		if key, ok := req.Key(v.Key); ok {
			add(Probe{Key: key, Since: windowStart(now, v.Window)})
		}
	}
	if n := r.NewBuyer; n != nil {
		if p, ok := r.newBuyerProbe(req, now); ok {
			add(p)
		}
	}
	return out
}

// newBuyerProbe counts the buyer's requests before the last
// FirstSeenWithin, as far back as counters are kept: none, a new buyer.
func (r *Rules) newBuyerProbe(req Request, now time.Time) (Probe, bool) {
	key, ok := req.Key(r.NewBuyer.Key)
	if !ok {
		return Probe{}, false
	}
	return Probe{Key: key, Since: windowStart(now, retention), Until: windowStart(now, r.NewBuyer.FirstSeenWithin)}, true
}

// Tally holds the counts a batch's decisions read: loaded for its probes
// from the counters (locked, so that no other batch counts under their
// keys meanwhile), then added to as the batch lets requests through, so
// that each request's decision sees the ones before it.
type Tally struct {
	totals map[probeID]map[counter]Total
}

// Total is a count and a sum in minor units (of one currency).
type Total struct {
	N      int64
	Amount int64
}

type counter struct{ kind, currency string }

// NewTally is a tally of probes with nothing counted yet: Set loads what
// the counters hold, Count adds the batch's requests. A probe not given
// here reads as nothing counted, and Count does not add to it.
func NewTally(probes []Probe) *Tally {
	t := &Tally{totals: map[probeID]map[counter]Total{}}
	for _, p := range probes {
		t.totals[p.id()] = map[counter]Total{}
	}
	return t
}

// Set records what the counters hold for p: n requests (or events, by
// kind) amounting to amount in currency.
func (t *Tally) Set(p Probe, kind, currency string, n, amount int64) {
	id := p.id()
	m := t.totals[id]
	if m == nil {
		return // not a probe of the tally
	}
	c := counter{kind, currency}
	tot := m[c]
	tot.N += n
	tot.Amount += amount
	m[c] = tot
}

// Count adds a request let through under keys: to every open probe
// (without Until) of those keys.
func (t *Tally) Count(keys []string, currency string, amount int64) {
	for id, m := range t.totals {
		if id.until != openUntil || !slices.Contains(keys, id.key) {
			continue
		}
		c := counter{countedRequest, currency}
		tot := m[c]
		tot.N++
		tot.Amount += amount
		m[c] = tot
	}
}

// get sums what p holds of measure m: the count over every currency, the
// amount in currency only.
func (t *Tally) get(p Probe, m Measure, currency string) (n, amount int64) {
	for c, tot := range t.totals[p.id()] {
		if !m.counts(c.kind) {
			continue
		}
		n += tot.N
		if c.currency == currency {
			amount += tot.Amount
		}
	}
	return n, amount
}

// Match is a rule that matched, with the points it added and what it saw.
type Match struct {
	Rule   string `json:"rule"`
	Points int    `json:"points"`
	Detail string `json:"detail"`
}

// Count is a velocity count a decision read, for the evidence.
type Count struct {
	Rule     string `json:"rule"`
	Key      string `json:"key"`
	Window   string `json:"window"`
	N        int64  `json:"n"`
	Amount   int64  `json:"amount,omitempty"`
	Currency string `json:"currency,omitempty"`
}

// Inputs are what a decision saw: the request, the IP's country, and the
// counts (this request not included).
type Inputs struct {
	Request   Request `json:"request"`
	IPCountry string  `json:"ip_country,omitempty"`
	Counts    []Count `json:"counts,omitempty"`
}

// OutsideAnswer is what the outside risk service said.
type OutsideAnswer struct {
	// Decision is the service's decision ("" if it gave none): at least
	// as strict a decision is taken.
	Decision Decision
	// Points are added to the score (rule "outside").
	Points int
	Reason string
}

// Outside is one call of the outside risk service, as evidence: what was
// sent, what came back, how long it took, and what it came to.
type Outside struct {
	URL       string        `json:"url"`
	Request   string        `json:"request"`
	Status    int           `json:"status,omitempty"`
	Response  string        `json:"response,omitempty"`
	Error     string        `json:"error,omitempty"`
	StartedAt time.Time     `json:"started_at"`
	Latency   time.Duration `json:"-"`
	// LatencyMS is Latency in milliseconds, as stored.
	LatencyMS float64 `json:"latency_ms"`
	// Answer is the service's answer; nil if it failed (timeout, error,
	// an answer not 2xx or unreadable).
	Answer *OutsideAnswer `json:"-"`
	// Decision, Points and Reason repeat the answer, as stored.
	Decision string `json:"decision,omitempty"`
	Points   int    `json:"points,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// ParseAnswer reads the outside service's answer: a JSON object with an
// optional "decision" (allow, review, deny), "points" (0 to 1000) and
// "reason"; other members are ignored (the service may say more).
func ParseAnswer(body []byte) (OutsideAnswer, error) {
	var raw struct {
		Decision *string `json:"decision"`
		Points   *int64  `json:"points"`
		Reason   *string `json:"reason"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return OutsideAnswer{}, fmt.Errorf("outside answer: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return OutsideAnswer{}, errors.New("outside answer: data after the object")
	}
	var a OutsideAnswer
	if raw.Decision != nil {
		d, err := ParseDecision(*raw.Decision)
		if err != nil {
			return a, fmt.Errorf("outside answer: %w", err)
		}
		a.Decision = d
	}
	if raw.Points != nil {
		if *raw.Points < 0 || *raw.Points > maxPoints {
			return a, fmt.Errorf("outside answer: points %d: 0 to %d", *raw.Points, maxPoints)
		}
		a.Points = int(*raw.Points)
	}
	if raw.Reason != nil {
		a.Reason = *raw.Reason
		if len(a.Reason) > 500 {
			a.Reason = a.Reason[:500]
		}
	}
	if a.Decision.IsZero() && raw.Points == nil {
		return a, errors.New("outside answer: neither a decision nor points")
	}
	return a, nil
}

// Assessment is a risk decision with everything that made it.
type Assessment struct {
	RulesVersion int64
	Decision     Decision
	Score        int
	Matched      []Match
	Inputs       Inputs
	// Outside is the outside service's call, nil if none was made.
	Outside *Outside
	// Keys are the request's keys (Request.Keys); Counted says whether it
	// is counted under them (allowed or held: not denied).
	Keys    []string
	Counted bool
	// ReviewExpires and ReviewDefault say, for a held request, when its
	// review ends by itself and how (Allow: approved, or Deny).
	ReviewExpires time.Time
	ReviewDefault Decision
}

// Decide maps a score to a decision by the thresholds.
func (t Thresholds) Decide(score int) Decision {
	switch {
	case score >= t.Deny:
		return Deny
	case t.Review > 0 && score >= t.Review:
		return Review
	}
	return Allow
}

// Assess decides req at now. tally holds the counts of its probes (and
// the batch's requests let through before it); with a nil tally the rules
// that count (velocity, new buyer) are left out: a prescreen, such as the
// score sent to the outside service. out is the outside service's call,
// nil if none was made.
//
// A blocked request is denied and an allow-listed one allowed, whatever
// the score; otherwise the matched rules' points add up to the score,
// which the thresholds map to a decision, and the outside service's
// answer can only make it stricter (its failure decides by
// Outside.OnFailure).
func (r *Rules) Assess(req Request, tally *Tally, out *Outside, now time.Time) Assessment {
	a := Assessment{RulesVersion: r.Version, Keys: req.Keys(), Outside: out,
		Inputs: Inputs{Request: req, IPCountry: r.IPCountryOf(req)}}
	blocked := r.listed(r.Block, req, a.Inputs.IPCountry, now)
	allowed := r.listed(r.Allow, req, a.Inputs.IPCountry, now)
	for _, e := range []*ListEntry{blocked, allowed} {
		if e == nil {
			continue
		}
		prefix := allowRulePrefix
		if e == blocked {
			prefix = blockRulePrefix
		}
		a.Matched = append(a.Matched, Match{Rule: prefix + e.Kind, Detail: e.Kind + " " + e.Value + ": " + e.Reason})
	}
	r.assessLimits(&a, req)
	if tally != nil {
		r.assessVelocity(&a, req, tally, now)
	}
	if c := r.IPCountry; c != nil {
		ipc, bill := a.Inputs.IPCountry, req.billingCountry()
		if ipc != "" && bill != "" && ipc != bill {
			a.match(c.ID, c.Points, "the IP %s is in %s, the billing country is %s", req.IP, ipc, bill)
		}
	}
	if tally != nil {
		r.assessNewBuyer(&a, req, tally, now)
	}
	failed := a.assessOutside(out, r.outsideFailure())
	a.Decision = r.Thresholds.Decide(a.Score)
	if out != nil {
		switch {
		case !failed:
			a.Decision = a.Decision.Stricter(out.Answer.Decision)
		case r.outsideFailure() == FailReview:
			a.Decision = a.Decision.Stricter(Review)
		case r.outsideFailure() == FailClosed:
			a.Decision = Deny
		}
	}
	switch {
	case blocked != nil:
		a.Decision = Deny
	case allowed != nil:
		a.Decision = Allow
	}
	a.Counted = a.Decision != Deny
	if a.Decision == Review {
		a.ReviewExpires = now.Add(r.Review.ExpiresAfter)
		a.ReviewDefault = r.Review.Default
	}
	return a
}

// match adds a matched rule's points to the score.
func (a *Assessment) match(id string, points int, format string, args ...any) {
	a.Matched = append(a.Matched, Match{Rule: id, Points: points, Detail: fmt.Sprintf(format, args...)})
	a.Score += points
}

// assessLimits matches the amount limits of req's currency, country and
// method.
func (r *Rules) assessLimits(a *Assessment, req Request) {
	for _, l := range r.Limits {
		if l.Currency != req.Currency || (len(l.Countries) > 0 && !slices.Contains(l.Countries, req.Country)) ||
			(len(l.Methods) > 0 && !slices.Contains(l.Methods, req.Method)) {
			continue
		}
		switch {
		case l.Max > 0 && req.Amount > l.Max:
			a.match(l.ID, l.Points, "%d %s is above the limit %d", req.Amount, req.Currency, l.Max)
		case l.Min > 0 && req.Amount < l.Min:
			a.match(l.ID, l.Points, "%d %s is below the limit %d", req.Amount, req.Currency, l.Min)
		}
	}
}

// assessVelocity matches the velocity rules over the tally's counts,
// which it records as inputs.
func (r *Rules) assessVelocity(a *Assessment, req Request, tally *Tally, now time.Time) {
	for _, v := range r.Velocity {
		key, ok := req.Key(v.Key)
		if !ok || (v.HasMaxAmount && v.Of == MeasureRequests && v.Currency != req.Currency) {
			continue
		}
		n, sum := tally.get(Probe{Key: key, Since: windowStart(now, v.Window)}, v.Of, v.Currency)
		a.Inputs.Counts = append(a.Inputs.Counts, Count{Rule: v.ID, Key: key, Window: v.Window.String(), N: n, Amount: sum, Currency: v.Currency})
		if v.Of == MeasureRequests { // this request counts too
			n++
			sum += req.Amount
		}
		switch {
		case v.HasMaxCount && n > v.MaxCount:
			a.match(v.ID, v.Points, "%s: %d %s in %s; at most %d", key, n, v.Of, v.Window, v.MaxCount)
		case v.HasMaxAmount && sum > v.MaxAmount:
			a.match(v.ID, v.Points, "%s: %d %s of %s in %s; at most %d", key, sum, v.Currency, v.Of, v.Window, v.MaxAmount)
		}
	}
}

// assessNewBuyer matches a large payment by a buyer first seen within
// the rule's window.
func (r *Rules) assessNewBuyer(a *Assessment, req Request, tally *Tally, now time.Time) {
	n := r.NewBuyer
	if n == nil {
		return
	}
	p, ok := r.newBuyerProbe(req, now)
	if !ok {
		return
	}
	before, _ := tally.get(p, MeasureRequests, "")
	a.Inputs.Counts = append(a.Inputs.Counts, Count{Rule: n.ID, Key: p.Key, Window: "before the last " + n.FirstSeenWithin.String(), N: before})
	if above, ok := n.Above[req.Currency]; ok && before == 0 && req.Amount > above {
		a.match(n.ID, n.Points, "%s first seen within %s pays %d %s, above %d", p.Key, n.FirstSeenWithin, req.Amount, req.Currency, above)
	}
}

// assessOutside adds the outside service's answer, and reports whether
// the call failed.
func (a *Assessment) assessOutside(out *Outside, onFailure OnFailure) (failed bool) {
	switch {
	case out == nil:
		return false
	case out.Answer == nil:
		a.Matched = append(a.Matched, Match{Rule: outsideUnavailableID, Detail: "the outside service failed (" + out.Error +
			"); on failure: " + onFailure.s})
		return true
	case out.Answer.Points > 0 || !out.Answer.Decision.IsZero():
		d := ""
		if !out.Answer.Decision.IsZero() {
			d = ", decision " + out.Answer.Decision.s
		}
		a.match(outsideRuleID, out.Answer.Points, "the outside service: %d points%s %s", out.Answer.Points, d, out.Answer.Reason)
	}
	return false
}

func (r *Rules) outsideFailure() OnFailure {
	if r.Outside == nil {
		return FailOpen
	}
	return r.Outside.OnFailure
}

// Listed reports whether req is on the list (block or allow) at now: the
// first entry that matches and has not expired.
func (r *Rules) listed(list []ListEntry, req Request, ipCountry string, now time.Time) *ListEntry {
	addr, hasAddr := req.addr()
	for i, e := range list {
		if !e.Expires.IsZero() && !now.Before(e.Expires) {
			continue
		}
		var hit bool
		switch e.Kind {
		case ListEmailDomain:
			d := req.emailDomain()
			hit = d != "" && (d == e.Value || strings.HasSuffix(d, "."+e.Value))
		case ListCIDR:
			hit = hasAddr && e.Prefix.Contains(addr)
		case ListCountry:
			hit = e.Value == req.Country || e.Value == req.BillingCountry || e.Value == ipCountry
		case KeyIP.s:
			if a, err := netip.ParseAddr(e.Value); err == nil && hasAddr {
				hit = a.Unmap() == addr
			}
		default:
			for _, k := range KeyKinds {
				if k.s == e.Kind {
					v, ok := req.Key(k)
					hit = ok && v == e.Kind+":"+e.Value
				}
			}
		}
		if hit {
			return &list[i]
		}
	}
	return nil
}

// PrescreenKnown reports whether a prescreen (Assess without a tally)
// already settles the request: a block or an allow list entry matched, so
// the outside service need not be asked.
func (a Assessment) PrescreenKnown() bool {
	for _, m := range a.Matched {
		if strings.HasPrefix(m.Rule, blockRulePrefix) || strings.HasPrefix(m.Rule, allowRulePrefix) {
			return true
		}
	}
	return false
}

// RuleIDs are the matched rules' ids, for metrics and logs.
func (a Assessment) RuleIDs() []string {
	out := make([]string, len(a.Matched))
	for i, m := range a.Matched {
		out[i] = m.Rule
	}
	return out
}

// Event is something after the money that risk control counts against
// the buyer of an order: a duplicate payment, a signed callback with a
// wrong amount, a large refund. Ref identifies it (an attempt, a
// refund): the same event recorded again counts once.
type Event struct {
	// Kind is EventDuplicatePayment, EventAmountMismatch or
	// EventLargeRefund.
	Kind     Measure
	Ref      string
	OrderID  string
	Amount   int64
	Currency string
}
