package risk_test

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain/risk"
)

// fullRules uses every section of the document.
const fullRules = `{
  "name": "shop risk rules",
  "thresholds": {"review": 50, "deny": 100},
  "review": {"expires_after": "45m", "default": "approve"},
  "limits": [
    {"id": "usd-card-max", "currency": "USD", "methods": ["card"], "max": 500000, "points": 100},
    {"id": "inr-min", "currency": "INR", "countries": ["IN"], "min": 100, "points": 20}
  ],
  "velocity": [
    {"id": "buyer-5-per-10m", "key": "buyer_id", "window": "10m", "max_count": 5, "points": 100},
    {"id": "email-2000usd-day", "key": "email", "window": "24h", "max_amount": 200000, "currency": "USD", "points": 60},
    {"id": "ipnet-hour", "key": "ip_net", "window": "1h", "max_count": 20, "points": 30},
    {"id": "card-events", "key": "card_fingerprint", "window": "720h", "of": "events", "max_count": 0, "points": 50},
    {"id": "dup-payments", "key": "buyer_id", "window": "168h", "of": "duplicate_payment", "max_count": 1, "points": 40}
  ],
  "block": [
    {"buyer_id": "u666", "reason": "chargebacks"},
    {"email_domain": "mailinator.com", "reason": "disposable"},
    {"cidr": "198.51.100.0/24", "reason": "botnet"},
    {"country": "KP", "reason": "sanctions"},
    {"email": "Old@Example.com", "reason": "expired ban", "expires": "2026-01-01T00:00:00Z"}
  ],
  "allow": [
    {"buyer_id": "vip-1", "reason": "key account", "expires": "2030-01-01T00:00:00Z"}
  ],
  "ip_country": {"id": "ip-country", "points": 30},
  "new_buyer": {"id": "new-buyer-big", "key": "buyer_id", "first_seen_within": "24h", "above": {"USD": 50000}, "points": 40},
  "ip_countries": [{"cidr": "203.0.113.0/24", "country": "AU"}, {"cidr": "203.0.113.128/25", "country": "NZ"}],
  "outside": {"timeout": "250ms", "on_failure": "review"},
  "events": {"large_refund_above": {"USD": 100000}}
}`

func parse(t *testing.T, doc string) *risk.Rules {
	t.Helper()
	r, err := risk.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var now = time.Date(2026, 12, 1, 10, 30, 20, 0, time.UTC)

func req() risk.Request {
	return risk.Request{OrderID: "A1", Amount: 1999, Currency: "USD", Country: "US", Method: "card", BuyerID: "u42",
		Email: "A@Example.com", IP: "192.0.2.7", Device: "d1"}
}

// tally is a tally of the rules' probes for r with counts per key: {n,
// amount, seen}: n requests amounting to amount in the windows, and (seen
// 1) one request before the new-buyer look-back, and events by kind.
func tally(rules *risk.Rules, r risk.Request, counts map[string][3]int64, events map[string]map[string]int64) *risk.Tally {
	probes := rules.Probes(r, now)
	t := risk.NewTally(probes)
	for _, p := range probes {
		c, ok := counts[p.Key]
		switch {
		case ok && p.Until.IsZero():
			t.Set(p, "request", r.Currency, c[0], c[1])
		case ok && c[2] == 1:
			t.Set(p, "request", r.Currency, 1, 100)
		}
		for kind, n := range events[p.Key] {
			t.Set(p, kind, r.Currency, n, 0)
		}
	}
	return t
}

func TestParseFullDocumentRoundTrips(t *testing.T) {
	r := parse(t, fullRules)
	if r.Review.ExpiresAfter != 45*time.Minute || r.Review.Default != risk.Allow || r.Outside.Timeout != 250*time.Millisecond ||
		r.Outside.OnFailure != risk.FailReview || len(r.Velocity) != 5 || r.Velocity[0].Of != risk.MeasureRequests {
		t.Fatalf("parsed %+v", r)
	}
	if r.Block[4].Value != "old@example.com" {
		t.Errorf("emails are kept in lower case: %q", r.Block[4].Value)
	}
	doc, err := r.Document()
	if err != nil {
		t.Fatal(err)
	}
	again, err := risk.Parse(doc)
	if err != nil {
		t.Fatalf("the rendered document does not parse: %v\n%s", err, doc)
	}
	if !reflect.DeepEqual(r, again) {
		t.Fatalf("round trip changed the rules:\n%+v\n%+v", r, again)
	}
}

func TestParseDefaults(t *testing.T) {
	r := parse(t, `{"thresholds":{"deny":100},"outside":{},"velocity":[{"id":"v","key":"email","window":"1h","max_count":3,"points":10}]}`)
	if r.Review.ExpiresAfter != 30*time.Minute || r.Review.Default != risk.Deny || r.Outside.Timeout != 300*time.Millisecond ||
		r.Outside.OnFailure != risk.FailOpen || r.Velocity[0].Of != risk.MeasureRequests || r.Thresholds.Review != 0 {
		t.Fatalf("defaults %+v", r)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name, doc, path, msg string
	}{
		{"no thresholds", `{}`, "thresholds", "required"},
		{"unknown field", `{"thresholds":{"deny":1},"treshold":1}`, "treshold", "unknown field"},
		{"repeated field", `{"thresholds":{"deny":1},"name":"a","name":"b"}`, "name", "given twice"},
		{"review above deny", `{"thresholds":{"review":10,"deny":5}}`, "thresholds.review", "0 (no review)"},
		{"deny zero", `{"thresholds":{"deny":0}}`, "thresholds.deny", "1 to"},
		{"float points", `{"thresholds":{"deny":1},"limits":[{"id":"a","currency":"USD","max":5,"points":1.5}]}`, "limits[0].points", "integer"},
		{"float amount", `{"thresholds":{"deny":1},"limits":[{"id":"a","currency":"USD","max":19.99,"points":1}]}`, "limits[0].max", "minor units"},
		{"limit without bound", `{"thresholds":{"deny":1},"limits":[{"id":"a","currency":"USD","points":1}]}`, "limits[0]", "min or max"},
		{"limit bad currency", `{"thresholds":{"deny":1},"limits":[{"id":"a","currency":"usd","max":5,"points":1}]}`, "limits[0].currency", "ISO 4217"},
		{"limit bad country", `{"thresholds":{"deny":1},"limits":[{"id":"a","currency":"USD","countries":["USA"],"max":5,"points":1}]}`, "limits[0].countries[0]", "alpha-2"},
		{"duplicate id", `{"thresholds":{"deny":1},"limits":[{"id":"a","currency":"USD","max":5,"points":1}],"velocity":[{"id":"a","key":"email","window":"1m","max_count":1,"points":1}]}`, "velocity[0].id", "also the id of limits[0].id"},
		{"reserved id", `{"thresholds":{"deny":1},"velocity":[{"id":"outside","key":"email","window":"1m","max_count":1,"points":1}]}`, "velocity[0].id", "reserved"},
		{"bad key", `{"thresholds":{"deny":1},"velocity":[{"id":"a","key":"phone","window":"1m","max_count":1,"points":1}]}`, "velocity[0].key", "one of buyer_id"},
		{"window not minutes", `{"thresholds":{"deny":1},"velocity":[{"id":"a","key":"email","window":"90s","max_count":1,"points":1}]}`, "velocity[0].window", "whole minutes"},
		{"window too long", `{"thresholds":{"deny":1},"velocity":[{"id":"a","key":"email","window":"800h","max_count":1,"points":1}]}`, "velocity[0].window", "whole minutes"},
		{"both maxima", `{"thresholds":{"deny":1},"velocity":[{"id":"a","key":"email","window":"1m","max_count":1,"max_amount":5,"currency":"USD","points":1}]}`, "velocity[0]", "one of max_count and max_amount"},
		{"amount without currency", `{"thresholds":{"deny":1},"velocity":[{"id":"a","key":"email","window":"1m","max_amount":5,"points":1}]}`, "velocity[0].currency", "ISO 4217"},
		{"bad measure", `{"thresholds":{"deny":1},"velocity":[{"id":"a","key":"email","window":"1m","of":"refunds","max_count":1,"points":1}]}`, "velocity[0].of", "one of requests"},
		{"points too many", `{"thresholds":{"deny":1},"ip_country":{"points":5000}}`, "ip_country.points", "0 to 1000"},
		{"list entry without reason", `{"thresholds":{"deny":1},"block":[{"email":"a@b.c"}]}`, "block[0].reason", "required"},
		{"list entry with two keys", `{"thresholds":{"deny":1},"block":[{"email":"a@b.c","ip":"192.0.2.1","reason":"x"}]}`, "block[0].ip", "one of"},
		{"list entry with no key", `{"thresholds":{"deny":1},"allow":[{"reason":"x"}]}`, "allow[0]", "one of buyer_id"},
		{"bad cidr", `{"thresholds":{"deny":1},"block":[{"cidr":"300.1.1.0/24","reason":"x"}]}`, "block[0].cidr", "not a network"},
		{"bad ip", `{"thresholds":{"deny":1},"block":[{"ip":"not-an-ip","reason":"x"}]}`, "block[0].ip", "not an IP"},
		{"bad expiry", `{"thresholds":{"deny":1},"block":[{"ip":"192.0.2.1","reason":"x","expires":"tomorrow"}]}`, "block[0].expires", "RFC 3339"},
		{"bad default", `{"thresholds":{"deny":1},"review":{"default":"maybe"}}`, "review.default", "approve or deny"},
		{"review expiry too long", `{"thresholds":{"deny":1},"review":{"expires_after":"720h"}}`, "review.expires_after", "1m to"},
		{"new buyer without amounts", `{"thresholds":{"deny":1},"new_buyer":{"id":"n","first_seen_within":"24h","above":{},"points":1}}`, "new_buyer.above", "at least one"},
		{"new buyer float amount", `{"thresholds":{"deny":1},"new_buyer":{"id":"n","first_seen_within":"24h","above":{"USD":1.5},"points":1}}`, "new_buyer.above.USD", "integer"},
		{"bad on_failure", `{"thresholds":{"deny":1},"outside":{"on_failure":"maybe"}}`, "outside.on_failure", "open"},
		{"outside timeout too long", `{"thresholds":{"deny":1},"outside":{"timeout":"1m"}}`, "outside.timeout", "10ms to"},
		{"ip_countries bad country", `{"thresholds":{"deny":1},"ip_countries":[{"cidr":"192.0.2.0/24","country":"au"}]}`, "ip_countries[0].country", "alpha-2"},
		{"trailing data", `{"thresholds":{"deny":1}} x`, "", "data after the end"},
		{"not an object", `[1]`, "", "must be an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := risk.Parse([]byte(tt.doc))
			var fe *risk.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse error %v is not a FieldError", err)
			}
			if fe.Path != tt.path || !strings.Contains(fe.Msg, tt.msg) || !strings.HasPrefix(err.Error(), "risk rules: ") {
				t.Fatalf("Parse error %q: want path %q and %q in the message", err, tt.path, tt.msg)
			}
		})
	}
}

func TestParseRefusesInvalidUTF8AndHugeDocuments(t *testing.T) {
	if _, err := risk.Parse([]byte("{\"name\":\"\xff\",\"thresholds\":{\"deny\":1}}")); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("invalid UTF-8: %v", err)
	}
	if _, err := risk.Parse(make([]byte, 5<<20)); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("5 MiB document: %v", err)
	}
}

func TestKeys(t *testing.T) {
	r := risk.Request{BuyerID: "u1", Email: " A@Example.COM ", IP: "::ffff:192.0.2.77", Device: "d", CardFingerprint: "fp", BankAccount: "ba"}
	want := []string{"buyer_id:u1", "email:a@example.com", "ip:192.0.2.77", "ip_net:192.0.2.0/24", "device:d", "card_fingerprint:fp", "bank_account:ba"}
	if got := r.Keys(); !reflect.DeepEqual(got, want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	v6 := risk.Request{IP: "2001:db8:1:2:3::9"}
	if got := v6.Keys(); !reflect.DeepEqual(got, []string{"ip:2001:db8:1:2:3::9", "ip_net:2001:db8:1:2::/64"}) {
		t.Fatalf("IPv6 keys %v", got)
	}
	if got := (risk.Request{IP: "not an ip"}).Keys(); got != nil {
		t.Fatalf("an unreadable IP has no keys: %v", got)
	}
}

// TestAssessEachRuleKind: every kind of rule, alone, matching and not.
func TestAssessEachRuleKind(t *testing.T) {
	rules := parse(t, fullRules)
	type counts = map[string][3]int64
	tests := []struct {
		name     string
		edit     func(*risk.Request)
		counts   counts                      // requests counted per key (n, amount, 1 to fill the new-buyer probe)
		events   map[string]map[string]int64 // events per key and kind
		decision risk.Decision
		rules    []string
	}{
		{"nothing matches", nil, counts{"buyer_id:u42": {1, 100, 1}}, nil, risk.Allow, nil},
		// (The email's daily sum counts this request: 2,000.00 USD at most.)
		{"amount limit above max", func(r *risk.Request) { r.Amount = 500001 }, counts{"buyer_id:u42": {0, 0, 1}}, nil, risk.Deny, []string{"usd-card-max", "email-2000usd-day"}},
		{"amount limit at max", func(r *risk.Request) { r.Amount, r.Email = 500000, "" }, counts{"buyer_id:u42": {0, 0, 1}}, nil, risk.Allow, nil},
		{"limit of another method", func(r *risk.Request) { r.Amount, r.Method, r.Email = 900000, "bank_transfer", "" }, counts{"buyer_id:u42": {0, 0, 1}}, nil, risk.Allow, nil},
		{"limit below min in its country", func(r *risk.Request) { r.Amount, r.Currency, r.Country = 99, "INR", "IN" }, counts{"buyer_id:u42": {0, 0, 1}}, nil, risk.Allow, []string{"inr-min"}},
		{"limit below min elsewhere", func(r *risk.Request) { r.Amount, r.Currency, r.Country = 99, "INR", "US" }, counts{"buyer_id:u42": {0, 0, 1}}, nil, risk.Allow, nil},
		{"velocity count at the limit", nil, counts{"buyer_id:u42": {4, 0, 1}}, nil, risk.Allow, nil},
		{"velocity count over the limit", nil, counts{"buyer_id:u42": {5, 0, 1}}, nil, risk.Deny, []string{"buyer-5-per-10m"}},
		{"velocity sum over", nil, counts{"buyer_id:u42": {1, 0, 1}, "email:a@example.com": {3, 198002, 0}}, nil, risk.Review, []string{"email-2000usd-day"}},
		{"velocity sum at", nil, counts{"buyer_id:u42": {1, 0, 1}, "email:a@example.com": {3, 198001, 0}}, nil, risk.Allow, nil},
		{"velocity sum of another currency", func(r *risk.Request) { r.Currency, r.Amount = "EUR", 1999 }, counts{"buyer_id:u42": {1, 0, 1}, "email:a@example.com": {9, 999999, 0}}, nil, risk.Allow, nil},
		{"velocity by /24", nil, counts{"buyer_id:u42": {1, 0, 1}, "ip_net:192.0.2.0/24": {20, 0, 0}}, nil, risk.Allow, []string{"ipnet-hour"}},
		{"events on the card", func(r *risk.Request) { r.CardFingerprint = "fp1" }, counts{"buyer_id:u42": {1, 0, 1}},
			map[string]map[string]int64{"card_fingerprint:fp1": {"amount_mismatch": 1}}, risk.Review, []string{"card-events"}},
		{"one duplicate payment is allowed", nil, counts{"buyer_id:u42": {1, 0, 1}},
			map[string]map[string]int64{"buyer_id:u42": {"duplicate_payment": 1}}, risk.Allow, nil},
		{"two duplicate payments", nil, counts{"buyer_id:u42": {1, 0, 1}},
			map[string]map[string]int64{"buyer_id:u42": {"duplicate_payment": 2, "large_refund": 5}}, risk.Allow, []string{"dup-payments"}},
		{"events do not count as requests", nil, counts{"buyer_id:u42": {0, 0, 1}},
			map[string]map[string]int64{"buyer_id:u42": {"duplicate_payment": 1, "large_refund": 9}}, risk.Allow, nil},
		{"IP country differs (mall's word)", func(r *risk.Request) { r.IPCountry = "DE" }, counts{"buyer_id:u42": {1, 0, 1}}, nil, risk.Allow, []string{"ip-country"}},
		{"IP country from the table", func(r *risk.Request) { r.IP = "203.0.113.5" }, counts{"buyer_id:u42": {1, 0, 1}}, nil, risk.Allow, []string{"ip-country"}},
		{"IP country, longest prefix", func(r *risk.Request) { r.IP, r.BillingCountry = "203.0.113.200", "NZ" }, counts{"buyer_id:u42": {1, 0, 1}}, nil, risk.Allow, nil},
		{"IP country same as billing", func(r *risk.Request) { r.IP, r.BillingCountry = "203.0.113.5", "AU" }, counts{"buyer_id:u42": {1, 0, 1}}, nil, risk.Allow, nil},
		{"IP country unknown", func(r *risk.Request) { r.IP = "192.0.2.1" }, counts{"buyer_id:u42": {1, 0, 1}}, nil, risk.Allow, nil},
		{"new buyer above the amount", func(r *risk.Request) { r.Amount = 60000 }, nil, nil, risk.Allow, []string{"new-buyer-big"}},
		{"new buyer below the amount", func(r *risk.Request) { r.Amount = 50000 }, nil, nil, risk.Allow, nil},
		{"known buyer above the amount", func(r *risk.Request) { r.Amount = 60000 }, counts{"buyer_id:u42": {1, 0, 1}}, nil, risk.Allow, nil},
		{"new buyer, currency not listed", func(r *risk.Request) { r.Amount, r.Currency = 600000, "EUR" }, nil, nil, risk.Allow, nil},
		{"new buyer and IP country: review", func(r *risk.Request) { r.Amount, r.IPCountry = 60000, "DE" }, nil, nil, risk.Review, []string{"ip-country", "new-buyer-big"}},
		{"blocked buyer", func(r *risk.Request) { r.BuyerID = "u666" }, counts{"buyer_id:u666": {0, 0, 1}}, nil, risk.Deny, []string{"block.buyer_id"}},
		{"blocked email domain", func(r *risk.Request) { r.Email = "x@Mailinator.com" }, counts{"buyer_id:u42": {1, 0, 1}}, nil, risk.Deny, []string{"block.email_domain"}},
		{"blocked sub-domain", func(r *risk.Request) { r.Email = "x@eu.mailinator.com" }, counts{"buyer_id:u42": {1, 0, 1}}, nil, risk.Deny, []string{"block.email_domain"}},
		{"a domain that only ends alike", func(r *risk.Request) { r.Email = "x@notmailinator.com" }, counts{"buyer_id:u42": {1, 0, 1}}, nil, risk.Allow, nil},
		{"blocked network", func(r *risk.Request) { r.IP = "198.51.100.9" }, counts{"buyer_id:u42": {1, 0, 1}}, nil, risk.Deny, []string{"block.cidr"}},
		{"blocked country", func(r *risk.Request) { r.BillingCountry = "KP" }, counts{"buyer_id:u42": {1, 0, 1}}, nil, risk.Deny, []string{"block.country"}},
		{"blocked IP country", func(r *risk.Request) { r.IPCountry = "KP" }, counts{"buyer_id:u42": {1, 0, 1}}, nil, risk.Deny, []string{"block.country", "ip-country"}},
		{"expired block entry", func(r *risk.Request) { r.Email = "old@example.com" }, counts{"buyer_id:u42": {1, 0, 1}}, nil, risk.Allow, nil},
		{"allow list beats the score", func(r *risk.Request) { r.BuyerID, r.Amount = "vip-1", 900000 }, counts{"buyer_id:vip-1": {50, 0, 1}}, nil, risk.Allow, []string{"allow.buyer_id", "usd-card-max", "buyer-5-per-10m", "email-2000usd-day"}},
		{"block beats allow", func(r *risk.Request) { r.BuyerID, r.IP = "vip-1", "198.51.100.1" }, counts{"buyer_id:vip-1": {1, 0, 1}}, nil, risk.Deny, []string{"block.cidr", "allow.buyer_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req()
			if tt.edit != nil {
				tt.edit(&r)
			}
			a := rules.Assess(r, tally(rules, r, tt.counts, tt.events), nil, now)
			var got []string
			for _, m := range a.Matched {
				got = append(got, m.Rule)
			}
			want := append([]string(nil), tt.rules...)
			// List matches come first, then the rules in document order.
			if a.Decision != tt.decision || !sameSet(got, want) {
				t.Fatalf("decision %s (score %d) with %v, want %s with %v; %+v", a.Decision, a.Score, got, tt.decision, want, a.Matched)
			}
			if a.Counted != (a.Decision != risk.Deny) {
				t.Errorf("counted %v for %s", a.Counted, a.Decision)
			}
			if tt.decision == risk.Review && (a.ReviewExpires != now.Add(45*time.Minute) || a.ReviewDefault != risk.Allow) {
				t.Errorf("review terms %v %s", a.ReviewExpires, a.ReviewDefault)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestThresholds(t *testing.T) {
	th := risk.Thresholds{Review: 50, Deny: 100}
	for score, want := range map[int]risk.Decision{0: risk.Allow, 49: risk.Allow, 50: risk.Review, 99: risk.Review, 100: risk.Deny, 5000: risk.Deny} {
		if got := th.Decide(score); got != want {
			t.Errorf("score %d: %s, want %s", score, got, want)
		}
	}
	noReview := risk.Thresholds{Deny: 100}
	if noReview.Decide(99) != risk.Allow || noReview.Decide(100) != risk.Deny {
		t.Error("without a review threshold, under deny is allow")
	}
}

// TestScoreAddsUp: points of every matched rule add up; the thresholds
// decide on the sum.
func TestScoreAddsUp(t *testing.T) {
	rules := parse(t, `{"thresholds":{"review":40,"deny":70},
	  "limits":[{"id":"big","currency":"USD","max":1000,"points":30}],
	  "ip_country":{"id":"geo","points":20},
	  "velocity":[{"id":"fast","key":"email","window":"5m","max_count":1,"points":25}]}`)
	r := req()
	cases := []struct {
		amount    int64
		ipCountry string
		prior     int64
		score     int
		decision  risk.Decision
	}{
		{500, "", 0, 0, risk.Allow},
		{5000, "", 0, 30, risk.Allow},
		{5000, "DE", 0, 50, risk.Review},
		{5000, "DE", 1, 75, risk.Deny},
		{500, "DE", 1, 45, risk.Review},
	}
	for _, c := range cases {
		r.Amount, r.IPCountry = c.amount, c.ipCountry
		a := rules.Assess(r, tally(rules, r, map[string][3]int64{"email:a@example.com": {c.prior, 0, 0}}, nil), nil, now)
		if a.Score != c.score || a.Decision != c.decision {
			t.Errorf("%+v: score %d %s", c, a.Score, a.Decision)
		}
	}
}

// TestTallyCountsTheBatch: requests let through earlier in a batch count
// for the ones after them, under every probe of their keys; closed
// probes (the new-buyer look-back) and other keys are left alone.
func TestTallyCountsTheBatch(t *testing.T) {
	rules := parse(t, `{"thresholds":{"deny":100},"velocity":[{"id":"v","key":"buyer_id","window":"10m","max_count":5,"points":100}],
	  "new_buyer":{"id":"n","first_seen_within":"1h","above":{"USD":0},"points":1}}`)
	r := req()
	tl := risk.NewTally(rules.Probes(r, now))
	allowed := 0
	for i := 0; i < 50; i++ {
		a := rules.Assess(r, tl, nil, now)
		if a.Decision == risk.Allow {
			allowed++
		}
		if a.Counted {
			tl.Count(a.Keys, r.Currency, r.Amount)
		}
		// The buyer stays new: its own requests of the batch are within the hour.
		if ids := a.RuleIDs(); ids[len(ids)-1] != "n" {
			t.Fatalf("request %d: %v", i, a.RuleIDs())
		}
	}
	if allowed != 5 {
		t.Fatalf("%d of 50 allowed against a limit of 5", allowed)
	}
	other := r
	other.BuyerID = "u43"
	if a := rules.Assess(other, tl, nil, now); a.Decision != risk.Allow {
		t.Fatalf("another buyer: %s %v", a.Decision, a.Matched)
	}
}

func TestProbesMeasureWholeMinutes(t *testing.T) {
	rules := parse(t, `{"thresholds":{"deny":100},"velocity":[
	  {"id":"a","key":"buyer_id","window":"10m","max_count":5,"points":1},
	  {"id":"b","key":"buyer_id","window":"10m","of":"events","max_count":5,"points":1},
	  {"id":"c","key":"device","window":"1h","max_count":5,"points":1}],
	  "new_buyer":{"id":"n","first_seen_within":"24h","above":{"USD":0},"points":1}}`)
	ps := rules.Probes(req(), now)
	want := []risk.Probe{
		{Key: "buyer_id:u42", Since: time.Date(2026, 12, 1, 10, 20, 0, 0, time.UTC)},
		{Key: "device:d1", Since: time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)},
		{Key: "buyer_id:u42", Since: time.Date(2026, 10, 31, 10, 30, 0, 0, time.UTC), Until: time.Date(2026, 11, 30, 10, 30, 0, 0, time.UTC)},
	}
	if !reflect.DeepEqual(ps, want) {
		t.Fatalf("probes %+v\nwant %+v", ps, want)
	}
	r := req()
	r.Device = ""
	if got := rules.Probes(r, now); len(got) != 2 {
		t.Fatalf("a request without a device has no device probe: %+v", got)
	}
}

func TestOutsideService(t *testing.T) {
	base := `{"thresholds":{"review":50,"deny":100},"limits":[{"id":"big","currency":"USD","max":1000,"points":60}],"outside":{"on_failure":%q}}`
	answered := func(d risk.Decision, points int) *risk.Outside {
		return &risk.Outside{Answer: &risk.OutsideAnswer{Decision: d, Points: points}}
	}
	down := &risk.Outside{Error: "timeout"}
	tests := []struct {
		name     string
		policy   string
		amount   int64
		out      *risk.Outside
		decision risk.Decision
		score    int
	}{
		{"answer adds points", "open", 500, answered(risk.Decision{}, 60), risk.Review, 60},
		{"answer denies", "open", 500, answered(risk.Deny, 0), risk.Deny, 0},
		{"answer allows: ours stands", "open", 5000, answered(risk.Allow, 0), risk.Review, 60},
		{"down, fail open", "open", 500, down, risk.Allow, 0},
		{"down, fail open keeps ours", "open", 5000, down, risk.Review, 60},
		{"down, fail to review", "review", 500, down, risk.Review, 0},
		{"down, fail closed", "closed", 500, down, risk.Deny, 0},
		{"not asked", "closed", 500, nil, risk.Allow, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := parse(t, strings.Replace(base, "%q", `"`+tt.policy+`"`, 1))
			r := req()
			r.Amount = tt.amount
			a := rules.Assess(r, risk.NewTally(nil), tt.out, now)
			if a.Decision != tt.decision || a.Score != tt.score {
				t.Fatalf("%s score %d, want %s %d (%+v)", a.Decision, a.Score, tt.decision, tt.score, a.Matched)
			}
			if tt.out == down && (len(a.Matched) == 0 || a.Matched[len(a.Matched)-1].Rule != "outside.unavailable") {
				t.Errorf("a failed call is not in the evidence: %+v", a.Matched)
			}
		})
	}
}

func TestParseAnswer(t *testing.T) {
	good := map[string]risk.OutsideAnswer{
		`{"decision":"deny","reason":"stolen card"}`: {Decision: risk.Deny, Reason: "stolen card"},
		`{"points":35}`: {Points: 35},
		`{"decision":"allow","points":0,"model":"v7","x":[1]}`: {Decision: risk.Allow},
	}
	for body, want := range good {
		got, err := risk.ParseAnswer([]byte(body))
		if err != nil || got != want {
			t.Errorf("%s: %+v %v", body, got, err)
		}
	}
	for _, bad := range []string{``, `{}`, `{"decision":"block"}`, `{"points":-1}`, `{"points":1.5}`, `{"points":5000}`, `[1]`, `{"points":1} {}`, `{"decision":1}`} {
		if _, err := risk.ParseAnswer([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestLargeRefund(t *testing.T) {
	rules := parse(t, fullRules)
	if !rules.LargeRefund(100001, "USD") || rules.LargeRefund(100000, "USD") || rules.LargeRefund(9999999, "EUR") {
		t.Error("large refunds: above the currency's amount only")
	}
	var none *risk.Rules
	if none.LargeRefund(1<<40, "USD") {
		t.Error("no rules, no events")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(fullRules))
	f.Add([]byte(`{"thresholds":{"deny":1}}`))
	f.Add([]byte(`{"thresholds":{"review":1,"deny":2},"velocity":[{"id":"a","key":"ip_net","window":"1m","of":"events","max_amount":0,"currency":"EUR","points":0}]}`))
	f.Add([]byte(`{"thresholds":{"deny":1},"block":[{"cidr":"::/0","reason":"x","expires":"2027-01-01T00:00:00Z"}],"new_buyer":{"id":"n","first_seen_within":"1m","above":{"JPY":0},"points":0}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		r, err := risk.Parse(doc)
		if err != nil {
			var fe *risk.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			return
		}
		// Rules that parse render to a document that parses to the same
		// rules, and decide any request without panicking.
		out, err := r.Document()
		if err != nil {
			t.Fatal(err)
		}
		again, err := risk.Parse(out)
		if err != nil {
			t.Fatalf("rendered %s does not parse: %v", out, err)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip changed the rules:\n%+v\n%+v", r, again)
		}
		rq := req()
		a := r.Assess(rq, risk.NewTally(r.Probes(rq, now)), &risk.Outside{Error: "down"}, now)
		if a.Decision.IsZero() {
			t.Fatal("no decision")
		}
	})
}

func FuzzParseAnswer(f *testing.F) {
	f.Add([]byte(`{"decision":"review","points":10,"reason":"x"}`))
	f.Add([]byte(`{"points":0}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := risk.ParseAnswer(body)
		if err == nil && (a.Points < 0 || a.Points > 1000) {
			t.Fatalf("points %d accepted", a.Points)
		}
	})
}

// The documented example (docs/risk.md) and the deploy example are rules
// that parse.
func TestDocumentedExamplesParse(t *testing.T) {
	doc, err := os.ReadFile("../../docs/risk.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(doc), "## The rules document")
	_, rest, _ = strings.Cut(rest, "```json\n")
	example, _, _ := strings.Cut(rest, "```")
	if _, err := risk.Parse([]byte(example)); err != nil {
		t.Errorf("docs/risk.md's example: %v", err)
	}
	file, err := os.ReadFile("../../deploy/risk-rules.example.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := risk.Parse(file); err != nil {
		t.Errorf("deploy/risk-rules.example.json: %v", err)
	}
}
