package sim

import (
	"fmt"
	"strings"

	"github.com/paygate/paygate/domain"
)

// Copy names one payment Clone makes: the merchant reference and amount
// (minor units) it takes; Clone fills in the new payment id.
type Copy struct {
	MerchantRef string
	Amount      int64
	PaymentID   string // set by Clone
	PayURL      string // set by Clone
	Token       string // set by Clone
}

// Clone adds copies of the payment with merchant reference templateRef,
// each under its own merchant reference and amount, in the template's
// state (created, or paid in full as the buyer's click left it), without
// sending anything. It is how a load harness prepares millions of
// payments in seconds that would take the HTTP API and the pay page an
// hour; every copy then answers the API (and Webhook) as the template
// would. A reference already taken is an error, and nothing is added.
func (s *Server) Clone(templateRef string, copies []Copy) error {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.paymentByMerchantRef(templateRef)
	if t == nil {
		return fmt.Errorf("sim clone: no payment %q", templateRef)
	}
	if len(t.refunds) > 0 {
		return fmt.Errorf("sim clone: payment %q has refunds", templateRef)
	}
	seen := make(map[string]bool, len(copies))
	for _, c := range copies {
		if seen[c.MerchantRef] {
			return fmt.Errorf("sim clone: merchant_ref %q twice", c.MerchantRef)
		}
		seen[c.MerchantRef] = true
		if !validRef(c.MerchantRef) {
			return fmt.Errorf("sim clone: merchant_ref %q is not valid", c.MerchantRef)
		}
		if s.paymentByRef[merchantKey{t.merchant, c.MerchantRef}] != nil {
			return fmt.Errorf("sim clone: merchant_ref %q is taken", c.MerchantRef)
		}
		if c.Amount <= 0 {
			return fmt.Errorf("sim clone: amount %d of %q is not positive", c.Amount, c.MerchantRef)
		}
	}
	cur := t.amount.Currency().Code()
	for i := range copies {
		c := &copies[i]
		amount, err := domain.NewMoney(c.Amount, cur)
		if err != nil {
			return fmt.Errorf("sim clone: %w", err)
		}
		p := *t
		p.id = newID("sp_")
		p.req.MerchantRef, p.req.Amount = c.MerchantRef, c.Amount
		p.amount = amount
		if !t.paid.IsZero() {
			p.paid = amount
		}
		p.payURL = strings.TrimSuffix(t.payURL, t.id) + p.id
		p.token = newID("tok_")
		p.created, p.expires = now, now.Add(t.expires.Sub(t.created))
		if !t.done.IsZero() {
			p.done = now
		}
		c.PaymentID, c.PayURL, c.Token = p.id, p.payURL, p.token
		s.payments[p.id] = &p
		s.paymentByRef[merchantKey{p.merchant, c.MerchantRef}] = &p
		s.order = append(s.order, &p)
	}
	return nil
}
