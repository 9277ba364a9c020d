package sim

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Notify sends one callback about the payment with merchant reference
// ref, now, claiming status ("succeeded" or "failed") whatever the
// payment's real state: kind "async" posts a webhook, kind "sync" plays
// the buyer's browser returning. It is signed with the merchant's secret,
// exactly as a PSP that is wrong, replays an old notification or is
// impersonated by someone holding the secret would send it. It reports
// whether the gateway acknowledged it (2xx, or a redirect for the
// browser). Tests use it to deliver callbacks in any order.
func (s *Server) Notify(ctx context.Context, ref, status, kind string) error {
	if status != statusSucceeded && status != statusFailed {
		return fmt.Errorf("sim notify: status %q: succeeded or failed", status)
	}
	var req *http.Request
	var err error
	switch kind {
	case "async":
		var w Webhook
		if w, err = s.Webhook(ref, status, false); err != nil {
			return fmt.Errorf("sim notify: %w", err)
		}
		req, err = w.Request(ctx)
	case "sync":
		s.mu.Lock()
		p := s.paymentByMerchantRef(ref)
		if p == nil {
			s.mu.Unlock()
			return fmt.Errorf("sim notify: no payment %q", ref)
		}
		amount := p.amount
		if !p.paid.IsZero() {
			amount = p.paid
		}
		ev := webhookJSON{EventID: newID("evt_"), PaymentID: p.id, MerchantRef: ref, Status: status,
			Amount: amount.Minor(), Currency: amount.Currency().Code(), OccurredAt: s.cfg.Now().UTC()}
		secret, returnURL := []byte(s.cfg.Merchants[p.merchant]), p.req.ReturnURL
		s.mu.Unlock()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, signedReturn(returnURL, ev, secret, s.cfg.Now().Unix()), nil)
	default:
		return fmt.Errorf("sim notify: kind %q: async or sync", kind)
	}
	if err != nil {
		return fmt.Errorf("sim notify: %w", err)
	}
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("sim notify: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("sim notify: gateway answered %s", resp.Status)
	}
	return nil
}
