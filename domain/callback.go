package domain

import (
	"errors"
	"fmt"
	"time"
)

// PSPStatus is what a PSP says about one attempt, a closed enum.
type PSPStatus struct{ s string }

// The statuses a notification or a status query can report.
var (
	PSPSucceeded = PSPStatus{"succeeded"}
	PSPFailed    = PSPStatus{"failed"}
	PSPPending   = PSPStatus{"pending"}
	// PSPUnknown means the PSP does not know the attempt (never created,
	// or created and abandoned before the buyer arrived).
	PSPUnknown = PSPStatus{"unknown"}
)

// ParsePSPStatus reads a status as stored.
func ParsePSPStatus(s string) (PSPStatus, error) {
	for _, st := range []PSPStatus{PSPSucceeded, PSPFailed, PSPPending, PSPUnknown} {
		if st.s == s {
			return st, nil
		}
	}
	return PSPStatus{}, fmt.Errorf("unknown PSP status %q", s)
}

// String is the status as stored.
func (s PSPStatus) String() string { return s.s }

// Notification is a verified statement by a PSP about one attempt: from an
// async webhook, a sync browser return or a status query.
type Notification struct {
	// TransactionCode is our attempt reference the PSP echoes back.
	TransactionCode string
	// PSPReference is the PSP's own id of the payment ("" if the PSP gave none).
	PSPReference string
	// EventID is the PSP's id of this notification, "" where it has none.
	EventID string
	Status  PSPStatus
	// Amount is what the PSP says was collected (zero Money if it did not say).
	Amount Money
	// OccurredAt is when the PSP says it happened (zero if it did not say).
	OccurredAt time.Time
}

// Outcome is what the callback decision table decided, a closed enum.
type Outcome struct{ s string }

// The outcomes of DESIGN.md §5.
var (
	// OutcomePaid: a pending order is paid by this attempt; emit `paid`.
	OutcomePaid = Outcome{"paid"}
	// OutcomeDuplicateNotification: the same fact again; change nothing.
	OutcomeDuplicateNotification = Outcome{"duplicate_notification"}
	// OutcomeDuplicatePayment: the order was already paid by another
	// attempt (or another PSP transaction); record and refund this one.
	OutcomeDuplicatePayment = Outcome{"duplicate_payment"}
	// OutcomeLatePayment: money arrived for a closed order; refund it.
	OutcomeLatePayment = Outcome{"late_payment"}
	// OutcomeAmountMismatch: the PSP reports another amount or currency
	// than the attempt asked for; never paid, flagged for review.
	OutcomeAmountMismatch = Outcome{"amount_mismatch"}
	// OutcomeFailed: the attempt failed; the order stays payable.
	OutcomeFailed = Outcome{"failed"}
	// OutcomeFailureIgnored: a failure after a success; logged only.
	OutcomeFailureIgnored = Outcome{"failure_ignored"}
	// OutcomeStillPending: nothing final yet.
	OutcomeStillPending = Outcome{"pending"}
	// OutcomeExpired: the PSP still has nothing final after the attempt
	// expired; the attempt is given up.
	OutcomeExpired = Outcome{"expired"}
)

// String is the outcome as stored and logged.
func (o Outcome) String() string { return o.s }

// Decision is the result of applying one notification: the outcome and the
// new states of the order and the attempt.
type Decision struct {
	Outcome Outcome
	Order   Order
	Attempt Attempt
	// Changed reports whether Order or Attempt differ from the input.
	Changed bool
	// Reason explains review flags and ignored notifications.
	Reason string
	// Repeat is the payment to give back, for duplicate and late payments.
	Repeat *RepeatPayment
}

// RepeatPayment is money a buyer paid that the order does not need: a
// success for an already paid order (duplicate) or for a closed one
// (late). It is recorded and refunded in whole.
type RepeatPayment struct {
	Kind            Outcome
	OrderID         string
	TransactionCode string
	Channel         string
	PSPReference    string
	Amount          Money
	// Manual is true when paygate cannot refund it by itself: a second
	// PSP transaction under an attempt that is already paid (refunds go
	// by attempt). A person must refund it at the PSP.
	Manual bool
}

// RefundID is the stable id of the refund that gives the payment back,
// so that however often the payment is detected, one refund is asked for.
func (r RepeatPayment) RefundID() string {
	return "dup-" + r.TransactionCode + "-" + r.PSPReference
}

// ErrForeignAttempt means the notification, attempt and order do not
// belong together: a bug in the caller, never a PSP's doing.
var ErrForeignAttempt = errors.New("notification, attempt and order do not match")

// DecideCallback is the callback decision table (DESIGN.md §5): given the
// locked order, the notified attempt and a verified, confirmed
// notification, it says what happens. It is pure: the caller persists the
// new states and the events the outcome implies in one transaction.
func DecideCallback(o Order, a Attempt, n Notification) (Decision, error) {
	if a.orderID != o.id || n.TransactionCode != a.code {
		return Decision{}, fmt.Errorf("order %s, attempt %s (of %s), notification for %s: %w",
			o.id, a.code, a.orderID, n.TransactionCode, ErrForeignAttempt)
	}
	d := Decision{Order: o, Attempt: a}
	switch n.Status {
	case PSPSucceeded:
		return decideSuccess(d, n)
	case PSPFailed:
		return decideFailure(d)
	default: // pending or unknown: the PSP has nothing final to say
		d.Outcome = OutcomeStillPending
		return d, nil
	}
}

func decideSuccess(d Decision, n Notification) (Decision, error) {
	o, a := d.Order, d.Attempt
	// Any row: money that differs from what we asked for is never paid.
	if n.Amount.IsZero() || !n.Amount.Equal(a.amount) {
		d.Outcome = OutcomeAmountMismatch
		d.Reason = fmt.Sprintf("PSP reports %s, attempt asked %s", n.Amount, a.amount)
		if a.review != d.Reason {
			d.Attempt.review = d.Reason
			d.Changed = true
		}
		return d, nil
	}
	if a.status == AttemptPaid {
		if n.PSPReference != "" && a.pspRef != "" && n.PSPReference != a.pspRef {
			// Same attempt, another PSP transaction: the buyer paid twice
			// against one reference. Not ours to apply as a state change,
			// but the money must go back.
			d.Outcome = OutcomeDuplicatePayment
			d.Reason = fmt.Sprintf("attempt %s already paid by PSP transaction %s, now %s", a.code, a.pspRef, n.PSPReference)
			d.Repeat = repeat(d, n)
			d.Repeat.Manual = true
			return d, nil
		}
		d.Outcome = OutcomeDuplicateNotification
		return d, nil
	}
	na, err := a.become(AttemptPaid)
	if err != nil {
		return Decision{}, err
	}
	if n.PSPReference != "" {
		na.pspRef = n.PSPReference
	}
	d.Attempt, d.Changed = na, true
	switch {
	case o.status == OrderPending:
		no, err := o.pay(a.code)
		if err != nil {
			return Decision{}, err
		}
		d.Order, d.Outcome = no, OutcomePaid
	case o.status == OrderClosed:
		d.Outcome = OutcomeLatePayment
		d.Reason = fmt.Sprintf("order %s was closed before attempt %s succeeded", o.id, a.code)
		d.Repeat = repeat(d, n)
	default: // paid, partially_refunded or refunded by another attempt
		d.Outcome = OutcomeDuplicatePayment
		d.Reason = fmt.Sprintf("order %s already paid by attempt %s", o.id, o.paidAttempt)
		d.Repeat = repeat(d, n)
	}
	return d, nil
}

func repeat(d Decision, n Notification) *RepeatPayment {
	ref := n.PSPReference
	if ref == "" {
		ref = d.Attempt.pspRef
	}
	return &RepeatPayment{Kind: d.Outcome, OrderID: d.Order.id, TransactionCode: d.Attempt.code, Channel: d.Attempt.channel,
		PSPReference: ref, Amount: n.Amount}
}

// DecideExpiry gives up an attempt whose PSP still reports nothing final
// after the attempt expired. A paid, failed or expired attempt stays as
// it is.
func DecideExpiry(o Order, a Attempt) (Decision, error) {
	if a.orderID != o.id {
		return Decision{}, fmt.Errorf("order %s, attempt %s (of %s): %w", o.id, a.code, a.orderID, ErrForeignAttempt)
	}
	d := Decision{Order: o, Attempt: a, Outcome: OutcomeStillPending}
	if a.status != AttemptCreated && a.status != AttemptPending {
		return d, nil
	}
	na, err := a.become(AttemptExpired)
	if err != nil {
		return Decision{}, err
	}
	d.Attempt, d.Changed, d.Outcome = na, true, OutcomeExpired
	return d, nil
}

// DecideInbound decides one verified inbound message (a callback or a
// status probe) for attempt a of order o: by what the PSP confirmed, or
// else what the callback said (DecideCallback), and for a probe marked
// ExpireIfUnpaid that found nothing final, by DecideExpiry. An inbound
// message that says nothing (rejected, unconfirmed) leaves both as they
// are, still pending.
func DecideInbound(o Order, a Attempt, in Inbound) (Decision, error) {
	n := in.Effective()
	if n == nil {
		return Decision{Order: o, Attempt: a, Outcome: OutcomeStillPending}, nil
	}
	d, err := DecideCallback(o, a, *n)
	if err != nil {
		return d, err
	}
	if d.Outcome == OutcomeStillPending && in.Callback.ExpireIfUnpaid {
		return DecideExpiry(o, a)
	}
	return d, nil
}

func decideFailure(d Decision) (Decision, error) {
	switch d.Attempt.status {
	case AttemptPaid:
		d.Outcome = OutcomeFailureIgnored
		d.Reason = "failure notification after success"
	case AttemptFailed, AttemptExpired:
		// Already final and unpaid: the failure tells nothing new.
		d.Outcome = OutcomeDuplicateNotification
	default:
		na, err := d.Attempt.become(AttemptFailed)
		if err != nil {
			return Decision{}, err
		}
		d.Attempt, d.Changed, d.Outcome = na, true, OutcomeFailed
	}
	return d, nil
}
