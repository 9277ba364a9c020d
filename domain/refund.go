package domain

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// RefundStatus is where a refund is in its life, a closed enum (DESIGN.md
// §6): queued → calling → (succeeded | failed | pending_at_psp →
// (succeeded | failed)). It says whether the money is back; whether the
// PSP accepted the call is CallStatus, tracked apart.
type RefundStatus struct{ s string }

// The refund states.
var (
	// RefundQueued: accepted and validated, waiting for its turn (one
	// refund per order is in flight at a time).
	RefundQueued = RefundStatus{"queued"}
	// RefundCalling: its turn has come; the PSP is being (or was) asked.
	// A refund found calling after a crash or a timeout has an unknown
	// outcome, resolved by QueryRefund, never by calling again blindly.
	RefundCalling = RefundStatus{"calling"}
	// RefundPendingAtPSP: the PSP accepted it and has not finished it.
	RefundPendingAtPSP = RefundStatus{"pending_at_psp"}
	// RefundSucceeded: the money is back with the buyer. Final.
	RefundSucceeded = RefundStatus{"succeeded"}
	// RefundFailed: rejected by paygate or the PSP, or failed at the PSP.
	// Final; its amount is refundable again.
	RefundFailed = RefundStatus{"failed"}
)

var refundStatuses = []RefundStatus{RefundQueued, RefundCalling, RefundPendingAtPSP, RefundSucceeded, RefundFailed}

// RefundUnfinished is the statuses of a refund not yet final: money
// asked back and not yet back, or not yet refused.
var RefundUnfinished = []RefundStatus{RefundQueued, RefundCalling, RefundPendingAtPSP}

// RefundsInFlight is how many refunds are in one unfinished status, and
// when the oldest of them was requested (zero if none).
type RefundsInFlight struct {
	Status RefundStatus
	Count  int
	Oldest time.Time
}

// ParseRefundStatus reads a stored refund status.
func ParseRefundStatus(s string) (RefundStatus, error) {
	for _, st := range refundStatuses {
		if st.s == s {
			return st, nil
		}
	}
	return RefundStatus{}, fmt.Errorf("unknown refund status %q", s)
}

// String is the status as stored and shown.
func (s RefundStatus) String() string { return s.s }

// IsFinal reports whether the refund will not change any more.
func (s RefundStatus) IsFinal() bool { return s == RefundSucceeded || s == RefundFailed }

// InFlight reports whether the refund holds its order's one refund slot:
// the PSP is being asked, or is working on it.
func (s RefundStatus) InFlight() bool { return s == RefundCalling || s == RefundPendingAtPSP }

// CallStatus says whether the PSP accepted the refund call, a closed enum;
// the zero value means no call has been answered or has failed yet.
type CallStatus struct{ s string }

// The call statuses.
var (
	CallNone    = CallStatus{""}
	CallOK      = CallStatus{"ok"}
	CallFailed  = CallStatus{"failed"}
	CallUnknown = CallStatus{"unknown"}
)

// ParseCallStatus reads a stored call status ("" is CallNone).
func ParseCallStatus(s string) (CallStatus, error) {
	for _, st := range []CallStatus{CallNone, CallOK, CallFailed, CallUnknown} {
		if st.s == s {
			return st, nil
		}
	}
	return CallStatus{}, fmt.Errorf("unknown call status %q", s)
}

// String is the status as stored ("" for CallNone).
func (s CallStatus) String() string { return s.s }

// Refund errors. A refund request that fails validation becomes a failed
// refund whose error wraps one of these; nothing is sent to the PSP.
var (
	ErrInvalidRefundID          = errors.New("invalid refund id")
	ErrUnknownOrder             = errors.New("unknown order")
	ErrUnknownAttempt           = errors.New("unknown attempt")
	ErrNotCaptured              = errors.New("nothing captured to refund")
	ErrRefundExceedsCapture     = errors.New("refund exceeds what is refundable")
	ErrPartialRefundUnsupported = errors.New("partial refunds are not supported by the channel")
	ErrChannelNotConfigured     = errors.New("channel is not configured")
)

// refundIDPattern is what paygate accepts as a refund id: the
// requester's idempotency key, which ends up in URLs, event ids and keys.
var refundIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// ValidRefundID reports whether id is acceptable as a refund id.
func ValidRefundID(id string) error {
	if !refundIDPattern.MatchString(id) {
		return fmt.Errorf("%w %q: 1-128 characters of A-Z a-z 0-9 . _ : -, starting with a letter or digit", ErrInvalidRefundID, id)
	}
	return nil
}

// RefundIntent is a decoded refund request: someone (finance, or paygate
// for a duplicate payment) asks for money back.
type RefundIntent struct {
	// MessageID is the request message's id (ce_id or topic/partition/offset).
	MessageID string
	// RefundID is the requester's idempotency key.
	RefundID string
	OrderID  string
	// TransactionCode names the attempt to refund; "" means the attempt
	// that paid the order.
	TransactionCode string
	Amount          Money
	Reason          string
	// BodyHash identifies the request's content: the same RefundID with
	// another hash is a conflict, never an update.
	BodyHash []byte
	// Raw is the request as received, kept as evidence.
	Raw []byte
}

// Validate checks what does not depend on stored state.
func (in RefundIntent) Validate() error {
	if err := ValidRefundID(in.RefundID); err != nil {
		return err
	}
	if err := ValidOrderID(in.OrderID); err != nil {
		return err
	}
	if in.Amount.IsZero() || in.Amount.Minor() <= 0 {
		return fmt.Errorf("refund %s: amount: %w", in.RefundID, ErrNonPositive)
	}
	return nil
}

// Refund is one refund of (part of) one captured attempt. Its state
// changes only through its methods; the store rebuilds one with
// RestoreRefund.
type Refund struct {
	id      string
	ref     string
	orderID string
	code    string
	channel string
	amount  Money
	reason  string
	status  RefundStatus
	call    CallStatus
	pspRef  string
	errText string
	payRef  string
}

// RefundState is the stored shape of a Refund, for RestoreRefund.
type RefundState struct {
	ID, Ref, OrderID, TransactionCode, Channel string
	Amount                                     Money
	Reason                                     string
	Status                                     RefundStatus
	Call                                       CallStatus
	// PSPReference is the PSP's id of the refund.
	PSPReference string
	// PaymentPSPReference is the PSP's id of the refunded payment.
	PaymentPSPReference string
	Error               string
}

// RestoreRefund rebuilds a refund from storage; it trusts its input.
func RestoreRefund(s RefundState) Refund {
	return Refund{id: s.ID, ref: s.Ref, orderID: s.OrderID, code: s.TransactionCode, channel: s.Channel,
		amount: s.Amount, reason: s.Reason, status: s.Status, call: s.Call, pspRef: s.PSPReference,
		errText: s.Error, payRef: s.PaymentPSPReference}
}

// State is the refund's stored shape.
func (r Refund) State() RefundState {
	return RefundState{ID: r.id, Ref: r.ref, OrderID: r.orderID, TransactionCode: r.code, Channel: r.channel,
		Amount: r.amount, Reason: r.reason, Status: r.status, Call: r.call, PSPReference: r.pspRef,
		PaymentPSPReference: r.payRef, Error: r.errText}
}

// ID is the requester's refund id.
func (r Refund) ID() string { return r.id }

// Ref is paygate's reference of the refund at the PSP: the same on every
// call and query, so that the PSP deduplicates retries.
func (r Refund) Ref() string { return r.ref }

// OrderID is the order whose attempt is refunded.
func (r Refund) OrderID() string { return r.orderID }

// TransactionCode is the refunded attempt ("" if the request named none
// and was rejected before one was found).
func (r Refund) TransactionCode() string { return r.code }

// Channel is the refunded attempt's channel.
func (r Refund) Channel() string { return r.channel }

// Amount is what is refunded.
func (r Refund) Amount() Money { return r.amount }

// Reason is why the refund was asked for.
func (r Refund) Reason() string { return r.reason }

// Status is the refund's state (is the money back).
func (r Refund) Status() RefundStatus { return r.status }

// CallStatus says whether the PSP accepted the call.
func (r Refund) CallStatus() CallStatus { return r.call }

// PSPReference is the PSP's id of the refund, once known.
func (r Refund) PSPReference() string { return r.pspRef }

// PaymentPSPReference is the PSP's id of the refunded payment.
func (r Refund) PaymentPSPReference() string { return r.payRef }

// ErrorText explains a failed refund, or the last problem of one in progress.
func (r Refund) ErrorText() string { return r.errText }

// RefundRules are what DecideRefund needs to know of the channels.
type RefundRules struct {
	// PartialRefund reports whether a channel supports partial refunds;
	// ok is false for a channel that is not configured.
	PartialRefund func(channel string) (supported, ok bool)
}

// DecideRefund validates a refund request against its order (nil if
// unknown), the order's attempts and the refunds already recorded for the
// order, and returns the refund to record: queued, or failed with the
// reason when the request is refused (the error, wrapping a sentinel, is
// returned too). ref is the PSP reference to give a queued refund. Rules:
// the attempt (the named one, else the one that paid the order) is
// captured (paid) — a duplicate or late payment's attempt is, though it
// is not the order's paid attempt; the currency is the attempt's; the
// amount is positive; the refunds of the attempt that have not failed
// (succeeded, in flight or queued) plus this one never exceed the
// captured amount; and a refund of less than the captured amount needs a
// channel with partial refunds.
func DecideRefund(in RefundIntent, o *Order, attempts []Attempt, existing []Refund, rules RefundRules, ref string) (Refund, error) {
	r := Refund{id: in.RefundID, orderID: in.OrderID, code: in.TransactionCode, amount: in.Amount, reason: in.Reason, status: RefundQueued}
	a, err := decideRefund(in, o, attempts, existing, rules)
	if a != nil {
		r.code, r.channel, r.payRef = a.code, a.channel, a.pspRef
	}
	if err != nil {
		r.status, r.errText = RefundFailed, err.Error()
		return r, err
	}
	r.ref = ref
	return r, nil
}

func decideRefund(in RefundIntent, o *Order, attempts []Attempt, existing []Refund, rules RefundRules) (*Attempt, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if o == nil {
		return nil, fmt.Errorf("refund %s: order %s: %w", in.RefundID, in.OrderID, ErrUnknownOrder)
	}
	code := in.TransactionCode
	if code == "" {
		if o.paidAttempt == "" {
			return nil, fmt.Errorf("refund %s: order %s is %s, no attempt paid it: %w", in.RefundID, o.id, o.status, ErrNotCaptured)
		}
		code = o.paidAttempt
	}
	var a *Attempt
	for i := range attempts {
		if attempts[i].code == code && attempts[i].orderID == o.id {
			a = &attempts[i]
		}
	}
	if a == nil {
		return nil, fmt.Errorf("refund %s: order %s has no attempt %q: %w", in.RefundID, o.id, code, ErrUnknownAttempt)
	}
	if a.status != AttemptPaid {
		return a, fmt.Errorf("refund %s: attempt %s is %s: %w", in.RefundID, a.code, a.status, ErrNotCaptured)
	}
	captured := a.amount
	if in.Amount.Currency() != captured.Currency() {
		return a, fmt.Errorf("refund %s: attempt %s was paid in %s, refund asks %s: %w",
			in.RefundID, a.code, captured.Currency().Code(), in.Amount.Currency().Code(), ErrCurrencyMismatch)
	}
	partial, ok := true, true
	if rules.PartialRefund != nil {
		partial, ok = rules.PartialRefund(a.channel)
	}
	if !ok {
		return a, fmt.Errorf("refund %s: attempt %s: channel %q: %w", in.RefundID, a.code, a.channel, ErrChannelNotConfigured)
	}
	taken := Money{cur: captured.cur}
	for _, e := range existing {
		if e.code != a.code || e.status == RefundFailed || e.id == in.RefundID {
			continue
		}
		if t, err := taken.Add(e.amount); err == nil {
			taken = t
		}
	}
	left, err := captured.Sub(taken)
	if err != nil { // more refunded than captured already: nothing is left
		left = Money{cur: captured.cur}
	}
	if in.Amount.minor > left.minor {
		return a, fmt.Errorf("refund %s of %s: attempt %s captured %s, %s is refunded or in progress, %s is left: %w",
			in.RefundID, in.Amount, a.code, captured, taken, left, ErrRefundExceedsCapture)
	}
	if in.Amount.minor < captured.minor && !partial {
		return a, fmt.Errorf("refund %s of %s: attempt %s captured %s and channel %s refunds only the whole amount: %w",
			in.RefundID, in.Amount, a.code, captured, a.channel, ErrPartialRefundUnsupported)
	}
	return a, nil
}

// Start gives a queued refund its turn: queued → calling.
func (r Refund) Start() (Refund, error) {
	if r.status != RefundQueued {
		return r, fmt.Errorf("refund %s %s → calling: %w", r.id, r.status, ErrBadTransition)
	}
	r.status = RefundCalling
	return r, nil
}

// Answered records what the PSP said about the refund, in answer to the
// refund call or to a query: the PSP has it (call ok) and it is pending,
// succeeded or failed. PSPUnknown is not an answer to record: the caller
// decides (a query that finds nothing means the call never arrived).
func (r Refund) Answered(status PSPStatus, pspRef, reason string) (Refund, error) {
	if !r.status.InFlight() {
		return r, fmt.Errorf("refund %s %s: PSP answer %s: %w", r.id, r.status, status, ErrBadTransition)
	}
	switch status {
	case PSPPending:
		r.status = RefundPendingAtPSP
	case PSPSucceeded:
		r.status = RefundSucceeded
	case PSPFailed:
		r.status = RefundFailed
		if reason == "" {
			reason = "the payment service provider reports the refund failed"
		}
	default:
		return r, fmt.Errorf("refund %s: PSP status %s is not an answer: %w", r.id, status, ErrBadTransition)
	}
	r.call, r.errText = CallOK, reason
	if pspRef != "" {
		r.pspRef = pspRef
	}
	return r, nil
}

// CallFailed records that the PSP refused the refund call for good
// (declined, unknown payment, not refundable): calling → failed.
func (r Refund) CallFailed(reason string) (Refund, error) {
	if r.status != RefundCalling {
		return r, fmt.Errorf("refund %s %s → failed (call refused): %w", r.id, r.status, ErrBadTransition)
	}
	r.status, r.call, r.errText = RefundFailed, CallFailed, reason
	return r, nil
}

// CallUnknown records that the refund call's outcome is unknown (a
// timeout, a lost connection): the refund stays calling, to be resolved
// by a query.
func (r Refund) CallUnknown(reason string) (Refund, error) {
	if r.status != RefundCalling {
		return r, fmt.Errorf("refund %s %s: unknown call outcome: %w", r.id, r.status, ErrBadTransition)
	}
	r.call, r.errText = CallUnknown, reason
	return r, nil
}

// Stalled records a problem that changes nothing (a failed query): the
// refund keeps its state, with the reason kept as its last error.
func (r Refund) Stalled(reason string) Refund {
	r.errText = reason
	return r
}

// Outcomes of a PSP's refund callback, as stored with the callback.
const (
	// RefundNoticeSucceeded and RefundNoticeFailed: the callback made the
	// refund final.
	RefundNoticeSucceeded = "refund_succeeded"
	RefundNoticeFailed    = "refund_failed"
	// RefundNoticePending: the PSP says it is still working on it;
	// nothing changes (the refund's worker or poller moves it on).
	RefundNoticePending = "refund_pending"
	// RefundNoticeRepeated: the refund was already final with the status
	// the callback states (a repeated webhook); nothing changes.
	RefundNoticeRepeated = "refund_repeated"
)

// NotifiedByPSP applies a PSP's verified refund callback stating status
// (succeeded, failed or pending), with the PSP's id of the refund. It is
// the callback path's decision: a refund in flight (calling or
// pending_at_psp) becomes final exactly as a query's answer would make it
// (Answered); a pending statement changes nothing, as the refund's worker
// or the poller owns a refund in flight until it is final; a refund
// already final with the same status is a repeated webhook and changes
// nothing. It returns the refund, the outcome (RefundNotice*) and whether
// the refund changed. Refused, wrapping ErrBadTransition: a queued refund
// (the PSP was never asked about it), a final refund the callback
// contradicts (succeeded, now said failed, or the reverse: a person must
// look; the refund stays as it is), and a status that is no statement.
func (r Refund) NotifiedByPSP(status PSPStatus, pspRef string) (Refund, string, bool, error) {
	switch status {
	case PSPSucceeded, PSPFailed, PSPPending:
	default:
		return r, "", false, fmt.Errorf("refund %s: PSP callback status %s is not a statement: %w", r.id, status, ErrBadTransition)
	}
	switch {
	case r.status == RefundQueued:
		return r, "", false, fmt.Errorf("refund %s is queued, not sent: PSP callback says %s: %w", r.id, status, ErrBadTransition)
	case status == PSPPending:
		return r, RefundNoticePending, false, nil
	case r.status.IsFinal():
		if (r.status == RefundSucceeded) != (status == PSPSucceeded) {
			return r, "", false, fmt.Errorf("refund %s is %s, PSP callback now says %s: %w", r.id, r.status, status, ErrBadTransition)
		}
		return r, RefundNoticeRepeated, false, nil
	}
	nr, err := r.Answered(status, pspRef, "")
	if err != nil {
		return r, "", false, err
	}
	if nr.status == RefundSucceeded {
		return nr, RefundNoticeSucceeded, true, nil
	}
	return nr, RefundNoticeFailed, true, nil
}

// RefundNotice is a PSP's callback about a refund, verified by its
// channel (or rejected, with the reason), for the callback path.
type RefundNotice struct {
	// Callback is the message, as received.
	Callback Callback
	// Raw is the message value as consumed (the whole raw callback),
	// kept as evidence.
	Raw []byte
	// RefundRef is paygate's refund reference the PSP echoes;
	// PSPReference the PSP's id of the refund.
	RefundRef    string
	PSPReference string
	// Status is what the PSP states: succeeded, failed or pending.
	Status PSPStatus
	// Refusal is why the callback changes nothing (zero if verified).
	Refusal Refusal
}

// RefundNoticeApplied is what became of one refund callback.
type RefundNoticeApplied struct {
	MessageID string
	// Duplicate is true when the message had been stored before.
	Duplicate bool
	// Outcome is one of RefundNotice* ("" when rejected or duplicate).
	Outcome string
	// Refund is the refund after the callback, when the reference was
	// known.
	Refund *Refund
	// Rejected is the RefundNotice's refusal, or says why the store could
	// not apply it (unknown reference, another channel's refund, a
	// transition the domain refuses).
	Rejected string
}

// ApplyRefunds moves the order on after a refund of attempt a finished:
// refunded is what has been refunded of a in all. Only refunds of the
// attempt that paid the order change it (partially_refunded, or refunded
// once the whole capture is back); refunds of duplicate or late payments
// leave it as it is.
func (o Order) ApplyRefunds(a Attempt, refunded Money) (Order, error) {
	if a.code != o.paidAttempt || o.paidAttempt == "" {
		return o, nil
	}
	if !o.status.IsPaid() {
		return o, fmt.Errorf("order %s %s: refund of %s: %w", o.id, o.status, a.code, ErrBadTransition)
	}
	switch c, err := refunded.Cmp(a.amount); {
	case err != nil:
		return o, fmt.Errorf("order %s: %w", o.id, err)
	case c > 0:
		return o, fmt.Errorf("order %s: %s refunded of %s captured: %w", o.id, refunded, a.amount, ErrRefundExceedsCapture)
	case c == 0:
		o.status = OrderRefunded
	case refunded.minor > 0:
		if o.status == OrderRefunded {
			return o, fmt.Errorf("order %s refunded → partially_refunded: %w", o.id, ErrBadTransition)
		}
		o.status = OrderPartiallyRefunded
	}
	return o, nil
}

// NewRefundRef mints paygate's reference for a refund at the PSP: "R",
// the UTC time to the millisecond and 8 random base32 characters, 24
// characters in all, like a transaction code. It is minted once, when the
// refund is recorded, and used on every call and query after.
func NewRefundRef(now time.Time) string {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // crypto/rand never fails on Linux
	}
	u := now.UTC()
	return "R" + u.Format("060102150405") + u.Format(".000")[1:] + strings.ToUpper(base32.StdEncoding.EncodeToString(b[:]))
}

// RefundClaim is a refund a worker holds the right to move on: it calls
// or queries the PSP, then records the outcome under Lease.
type RefundClaim struct {
	Refund Refund
	// Lease is the claim's token: an outcome is recorded only if the
	// refund is still held under it.
	Lease string
	// Query is true when a call may have gone out before (the refund was
	// calling or pending at the PSP when claimed): ask the PSP first.
	Query bool
	// Polls is how many times the refund was queried or retried.
	Polls int
}

// RefundOutcome is what became of a claimed refund.
type RefundOutcome struct {
	Claim RefundClaim
	// Refund is the new state.
	Refund Refund
	// Retry is when to look again, for a refund that is not final.
	Retry time.Duration
}

// RefundRecorded says what recording one refund request did.
type RefundRecorded struct {
	MessageID string
	RefundID  string
	// Outcome is "queued", "rejected", "duplicate" (the same request seen
	// before) or "conflict" (the refund id is taken by another request).
	Outcome string
	// Err is why it was rejected or conflicts.
	Err string
}

// Outcomes of recording a refund request.
const (
	RecordedQueued    = "queued"
	RecordedRejected  = "rejected"
	RecordedDuplicate = "duplicate"
	RecordedConflict  = "conflict"
)
