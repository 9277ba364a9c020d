package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Webhook is an async webhook ready to send: where the simulator would
// POST it, its headers (signed) and its bytes. Send it as many times as
// you like: a PSP's duplicates carry the same bytes.
type Webhook struct {
	URL    string
	Header http.Header
	Body   []byte
}

// Request builds the POST that delivers w.
func (w Webhook) Request(ctx context.Context) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(w.Body))
	if err != nil {
		return nil, err
	}
	for k, v := range w.Header {
		req.Header[k] = v
	}
	return req, nil
}

// WebhookEvent is what a webhook says about one payment.
type WebhookEvent struct {
	// EventID is the PSP's event id. Default: a fresh evt_… id.
	EventID string
	// PaymentID is the simulator's payment id (sp_…), MerchantRef the
	// merchant's reference (paygate's transaction code).
	PaymentID, MerchantRef string
	// Status is "succeeded" or "failed".
	Status   string
	Amount   int64
	Currency string
	// OccurredAt defaults to at.
	OccurredAt time.Time
}

// SignWebhook builds the webhook the simulator sends to notifyURL for
// merchant about ev, signed with secret at time at. It needs no Server: a
// load generator driving a simulator in another process signs exactly as
// that simulator would, given the merchant's secret.
func SignWebhook(notifyURL, merchant string, secret []byte, ev WebhookEvent, at time.Time) (Webhook, error) {
	if ev.Status != statusSucceeded && ev.Status != statusFailed {
		return Webhook{}, fmt.Errorf("sim webhook: status %q: succeeded or failed", ev.Status)
	}
	if ev.EventID == "" {
		ev.EventID = newID("evt_")
	}
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = at
	}
	j := webhookJSON{EventID: ev.EventID, Type: eventFailed, PaymentID: ev.PaymentID, MerchantRef: ev.MerchantRef,
		Status: ev.Status, Amount: ev.Amount, Currency: ev.Currency, OccurredAt: ev.OccurredAt.UTC()}
	if ev.Status == statusSucceeded {
		j.Type = eventSucceeded
	}
	body, err := json.Marshal(j)
	if err != nil {
		return Webhook{}, fmt.Errorf("sim webhook: %w", err)
	}
	h := http.Header{}
	signWebhook(h, merchant, secret, at.Unix(), body)
	return Webhook{URL: notifyURL, Header: h, Body: body}, nil
}

// Webhook returns, without sending it, the webhook the simulator would
// send now about the payment with merchant reference ref, claiming status
// ("succeeded" or "failed") whatever the payment's real state, for the
// amount collected (or asked, if nothing was). forged signs it with a
// wrong secret, as an impersonator without the merchant's secret would.
func (s *Server) Webhook(ref, status string, forged bool) (Webhook, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	p := s.paymentByMerchantRef(ref)
	if p == nil {
		s.mu.Unlock()
		return Webhook{}, fmt.Errorf("sim webhook: no payment %q", ref)
	}
	amount := p.amount
	if !p.paid.IsZero() {
		amount = p.paid
	}
	ev := WebhookEvent{PaymentID: p.id, MerchantRef: ref, Status: status, Amount: amount.Minor(), Currency: amount.Currency().Code(), OccurredAt: now}
	secret, merchant, notifyURL := []byte(s.cfg.Merchants[p.merchant]), p.merchant, p.req.NotifyURL
	s.mu.Unlock()
	if forged {
		secret = append([]byte("forged:"), secret...)
	}
	return SignWebhook(notifyURL, merchant, secret, ev, now)
}

// paymentByMerchantRef finds a payment by merchant reference under any
// merchant; s.mu is held.
func (s *Server) paymentByMerchantRef(ref string) *payment {
	for m := range s.cfg.Merchants {
		if p := s.paymentByRef[merchantKey{m, ref}]; p != nil {
			return p
		}
	}
	return nil
}
