package routing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

// Parse reads a routing policy document (docs/routing.md) strictly: an
// unknown or repeated field, a value of the wrong type or out of range is
// an error naming the field by its path. knownChannel, if not nil, says
// whether a channel is configured.
func Parse(doc []byte, knownChannel func(string) bool) (*Policy, error) {
	if len(doc) > maxDocumentBytes {
		return nil, ferr("", "the document is %d bytes; at most %d", len(doc), maxDocumentBytes)
	}
	if !utf8.Valid(doc) {
		return nil, ferr("", "the document is not valid UTF-8")
	}
	p := &Policy{}
	err := object("", doc, map[string]func(string, json.RawMessage) error{
		"name": func(path string, raw json.RawMessage) error {
			if err := str(path, raw, &p.Name); err != nil {
				return err
			}
			if len(p.Name) > 200 {
				return ferr(path, "at most 200 characters")
			}
			return nil
		},
		"algorithm": func(path string, raw json.RawMessage) error {
			var s string
			if err := str(path, raw, &s); err != nil {
				return err
			}
			for _, a := range algorithms {
				if a.s == s {
					p.Algorithm = a
					return nil
				}
			}
			return ferr(path, "%q: one of thompson, sliding_window", s)
		},
		"exploration":   func(path string, raw json.RawMessage) error { return share(path, raw, &p.Exploration) },
		"control_share": func(path string, raw json.RawMessage) error { return share(path, raw, &p.ControlShare) },
		"max_channels":  func(path string, raw json.RawMessage) error { return integer(path, raw, &p.MaxChannels) },
		"health": func(path string, raw json.RawMessage) error {
			h := &p.Health
			return object(path, raw, map[string]func(string, json.RawMessage) error{
				"half_life":      func(path string, raw json.RawMessage) error { return duration(path, raw, &h.HalfLife) },
				"window":         func(path string, raw json.RawMessage) error { return integer(path, raw, &h.Window) },
				"min_samples":    func(path string, raw json.RawMessage) error { return integer(path, raw, &h.MinSamples) },
				"prior_strength": func(path string, raw json.RawMessage) error { return number(path, raw, &h.PriorStrength) },
				"abandoned_is_failure": func(path string, raw json.RawMessage) error {
					return boolean(path, raw, &h.AbandonedIsFailure)
				},
			})
		},
		"breaker": func(path string, raw json.RawMessage) error {
			b := &p.Breaker
			return object(path, raw, map[string]func(string, json.RawMessage) error{
				"consecutive_failures": func(path string, raw json.RawMessage) error { return integer(path, raw, &b.ConsecutiveFailures) },
				"failure_rate":         func(path string, raw json.RawMessage) error { return share(path, raw, &b.FailureRate) },
				"min_requests":         func(path string, raw json.RawMessage) error { return integer(path, raw, &b.MinRequests) },
				"window":               func(path string, raw json.RawMessage) error { return duration(path, raw, &b.Window) },
				"open_for":             func(path string, raw json.RawMessage) error { return duration(path, raw, &b.OpenFor) },
				"max_open_for":         func(path string, raw json.RawMessage) error { return duration(path, raw, &b.MaxOpenFor) },
				"probe_share":          func(path string, raw json.RawMessage) error { return share(path, raw, &b.ProbeShare) },
				"close_after":          func(path string, raw json.RawMessage) error { return integer(path, raw, &b.CloseAfter) },
				"min_success_rate":     func(path string, raw json.RawMessage) error { return share(path, raw, &b.MinSuccessRate) },
				"min_outcomes":         func(path string, raw json.RawMessage) error { return integer(path, raw, &b.MinOutcomes) },
			})
		},
		"segments": func(path string, raw json.RawMessage) error {
			return array(path, raw, maxSegments, func(path string, raw json.RawMessage) error {
				s, err := parseSegment(path, raw)
				if err == nil {
					p.Segments = append(p.Segments, s)
				}
				return err
			})
		},
	}, "segments")
	if err != nil {
		return nil, err
	}
	if err := p.Validate(knownChannel); err != nil {
		return nil, err
	}
	return p, nil
}

func parseSegment(path string, raw json.RawMessage) (Segment, error) {
	var s Segment
	err := object(path, raw, map[string]func(string, json.RawMessage) error{
		"name": func(path string, raw json.RawMessage) error { return str(path, raw, &s.Name) },
		"split": func(path string, raw json.RawMessage) error {
			var v string
			if err := str(path, raw, &v); err != nil {
				return err
			}
			for _, sp := range splits {
				if sp.s == v {
					s.Split = sp
					return nil
				}
			}
			return ferr(path, "%q: one of weighted, priority, adaptive", v)
		},
		"match": func(path string, raw json.RawMessage) error {
			m := &s.Match
			return object(path, raw, map[string]func(string, json.RawMessage) error{
				"countries":  func(path string, raw json.RawMessage) error { return strList(path, raw, &m.Countries) },
				"currencies": func(path string, raw json.RawMessage) error { return strList(path, raw, &m.Currencies) },
				"methods":    func(path string, raw json.RawMessage) error { return strList(path, raw, &m.Methods) },
				"banks":      func(path string, raw json.RawMessage) error { return strList(path, raw, &m.Banks) },
				"amount": func(path string, raw json.RawMessage) error {
					m.Amount = &AmountBand{}
					return object(path, raw, map[string]func(string, json.RawMessage) error{
						"min": func(path string, raw json.RawMessage) error { return int64Field(path, raw, &m.Amount.Min) },
						"max": func(path string, raw json.RawMessage) error { return int64Field(path, raw, &m.Amount.Max) },
					})
				},
			})
		},
		"candidates": func(path string, raw json.RawMessage) error {
			return array(path, raw, maxCandidates, func(path string, raw json.RawMessage) error {
				var c Candidate
				err := object(path, raw, map[string]func(string, json.RawMessage) error{
					"channel":  func(path string, raw json.RawMessage) error { return str(path, raw, &c.Channel) },
					"weight":   func(path string, raw json.RawMessage) error { return integer(path, raw, &c.Weight) },
					"priority": func(path string, raw json.RawMessage) error { return integer(path, raw, &c.Priority) },
				}, "channel")
				if err == nil {
					s.Candidates = append(s.Candidates, c)
				}
				return err
			})
		},
	}, "name", "candidates")
	return s, err
}

// object reads a JSON object whose members are handled by fields; a
// member not in fields, a repeated member or a missing required one is
// an error naming it.
func object(path string, raw []byte, fields map[string]func(string, json.RawMessage) error, required ...string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return ferr(path, "not valid JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return ferr(path, "must be an object, not %s", kind(raw))
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ferr(path, "not valid JSON: %v", err)
		}
		key := tok.(string) // object keys are strings
		fp := key
		if path != "" {
			fp = path + "." + key
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return ferr(fp, "not valid JSON: %v", err)
		}
		if seen[key] {
			return ferr(fp, "given twice")
		}
		seen[key] = true
		f, ok := fields[key]
		if !ok {
			return ferr(fp, "unknown field")
		}
		if err := f(fp, val); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return ferr(path, "not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return ferr(path, "data after the end of the object")
	}
	for _, r := range required {
		if !seen[r] {
			fp := r
			if path != "" {
				fp = path + "." + r
			}
			return ferr(fp, "required")
		}
	}
	return nil
}

func array(path string, raw json.RawMessage, limit int, each func(string, json.RawMessage) error) error {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || raw[0] != '[' {
		return ferr(path, "must be an array, not %s", kind(raw))
	}
	if len(items) > limit {
		return ferr(path, "%d entries; at most %d", len(items), limit)
	}
	for i, it := range items {
		if err := each(fmt.Sprintf("%s[%d]", path, i), it); err != nil {
			return err
		}
	}
	return nil
}

func str(path string, raw json.RawMessage, dst *string) error {
	if err := json.Unmarshal(raw, dst); err != nil || raw[0] != '"' {
		return ferr(path, "must be a string, not %s", kind(raw))
	}
	return nil
}

func strList(path string, raw json.RawMessage, dst *[]string) error {
	var out []string
	err := array(path, raw, maxListEntries, func(p string, r json.RawMessage) error {
		var s string
		if err := str(p, r, &s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	*dst = out
	return err
}

func boolean(path string, raw json.RawMessage, dst *bool) error {
	if err := json.Unmarshal(raw, dst); err != nil || (raw[0] != 't' && raw[0] != 'f') {
		return ferr(path, "must be true or false, not %s", kind(raw))
	}
	return nil
}

func number(path string, raw json.RawMessage, dst *float64) error {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil || !isNumber(raw) {
		return ferr(path, "must be a number, not %s", kind(raw))
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) {
		return ferr(path, "%s is out of range", n)
	}
	*dst = f
	return nil
}

func share(path string, raw json.RawMessage, dst *float64) error {
	if err := number(path, raw, dst); err != nil {
		return err
	}
	if *dst < 0 || *dst > 1 {
		return ferr(path, "%v: a share is from 0 to 1", *dst)
	}
	return nil
}

func int64Field(path string, raw json.RawMessage, dst *int64) error {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil || !isNumber(raw) {
		return ferr(path, "must be an integer, not %s", kind(raw))
	}
	v, err := n.Int64()
	if err != nil {
		return ferr(path, "%s: must be an integer (amounts are minor units)", n)
	}
	*dst = v
	return nil
}

func integer(path string, raw json.RawMessage, dst *int) error {
	var v int64
	if err := int64Field(path, raw, &v); err != nil {
		return err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return ferr(path, "%d is out of range", v)
	}
	*dst = int(v)
	return nil
}

func duration(path string, raw json.RawMessage, dst *time.Duration) error {
	var s string
	if err := str(path, raw, &s); err != nil {
		return ferr(path, "must be a duration string such as \"30s\" or \"15m\", not %s", kind(raw))
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return ferr(path, "%q: not a duration (such as \"30s\" or \"15m\")", s)
	}
	*dst = d
	return nil
}

func isNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'))
}

func kind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// Document is a policy's JSON form as Parse reads it, every knob
// written out: `paygate routing show` prints it, and Parse(Encode(p))
// gives p back.
func (p *Policy) Document() ([]byte, error) {
	type amount struct {
		Min int64 `json:"min"`
		Max int64 `json:"max,omitempty"`
	}
	type match struct {
		Countries  []string `json:"countries,omitempty"`
		Currencies []string `json:"currencies,omitempty"`
		Methods    []string `json:"methods,omitempty"`
		Banks      []string `json:"banks,omitempty"`
		Amount     *amount  `json:"amount,omitempty"`
	}
	type cand struct {
		Channel  string `json:"channel"`
		Weight   int    `json:"weight"`
		Priority int    `json:"priority,omitempty"`
	}
	type seg struct {
		Name       string `json:"name"`
		Match      match  `json:"match"`
		Split      string `json:"split"`
		Candidates []cand `json:"candidates"`
	}
	type health struct {
		HalfLife           string  `json:"half_life"`
		Window             int     `json:"window"`
		MinSamples         int     `json:"min_samples"`
		PriorStrength      float64 `json:"prior_strength"`
		AbandonedIsFailure bool    `json:"abandoned_is_failure"`
	}
	type breaker struct {
		ConsecutiveFailures int     `json:"consecutive_failures"`
		FailureRate         float64 `json:"failure_rate"`
		MinRequests         int     `json:"min_requests"`
		Window              string  `json:"window"`
		OpenFor             string  `json:"open_for"`
		MaxOpenFor          string  `json:"max_open_for"`
		ProbeShare          float64 `json:"probe_share"`
		CloseAfter          int     `json:"close_after"`
		MinSuccessRate      float64 `json:"min_success_rate"`
		MinOutcomes         int     `json:"min_outcomes"`
	}
	type doc struct {
		Name         string  `json:"name,omitempty"`
		Algorithm    string  `json:"algorithm"`
		Exploration  float64 `json:"exploration"`
		ControlShare float64 `json:"control_share"`
		MaxChannels  int     `json:"max_channels"`
		Health       health  `json:"health"`
		Breaker      breaker `json:"breaker"`
		Segments     []seg   `json:"segments"`
	}
	d := doc{Name: p.Name, Algorithm: p.Algorithm.s, Exploration: p.Exploration, ControlShare: p.ControlShare, MaxChannels: p.MaxChannels,
		Health: health{HalfLife: p.Health.HalfLife.String(), Window: p.Health.Window, MinSamples: p.Health.MinSamples,
			PriorStrength: p.Health.PriorStrength, AbandonedIsFailure: p.Health.AbandonedIsFailure},
		Breaker: breaker{ConsecutiveFailures: p.Breaker.ConsecutiveFailures, FailureRate: p.Breaker.FailureRate,
			MinRequests: p.Breaker.MinRequests, Window: p.Breaker.Window.String(), OpenFor: p.Breaker.OpenFor.String(),
			MaxOpenFor: p.Breaker.MaxOpenFor.String(), ProbeShare: p.Breaker.ProbeShare, CloseAfter: p.Breaker.CloseAfter,
			MinSuccessRate: p.Breaker.MinSuccessRate, MinOutcomes: p.Breaker.MinOutcomes}}
	for _, s := range p.Segments {
		sg := seg{Name: s.Name, Split: s.Split.s, Match: match{Countries: s.Match.Countries, Currencies: s.Match.Currencies,
			Methods: s.Match.Methods, Banks: s.Match.Banks}}
		if s.Match.Amount != nil {
			sg.Match.Amount = &amount{Min: s.Match.Amount.Min, Max: s.Match.Amount.Max}
		}
		for _, c := range s.Candidates {
			sg.Candidates = append(sg.Candidates, cand(c))
		}
		d.Segments = append(d.Segments, sg)
	}
	if d.Algorithm == "" {
		return nil, errors.New("routing policy: not validated")
	}
	return json.MarshalIndent(d, "", "  ")
}
