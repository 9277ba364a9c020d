package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"
)

// Behaviour is how one merchant's payments behave, set at runtime over
// HTTP (POST /control/merchants/{merchant_id}) or with SetBehaviour: the
// simulator stands for a PSP whose acceptance or availability changes, so
// that routing's switching and failover can be watched. A merchant
// without one behaves as ServerConfig says.
type Behaviour struct {
	// DeclineRate is the share of new payments the bank declines whatever
	// the buyer chose (it replaces ServerConfig.DeclineRate for the
	// merchant).
	DeclineRate float64 `json:"decline_rate"`
	// InitiateErrorRate is the share of payment creations answered 503
	// without creating anything.
	InitiateErrorRate float64 `json:"initiate_error_rate"`
	// InitiateTimeoutRate is the share of payment creations that create
	// the payment and then stall and answer 504: the caller does not know
	// the payment exists.
	InitiateTimeoutRate float64 `json:"initiate_timeout_rate"`
	// LatencyMS is added to every API call of the merchant.
	LatencyMS int `json:"latency_ms"`
}

// Latency is LatencyMS as a duration.
func (b Behaviour) Latency() time.Duration { return time.Duration(b.LatencyMS) * time.Millisecond }

// Validate reports the first field out of range.
func (b Behaviour) Validate() error {
	for _, r := range []struct {
		name string
		v    float64
	}{{"decline_rate", b.DeclineRate}, {"initiate_error_rate", b.InitiateErrorRate}, {"initiate_timeout_rate", b.InitiateTimeoutRate}} {
		if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
			return fmt.Errorf("%s %v: a rate from 0 to 1", r.name, r.v)
		}
	}
	if b.LatencyMS < 0 || b.LatencyMS > 600_000 {
		return fmt.Errorf("latency_ms %d: 0 to 600000", b.LatencyMS)
	}
	return nil
}

// SetBehaviour sets a merchant's behaviour from now on.
func (s *Server) SetBehaviour(merchant string, b Behaviour) error {
	if _, ok := s.cfg.Merchants[merchant]; !ok {
		return fmt.Errorf("sim: no merchant %q", merchant)
	}
	if err := b.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behaviours[merchant] = b
	return nil
}

// Behaviour is a merchant's behaviour now: its runtime one, or what
// ServerConfig gives every merchant.
func (s *Server) Behaviour(merchant string) Behaviour {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.behaviours[merchant]; ok {
		return b
	}
	return Behaviour{DeclineRate: s.cfg.DeclineRate}
}

// getBehaviour is GET /control/merchants/{merchant}.
func (s *Server) getBehaviour(w http.ResponseWriter, r *http.Request) {
	m := r.PathValue("merchant")
	if _, ok := s.cfg.Merchants[m]; !ok {
		writeJSON(w, http.StatusNotFound, errorJSON{Error: "not_found", Message: "no merchant " + m})
		return
	}
	writeJSON(w, http.StatusOK, s.Behaviour(m))
}

// setBehaviour is POST /control/merchants/{merchant}: the fields given
// replace the merchant's current behaviour, the others stay.
func (s *Server) setBehaviour(w http.ResponseWriter, r *http.Request) {
	m := r.PathValue("merchant")
	if _, ok := s.cfg.Merchants[m]; !ok {
		writeJSON(w, http.StatusNotFound, errorJSON{Error: "not_found", Message: "no merchant " + m})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, errorJSON{Error: "too_large", Message: "a behaviour is a small JSON object"})
		return
	}
	b := s.Behaviour(m)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		writeJSON(w, http.StatusBadRequest, errorJSON{Error: "malformed_json",
			Message: "want {\"decline_rate\": 0-1, \"initiate_error_rate\": 0-1, \"initiate_timeout_rate\": 0-1, \"latency_ms\": N}: " + err.Error()})
		return
	}
	if err := s.SetBehaviour(m, b); err != nil {
		writeJSON(w, http.StatusBadRequest, badRequest(err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, b)
}
