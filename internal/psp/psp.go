// Package psp is the port every payment service provider adapter
// implements (DESIGN.md §2), with the types that cross it and the errors
// that classify what went wrong. Adapters live in sub-packages, one per PSP;
// nothing outside them names a PSP.
package psp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/paygate/paygate/domain"
)

// Channel is one configured PSP account behind the common port.
type Channel interface {
	// Name is the channel's configured name (the path segment of its
	// callback URLs), not the PSP's.
	Name() string
	// Capabilities says which optional operations the PSP offers.
	Capabilities() Capabilities
	// Initiate creates a payment at the PSP for one attempt. It is safe to
	// call again with the same transaction code after an unknown outcome.
	Initiate(ctx context.Context, req InitiateRequest) (Session, error)
	// Query asks the PSP for an attempt's status by transaction code.
	Query(ctx context.Context, transactionCode string) (domain.Notification, error)
	// Refund asks the PSP to refund part or all of a captured attempt.
	Refund(ctx context.Context, req RefundRequest) (RefundResult, error)
	// QueryRefund asks the PSP for a refund's status by our refund reference.
	QueryRefund(ctx context.Context, refundRef string) (RefundResult, error)
	// SettledPayments lists the PSP's successful payments of one business
	// day, one page at a time; an empty NextPage ends the list.
	SettledPayments(ctx context.Context, day time.Time, page string) (SettlementPage, error)
	// ParseCallback verifies a raw callback's signature over its untouched
	// bytes and turns it into a notification. It does no I/O. Callers use
	// Verify, which also asks a channel's refund callback parser.
	ParseCallback(cb domain.Callback) (domain.Notification, error)
	// Ack is the HTTP answer the PSP expects once a callback is safely
	// stored.
	Ack() Ack
}

// Capabilities are the optional parts of the port a PSP offers.
type Capabilities struct {
	PartialRefund   bool
	Settlement      bool
	RefundCallbacks bool
	// ConfirmByQuery says whether a callback is confirmed with Query
	// before it changes anything (true for every built-in adapter but
	// Adyen, which has no status API by our reference: its verified
	// webhook decides).
	ConfirmByQuery bool
}

// InitiateRequest is what a PSP needs to create a payment.
type InitiateRequest struct {
	TransactionCode string
	OrderID         string
	Amount          domain.Money
	Country         string
	Method          string
	Description     string
	BuyerEmail      string
	BuyerIP         string
	// NotifyURL receives the PSP's async webhook; ReturnURL the buyer's
	// browser after paying (the sync callback).
	NotifyURL string
	ReturnURL string
}

// Session is what the buyer needs to pay: where to go, and what to carry.
type Session struct {
	PSPReference string
	PayURL       string
	Token        string
	// Form holds fields to POST to PayURL for PSPs that want a form post.
	Form map[string]string
	// ExpiresAt is when the PSP stops accepting the payment (zero: unknown).
	ExpiresAt time.Time
}

// RefundRequest asks for money back. RefundRef stays the same on every
// retry so that the PSP deduplicates.
type RefundRequest struct {
	RefundRef       string
	TransactionCode string
	PSPReference    string
	Amount          domain.Money
	Reason          string
}

// RefundStatus is a refund's state at the PSP.
type RefundStatus struct{ s string }

// Refund statuses at the PSP.
var (
	RefundPending   = RefundStatus{"pending"}
	RefundSucceeded = RefundStatus{"succeeded"}
	RefundFailed    = RefundStatus{"failed"}
	RefundUnknown   = RefundStatus{"unknown"}
)

// String is the status as stored.
func (s RefundStatus) String() string { return s.s }

// RefundResult is a PSP's answer about one refund.
type RefundResult struct {
	RefundRef    string
	PSPReference string
	Status       RefundStatus
	Amount       domain.Money
}

// SettlementPage is one page of a day's settled payments.
type SettlementPage struct {
	Rows     []SettlementRow
	NextPage string
}

// SettlementRow is one payment in a PSP's settlement list.
type SettlementRow struct {
	TransactionCode string
	PSPReference    string
	Amount          domain.Money
	Status          domain.PSPStatus
	SettledAt       time.Time
}

// Ack is an HTTP answer to a PSP.
type Ack struct {
	Status      int
	ContentType string
	Body        string
}

// Errors every adapter returns, wrapped, so callers decide by errors.Is.
var (
	// ErrBadSignature: the callback is not signed by the PSP (forged,
	// tampered, wrong secret). Permanent.
	ErrBadSignature = errors.New("bad signature")
	// ErrStale: the signed timestamp is outside the tolerance. Permanent.
	ErrStale = errors.New("signature timestamp outside tolerance")
	// ErrMalformed: the callback or PSP answer cannot be read. Permanent.
	ErrMalformed = errors.New("malformed PSP message")
	// ErrUnsupported: the PSP lacks the capability. Permanent.
	ErrUnsupported = errors.New("not supported by this PSP")
	// ErrDeclined: the PSP refused the operation for good. Permanent.
	ErrDeclined = errors.New("declined by PSP")
	// ErrNotFound: the PSP does not know the reference.
	ErrNotFound = errors.New("unknown at PSP")
)

// ErrVerified is matched (errors.Is) by the error of a callback refused
// after its signature verified: an event type paygate does not act on, a
// signed body it cannot read, a notification for another account. It
// tells an operator (`paygate psp verify`) that the channel's secrets are
// right and the refusal is about what the PSP said. Adapters mark such
// errors with Verified; the error keeps its own class (ErrMalformed,
// ErrStale, ErrUnsupported) and message.
var ErrVerified = errors.New("signature verified")

// Verified marks err as found after the callback's signature verified.
// The message is err's; nil stays nil.
func Verified(err error) error {
	if err == nil {
		return nil
	}
	return verifiedError{err}
}

type verifiedError struct{ err error }

func (e verifiedError) Error() string        { return e.err.Error() }
func (e verifiedError) Unwrap() error        { return e.err }
func (e verifiedError) Is(target error) bool { return target == ErrVerified }

// ErrCertificateMissing is matched by the error of a callback whose
// signature needs a certificate the channel does not hold (PayPal's
// signing certificate, named by URL): the gateway fetches it and tries
// again; an offline tool cannot, and says which one to pin.
var ErrCertificateMissing = errors.New("signing certificate not at hand")

// Offline says how to build a channel for a tool that verifies captured
// callbacks offline (`paygate psp verify`): it never reaches the network,
// judges the certificates it holds at At (the callback's receipt time,
// not today), and may read pinned certificates from CertDir (files named
// like the last path segment of their URL, optionally with .pem).
type Offline struct {
	At      time.Time
	CertDir string
}

// TemporaryError is a failure that may pass when retried: a timeout, a
// connection error, a 5xx or 429 answer. The outcome of the call is
// unknown, so a mutating call must be resolved by a query, or retried with
// the same idempotent reference.
type TemporaryError struct {
	Op  string
	Err error
}

func (e *TemporaryError) Error() string { return fmt.Sprintf("%s: temporary: %v", e.Op, e.Err) }

// Unwrap returns the cause.
func (e *TemporaryError) Unwrap() error { return e.Err }

// Temporary reports true: the kafka-go and net conventions.
func (e *TemporaryError) Temporary() bool { return true }

// IsTemporary reports whether err (or its chain) is a TemporaryError.
func IsTemporary(err error) bool {
	var t *TemporaryError
	return errors.As(err, &t)
}

// Registry is the set of configured channels by name. It is built once in
// cmd and read concurrently afterwards.
type Registry map[string]Channel

// Channel returns the channel with the given name.
func (r Registry) Channel(name string) (Channel, bool) {
	c, ok := r[name]
	return c, ok
}

// ReferenceQuerier is implemented by channels whose status query needs
// the PSP's own reference of the payment (PayPal looks orders up by its
// order id only). Callers use QueryAttempt, which picks the method.
type ReferenceQuerier interface {
	QueryByReference(ctx context.Context, transactionCode, pspReference string) (domain.Notification, error)
}

// QueryAttempt asks ch for an attempt's status, giving the PSP's
// reference to channels that need it ("" when none is known yet).
func QueryAttempt(ctx context.Context, ch Channel, transactionCode, pspReference string) (domain.Notification, error) {
	if rq, ok := ch.(ReferenceQuerier); ok {
		return rq.QueryByReference(ctx, transactionCode, pspReference)
	}
	return ch.Query(ctx, transactionCode)
}

// RefundQuery names a refund by every reference paygate has of it.
type RefundQuery struct {
	// RefundRef is our reference (always set).
	RefundRef string
	// PSPReference is the PSP's id of the refund, once it answered one.
	PSPReference string
	// TransactionCode and PaymentPSPReference name the refunded attempt.
	TransactionCode     string
	PaymentPSPReference string
}

// RefundReferenceQuerier is implemented by channels that find a refund
// only by the PSP's own ids (PayPal by its refund id). Callers use
// QueryRefundOf.
type RefundReferenceQuerier interface {
	QueryRefundByReference(ctx context.Context, q RefundQuery) (RefundResult, error)
}

// QueryRefundOf asks ch about a refund, with every reference it may need.
func QueryRefundOf(ctx context.Context, ch Channel, q RefundQuery) (RefundResult, error) {
	if rq, ok := ch.(RefundReferenceQuerier); ok {
		return rq.QueryRefundByReference(ctx, q)
	}
	return ch.QueryRefund(ctx, q.RefundRef)
}

// ErrNotRefundCallback: a RefundCallbackParser was handed a callback that
// is not about a refund (a payment's webhook on the same endpoint): Verify
// then has ParseCallback judge it. It says nothing about the signature.
var ErrNotRefundCallback = errors.New("not a refund callback")

// RefundCallbackParser is implemented by channels whose PSP reports a
// refund's outcome in a callback (Capabilities.RefundCallbacks), on the
// same endpoint as its payment callbacks. ParseRefundCallback verifies the
// callback's signature exactly as ParseCallback does and returns the
// refund's result: RefundRef is our refund reference the PSP echoes,
// PSPReference the PSP's id of the refund, Status succeeded, failed or
// pending. A callback about anything else is ErrNotRefundCallback (checked
// before the signature, so that ParseCallback judges it alone). It does no
// I/O. Verify asks it before ParseCallback.
type RefundCallbackParser interface {
	ParseRefundCallback(cb domain.Callback) (RefundResult, error)
}

// parseRefund asks ch to read cb as a refund callback: ErrNotRefundCallback
// for channels without refund callbacks.
func parseRefund(ch Channel, cb domain.Callback) (RefundResult, error) {
	if p, ok := ch.(RefundCallbackParser); ok {
		return p.ParseRefundCallback(cb)
	}
	return RefundResult{}, ErrNotRefundCallback
}
