package routing_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain/routing"
)

const fullPolicy = `{
  "name": "India split",
  "algorithm": "thompson",
  "exploration": 0.1,
  "control_share": 0.05,
  "max_channels": 2,
  "health": {"half_life": "20m", "window": 300, "min_samples": 40, "prior_strength": 8, "abandoned_is_failure": true},
  "breaker": {"consecutive_failures": 4, "failure_rate": 0.6, "min_requests": 10, "window": "30s", "open_for": "15s",
              "max_open_for": "5m", "probe_share": 0.05, "close_after": 3, "min_success_rate": 0.2, "min_outcomes": 60},
  "segments": [
    {"name": "in-hdfc-small", "split": "adaptive",
     "match": {"countries": ["IN"], "currencies": ["INR"], "methods": ["netbanking"], "banks": ["HDFC", "ICICI"], "amount": {"min": 100, "max": 500000}},
     "candidates": [{"channel": "razorpay", "weight": 70}, {"channel": "payu", "weight": 30, "priority": 1}]},
    {"name": "in-any", "split": "priority", "match": {"countries": ["IN"]},
     "candidates": [{"channel": "payu", "priority": 0}, {"channel": "razorpay", "priority": 1}]},
    {"name": "default", "match": {}, "candidates": [{"channel": "sim", "weight": 1}]}
  ]
}`

func known(chs ...string) func(string) bool {
	return func(c string) bool {
		for _, k := range chs {
			if k == c {
				return true
			}
		}
		return false
	}
}

func TestParseFullPolicy(t *testing.T) {
	p, err := routing.Parse([]byte(fullPolicy), known("razorpay", "payu", "sim"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "India split" || p.Algorithm != routing.Thompson || p.Exploration != 0.1 || p.ControlShare != 0.05 || p.MaxChannels != 2 {
		t.Fatalf("top-level knobs: %+v", p)
	}
	if h := p.Health; h.HalfLife != 20*time.Minute || h.Window != 300 || h.MinSamples != 40 || h.PriorStrength != 8 || !h.AbandonedIsFailure {
		t.Fatalf("health: %+v", h)
	}
	if b := p.Breaker; b.ConsecutiveFailures != 4 || b.FailureRate != 0.6 || b.MinRequests != 10 || b.Window != 30*time.Second ||
		b.OpenFor != 15*time.Second || b.MaxOpenFor != 5*time.Minute || b.ProbeShare != 0.05 || b.CloseAfter != 3 ||
		b.MinSuccessRate != 0.2 || b.MinOutcomes != 60 {
		t.Fatalf("breaker: %+v", b)
	}
	s := p.Segments[0]
	if s.Name != "in-hdfc-small" || s.Split != routing.SplitAdaptive || len(s.Candidates) != 2 || s.Candidates[1] != (routing.Candidate{Channel: "payu", Weight: 30, Priority: 1}) ||
		s.Match.Amount == nil || *s.Match.Amount != (routing.AmountBand{Min: 100, Max: 500000}) || len(s.Match.Banks) != 2 {
		t.Fatalf("segment 0: %+v", s)
	}
	if p.Segments[2].Split != routing.SplitWeighted {
		t.Fatalf("the default split is weighted, got %v", p.Segments[2].Split)
	}
	// The document form parses back to the same policy.
	doc, err := p.Document()
	if err != nil {
		t.Fatal(err)
	}
	again, err := routing.Parse(doc, nil)
	if err != nil {
		t.Fatalf("Parse(Document()): %v\n%s", err, doc)
	}
	doc2, _ := again.Document()
	if string(doc) != string(doc2) {
		t.Fatalf("the document does not round-trip:\n%s\n---\n%s", doc, doc2)
	}
}

func TestParseDefaults(t *testing.T) {
	p, err := routing.Parse([]byte(`{"segments":[{"name":"default","match":{},"candidates":[{"channel":"sim","weight":1}]}]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Algorithm != routing.Thompson || p.Exploration != 0 || p.MaxChannels != routing.DefaultMaxChannels ||
		p.Health.HalfLife != routing.DefaultHalfLife || p.Health.Window != routing.DefaultWindow ||
		p.Breaker.ConsecutiveFailures != routing.DefaultConsecutive || p.Breaker.OpenFor != routing.DefaultOpenFor {
		t.Fatalf("defaults not filled: %+v", p)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	seg := func(s string) string {
		return `{"segments":[` + s + `,{"name":"default","match":{},"candidates":[{"channel":"sim","weight":1}]}]}`
	}
	tests := []struct {
		name, doc, path, msg string
	}{
		{"not json", `{`, "", "not valid JSON"},
		{"not an object", `[]`, "", "must be an object"},
		{"unknown top field", `{"segmnts":[]}`, "segmnts", "unknown field"},
		{"repeated field", `{"name":"a","name":"b","segments":[]}`, "name", "given twice"},
		{"segments missing", `{"name":"x"}`, "segments", "required"},
		{"no segments", `{"segments":[]}`, "segments", "at least one segment"},
		{"segment not an object", `{"segments":[1]}`, "segments[0]", "must be an object"},
		{"segment name missing", seg(`{"match":{},"candidates":[]}`), "segments[0].name", "required"},
		{"bad segment name", seg(`{"name":"In Card","match":{"countries":["IN"]},"candidates":[{"channel":"sim","weight":1}]}`), "segments[0].name", "1-64 of"},
		{"duplicate segment name", `{"segments":[{"name":"a","match":{"countries":["IN"]},"candidates":[{"channel":"sim","weight":1}]},{"name":"a","match":{},"candidates":[{"channel":"sim","weight":1}]}]}`, "segments[1].name", "also the name of segments[0]"},
		{"unknown match field", seg(`{"name":"a","match":{"country":["IN"]},"candidates":[{"channel":"sim","weight":1}]}`), "segments[0].match.country", "unknown field"},
		{"bad country", seg(`{"name":"a","match":{"countries":["in"]},"candidates":[{"channel":"sim","weight":1}]}`), "segments[0].match.countries[0]", "ISO 3166"},
		{"repeated country", seg(`{"name":"a","match":{"countries":["IN","IN"]},"candidates":[{"channel":"sim","weight":1}]}`), "segments[0].match.countries[1]", "listed twice"},
		{"bad currency", seg(`{"name":"a","match":{"currencies":["inr"]},"candidates":[{"channel":"sim","weight":1}]}`), "segments[0].match.currencies[0]", "ISO 4217"},
		{"bad bank", seg(`{"name":"a","match":{"banks":["HD FC"]},"candidates":[{"channel":"sim","weight":1}]}`), "segments[0].match.banks[0]", "1-32 of"},
		{"countries not a list", seg(`{"name":"a","match":{"countries":"IN"},"candidates":[{"channel":"sim","weight":1}]}`), "segments[0].match.countries", "must be an array"},
		{"amount without currency", seg(`{"name":"a","match":{"amount":{"min":1}},"candidates":[{"channel":"sim","weight":1}]}`), "segments[0].match.amount", "exactly one currency"},
		{"amount with two currencies", seg(`{"name":"a","match":{"currencies":["USD","EUR"],"amount":{"min":1}},"candidates":[{"channel":"sim","weight":1}]}`), "segments[0].match.amount", "exactly one currency"},
		{"negative min", seg(`{"name":"a","match":{"currencies":["USD"],"amount":{"min":-1}},"candidates":[{"channel":"sim","weight":1}]}`), "segments[0].match.amount.min", "not negative"},
		{"max below min", seg(`{"name":"a","match":{"currencies":["USD"],"amount":{"min":10,"max":5}},"candidates":[{"channel":"sim","weight":1}]}`), "segments[0].match.amount.max", "at least min"},
		{"fractional amount", seg(`{"name":"a","match":{"currencies":["USD"],"amount":{"min":1.5}},"candidates":[{"channel":"sim","weight":1}]}`), "segments[0].match.amount.min", "minor units"},
		{"band that takes all", seg(`{"name":"a","match":{"currencies":["USD"],"amount":{"min":0}},"candidates":[{"channel":"sim","weight":1}]}`), "segments[0].match.amount", "leave amount out"},
		{"no candidates", seg(`{"name":"a","match":{"countries":["IN"]},"candidates":[]}`), "segments[0].candidates", "at least one candidate"},
		{"candidate without channel", seg(`{"name":"a","match":{"countries":["IN"]},"candidates":[{"weight":1}]}`), "segments[0].candidates[0].channel", "required"},
		{"unknown channel", seg(`{"name":"a","match":{"countries":["IN"]},"candidates":[{"channel":"nope","weight":1}]}`), "segments[0].candidates[0].channel", "not a configured channel"},
		{"repeated channel", seg(`{"name":"a","match":{"countries":["IN"]},"candidates":[{"channel":"sim","weight":1},{"channel":"sim","weight":2}]}`), "segments[0].candidates[1].channel", "listed twice"},
		{"negative weight", seg(`{"name":"a","match":{"countries":["IN"]},"candidates":[{"channel":"sim","weight":-1}]}`), "segments[0].candidates[0].weight", "0 to 1000000"},
		{"weight a string", seg(`{"name":"a","match":{"countries":["IN"]},"candidates":[{"channel":"sim","weight":"1"}]}`), "segments[0].candidates[0].weight", "must be an integer"},
		{"all weights zero", seg(`{"name":"a","match":{"countries":["IN"]},"candidates":[{"channel":"sim"}]}`), "segments[0].candidates", "positive weight"},
		{"bad split", seg(`{"name":"a","split":"random","match":{"countries":["IN"]},"candidates":[{"channel":"sim","weight":1}]}`), "segments[0].split", "one of weighted"},
		{"catch-all not last", `{"segments":[{"name":"a","match":{},"candidates":[{"channel":"sim","weight":1}]},{"name":"b","match":{"countries":["IN"]},"candidates":[{"channel":"sim","weight":1}]}]}`, "segments[0].match", "put the catch-all last"},
		{"no catch-all", `{"segments":[{"name":"a","match":{"countries":["IN"]},"candidates":[{"channel":"sim","weight":1}]}]}`, "segments[0].match", "must be a catch-all"},
		{"exploration too high", `{"exploration":0.5,"segments":[{"name":"default","match":{},"candidates":[{"channel":"sim","weight":1}]}]}`, "exploration", "0 to 0.2"},
		{"exploration above 1", `{"exploration":1.5,"segments":[]}`, "exploration", "a share is from 0 to 1"},
		{"bad algorithm", `{"algorithm":"greedy","segments":[]}`, "algorithm", "one of thompson"},
		{"bad half life", `{"health":{"half_life":"soon"},"segments":[]}`, "health.half_life", "not a duration"},
		{"half life a number", `{"health":{"half_life":60},"segments":[]}`, "health.half_life", "duration string"},
		{"window too big", seg(`{"name":"a","match":{"countries":["IN"]},"candidates":[{"channel":"sim","weight":1}]}`)[:len(seg(`{"name":"a","match":{"countries":["IN"]},"candidates":[{"channel":"sim","weight":1}]}`))-1] + `,"health":{"window":99999}}`, "health.window", "10 to 2000"},
		{"unknown breaker field", `{"breaker":{"threshold":1},"segments":[]}`, "breaker.threshold", "unknown field"},
		{"max open below open", seg(`{"name":"a","match":{"countries":["IN"]},"candidates":[{"channel":"sim","weight":1}]}`)[:len(seg(`{"name":"a","match":{"countries":["IN"]},"candidates":[{"channel":"sim","weight":1}]}`))-1] + `,"breaker":{"open_for":"1m","max_open_for":"30s"}}`, "breaker.max_open_for", "from open_for"},
		{"trailing data", `{"segments":[]} x`, "", "data after the end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := routing.Parse([]byte(tt.doc), known("sim"))
			var fe *routing.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse error %v is not a FieldError", err)
			}
			if fe.Path != tt.path || !strings.Contains(fe.Msg, tt.msg) {
				t.Fatalf("Parse error %q: want path %q and %q in the message", err, tt.path, tt.msg)
			}
		})
	}
}

func TestParseRefusesInvalidUTF8AndHugeDocuments(t *testing.T) {
	if _, err := routing.Parse([]byte("{\"name\":\"\xff\",\"segments\":[]}"), nil); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("invalid UTF-8: %v", err)
	}
	big := make([]byte, 2<<20)
	if _, err := routing.Parse(big, nil); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("2 MiB document: %v", err)
	}
}

func TestSegmentMatching(t *testing.T) {
	p, err := routing.Parse([]byte(fullPolicy), nil)
	if err != nil {
		t.Fatal(err)
	}
	req := func(country, currency, method, bank string, amount int64) routing.Request {
		return routing.Request{Country: country, Currency: currency, Method: method, Bank: bank, Amount: amount}
	}
	tests := []struct {
		name string
		r    routing.Request
		want string
	}{
		{"every field matches", req("IN", "INR", "netbanking", "HDFC", 1000), "in-hdfc-small"},
		{"second bank", req("IN", "INR", "netbanking", "ICICI", 1000), "in-hdfc-small"},
		{"amount at the lower bound", req("IN", "INR", "netbanking", "HDFC", 100), "in-hdfc-small"},
		{"amount at the upper bound", req("IN", "INR", "netbanking", "HDFC", 500000), "in-hdfc-small"},
		{"amount below the band", req("IN", "INR", "netbanking", "HDFC", 99), "in-any"},
		{"amount above the band", req("IN", "INR", "netbanking", "HDFC", 500001), "in-any"},
		{"other bank", req("IN", "INR", "netbanking", "SBI", 1000), "in-any"},
		{"no bank given", req("IN", "INR", "netbanking", "", 1000), "in-any"},
		{"other method", req("IN", "INR", "card", "HDFC", 1000), "in-any"},
		{"bank codes are case-sensitive", req("IN", "INR", "netbanking", "hdfc", 1000), "in-any"},
		{"other country", req("US", "USD", "card", "", 1000), "default"},
	}
	for _, tt := range tests {
		if got := p.Segment(tt.r); got == nil || got.Name != tt.want {
			t.Errorf("%s: segment %v, want %s", tt.name, got, tt.want)
		}
	}
	open := routing.Match{Currencies: []string{"INR"}, Amount: &routing.AmountBand{Min: 500}}
	if !open.Matches(req("IN", "INR", "", "", 1<<40)) || open.Matches(req("IN", "INR", "", "", 499)) {
		t.Error("a band without max takes every amount from min")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(fullPolicy))
	f.Add([]byte(`{"segments":[{"name":"default","match":{},"candidates":[{"channel":"sim","weight":1}]}]}`))
	f.Add([]byte(`{"segments":[{"name":"a","match":{"currencies":["USD"],"amount":{"min":1,"max":2}},"candidates":[{"channel":"x","weight":0,"priority":3}],"split":"priority"},{"name":"b","match":{},"candidates":[{"channel":"y","weight":1}]}]}`))
	f.Add([]byte(`{"health":{"half_life":"1s"},"breaker":{"window":"1h"},"segments":[]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := routing.Parse(doc, nil)
		if err != nil {
			var fe *routing.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			return
		}
		// A policy that parses has a catch-all last and renders to a
		// document that parses to the same policy.
		if !p.Segments[len(p.Segments)-1].Match.IsCatchAll() {
			t.Fatal("parsed a policy without a catch-all last")
		}
		out, err := p.Document()
		if err != nil {
			t.Fatal(err)
		}
		again, err := routing.Parse(out, nil)
		if err != nil {
			t.Fatalf("Parse(Document()) = %v\n%s", err, out)
		}
		out2, _ := again.Document()
		if string(out) != string(out2) {
			t.Fatalf("round trip differs:\n%s\n%s", out, out2)
		}
	})
}
