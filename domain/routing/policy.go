// Package routing decides which channel (PSP account) takes a payment:
// the routing policy document (segments → candidate channels), the health
// of each channel in each segment (success rates from attempt outcomes,
// a circuit breaker from Initiate failures), the choice among candidates
// (weights, priorities, or a bandit over the success rates), the failover
// order, and the backtest that replays recorded attempts through a policy.
// It is pure: no clock, no randomness, no I/O of its own; callers pass the
// time and a random source. It imports only the standard library (and domain/jsondoc, the strict
// reading of operator documents).
package routing

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/paygate/paygate/domain/jsondoc"
)

// Split says how a segment divides its traffic among its candidates.
type Split struct{ s string }

// The splits.
var (
	// SplitWeighted picks by weight among the candidates whose breaker is
	// closed: a static split, as the channels file's weights did.
	SplitWeighted = Split{"weighted"}
	// SplitPriority takes the healthy candidate with the lowest priority
	// number (ties by weight): primary and backups.
	SplitPriority = Split{"priority"}
	// SplitAdaptive lets the success rates drive the split (the policy's
	// Algorithm), with a bounded exploration share; weights are the split
	// while the segment has too few outcomes to judge.
	SplitAdaptive = Split{"adaptive"}
)

var splits = []Split{SplitWeighted, SplitPriority, SplitAdaptive}

func (s Split) String() string { return s.s }

// Algorithm is how an adaptive segment scores its candidates.
type Algorithm struct{ s string }

// The algorithms (docs/routing.md compares them on the backtest).
var (
	// Thompson is discounted Thompson sampling: a draw from each
	// candidate's Beta posterior over its time-discounted outcomes; the
	// highest draw wins. Doubt is explored where it is, not uniformly.
	Thompson = Algorithm{"thompson"}
	// SlidingWindow takes the highest success rate over each candidate's
	// last outcomes (ties broken at random): the anchor engines' SR routing.
	SlidingWindow = Algorithm{"sliding_window"}
)

var algorithms = []Algorithm{Thompson, SlidingWindow}

func (a Algorithm) String() string { return a.s }

// Candidate is one channel a segment may route to.
type Candidate struct {
	Channel string
	// Weight is the candidate's share in a weighted split, and in an
	// adaptive one while the segment has too few outcomes.
	Weight int
	// Priority orders a priority split and the failover order: lower
	// first. Default 0.
	Priority int
}

// AmountBand bounds a payment's amount, in minor units of the segment's
// one currency, both ends inclusive; a zero Max means no upper bound.
type AmountBand struct {
	Min, Max int64
}

// Match says which payments a segment takes. An empty list matches any
// value; a nil Amount any amount.
type Match struct {
	Countries  []string
	Currencies []string
	Methods    []string
	// Banks are bank or issuer codes (an Indian netbanking bank code, a
	// card issuer), compared with the pay request's bank.
	Banks  []string
	Amount *AmountBand
}

// IsCatchAll reports whether the match takes every payment.
func (m Match) IsCatchAll() bool {
	return len(m.Countries) == 0 && len(m.Currencies) == 0 && len(m.Methods) == 0 && len(m.Banks) == 0 && m.Amount == nil
}

// Matches reports whether the match takes the request.
func (m Match) Matches(r Request) bool {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	if !in(m.Countries, r.Country) || !in(m.Currencies, r.Currency) || !in(m.Methods, r.Method) || !in(m.Banks, r.Bank) {
		return false
	}
	if m.Amount != nil && (r.Amount < m.Amount.Min || (m.Amount.Max > 0 && r.Amount > m.Amount.Max)) {
		return false
	}
	return true
}

// Segment is a slice of the traffic with its candidates.
type Segment struct {
	Name       string
	Match      Match
	Split      Split
	Candidates []Candidate
}

// HealthConfig says how outcomes become a success rate.
type HealthConfig struct {
	// HalfLife is the age at which an outcome counts half: outcomes are
	// weighted by 2^(-age/HalfLife), age from the attempt's decision.
	// Default 15m. Keep it at least 3× the usual time from pay request to
	// paid, or the rate acts on stale data when a PSP turns bad.
	HalfLife time.Duration
	// Window is how many of each arm's latest outcomes are kept (and the
	// sliding-window algorithm's window). Default 500.
	Window int
	// MinSamples is how many resolved outcomes a segment needs before an
	// adaptive split trusts the rates over the weights. Default 30.
	MinSamples int
	// PriorStrength is the pseudo-count of the prior each arm starts from
	// (the channel's rate over all its segments, else the segment's over
	// all its channels, else one half). Default 10.
	PriorStrength float64
	// AbandonedIsFailure counts a buyer who never paid as a failure of
	// the PSP. Default false: abandonment says nothing about the PSP and
	// is tracked apart.
	AbandonedIsFailure bool
}

// BreakerConfig is the circuit breaker of each channel in each segment,
// fed by Initiate's outcome (the fast clock): technical failures — an
// error, a timeout, a 5xx, an unreadable answer — never issuer declines.
type BreakerConfig struct {
	// ConsecutiveFailures opens the breaker. Default 5.
	ConsecutiveFailures int
	// FailureRate over at least MinRequests Initiates within Window opens
	// it too. Defaults 0.5, 20, 60s.
	FailureRate float64
	MinRequests int
	Window      time.Duration
	// OpenFor is how long it stays open the first time; each re-opening
	// doubles it, up to MaxOpenFor. Defaults 30s, 10m.
	OpenFor    time.Duration
	MaxOpenFor time.Duration
	// ProbeShare is the share of the segment's traffic a half-open
	// breaker admits. Default 0.02.
	ProbeShare float64
	// CloseAfter accepted Initiates in a row close a half-open breaker;
	// any technical failure opens it again. Default 5.
	CloseAfter int
	// MinSuccessRate, when above 0, also takes a channel out of a segment
	// while its success rate over at least MinOutcomes resolved outcomes
	// is below it; exploration still reaches it, so it comes back once
	// its rate does. Default 0 (off): a low rate is the bandit's job.
	MinSuccessRate float64
	MinOutcomes    int
}

// Policy is a routing policy document, validated.
type Policy struct {
	// Version is the stored version (0 for a policy not stored).
	Version int64
	// Name describes the policy.
	Name     string
	Segments []Segment
	// Algorithm scores adaptive segments. Default thompson.
	Algorithm Algorithm
	// Exploration is the share of an adaptive segment's traffic split
	// evenly among its candidates whatever their rates, so that a
	// recovered PSP is noticed. Default 0.05, at most 0.2.
	Exploration float64
	// ControlShare is the share of an adaptive segment's traffic split by
	// the weights alone: a live control group to compare against.
	// Default 0.
	ControlShare float64
	// MaxChannels bounds how many channels one pay request may try
	// (failover included). Default 3.
	MaxChannels int
	Health      HealthConfig
	Breaker     BreakerConfig
}

// Defaults of the knobs a policy document may leave out.
const (
	DefaultExploration     = 0.05
	DefaultMaxChannels     = 3
	DefaultHalfLife        = 15 * time.Minute
	DefaultWindow          = 500
	DefaultMinSamples      = 30
	DefaultPriorStrength   = 10
	DefaultConsecutive     = 5
	DefaultFailureRate     = 0.5
	DefaultMinRequests     = 20
	DefaultBreakerWindow   = time.Minute
	DefaultOpenFor         = 30 * time.Second
	DefaultMaxOpenFor      = 10 * time.Minute
	DefaultProbeShare      = 0.02
	DefaultCloseAfter      = 5
	DefaultMinOutcomes     = 50
	maxExploration         = 0.2
	maxSegments            = 1000
	maxCandidates          = 16
	maxListEntries         = 1000
	maxWindow              = 2000
	maxDocumentBytes       = 1 << 20
	segmentNamePattern     = `^[a-z0-9][a-z0-9_.-]{0,63}$`
	channelNamePattern     = `^[a-z0-9_-]{1,32}$`
	countryPatternRouting  = `^[A-Z]{2}$`
	currencyPatternRouting = `^[A-Z]{3}$`
	methodPatternRouting   = `^[a-z0-9_]{1,32}$`
	bankPatternRouting     = `^[A-Za-z0-9_.-]{1,32}$`
)

var (
	segmentName = regexp.MustCompile(segmentNamePattern)
	channelName = regexp.MustCompile(channelNamePattern)
	countryRe   = regexp.MustCompile(countryPatternRouting)
	currencyRe  = regexp.MustCompile(currencyPatternRouting)
	methodRe    = regexp.MustCompile(methodPatternRouting)
	bankRe      = regexp.MustCompile(bankPatternRouting)
)

// Segment returns the segment that takes the request: the first whose
// match does. A valid policy ends with a catch-all, so there always is one.
func (p *Policy) Segment(r Request) *Segment {
	for i := range p.Segments {
		if p.Segments[i].Match.Matches(r) {
			return &p.Segments[i]
		}
	}
	return nil
}

// SegmentNamed returns the segment of that name, nil if none.
func (p *Policy) SegmentNamed(name string) *Segment {
	for i := range p.Segments {
		if p.Segments[i].Name == name {
			return &p.Segments[i]
		}
	}
	return nil
}

// Channels lists every channel the policy names, in first-mention order.
func (p *Policy) Channels() []string {
	var out []string
	for _, s := range p.Segments {
		for _, c := range s.Candidates {
			if !slices.Contains(out, c.Channel) {
				out = append(out, c.Channel)
			}
		}
	}
	return out
}

// FieldError is a policy document error, naming the field by its path
// (for example `segments[2].candidates[0].weight`).
type FieldError = jsondoc.FieldError

func ferr(path, format string, args ...any) error {
	return &FieldError{Doc: "routing policy", Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks a policy built in code (Parse validates what it reads)
// and fills in the defaults of its knobs. knownChannel, if not nil,
// says whether a channel is configured: a policy naming one that is not
// is refused.
func (p *Policy) Validate(knownChannel func(string) bool) error {
	p.fillDefaults()
	if len(p.Segments) == 0 {
		return ferr("segments", "at least one segment is needed (the last a catch-all with an empty match)")
	}
	if len(p.Segments) > maxSegments {
		return ferr("segments", "%d segments; at most %d", len(p.Segments), maxSegments)
	}
	names := map[string]int{}
	for i := range p.Segments {
		s := &p.Segments[i]
		path := fmt.Sprintf("segments[%d]", i)
		if j, ok := names[s.Name]; ok {
			return ferr(path+".name", "%q is also the name of segments[%d]", s.Name, j)
		}
		names[s.Name] = i
		if err := s.validate(path, knownChannel); err != nil {
			return err
		}
		if s.Match.IsCatchAll() && i != len(p.Segments)-1 {
			return ferr(path+".match", "an empty match takes every payment, so the segments after it (from segments[%d]) could never match; put the catch-all last", i+1)
		}
	}
	if !p.Segments[len(p.Segments)-1].Match.IsCatchAll() {
		return ferr(fmt.Sprintf("segments[%d].match", len(p.Segments)-1), "the last segment must be a catch-all (an empty match), so that every payment has a segment")
	}
	switch {
	case math.IsNaN(p.Exploration) || p.Exploration < 0 || p.Exploration > maxExploration:
		return ferr("exploration", "%v: a share from 0 to %v", p.Exploration, maxExploration)
	case math.IsNaN(p.ControlShare) || p.ControlShare < 0 || p.ControlShare > 0.5:
		return ferr("control_share", "%v: a share from 0 to 0.5", p.ControlShare)
	case p.Exploration+p.ControlShare > 0.5:
		return ferr("control_share", "exploration and control share add up to %v; at most 0.5", p.Exploration+p.ControlShare)
	case p.MaxChannels < 1 || p.MaxChannels > maxCandidates:
		return ferr("max_channels", "%d: 1 to %d", p.MaxChannels, maxCandidates)
	}
	if err := p.Health.validate(); err != nil {
		return err
	}
	return p.Breaker.validate()
}

// validate checks one segment (at path) but for what depends on the
// others: its name's uniqueness and its place.
func (s *Segment) validate(path string, knownChannel func(string) bool) error {
	if !segmentName.MatchString(s.Name) {
		return ferr(path+".name", "%q: 1-64 of a-z 0-9 _ . -, starting with a letter or digit", s.Name)
	}
	if err := validateMatch(path+".match", s.Match); err != nil {
		return err
	}
	if s.Split == (Split{}) {
		s.Split = SplitWeighted
	}
	if len(s.Candidates) == 0 {
		return ferr(path+".candidates", "at least one candidate channel is needed")
	}
	if len(s.Candidates) > maxCandidates {
		return ferr(path+".candidates", "%d candidates; at most %d", len(s.Candidates), maxCandidates)
	}
	seen := map[string]bool{}
	total := 0
	for j, c := range s.Candidates {
		cp := fmt.Sprintf("%s.candidates[%d]", path, j)
		if seen[c.Channel] {
			return ferr(cp+".channel", "%q is listed twice in this segment", c.Channel)
		}
		seen[c.Channel] = true
		if err := c.validate(cp, knownChannel); err != nil {
			return err
		}
		total += c.Weight
	}
	if total == 0 && s.Split != SplitPriority {
		return ferr(path+".candidates", "every weight is 0: a %s split needs a positive weight", s.Split)
	}
	return nil
}

// validate checks one candidate (at path).
func (c Candidate) validate(path string, knownChannel func(string) bool) error {
	switch {
	case !channelName.MatchString(c.Channel):
		return ferr(path+".channel", "%q: 1-32 of a-z 0-9 _ -", c.Channel)
	case knownChannel != nil && !knownChannel(c.Channel):
		return ferr(path+".channel", "%q is not a configured channel", c.Channel)
	case c.Weight < 0 || c.Weight > 1_000_000:
		return ferr(path+".weight", "%d: a weight is 0 to 1000000", c.Weight)
	case c.Priority < 0 || c.Priority > 1000:
		return ferr(path+".priority", "%d: a priority is 0 to 1000", c.Priority)
	}
	return nil
}

// validate checks the health knobs, defaults filled in.
func (h HealthConfig) validate() error {
	switch {
	case h.HalfLife < time.Second || h.HalfLife > 7*24*time.Hour:
		return ferr("health.half_life", "%s: 1s to 168h", h.HalfLife)
	case h.Window < 10 || h.Window > maxWindow:
		return ferr("health.window", "%d: 10 to %d outcomes", h.Window, maxWindow)
	case h.MinSamples < 0 || h.MinSamples > 100000:
		return ferr("health.min_samples", "%d: 0 to 100000", h.MinSamples)
	case math.IsNaN(h.PriorStrength) || h.PriorStrength < 0.1 || h.PriorStrength > 10000:
		return ferr("health.prior_strength", "%v: 0.1 to 10000 pseudo-outcomes", h.PriorStrength)
	}
	return nil
}

// validate checks the breaker's knobs, defaults filled in.
func (b BreakerConfig) validate() error {
	switch {
	case b.ConsecutiveFailures < 1 || b.ConsecutiveFailures > 1000:
		return ferr("breaker.consecutive_failures", "%d: 1 to 1000", b.ConsecutiveFailures)
	case math.IsNaN(b.FailureRate) || b.FailureRate <= 0 || b.FailureRate > 1:
		return ferr("breaker.failure_rate", "%v: above 0, at most 1", b.FailureRate)
	case b.MinRequests < 1 || b.MinRequests > 100000:
		return ferr("breaker.min_requests", "%d: 1 to 100000", b.MinRequests)
	case b.Window < time.Second || b.Window > time.Hour:
		return ferr("breaker.window", "%s: 1s to 1h", b.Window)
	case b.OpenFor < time.Second || b.OpenFor > time.Hour:
		return ferr("breaker.open_for", "%s: 1s to 1h", b.OpenFor)
	case b.MaxOpenFor < b.OpenFor || b.MaxOpenFor > 24*time.Hour:
		return ferr("breaker.max_open_for", "%s: from open_for (%s) to 24h", b.MaxOpenFor, b.OpenFor)
	case math.IsNaN(b.ProbeShare) || b.ProbeShare <= 0 || b.ProbeShare > 0.5:
		return ferr("breaker.probe_share", "%v: above 0, at most 0.5", b.ProbeShare)
	case b.CloseAfter < 1 || b.CloseAfter > 1000:
		return ferr("breaker.close_after", "%d: 1 to 1000", b.CloseAfter)
	case math.IsNaN(b.MinSuccessRate) || b.MinSuccessRate < 0 || b.MinSuccessRate >= 1:
		return ferr("breaker.min_success_rate", "%v: 0 (off) up to, not including, 1", b.MinSuccessRate)
	case b.MinOutcomes < 1 || b.MinOutcomes > 100000:
		return ferr("breaker.min_outcomes", "%d: 1 to 100000", b.MinOutcomes)
	}
	return nil
}

func validateMatch(path string, m Match) error {
	lists := []struct {
		name string
		list []string
		re   *regexp.Regexp
		what string
	}{
		{"countries", m.Countries, countryRe, "an ISO 3166 alpha-2 code in capitals"},
		{"currencies", m.Currencies, currencyRe, "an ISO 4217 code in capitals"},
		{"methods", m.Methods, methodRe, "1-32 of a-z 0-9 _"},
		{"banks", m.Banks, bankRe, "1-32 of A-Z a-z 0-9 _ . -"},
	}
	for _, l := range lists {
		if len(l.list) > maxListEntries {
			return ferr(path+"."+l.name, "%d entries; at most %d", len(l.list), maxListEntries)
		}
		seen := map[string]bool{}
		for i, v := range l.list {
			if !l.re.MatchString(v) {
				return ferr(fmt.Sprintf("%s.%s[%d]", path, l.name, i), "%q: %s", v, l.what)
			}
			if seen[v] {
				return ferr(fmt.Sprintf("%s.%s[%d]", path, l.name, i), "%q is listed twice", v)
			}
			seen[v] = true
		}
	}
	if a := m.Amount; a != nil {
		if len(m.Currencies) != 1 {
			return ferr(path+".amount", "an amount band needs exactly one currency in %s.currencies (amounts are minor units of one currency)", path)
		}
		if a.Min < 0 {
			return ferr(path+".amount.min", "%d: an amount is not negative", a.Min)
		}
		if a.Max < 0 || (a.Max > 0 && a.Max < a.Min) {
			return ferr(path+".amount.max", "%d: at least min (%d), or 0 for no upper bound", a.Max, a.Min)
		}
		if a.Min == 0 && a.Max == 0 {
			return ferr(path+".amount", "a band from 0 without an upper bound takes every amount: leave amount out")
		}
	}
	return nil
}

func (p *Policy) fillDefaults() {
	if p.Algorithm == (Algorithm{}) {
		p.Algorithm = Thompson
	}
	if p.MaxChannels == 0 {
		p.MaxChannels = DefaultMaxChannels
	}
	h := &p.Health
	if h.HalfLife == 0 {
		h.HalfLife = DefaultHalfLife
	}
	if h.Window == 0 {
		h.Window = DefaultWindow
	}
	if h.PriorStrength == 0 {
		h.PriorStrength = DefaultPriorStrength
	}
	b := &p.Breaker
	if b.ConsecutiveFailures == 0 {
		b.ConsecutiveFailures = DefaultConsecutive
	}
	if b.FailureRate == 0 {
		b.FailureRate = DefaultFailureRate
	}
	if b.MinRequests == 0 {
		b.MinRequests = DefaultMinRequests
	}
	if b.Window == 0 {
		b.Window = DefaultBreakerWindow
	}
	if b.OpenFor == 0 {
		b.OpenFor = DefaultOpenFor
	}
	if b.MaxOpenFor == 0 {
		b.MaxOpenFor = max(DefaultMaxOpenFor, b.OpenFor)
	}
	if b.ProbeShare == 0 {
		b.ProbeShare = DefaultProbeShare
	}
	if b.CloseAfter == 0 {
		b.CloseAfter = DefaultCloseAfter
	}
	if b.MinOutcomes == 0 {
		b.MinOutcomes = DefaultMinOutcomes
	}
}

// Request is what routing knows of a pay request.
type Request struct {
	Country  string
	Currency string
	Method   string
	Bank     string
	// Amount is in minor units of Currency.
	Amount int64
	// Channel pins the request to one channel ("" lets routing choose).
	Channel string
}

func (r Request) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d %s", r.Country, r.Amount, r.Currency)
	if r.Method != "" {
		b.WriteString(" " + r.Method)
	}
	if r.Bank != "" {
		b.WriteString(" bank " + r.Bank)
	}
	return b.String()
}
