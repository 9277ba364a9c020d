package sim

import (
	"fmt"
	"strconv"
	"time"

	"github.com/paygate/paygate/domain"
)

// SettlementDefect changes how one payment shows in the settlement lists,
// as a PSP whose data is wrong or late would show it. Zero fields change
// nothing. It is set per merchant_ref with DefectSettlement, before or
// after the payment is made.
type SettlementDefect struct {
	// SettledAt lists the payment at this time (and so on its business
	// day) instead of when it succeeded: a payment at 23:59:59 settled
	// the next day.
	SettledAt time.Time
	// Amount and Currency list another amount or currency than collected.
	Amount   int64
	Currency string
	// Status lists another status than succeeded (failed, pending).
	Status string
	// Copies lists the payment this many more times, each copy under a
	// payment id of its own (the PSP's duplicate rows).
	Copies int
}

// SettlementRow is a row the simulator lists without a payment behind it
// (see AddSettlementRows).
type SettlementRow struct {
	MerchantRef string
	PaymentID   string
	Amount      domain.Money
	// Status defaults to succeeded.
	Status    string
	SettledAt time.Time
}

// DefectSettlement sets how the payment(s) with merchant_ref
// merchantRef show in settlement lists; it replaces an earlier defect.
// Script.Unsettled still leaves a payment out altogether.
func (s *Server) DefectSettlement(merchantRef string, d SettlementDefect) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.defects == nil {
		s.defects = map[string]SettlementDefect{}
	}
	s.defects[merchantRef] = d
}

// AddSettlementRows adds rows to the merchant's settlement lists (each on
// the business day of its SettledAt) for payments the simulator never
// made: a payment paygate never saw, or, for tests and benchmarks, a
// large day whose payments are written straight to paygate's store.
func (s *Server) AddSettlementRows(merchant string, rows ...SettlementRow) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.extraRows == nil {
		s.extraRows = map[string][]settlementRowJSON{}
	}
	for i, r := range rows {
		if r.MerchantRef == "" || r.Amount.IsZero() || r.SettledAt.IsZero() {
			return fmt.Errorf("sim: settlement row %d: merchant_ref, amount and settled_at are required", i)
		}
		st := r.Status
		if st == "" {
			st = statusSucceeded
		}
		id := r.PaymentID
		if id == "" {
			id = newID("sp_")
		}
		s.extraRows[merchant] = append(s.extraRows[merchant], settlementRowJSON{MerchantRef: r.MerchantRef, PaymentID: id,
			Amount: r.Amount.Minor(), Currency: r.Amount.Currency().Code(), Status: st, SettledAt: r.SettledAt.UTC()})
	}
	return nil
}

// settlementRowsLocked are every row the merchant's lists hold, on any
// day: the payments that succeeded, as their defects show them, and the
// added rows. Caller holds mu.
func (s *Server) settlementRowsLocked(merchant string, now time.Time) []settlementRowJSON {
	var rows []settlementRowJSON
	for _, p := range s.order {
		s.refresh(p, now)
		if p.merchant != merchant || p.status != statusSucceeded || s.fateOf(p).unsettled {
			continue
		}
		r := settlementRowJSON{MerchantRef: p.req.MerchantRef, PaymentID: p.id, Amount: p.paid.Minor(),
			Currency: p.paid.Currency().Code(), Status: statusSucceeded, SettledAt: p.done.UTC()}
		d := s.defects[p.req.MerchantRef]
		if !d.SettledAt.IsZero() {
			r.SettledAt = d.SettledAt.UTC()
		}
		if d.Amount > 0 {
			r.Amount = d.Amount
		}
		if d.Currency != "" {
			r.Currency = d.Currency
		}
		if d.Status != "" {
			r.Status = d.Status
		}
		rows = append(rows, r)
		for i := range d.Copies {
			c := r
			c.PaymentID = p.id + "_dup" + strconv.Itoa(i+1)
			rows = append(rows, c)
		}
	}
	return append(rows, s.extraRows[merchant]...)
}
