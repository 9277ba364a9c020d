package domain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/paygate/paygate/domain"
)

const (
	cbOrderID = "A1001"
	cbCodeA   = "T261125100000000AAAAAAAA"
	cbCodeB   = "T261125100100000BBBBBBBB"
)

var cbPrice = domain.MustMoney(1999, "USD")

func cbOrder(st domain.OrderStatus, paidBy string) domain.Order {
	return domain.RestoreOrder(cbOrderID, cbPrice, st, paidBy)
}

func cbAttempt(code string, st domain.AttemptStatus, pspRef string) domain.Attempt {
	return domain.RestoreAttempt(code, cbOrderID, "sim", cbPrice, st, pspRef, "")
}

func cbNote(code string, st domain.PSPStatus, pspRef string, amount domain.Money) domain.Notification {
	return domain.Notification{TransactionCode: code, PSPReference: pspRef, EventID: "evt-1", Status: st, Amount: amount}
}

func TestParsePSPStatus(t *testing.T) {
	for _, want := range []domain.PSPStatus{domain.PSPSucceeded, domain.PSPFailed, domain.PSPPending, domain.PSPUnknown} {
		got, err := domain.ParsePSPStatus(want.String())
		if err != nil || got != want {
			t.Errorf("ParsePSPStatus(%q) = %v, %v", want.String(), got, err)
		}
	}
	for _, s := range []string{"", "success", "SUCCEEDED", "paid"} {
		if _, err := domain.ParsePSPStatus(s); err == nil {
			t.Errorf("ParsePSPStatus(%q): no error", s)
		}
	}
}

// TestDecideCallbackCases are the rows of DESIGN.md §5 (and the rules for
// failures and non-final statuses), each with every expected field written out.
func TestDecideCallbackCases(t *testing.T) {
	eur := domain.MustMoney(1999, "EUR")
	more := domain.MustMoney(2000, "USD")
	tests := []struct {
		name        string
		o           domain.Order
		a           domain.Attempt
		n           domain.Notification
		outcome     domain.Outcome
		wantOrder   domain.Order
		wantAttempt domain.AttemptStatus
		wantRef     string
		changed     bool
		review      bool // attempt flagged for review
	}{
		{
			name: "pending order, pending attempt, success → paid",
			o:    cbOrder(domain.OrderPending, ""), a: cbAttempt(cbCodeA, domain.AttemptPending, ""),
			n:       cbNote(cbCodeA, domain.PSPSucceeded, "psp-1", cbPrice),
			outcome: domain.OutcomePaid, wantOrder: cbOrder(domain.OrderPaid, cbCodeA),
			wantAttempt: domain.AttemptPaid, wantRef: "psp-1", changed: true,
		},
		{
			name: "pending order, created attempt, success before Started → paid",
			o:    cbOrder(domain.OrderPending, ""), a: cbAttempt(cbCodeA, domain.AttemptCreated, ""),
			n:       cbNote(cbCodeA, domain.PSPSucceeded, "psp-1", cbPrice),
			outcome: domain.OutcomePaid, wantOrder: cbOrder(domain.OrderPaid, cbCodeA),
			wantAttempt: domain.AttemptPaid, wantRef: "psp-1", changed: true,
		},
		{
			name: "success without PSP reference keeps the known one",
			o:    cbOrder(domain.OrderPending, ""), a: cbAttempt(cbCodeA, domain.AttemptPending, "psp-1"),
			n:       cbNote(cbCodeA, domain.PSPSucceeded, "", cbPrice),
			outcome: domain.OutcomePaid, wantOrder: cbOrder(domain.OrderPaid, cbCodeA),
			wantAttempt: domain.AttemptPaid, wantRef: "psp-1", changed: true,
		},
		{
			name: "paid order, same attempt, same reference → duplicate notification",
			o:    cbOrder(domain.OrderPaid, cbCodeA), a: cbAttempt(cbCodeA, domain.AttemptPaid, "psp-1"),
			n:       cbNote(cbCodeA, domain.PSPSucceeded, "psp-1", cbPrice),
			outcome: domain.OutcomeDuplicateNotification, wantOrder: cbOrder(domain.OrderPaid, cbCodeA),
			wantAttempt: domain.AttemptPaid, wantRef: "psp-1",
		},
		{
			name: "paid order, same attempt, notification without reference → duplicate notification",
			o:    cbOrder(domain.OrderPaid, cbCodeA), a: cbAttempt(cbCodeA, domain.AttemptPaid, "psp-1"),
			n:       cbNote(cbCodeA, domain.PSPSucceeded, "", cbPrice),
			outcome: domain.OutcomeDuplicateNotification, wantOrder: cbOrder(domain.OrderPaid, cbCodeA),
			wantAttempt: domain.AttemptPaid, wantRef: "psp-1",
		},
		{
			name: "paid order, same attempt, another PSP transaction → duplicate payment, no state change",
			o:    cbOrder(domain.OrderPaid, cbCodeA), a: cbAttempt(cbCodeA, domain.AttemptPaid, "psp-1"),
			n:       cbNote(cbCodeA, domain.PSPSucceeded, "psp-2", cbPrice),
			outcome: domain.OutcomeDuplicatePayment, wantOrder: cbOrder(domain.OrderPaid, cbCodeA),
			wantAttempt: domain.AttemptPaid, wantRef: "psp-1",
		},
		{
			name: "paid order, another attempt succeeds → duplicate payment, attempt paid, order unchanged",
			o:    cbOrder(domain.OrderPaid, cbCodeA), a: cbAttempt(cbCodeB, domain.AttemptPending, ""),
			n:       cbNote(cbCodeB, domain.PSPSucceeded, "psp-B", cbPrice),
			outcome: domain.OutcomeDuplicatePayment, wantOrder: cbOrder(domain.OrderPaid, cbCodeA),
			wantAttempt: domain.AttemptPaid, wantRef: "psp-B", changed: true,
		},
		{
			name: "partially refunded order, another attempt succeeds → duplicate payment",
			o:    cbOrder(domain.OrderPartiallyRefunded, cbCodeA), a: cbAttempt(cbCodeB, domain.AttemptPending, ""),
			n:       cbNote(cbCodeB, domain.PSPSucceeded, "psp-B", cbPrice),
			outcome: domain.OutcomeDuplicatePayment, wantOrder: cbOrder(domain.OrderPartiallyRefunded, cbCodeA),
			wantAttempt: domain.AttemptPaid, wantRef: "psp-B", changed: true,
		},
		{
			name: "refunded order, another (failed) attempt succeeds late → duplicate payment",
			o:    cbOrder(domain.OrderRefunded, cbCodeA), a: cbAttempt(cbCodeB, domain.AttemptFailed, ""),
			n:       cbNote(cbCodeB, domain.PSPSucceeded, "psp-B", cbPrice),
			outcome: domain.OutcomeDuplicatePayment, wantOrder: cbOrder(domain.OrderRefunded, cbCodeA),
			wantAttempt: domain.AttemptPaid, wantRef: "psp-B", changed: true,
		},
		{
			name: "closed order, success → late payment, order stays closed",
			o:    cbOrder(domain.OrderClosed, ""), a: cbAttempt(cbCodeA, domain.AttemptExpired, ""),
			n:       cbNote(cbCodeA, domain.PSPSucceeded, "psp-1", cbPrice),
			outcome: domain.OutcomeLatePayment, wantOrder: cbOrder(domain.OrderClosed, ""),
			wantAttempt: domain.AttemptPaid, wantRef: "psp-1", changed: true,
		},
		{
			name: "failure after success → ignored",
			o:    cbOrder(domain.OrderPaid, cbCodeA), a: cbAttempt(cbCodeA, domain.AttemptPaid, "psp-1"),
			n:       cbNote(cbCodeA, domain.PSPFailed, "psp-1", domain.Money{}),
			outcome: domain.OutcomeFailureIgnored, wantOrder: cbOrder(domain.OrderPaid, cbCodeA),
			wantAttempt: domain.AttemptPaid, wantRef: "psp-1",
		},
		{
			name: "late success after failure → paid",
			o:    cbOrder(domain.OrderPending, ""), a: cbAttempt(cbCodeA, domain.AttemptFailed, "psp-1"),
			n:       cbNote(cbCodeA, domain.PSPSucceeded, "psp-1", cbPrice),
			outcome: domain.OutcomePaid, wantOrder: cbOrder(domain.OrderPaid, cbCodeA),
			wantAttempt: domain.AttemptPaid, wantRef: "psp-1", changed: true,
		},
		{
			name: "late success after expiry → paid",
			o:    cbOrder(domain.OrderPending, ""), a: cbAttempt(cbCodeA, domain.AttemptExpired, ""),
			n:       cbNote(cbCodeA, domain.PSPSucceeded, "psp-1", cbPrice),
			outcome: domain.OutcomePaid, wantOrder: cbOrder(domain.OrderPaid, cbCodeA),
			wantAttempt: domain.AttemptPaid, wantRef: "psp-1", changed: true,
		},
		{
			name: "failure on pending attempt → failed, order stays pending",
			o:    cbOrder(domain.OrderPending, ""), a: cbAttempt(cbCodeA, domain.AttemptPending, "psp-1"),
			n:       cbNote(cbCodeA, domain.PSPFailed, "psp-1", cbPrice),
			outcome: domain.OutcomeFailed, wantOrder: cbOrder(domain.OrderPending, ""),
			wantAttempt: domain.AttemptFailed, wantRef: "psp-1", changed: true,
		},
		{
			name: "failure on created attempt → failed",
			o:    cbOrder(domain.OrderPending, ""), a: cbAttempt(cbCodeA, domain.AttemptCreated, ""),
			n:       cbNote(cbCodeA, domain.PSPFailed, "", domain.Money{}),
			outcome: domain.OutcomeFailed, wantOrder: cbOrder(domain.OrderPending, ""),
			wantAttempt: domain.AttemptFailed, changed: true,
		},
		{
			name: "failure again → duplicate notification",
			o:    cbOrder(domain.OrderPending, ""), a: cbAttempt(cbCodeA, domain.AttemptFailed, ""),
			n:       cbNote(cbCodeA, domain.PSPFailed, "", domain.Money{}),
			outcome: domain.OutcomeDuplicateNotification, wantOrder: cbOrder(domain.OrderPending, ""),
			wantAttempt: domain.AttemptFailed,
		},
		{
			name: "pending notification → pending, no change",
			o:    cbOrder(domain.OrderPending, ""), a: cbAttempt(cbCodeA, domain.AttemptPending, ""),
			n:       cbNote(cbCodeA, domain.PSPPending, "psp-1", cbPrice),
			outcome: domain.OutcomeStillPending, wantOrder: cbOrder(domain.OrderPending, ""),
			wantAttempt: domain.AttemptPending,
		},
		{
			name: "unknown notification → pending, no change",
			o:    cbOrder(domain.OrderPending, ""), a: cbAttempt(cbCodeA, domain.AttemptCreated, ""),
			n:       cbNote(cbCodeA, domain.PSPUnknown, "", domain.Money{}),
			outcome: domain.OutcomeStillPending, wantOrder: cbOrder(domain.OrderPending, ""),
			wantAttempt: domain.AttemptCreated,
		},
		{
			name: "amount differs → amount mismatch, never paid",
			o:    cbOrder(domain.OrderPending, ""), a: cbAttempt(cbCodeA, domain.AttemptPending, ""),
			n:       cbNote(cbCodeA, domain.PSPSucceeded, "psp-1", more),
			outcome: domain.OutcomeAmountMismatch, wantOrder: cbOrder(domain.OrderPending, ""),
			wantAttempt: domain.AttemptPending, changed: true, review: true,
		},
		{
			name: "currency differs → amount mismatch, never paid",
			o:    cbOrder(domain.OrderPending, ""), a: cbAttempt(cbCodeA, domain.AttemptPending, ""),
			n:       cbNote(cbCodeA, domain.PSPSucceeded, "psp-1", eur),
			outcome: domain.OutcomeAmountMismatch, wantOrder: cbOrder(domain.OrderPending, ""),
			wantAttempt: domain.AttemptPending, changed: true, review: true,
		},
		{
			name: "zero amount → amount mismatch",
			o:    cbOrder(domain.OrderPending, ""), a: cbAttempt(cbCodeA, domain.AttemptPending, ""),
			n:       cbNote(cbCodeA, domain.PSPSucceeded, "psp-1", domain.MustMoney(0, "USD")),
			outcome: domain.OutcomeAmountMismatch, wantOrder: cbOrder(domain.OrderPending, ""),
			wantAttempt: domain.AttemptPending, changed: true, review: true,
		},
		{
			name: "success without an amount → amount mismatch (fail closed)",
			o:    cbOrder(domain.OrderPending, ""), a: cbAttempt(cbCodeA, domain.AttemptPending, ""),
			n:       cbNote(cbCodeA, domain.PSPSucceeded, "psp-1", domain.Money{}),
			outcome: domain.OutcomeAmountMismatch, wantOrder: cbOrder(domain.OrderPending, ""),
			wantAttempt: domain.AttemptPending, changed: true, review: true,
		},
		{
			name: "mismatch on a closed order → amount mismatch, not late payment",
			o:    cbOrder(domain.OrderClosed, ""), a: cbAttempt(cbCodeA, domain.AttemptExpired, ""),
			n:       cbNote(cbCodeA, domain.PSPSucceeded, "psp-1", more),
			outcome: domain.OutcomeAmountMismatch, wantOrder: cbOrder(domain.OrderClosed, ""),
			wantAttempt: domain.AttemptExpired, changed: true, review: true,
		},
		{
			name: "mismatch on a paid order's other attempt → amount mismatch, not duplicate payment",
			o:    cbOrder(domain.OrderPaid, cbCodeA), a: cbAttempt(cbCodeB, domain.AttemptPending, ""),
			n:       cbNote(cbCodeB, domain.PSPSucceeded, "psp-B", more),
			outcome: domain.OutcomeAmountMismatch, wantOrder: cbOrder(domain.OrderPaid, cbCodeA),
			wantAttempt: domain.AttemptPending, changed: true, review: true,
		},
	}
	for _, tt := range tests {
		d, err := domain.DecideCallback(tt.o, tt.a, tt.n)
		if err != nil {
			t.Errorf("%s: unexpected error %v", tt.name, err)
			continue
		}
		if d.Outcome != tt.outcome {
			t.Errorf("%s: outcome %v, want %v", tt.name, d.Outcome, tt.outcome)
		}
		if d.Order != tt.wantOrder {
			t.Errorf("%s: order %v paid by %q, want %v paid by %q", tt.name,
				d.Order.Status(), d.Order.PaidAttempt(), tt.wantOrder.Status(), tt.wantOrder.PaidAttempt())
		}
		if got := d.Attempt.Status(); got != tt.wantAttempt {
			t.Errorf("%s: attempt %v, want %v", tt.name, got, tt.wantAttempt)
		}
		if got := d.Attempt.PSPReference(); got != tt.wantRef {
			t.Errorf("%s: attempt PSP reference %q, want %q", tt.name, got, tt.wantRef)
		}
		if d.Attempt.Code() != tt.a.Code() || d.Attempt.OrderID() != tt.a.OrderID() ||
			d.Attempt.Channel() != tt.a.Channel() || d.Attempt.Amount() != tt.a.Amount() {
			t.Errorf("%s: attempt identity changed: %+v", tt.name, d.Attempt)
		}
		if d.Changed != tt.changed {
			t.Errorf("%s: Changed = %v, want %v", tt.name, d.Changed, tt.changed)
		}
		if got := d.Attempt.Review() != ""; got != tt.review {
			t.Errorf("%s: review %q, want flagged = %v", tt.name, d.Attempt.Review(), tt.review)
		}
		if tt.review && d.Reason == "" {
			t.Errorf("%s: flagged for review without a Reason", tt.name)
		}
	}
}

// TestDecideCallbackMismatchIdempotent: the same mismatch again flags the
// same review reason, so nothing changes the second time.
func TestDecideCallbackMismatchIdempotent(t *testing.T) {
	o, a := cbOrder(domain.OrderPending, ""), cbAttempt(cbCodeA, domain.AttemptPending, "")
	n := cbNote(cbCodeA, domain.PSPSucceeded, "psp-1", domain.MustMoney(1, "USD"))
	d1, err := domain.DecideCallback(o, a, n)
	if err != nil || !d1.Changed || d1.Attempt.Review() == "" {
		t.Fatalf("first mismatch: %+v, %v", d1, err)
	}
	d2, err := domain.DecideCallback(d1.Order, d1.Attempt, n)
	if err != nil {
		t.Fatalf("second mismatch: %v", err)
	}
	if d2.Outcome != domain.OutcomeAmountMismatch || d2.Changed || d2.Attempt != d1.Attempt || d2.Order != d1.Order {
		t.Errorf("second mismatch = %v changed=%v, want amount_mismatch with no change", d2.Outcome, d2.Changed)
	}
	// A correct success after a mismatch still pays: the flag stays for a person.
	d3, err := domain.DecideCallback(d2.Order, d2.Attempt, cbNote(cbCodeA, domain.PSPSucceeded, "psp-1", cbPrice))
	if err != nil {
		t.Fatalf("success after mismatch: %v", err)
	}
	if d3.Outcome != domain.OutcomePaid || d3.Order.Status() != domain.OrderPaid || d3.Attempt.Review() != d1.Attempt.Review() {
		t.Errorf("success after mismatch = %v, order %v, review %q", d3.Outcome, d3.Order.Status(), d3.Attempt.Review())
	}
}

func TestDecideCallbackForeign(t *testing.T) {
	o := cbOrder(domain.OrderPending, "")
	a := cbAttempt(cbCodeA, domain.AttemptPending, "")
	other := domain.RestoreAttempt(cbCodeA, "A1002", "sim", cbPrice, domain.AttemptPending, "", "")
	lower := domain.RestoreAttempt(cbCodeA, "a1001", "sim", cbPrice, domain.AttemptPending, "", "")
	tests := []struct {
		name string
		o    domain.Order
		a    domain.Attempt
		n    domain.Notification
	}{
		{"attempt of another order", o, other, cbNote(cbCodeA, domain.PSPSucceeded, "", cbPrice)},
		{"order id differs in case", o, lower, cbNote(cbCodeA, domain.PSPSucceeded, "", cbPrice)},
		{"notification for another attempt", o, a, cbNote(cbCodeB, domain.PSPSucceeded, "", cbPrice)},
		{"notification without transaction code", o, a, cbNote("", domain.PSPSucceeded, "", cbPrice)},
		{"all three apart", o, other, cbNote(cbCodeB, domain.PSPFailed, "", cbPrice)},
		{"failure for another attempt", o, a, cbNote(cbCodeB, domain.PSPFailed, "", cbPrice)},
		{"pending for another attempt", o, a, cbNote(cbCodeB, domain.PSPPending, "", cbPrice)},
	}
	for _, tt := range tests {
		d, err := domain.DecideCallback(tt.o, tt.a, tt.n)
		if !errors.Is(err, domain.ErrForeignAttempt) {
			t.Errorf("%s: error = %v, want ErrForeignAttempt", tt.name, err)
		}
		if d != (domain.Decision{}) {
			t.Errorf("%s: decision %+v on error, want the zero Decision", tt.name, d)
		}
	}
}

// TestDecideCallbackMatrix runs every consistent combination of order state,
// attempt state, which attempt paid the order, known PSP reference,
// notification status, notified PSP reference and notified amount, and
// checks each against the rules of DESIGN.md §5 stated independently here.
func TestDecideCallbackMatrix(t *testing.T) {
	type amountCase struct {
		name  string
		m     domain.Money
		match bool
	}
	amounts := []amountCase{
		{"equal", cbPrice, true},
		{"different", domain.MustMoney(1998, "USD"), false},
		{"other currency", domain.MustMoney(1999, "EUR"), false},
		{"same digits other exponent", domain.MustMoney(1999, "KWD"), false},
		{"zero", domain.MustMoney(0, "USD"), false},
		{"absent", domain.Money{}, false},
	}
	pspStatuses := []domain.PSPStatus{domain.PSPSucceeded, domain.PSPFailed, domain.PSPPending, domain.PSPUnknown}
	count := 0
	for _, os := range allOrderStatuses {
		paidBys := []string{""}
		if os.IsPaid() {
			paidBys = []string{cbCodeA, cbCodeB} // this attempt, or another one
		}
		for _, paidBy := range paidBys {
			for _, as := range allAttemptStatuses {
				// Consistent states only: the attempt that paid the order is
				// paid; a pending order has no paid attempt.
				if paidBy == cbCodeA && as != domain.AttemptPaid {
					continue
				}
				if os == domain.OrderPending && as == domain.AttemptPaid {
					continue
				}
				for _, aRef := range []string{"", "psp-1"} {
					for _, ns := range pspStatuses {
						for _, nRef := range []string{"", "psp-1", "psp-2"} {
							for _, amt := range amounts {
								count++
								o := cbOrder(os, paidBy)
								a := cbAttempt(cbCodeA, as, aRef)
								n := cbNote(cbCodeA, ns, nRef, amt.m)
								name := fmt.Sprintf("order %v paid by %q, attempt %v ref %q, notified %v ref %q amount %s",
									os, paidBy, as, aRef, ns, nRef, amt.name)
								checkDecision(t, name, o, a, n, amt.match)
							}
						}
					}
				}
			}
		}
	}
	if count < 1000 {
		t.Errorf("matrix ran %d combinations, expected more than 1000", count)
	}
}

// checkDecision states the decision table independently of the code.
func checkDecision(t *testing.T, name string, o domain.Order, a domain.Attempt, n domain.Notification, amountMatches bool) {
	t.Helper()
	d, err := domain.DecideCallback(o, a, n)
	if err != nil {
		t.Errorf("%s: unexpected error %v", name, err)
		return
	}

	// What the rules say.
	wantOutcome := domain.OutcomeStillPending
	wantOrder := o
	wantStatus := a.Status()
	wantRef := a.PSPReference()
	wantReview := false
	switch n.Status {
	case domain.PSPSucceeded:
		switch {
		case !amountMatches:
			wantOutcome, wantReview = domain.OutcomeAmountMismatch, true
		case a.Status() == domain.AttemptPaid:
			if n.PSPReference != "" && a.PSPReference() != "" && n.PSPReference != a.PSPReference() {
				wantOutcome = domain.OutcomeDuplicatePayment
			} else {
				wantOutcome = domain.OutcomeDuplicateNotification
			}
		default:
			wantStatus = domain.AttemptPaid
			if n.PSPReference != "" {
				wantRef = n.PSPReference
			}
			switch o.Status() {
			case domain.OrderPending:
				wantOutcome = domain.OutcomePaid
				wantOrder = cbOrder(domain.OrderPaid, a.Code())
			case domain.OrderClosed:
				wantOutcome = domain.OutcomeLatePayment
			default:
				wantOutcome = domain.OutcomeDuplicatePayment
			}
		}
	case domain.PSPFailed:
		switch a.Status() {
		case domain.AttemptPaid:
			wantOutcome = domain.OutcomeFailureIgnored
		case domain.AttemptFailed, domain.AttemptExpired:
			wantOutcome = domain.OutcomeDuplicateNotification
		default:
			wantOutcome, wantStatus = domain.OutcomeFailed, domain.AttemptFailed
		}
	}

	if d.Outcome != wantOutcome {
		t.Errorf("%s: outcome %v, want %v", name, d.Outcome, wantOutcome)
	}
	if d.Order != wantOrder {
		t.Errorf("%s: order %v paid by %q, want %v paid by %q", name,
			d.Order.Status(), d.Order.PaidAttempt(), wantOrder.Status(), wantOrder.PaidAttempt())
	}
	if d.Attempt.Status() != wantStatus {
		t.Errorf("%s: attempt %v, want %v", name, d.Attempt.Status(), wantStatus)
	}
	if d.Attempt.PSPReference() != wantRef {
		t.Errorf("%s: attempt reference %q, want %q", name, d.Attempt.PSPReference(), wantRef)
	}
	if got := d.Attempt.Review() != ""; got != wantReview {
		t.Errorf("%s: review %q, want flagged = %v", name, d.Attempt.Review(), wantReview)
	}
	if wantReview && d.Reason == "" {
		t.Errorf("%s: review without a Reason", name)
	}
	if wantOutcome == domain.OutcomeFailureIgnored && d.Reason == "" {
		t.Errorf("%s: ignored notification without a Reason", name)
	}
	// Never paid on a mismatch, by anyone.
	if !amountMatches && n.Status == domain.PSPSucceeded {
		if d.Order.Status() != o.Status() || d.Order.PaidAttempt() != o.PaidAttempt() || d.Attempt.Status() != a.Status() {
			t.Errorf("%s: a mismatch changed a state", name)
		}
	}
	// Money to give back: exactly for duplicate and late payments, refunded
	// by paygate unless it is a second PSP transaction under a paid attempt.
	wantRepeat := wantOutcome == domain.OutcomeDuplicatePayment || wantOutcome == domain.OutcomeLatePayment
	if (d.Repeat != nil) != wantRepeat {
		t.Errorf("%s: Repeat = %+v, want one = %v", name, d.Repeat, wantRepeat)
	}
	if r := d.Repeat; r != nil {
		if r.Kind != wantOutcome || r.OrderID != o.ID() || r.TransactionCode != a.Code() || r.Channel != a.Channel() ||
			r.Amount != n.Amount || r.PSPReference != refOr(n.PSPReference, wantRef) || r.Manual != (a.Status() == domain.AttemptPaid) {
			t.Errorf("%s: Repeat = %+v", name, *r)
		}
	}
	// Changed means exactly: order or attempt differ from the input.
	if want := d.Order != o || d.Attempt != a; d.Changed != want {
		t.Errorf("%s: Changed = %v, but order/attempt differ = %v", name, d.Changed, want)
	}
	// The order moves only pending → paid, and only with outcome paid.
	if (d.Order.Status() != o.Status()) != (d.Outcome == domain.OutcomePaid) {
		t.Errorf("%s: order %v → %v with outcome %v", name, o.Status(), d.Order.Status(), d.Outcome)
	}
}

func refOr(ref, def string) string {
	if ref != "" {
		return ref
	}
	return def
}

func TestRepeatPaymentRefundID(t *testing.T) {
	d, err := domain.DecideCallback(cbOrder(domain.OrderPaid, cbCodeA), cbAttempt(cbCodeB, domain.AttemptPending, ""),
		cbNote(cbCodeB, domain.PSPSucceeded, "psp-B", cbPrice))
	if err != nil || d.Repeat == nil {
		t.Fatalf("duplicate payment: %+v, %v", d, err)
	}
	// The same payment detected again yields the same refund id.
	d2, err := domain.DecideCallback(cbOrder(domain.OrderPaid, cbCodeA), cbAttempt(cbCodeB, domain.AttemptFailed, ""),
		cbNote(cbCodeB, domain.PSPSucceeded, "psp-B", cbPrice))
	if err != nil || d2.Repeat == nil || d2.Repeat.RefundID() != d.Repeat.RefundID() {
		t.Errorf("refund ids %v and %v differ for one payment", d.Repeat, d2.Repeat)
	}
	// Two PSP transactions under one attempt are two refunds.
	d3, err := domain.DecideCallback(cbOrder(domain.OrderPaid, cbCodeA), cbAttempt(cbCodeA, domain.AttemptPaid, "psp-1"),
		cbNote(cbCodeA, domain.PSPSucceeded, "psp-2", cbPrice))
	if err != nil || d3.Repeat == nil {
		t.Fatalf("second PSP transaction: %+v, %v", d3, err)
	}
	d4, err := domain.DecideCallback(cbOrder(domain.OrderPaid, cbCodeA), cbAttempt(cbCodeA, domain.AttemptPaid, "psp-1"),
		cbNote(cbCodeA, domain.PSPSucceeded, "psp-3", cbPrice))
	if err != nil || d4.Repeat == nil || d4.Repeat.RefundID() == d3.Repeat.RefundID() {
		t.Errorf("refund ids of psp-2 and psp-3 under one attempt: %v, %v", d3.Repeat, d4.Repeat)
	}
	if d.Repeat.RefundID() == d3.Repeat.RefundID() {
		t.Errorf("refund ids of two attempts are equal: %q", d.Repeat.RefundID())
	}
}

func TestDecideExpiry(t *testing.T) {
	for _, os := range []domain.OrderStatus{domain.OrderPending, domain.OrderClosed, domain.OrderPaid} {
		paidBy := ""
		if os == domain.OrderPaid {
			paidBy = cbCodeB
		}
		for _, as := range allAttemptStatuses {
			o, a := cbOrder(os, paidBy), cbAttempt(cbCodeA, as, "psp-1")
			d, err := domain.DecideExpiry(o, a)
			if err != nil {
				t.Errorf("order %v, attempt %v: %v", os, as, err)
				continue
			}
			open := as == domain.AttemptCreated || as == domain.AttemptPending
			wantStatus, wantOutcome := as, domain.OutcomeStillPending
			if open {
				wantStatus, wantOutcome = domain.AttemptExpired, domain.OutcomeExpired
			}
			if d.Attempt.Status() != wantStatus || d.Outcome != wantOutcome || d.Changed != open || d.Order != o {
				t.Errorf("order %v, attempt %v: attempt %v outcome %v changed %v order %v; want %v %v %v unchanged",
					os, as, d.Attempt.Status(), d.Outcome, d.Changed, d.Order.Status(), wantStatus, wantOutcome, open)
			}
		}
	}
	other := domain.RestoreAttempt(cbCodeA, "A1002", "sim", cbPrice, domain.AttemptPending, "", "")
	if _, err := domain.DecideExpiry(cbOrder(domain.OrderPending, ""), other); !errors.Is(err, domain.ErrForeignAttempt) {
		t.Errorf("DecideExpiry of another order's attempt: %v, want ErrForeignAttempt", err)
	}
}

// callbackEvent is one notification in a sequence for the property tests.
type callbackEvent struct {
	name   string
	code   string
	status domain.PSPStatus
	ref    string
	amount domain.Money
}

var (
	evSuccessA    = callbackEvent{"success A", cbCodeA, domain.PSPSucceeded, "psp-A1", cbPrice}
	evFailureA    = callbackEvent{"failure A", cbCodeA, domain.PSPFailed, "psp-A1", cbPrice}
	evDuplicateA  = callbackEvent{"duplicate success A", cbCodeA, domain.PSPSucceeded, "psp-A1", cbPrice}
	evSuccessB    = callbackEvent{"success B", cbCodeB, domain.PSPSucceeded, "psp-B1", cbPrice}
	evMismatchA   = callbackEvent{"mismatched success A", cbCodeA, domain.PSPSucceeded, "psp-A1", domain.MustMoney(1, "USD")}
	evSecondRefA  = callbackEvent{"success A, other PSP transaction", cbCodeA, domain.PSPSucceeded, "psp-A2", cbPrice}
	evFailureB    = callbackEvent{"failure B", cbCodeB, domain.PSPFailed, "psp-B1", cbPrice}
	evPendingB    = callbackEvent{"pending B", cbCodeB, domain.PSPPending, "", domain.Money{}}
	basicEvents   = []callbackEvent{evSuccessA, evFailureA, evDuplicateA, evSuccessB}
	allCallbackEv = append(append([]callbackEvent{}, basicEvents...), evMismatchA, evSecondRefA, evFailureB, evPendingB)
)

type callbackRun struct {
	o        domain.Order
	a, b     domain.Attempt
	outcomes []domain.Outcome
}

// runCallbacks applies the events in order, feeding each decision's states
// into the next one as the store would.
func runCallbacks(t *testing.T, seq []callbackEvent) callbackRun {
	t.Helper()
	r := callbackRun{
		o: cbOrder(domain.OrderPending, ""),
		a: cbAttempt(cbCodeA, domain.AttemptPending, ""),
		b: cbAttempt(cbCodeB, domain.AttemptPending, ""),
	}
	for _, ev := range seq {
		cur := &r.a
		if ev.code == cbCodeB {
			cur = &r.b
		}
		d, err := domain.DecideCallback(r.o, *cur, cbNote(ev.code, ev.status, ev.ref, ev.amount))
		if err != nil {
			t.Fatalf("%v: %s: %v", eventNames(seq), ev.name, err)
		}
		r.o, *cur = d.Order, d.Attempt
		r.outcomes = append(r.outcomes, d.Outcome)
	}
	return r
}

func eventNames(seq []callbackEvent) []string {
	var s []string
	for _, ev := range seq {
		s = append(s, ev.name)
	}
	return s
}

func permutations(evs []callbackEvent) [][]callbackEvent {
	if len(evs) <= 1 {
		return [][]callbackEvent{append([]callbackEvent{}, evs...)}
	}
	var out [][]callbackEvent
	for i := range evs {
		rest := append(append([]callbackEvent{}, evs[:i]...), evs[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]callbackEvent{evs[i]}, p...))
		}
	}
	return out
}

// sequences is every sequence of 1..maxLen events drawn from evs with repetition.
func sequences(evs []callbackEvent, maxLen int) [][]callbackEvent {
	var out [][]callbackEvent
	prev := [][]callbackEvent{{}}
	for l := 1; l <= maxLen; l++ {
		var next [][]callbackEvent
		for _, p := range prev {
			for _, ev := range evs {
				next = append(next, append(append([]callbackEvent{}, p...), ev))
			}
		}
		out = append(out, next...)
		prev = next
	}
	return out
}

// checkConsistent states what must hold after any sequence of callbacks for
// one order with attempts A and B, all amounts right unless mismatched.
func checkConsistent(t *testing.T, seq []callbackEvent, r callbackRun) {
	t.Helper()
	firstSuccess := ""
	for _, ev := range seq {
		if ev.status == domain.PSPSucceeded && ev.amount == cbPrice {
			firstSuccess = ev.code
			break
		}
	}
	paidCount := 0
	for _, out := range r.outcomes {
		if out == domain.OutcomePaid {
			paidCount++
		}
	}
	if firstSuccess == "" {
		if r.o.Status() != domain.OrderPending || r.o.PaidAttempt() != "" || paidCount != 0 {
			t.Errorf("%v: no valid success, but order %v paid by %q, %d paid outcomes",
				eventNames(seq), r.o.Status(), r.o.PaidAttempt(), paidCount)
		}
	} else {
		if r.o.Status() != domain.OrderPaid || r.o.PaidAttempt() != firstSuccess {
			t.Errorf("%v: order %v paid by %q, want paid by the first success %q",
				eventNames(seq), r.o.Status(), r.o.PaidAttempt(), firstSuccess)
		}
		if paidCount != 1 {
			t.Errorf("%v: %d paid outcomes %v, want exactly 1", eventNames(seq), paidCount, r.outcomes)
		}
	}
	// Each attempt is paid iff it got a valid success, whatever failures
	// arrived before or after.
	for _, x := range []domain.Attempt{r.a, r.b} {
		gotSuccess, gotFailure := false, false
		for _, ev := range seq {
			if ev.code != x.Code() {
				continue
			}
			gotSuccess = gotSuccess || (ev.status == domain.PSPSucceeded && ev.amount == cbPrice)
			gotFailure = gotFailure || ev.status == domain.PSPFailed
		}
		want := domain.AttemptPending
		switch {
		case gotSuccess:
			want = domain.AttemptPaid
		case gotFailure:
			want = domain.AttemptFailed
		}
		if x.Status() != want {
			t.Errorf("%v: attempt %s ends %v, want %v", eventNames(seq), x.Code(), x.Status(), want)
		}
	}
}

// TestDecideCallbackPermutations: every order of the four basic events.
func TestDecideCallbackPermutations(t *testing.T) {
	perms := permutations(basicEvents)
	if len(perms) != 24 {
		t.Fatalf("%d permutations, want 24", len(perms))
	}
	for _, seq := range perms {
		r := runCallbacks(t, seq)
		checkConsistent(t, seq, r)
		// Both attempts got a success, so exactly one is a duplicate payment
		// (one refund), whichever came second.
		dup := 0
		for _, out := range r.outcomes {
			if out == domain.OutcomeDuplicatePayment {
				dup++
			}
		}
		if dup != 1 {
			t.Errorf("%v: %d duplicate payments %v, want 1", eventNames(seq), dup, r.outcomes)
		}
		if r.a.PSPReference() != "psp-A1" || r.b.PSPReference() != "psp-B1" {
			t.Errorf("%v: references %q, %q", eventNames(seq), r.a.PSPReference(), r.b.PSPReference())
		}
	}
}

// TestDecideCallbackSequences: every sequence of up to four events, with
// repetition, drawn from the basic events and from a wider set (mismatch,
// a second PSP transaction, failures and pending for B).
func TestDecideCallbackSequences(t *testing.T) {
	for _, evs := range [][]callbackEvent{basicEvents, allCallbackEv} {
		for _, seq := range sequences(evs, 4) {
			checkConsistent(t, seq, runCallbacks(t, seq))
		}
	}
}
