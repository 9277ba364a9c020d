package routing

import (
	"encoding/json"
	"math"
	"time"
)

// evidence is a decision's stored form (the attempts.routing column;
// `paygate order` shows it, the backtest reads it).
type evidence struct {
	PolicyVersion int64            `json:"policy_version"`
	Segment       string           `json:"segment"`
	Split         string           `json:"split,omitempty"`
	Algorithm     string           `json:"algorithm,omitempty"`
	Request       evidenceRequest  `json:"request"`
	RequestID     string           `json:"request_id,omitempty"`
	Candidates    []evidenceScored `json:"candidates"`
	Chosen        string           `json:"chosen"`
	Reason        string           `json:"reason"`
	Explore       bool             `json:"explore,omitempty"`
	Propensity    float64          `json:"propensity"`
	Failover      []string         `json:"failover,omitempty"`
	Hop           int              `json:"hop,omitempty"`
	Previous      string           `json:"previous,omitempty"`
	Tried         []string         `json:"tried,omitempty"`
	At            time.Time        `json:"at"`
}

type evidenceRequest struct {
	Country  string `json:"country,omitempty"`
	Currency string `json:"currency,omitempty"`
	Method   string `json:"method,omitempty"`
	Bank     string `json:"bank,omitempty"`
	Amount   int64  `json:"amount"`
	Channel  string `json:"channel,omitempty"`
}

type evidenceScored struct {
	Channel     string   `json:"channel"`
	Weight      int      `json:"weight,omitempty"`
	Priority    int      `json:"priority,omitempty"`
	SuccessRate *float64 `json:"success_rate,omitempty"`
	Resolved    int      `json:"resolved"`
	Score       float64  `json:"score,omitempty"`
	Breaker     string   `json:"breaker"`
	Propensity  float64  `json:"propensity"`
	Excluded    string   `json:"excluded,omitempty"`
}

// round keeps stored shares readable: 4 decimals.
func round(f float64) float64 { return math.Round(f*1e4) / 1e4 }

// MarshalJSON is the decision as stored with its attempt.
func (d Decision) MarshalJSON() ([]byte, error) {
	e := evidence{PolicyVersion: d.PolicyVersion, Segment: d.Segment, Split: d.Split.s, Algorithm: d.Algorithm.s,
		Request:   evidenceRequest(d.Request),
		RequestID: d.RequestID, Chosen: d.Chosen, Reason: d.Reason.s, Explore: d.Explore, Propensity: round(d.Propensity),
		Failover: d.Failover, Hop: d.Hop, Previous: d.Previous, Tried: d.Tried, At: d.At.UTC()}
	for _, c := range d.Candidates {
		s := evidenceScored{Channel: c.Channel, Weight: c.Weight, Priority: c.Priority, Resolved: c.Resolved, Score: round(c.Score),
			Breaker: c.Breaker.s, Propensity: round(c.Propensity), Excluded: c.Excluded}
		if c.SuccessRate >= 0 {
			r := round(c.SuccessRate)
			s.SuccessRate = &r
		}
		e.Candidates = append(e.Candidates, s)
	}
	return json.Marshal(e)
}

// UnmarshalJSON reads a stored decision.
func (d *Decision) UnmarshalJSON(b []byte) error {
	var e evidence
	if err := json.Unmarshal(b, &e); err != nil {
		return err
	}
	reason, err := ParseReason(e.Reason)
	if err != nil {
		return err
	}
	*d = Decision{PolicyVersion: e.PolicyVersion, Segment: e.Segment, Request: Request(e.Request), RequestID: e.RequestID,
		Chosen: e.Chosen, Reason: reason, Explore: e.Explore, Propensity: e.Propensity, Failover: e.Failover, Hop: e.Hop,
		Previous: e.Previous, Tried: e.Tried, At: e.At}
	for _, s := range splits {
		if s.s == e.Split {
			d.Split = s
		}
	}
	for _, a := range algorithms {
		if a.s == e.Algorithm {
			d.Algorithm = a
		}
	}
	for _, s := range e.Candidates {
		c := Scored{Channel: s.Channel, Weight: s.Weight, Priority: s.Priority, SuccessRate: -1, Resolved: s.Resolved, Score: s.Score,
			Propensity: s.Propensity, Excluded: s.Excluded}
		if s.SuccessRate != nil {
			c.SuccessRate = *s.SuccessRate
		}
		for _, st := range []BreakerState{BreakerClosed, BreakerOpen, BreakerHalfOpen} {
			if st.s == s.Breaker {
				c.Breaker = st
			}
		}
		d.Candidates = append(d.Candidates, c)
	}
	return nil
}

// Key is the feedback's Kafka key: its arm, so that every process reads
// one arm's feedback in one order.
func (f Feedback) Key() string { return f.Channel + "/" + f.Segment }
