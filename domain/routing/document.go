package routing

import (
	"encoding/json"
	"errors"

	"github.com/paygate/paygate/domain/jsondoc"
)

// Parse reads a routing policy document (docs/routing.md) strictly: an
// unknown or repeated field, a value of the wrong type or out of range is
// an error naming the field by its path. knownChannel, if not nil, says
// whether a channel is configured.
func Parse(doc []byte, knownChannel func(string) bool) (*Policy, error) {
	p, err := parse(doc, knownChannel)
	return p, jsondoc.Named(err, "routing policy")
}

func parse(doc []byte, knownChannel func(string) bool) (*Policy, error) {
	if err := jsondoc.Check(doc, maxDocumentBytes); err != nil {
		return nil, err
	}
	p := &Policy{}
	err := object("", doc, jsondoc.Fields{
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

// The strict reading of the document's JSON is shared with the other
// operator documents (domain/jsondoc).
var (
	object     = jsondoc.Object
	array      = jsondoc.Array
	str        = jsondoc.String
	boolean    = jsondoc.Bool
	number     = jsondoc.Number
	share      = jsondoc.Share
	int64Field = jsondoc.Int64
	integer    = jsondoc.Int
	duration   = jsondoc.Duration
)

func strList(path string, raw json.RawMessage, dst *[]string) error {
	return jsondoc.Strings(path, raw, maxListEntries, dst)
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
