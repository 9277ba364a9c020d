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

// ledgerPaymentJSON and ledgerRefundJSON are the books as
// GET /control/ledger answers them (amounts in minor units).
type ledgerPaymentJSON struct {
	ID          string    `json:"id"`
	MerchantID  string    `json:"merchant_id"`
	MerchantRef string    `json:"merchant_ref"`
	Status      string    `json:"status"`
	Amount      int64     `json:"amount"`
	PaidAmount  int64     `json:"paid_amount"`
	Currency    string    `json:"currency"`
	CreatedAt   time.Time `json:"created_at"`
}

type ledgerRefundJSON struct {
	ID          string `json:"id"`
	MerchantID  string `json:"merchant_id"`
	RefundRef   string `json:"refund_ref"`
	MerchantRef string `json:"merchant_ref"`
	PaymentID   string `json:"payment_id"`
	Status      string `json:"status"`
	Amount      int64  `json:"amount"`
	Currency    string `json:"currency"`
}

// getLedger is GET /control/ledger: a copy of the books (Ledger), for a
// test that runs the simulator in a process of its own to compare them
// with the gateway's.
func (s *Server) getLedger(w http.ResponseWriter, _ *http.Request) {
	l := s.Ledger()
	out := struct {
		Payments []ledgerPaymentJSON `json:"payments"`
		Refunds  []ledgerRefundJSON  `json:"refunds"`
	}{Payments: []ledgerPaymentJSON{}, Refunds: []ledgerRefundJSON{}}
	for _, p := range l.Payments {
		out.Payments = append(out.Payments, ledgerPaymentJSON{ID: p.ID, MerchantID: p.MerchantID, MerchantRef: p.MerchantRef, Status: p.Status,
			Amount: p.Amount.Minor(), PaidAmount: p.PaidAmount.Minor(), Currency: p.Amount.Currency().Code(), CreatedAt: p.CreatedAt})
	}
	for _, r := range l.Refunds {
		out.Refunds = append(out.Refunds, ledgerRefundJSON{ID: r.ID, MerchantID: r.MerchantID, RefundRef: r.RefundRef, MerchantRef: r.MerchantRef,
			PaymentID: r.PaymentID, Status: r.Status, Amount: r.Amount.Minor(), Currency: r.Amount.Currency().Code()})
	}
	writeJSON(w, http.StatusOK, out)
}
