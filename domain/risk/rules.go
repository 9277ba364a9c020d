// Package risk is paygate's risk control, pure (DESIGN.md §8,
// docs/risk.md): the rules document (amount limits, velocity over sliding
// windows, block and allow lists, mismatch rules, the outside service's
// policy), the keys a pay request is counted under, and the assessment
// that scores a request and decides allow, review or deny. It has no
// clock, no I/O and no randomness: callers pass the time, the counts
// (Tally) and what the outside service answered. It imports the standard
// library and domain/jsondoc only.
package risk

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"time"

	"github.com/paygate/paygate/domain/jsondoc"
)

// Decision is what risk control decides for a pay request, a closed enum
// ordered by severity.
type Decision struct{ s string }

// The decisions.
var (
	Allow  = Decision{"allow"}
	Review = Decision{"review"}
	Deny   = Decision{"deny"}
)

func (d Decision) String() string { return d.s }

// IsZero reports whether d is no decision.
func (d Decision) IsZero() bool { return d.s == "" }

// severity orders decisions: allow < review < deny.
func (d Decision) severity() int {
	switch d {
	case Review:
		return 1
	case Deny:
		return 2
	}
	return 0
}

// Stricter is the stricter of d and e.
func (d Decision) Stricter(e Decision) Decision {
	if e.severity() > d.severity() {
		return e
	}
	return d
}

// ParseDecision reads a decision's name.
func ParseDecision(s string) (Decision, error) {
	for _, d := range []Decision{Allow, Review, Deny} {
		if d.s == s {
			return d, nil
		}
	}
	return Decision{}, fmt.Errorf("decision %q: one of allow, review, deny", s)
}

// KeyKind is what a velocity counter or a list entry is keyed by, a
// closed enum.
type KeyKind struct{ s string }

// The key kinds. IPNet is an IPv4 address's /24 (an IPv6 address's /64):
// the neighbourhood a buyer rotating addresses stays in.
var (
	KeyBuyerID         = KeyKind{"buyer_id"}
	KeyEmail           = KeyKind{"email"}
	KeyIP              = KeyKind{"ip"}
	KeyIPNet           = KeyKind{"ip_net"}
	KeyDevice          = KeyKind{"device"}
	KeyCardFingerprint = KeyKind{"card_fingerprint"}
	KeyBankAccount     = KeyKind{"bank_account"}
)

// KeyKinds are every key kind, in the order keys are listed.
var KeyKinds = []KeyKind{KeyBuyerID, KeyEmail, KeyIP, KeyIPNet, KeyDevice, KeyCardFingerprint, KeyBankAccount}

func (k KeyKind) String() string { return k.s }

// Measure is what a velocity rule counts: the pay requests let through
// (allowed or held for review), every event after the money, or one kind
// of event.
type Measure struct{ s string }

// The measures. The event kinds are those of the risk_events table.
var (
	MeasureRequests       = Measure{"requests"}
	MeasureEvents         = Measure{"events"}
	EventDuplicatePayment = Measure{"duplicate_payment"}
	EventAmountMismatch   = Measure{"amount_mismatch"}
	EventLargeRefund      = Measure{"large_refund"}

	measures   = []Measure{MeasureRequests, MeasureEvents, EventDuplicatePayment, EventAmountMismatch, EventLargeRefund}
	eventKinds = []Measure{EventDuplicatePayment, EventAmountMismatch, EventLargeRefund}
)

const (
	// countedRequest is the counter kind of a pay request.
	countedRequest = "request"
	// bucket is the counters' granularity.
	bucket = time.Minute
	// maxWindow is the longest window, and retention how long counters
	// are kept.
	maxWindow         = 31 * 24 * time.Hour
	retention         = maxWindow
	minWindow         = time.Minute
	maxNewBuyerWithin = maxWindow - 24*time.Hour
	maxRules          = 200
	maxListEntries    = 10000
	maxDocumentBytes  = 4 << 20
	maxPoints         = 1000

	defaultReviewExpiry   = 30 * time.Minute
	maxReviewExpiry       = 7 * 24 * time.Hour
	defaultOutsideTimeout = 300 * time.Millisecond
	minOutsideTimeout     = 10 * time.Millisecond
	maxOutsideTimeout     = 10 * time.Second

	// Reserved rule ids: the outside service's points and failure, and
	// the lists' entries (block.<kind>, allow.<kind>).
	outsideRuleID           = "outside"
	outsideUnavailableID    = "outside.unavailable"
	blockRulePrefix         = "block."
	allowRulePrefix         = "allow."
	defaultIPCountryRuleKey = "ip_country"
)

var (
	defaultReviewDecision = Deny
	defaultNewBuyerKey    = KeyBuyerID

	ruleIDPattern      = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
	countryPattern     = regexp.MustCompile(`^[A-Z]{2}$`)
	currencyPattern    = regexp.MustCompile(`^[A-Z]{3}$`)
	methodPattern      = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
	emailDomainPattern = regexp.MustCompile(`^[a-z0-9.-]{1,253}$`)
)

// Retention is how long counters are kept: the longest window a rule may
// have.
func Retention() time.Duration { return retention }

// Bucket is the counters' granularity: windows are measured in whole
// minutes.
func Bucket() time.Duration { return bucket }

func (m Measure) String() string { return m.s }

// counts reports whether a counter of kind counts for m.
func (m Measure) counts(kind string) bool {
	switch m {
	case MeasureRequests:
		return kind == countedRequest
	case MeasureEvents:
		return kind != countedRequest
	}
	return kind == m.s
}

// IsEvent reports whether m is an event kind (a counter kind written after
// the money).
func (m Measure) IsEvent() bool { return slices.Contains(eventKinds, m) }

// Rules is a validated risk rules document (docs/risk.md).
type Rules struct {
	// Version is the stored version (0: none stored, risk control off).
	Version int64
	Name    string
	// Thresholds map the score to a decision.
	Thresholds Thresholds
	// Review is what happens to a request held for review.
	Review ReviewPolicy
	Limits []Limit
	// Velocity rules count over sliding windows.
	Velocity []Velocity
	// Block and Allow are the lists: a blocked request is denied, an
	// allowed one (not blocked) is allowed, whatever its score.
	Block []ListEntry
	Allow []ListEntry
	// IPCountry, if set, scores a buyer whose IP's country is not the
	// billing country.
	IPCountry *IPCountryRule
	// NewBuyer, if set, scores a new buyer paying more than an amount.
	NewBuyer *NewBuyerRule
	// IPCountries is the table that places an IP in a country when the
	// mall does not say (buyer.ip_country); the longest prefix wins.
	IPCountries []IPCountry
	// Outside, if set, asks the outside risk service (when one is
	// configured).
	Outside *OutsidePolicy
	// Events are the thresholds that make events after the money.
	Events EventPolicy
}

// Thresholds map a score to a decision: Deny or more is deny, Review or
// more is review (0: no review), else allow.
type Thresholds struct {
	Review int
	Deny   int
}

// ReviewPolicy says how long a held request waits for an operator, and
// what happens then.
type ReviewPolicy struct {
	ExpiresAfter time.Duration
	// Default is Allow (approve) or Deny.
	Default Decision
}

// Limit scores an amount outside [Min, Max] in a currency, optionally
// only for some countries and methods.
type Limit struct {
	ID        string
	Currency  string
	Countries []string
	Methods   []string
	// Min and Max bound the amount in minor units (0: no bound).
	Min, Max int64
	Points   int
}

// Velocity scores a key that went over a count or an amount within a
// sliding window.
type Velocity struct {
	ID     string
	Key    KeyKind
	Window time.Duration
	Of     Measure
	// MaxCount, if set (>= 0 when HasMaxCount), is the most requests (or
	// events) the window may hold, this request included.
	MaxCount    int64
	HasMaxCount bool
	// MaxAmount, if set, is the most the window may hold in Currency,
	// this request included.
	MaxAmount    int64
	HasMaxAmount bool
	Currency     string
	Points       int
}

// ListEntry is one entry of the block or allow list: one key, with why
// and until when.
type ListEntry struct {
	// Kind is what Value is: a key kind's name, or email_domain, cidr,
	// country.
	Kind   string
	Value  string
	Prefix netip.Prefix // for cidr
	Reason string
	// Expires, if not zero, is when the entry stops applying.
	Expires time.Time
}

// List entry kinds beyond the key kinds.
const (
	ListEmailDomain = "email_domain"
	ListCIDR        = "cidr"
	ListCountry     = "country"
)

// IPCountryRule scores an IP country other than the billing country.
type IPCountryRule struct {
	ID     string `json:"id"`
	Points int    `json:"points"`
}

// NewBuyerRule scores a buyer first seen within FirstSeenWithin paying
// more than Above in the payment's currency.
type NewBuyerRule struct {
	ID              string
	Key             KeyKind
	FirstSeenWithin time.Duration
	// Above is the amount per currency above which a new buyer scores;
	// a currency not listed does not score.
	Above  map[string]int64
	Points int
}

// IPCountry places a network in a country.
type IPCountry struct {
	Prefix  netip.Prefix
	Country string
}

// OutsidePolicy is how the outside risk service is used.
type OutsidePolicy struct {
	Timeout time.Duration
	// OnFailure is what an unanswered, late or unreadable call decides:
	// OnFailureOpen (our decision stands), Review or Deny (closed).
	OnFailure OnFailure
}

// OnFailure is the outside service's failure policy, a closed enum.
type OnFailure struct{ s string }

// The failure policies.
var (
	FailOpen   = OnFailure{"open"}
	FailReview = OnFailure{"review"}
	FailClosed = OnFailure{"closed"}
)

func (f OnFailure) String() string { return f.s }

// EventPolicy says what after the money is a risk event besides
// duplicate payments and wrong amounts (always events).
type EventPolicy struct {
	// LargeRefundAbove is the refund amount per currency above which a
	// refund is an event; a currency not listed never is.
	LargeRefundAbove map[string]int64
}

// LargeRefund reports whether a refund of amount (minor units) in
// currency is a risk event.
func (r *Rules) LargeRefund(amount int64, currency string) bool {
	if r == nil {
		return false
	}
	above, ok := r.Events.LargeRefundAbove[currency]
	return ok && amount > above
}

// Validate checks rules built in code (Parse validates what it reads)
// and fills in defaults.
func (r *Rules) Validate() error {
	if err := r.validateDecisions(); err != nil {
		return err
	}
	if n := len(r.Limits) + len(r.Velocity); n > maxRules {
		return ferr("limits", "%d limits and velocity rules; at most %d", n, maxRules)
	}
	ids := ruleIDs{}
	for i, l := range r.Limits {
		if err := l.validate(fmt.Sprintf("limits[%d]", i), ids); err != nil {
			return err
		}
	}
	for i := range r.Velocity {
		if err := r.Velocity[i].validate(fmt.Sprintf("velocity[%d]", i), ids); err != nil {
			return err
		}
	}
	for _, l := range []struct {
		name    string
		entries []ListEntry
	}{{"block", r.Block}, {"allow", r.Allow}} {
		if len(l.entries) > maxListEntries {
			return ferr(l.name, "%d entries; at most %d", len(l.entries), maxListEntries)
		}
		for i, e := range l.entries {
			if err := e.validate(fmt.Sprintf("%s[%d]", l.name, i)); err != nil {
				return err
			}
		}
	}
	if c := r.IPCountry; c != nil {
		if c.ID == "" {
			c.ID = defaultIPCountryRuleKey
		}
		if err := ids.claim("ip_country.id", c.ID); err != nil {
			return err
		}
		if err := validPoints("ip_country.points", c.Points); err != nil {
			return err
		}
	}
	if n := r.NewBuyer; n != nil {
		if err := n.validate(ids); err != nil {
			return err
		}
	}
	if err := r.validateIPCountries(); err != nil {
		return err
	}
	if o := r.Outside; o != nil {
		if o.Timeout == 0 {
			o.Timeout = defaultOutsideTimeout
		}
		if o.Timeout < minOutsideTimeout || o.Timeout > maxOutsideTimeout {
			return ferr("outside.timeout", "%s: %s to %s", o.Timeout, minOutsideTimeout, maxOutsideTimeout)
		}
		if o.OnFailure.s == "" {
			o.OnFailure = FailOpen
		}
	}
	for cur, v := range r.Events.LargeRefundAbove {
		if !currencyPattern.MatchString(cur) || v < 0 {
			return ferr("events.large_refund_above."+cur, "an ISO 4217 currency and an amount in minor units, not negative")
		}
	}
	return nil
}

// validateDecisions checks the thresholds and the review policy, and
// fills in the review's defaults.
func (r *Rules) validateDecisions() error {
	t := r.Thresholds
	if t.Deny < 1 || t.Deny > 100*maxPoints {
		return ferr("thresholds.deny", "%d: 1 to %d", t.Deny, 100*maxPoints)
	}
	if t.Review < 0 || t.Review > t.Deny {
		return ferr("thresholds.review", "%d: 0 (no review) to thresholds.deny (%d)", t.Review, t.Deny)
	}
	if r.Review.ExpiresAfter == 0 {
		r.Review.ExpiresAfter = defaultReviewExpiry
	}
	if r.Review.ExpiresAfter < time.Minute || r.Review.ExpiresAfter > maxReviewExpiry {
		return ferr("review.expires_after", "%s: 1m to %s", r.Review.ExpiresAfter, maxReviewExpiry)
	}
	if r.Review.Default.IsZero() {
		r.Review.Default = defaultReviewDecision
	}
	if r.Review.Default != Allow && r.Review.Default != Deny {
		return ferr("review.default", "%q: approve or deny", r.Review.Default)
	}
	return nil
}

// ruleIDs are the rule ids taken so far, each with where.
type ruleIDs map[string]string

// claim takes id v for the rule at path: well formed, not reserved, and
// not another rule's.
func (ids ruleIDs) claim(path, v string) error {
	if !ruleIDPattern.MatchString(v) {
		return ferr(path, "%q: 1-64 of a-z 0-9 _ . -, starting with a letter or digit", v)
	}
	if prev, ok := ids[v]; ok {
		return ferr(path, "%q is also the id of %s", v, prev)
	}
	if v == outsideRuleID || v == outsideUnavailableID || hasPrefix(v, blockRulePrefix) || hasPrefix(v, allowRulePrefix) {
		return ferr(path, "%q is reserved", v)
	}
	ids[v] = path
	return nil
}

func validPoints(path string, p int) error {
	if p < 0 || p > maxPoints {
		return ferr(path, "%d: points are 0 to %d", p, maxPoints)
	}
	return nil
}

func (l Limit) validate(path string, ids ruleIDs) error {
	if err := ids.claim(path+".id", l.ID); err != nil {
		return err
	}
	if !currencyPattern.MatchString(l.Currency) {
		return ferr(path+".currency", "%q: an ISO 4217 code such as USD", l.Currency)
	}
	for j, c := range l.Countries {
		if !countryPattern.MatchString(c) {
			return ferr(fmt.Sprintf("%s.countries[%d]", path, j), "%q: an ISO 3166 alpha-2 code such as US", c)
		}
	}
	for j, m := range l.Methods {
		if !methodPattern.MatchString(m) {
			return ferr(fmt.Sprintf("%s.methods[%d]", path, j), "%q: 1-32 of a-z 0-9 _", m)
		}
	}
	if l.Min < 0 || l.Max < 0 || (l.Min == 0 && l.Max == 0) {
		return ferr(path, "a limit needs min or max, in minor units, not negative")
	}
	if l.Max != 0 && l.Min > l.Max {
		return ferr(path+".min", "%d is above max %d", l.Min, l.Max)
	}
	return validPoints(path+".points", l.Points)
}

// validate checks a velocity rule and fills in what it counts.
func (v *Velocity) validate(path string, ids ruleIDs) error {
	if err := ids.claim(path+".id", v.ID); err != nil {
		return err
	}
	if v.Key.s == "" {
		return ferr(path+".key", "required")
	}
	if v.Window < minWindow || v.Window > maxWindow || v.Window%bucket != 0 {
		return ferr(path+".window", "%s: whole minutes from 1m to %s", v.Window, maxWindow)
	}
	if v.Of.s == "" {
		v.Of = MeasureRequests
	}
	if v.HasMaxCount == v.HasMaxAmount {
		return ferr(path, "one of max_count and max_amount")
	}
	if v.HasMaxCount && v.MaxCount < 0 {
		return ferr(path+".max_count", "%d: not negative", v.MaxCount)
	}
	if v.HasMaxAmount {
		if v.MaxAmount < 0 {
			return ferr(path+".max_amount", "%d: not negative (minor units)", v.MaxAmount)
		}
		if !currencyPattern.MatchString(v.Currency) {
			return ferr(path+".currency", "%q: max_amount needs its ISO 4217 currency", v.Currency)
		}
	} else if v.Currency != "" {
		return ferr(path+".currency", "only with max_amount")
	}
	return validPoints(path+".points", v.Points)
}

// validate checks the new-buyer rule and fills in its key.
func (n *NewBuyerRule) validate(ids ruleIDs) error {
	if err := ids.claim("new_buyer.id", n.ID); err != nil {
		return err
	}
	if n.Key.s == "" {
		n.Key = defaultNewBuyerKey
	}
	if n.FirstSeenWithin < time.Minute || n.FirstSeenWithin > maxNewBuyerWithin || n.FirstSeenWithin%bucket != 0 {
		return ferr("new_buyer.first_seen_within", "%s: whole minutes from 1m to %s", n.FirstSeenWithin, maxNewBuyerWithin)
	}
	if len(n.Above) == 0 {
		return ferr("new_buyer.above", "at least one currency's amount")
	}
	for cur, v := range n.Above {
		if !currencyPattern.MatchString(cur) || v < 0 {
			return ferr("new_buyer.above."+cur, "an ISO 4217 currency and an amount in minor units, not negative")
		}
	}
	return validPoints("new_buyer.points", n.Points)
}

func (r *Rules) validateIPCountries() error {
	if len(r.IPCountries) > maxListEntries {
		return ferr("ip_countries", "%d entries; at most %d", len(r.IPCountries), maxListEntries)
	}
	for i, c := range r.IPCountries {
		if !c.Prefix.IsValid() {
			return ferr(fmt.Sprintf("ip_countries[%d].cidr", i), "not a network")
		}
		if !countryPattern.MatchString(c.Country) {
			return ferr(fmt.Sprintf("ip_countries[%d].country", i), "%q: an ISO 3166 alpha-2 code", c.Country)
		}
	}
	return nil
}

func (e ListEntry) validate(path string) error {
	if e.Reason == "" {
		return ferr(path+".reason", "required: say why")
	}
	switch e.Kind {
	case ListEmailDomain:
		if !emailDomainPattern.MatchString(e.Value) {
			return ferr(path+"."+e.Kind, "%q: a domain in lower case", e.Value)
		}
	case ListCIDR:
		if !e.Prefix.IsValid() {
			return ferr(path+".cidr", "%q: not a network such as 198.51.100.0/24", e.Value)
		}
	case ListCountry:
		if !countryPattern.MatchString(e.Value) {
			return ferr(path+".country", "%q: an ISO 3166 alpha-2 code", e.Value)
		}
	case KeyIP.s:
		if _, err := netip.ParseAddr(e.Value); err != nil {
			return ferr(path+".ip", "%q: not an IP address", e.Value)
		}
	case "":
		return ferr(path, "one of buyer_id, email, email_domain, ip, cidr, country, device, card_fingerprint, bank_account")
	default:
		if e.Value == "" {
			return ferr(path+"."+e.Kind, "empty")
		}
	}
	return nil
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// FieldError is a rules document error naming the field by its path.
type FieldError = jsondoc.FieldError

func ferr(path, format string, args ...any) error {
	return &FieldError{Doc: "risk rules", Path: path, Msg: fmt.Sprintf(format, args...)}
}
