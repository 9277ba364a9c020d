package psp

import (
	"errors"
	"fmt"

	"github.com/paygate/paygate/domain"
)

// VerdictKind is what Verify found a callback to be, a closed enum.
type VerdictKind struct{ s string }

// The verdicts.
var (
	// VerdictPayment: a payment's callback whose signature verified;
	// Verdict.Notification is what it states.
	VerdictPayment = VerdictKind{"payment"}
	// VerdictRefund: a refund's callback whose signature verified, which
	// names our refund reference and states succeeded, failed or pending;
	// Verdict.Refund is what it states.
	VerdictRefund = VerdictKind{"refund"}
	// VerdictProbe: a status probe paygate asked for itself. Nothing to
	// verify: it names the attempt to query (Callback.TransactionCode).
	VerdictProbe = VerdictKind{"status_probe"}
	// VerdictRefused: forged, stale, unreadable, or about nothing paygate
	// acts on; Verdict.Err says why. It changes nothing and is kept as
	// evidence.
	VerdictRefused = VerdictKind{"refused"}
	// VerdictNotYet: the channel cannot judge the callback yet (a
	// temporary error: PayPal's signing certificate, which the channel
	// fetches in the background, not in its cache yet); Verdict.Err says
	// why. Judge it again later, rather than store it as refused.
	VerdictNotYet = VerdictKind{"not_yet"}
)

// String is the verdict's name.
func (k VerdictKind) String() string { return k.s }

// Verdict is Verify's judgement of one callback.
type Verdict struct {
	Kind VerdictKind
	// Notification is what a payment's callback states (VerdictPayment).
	Notification domain.Notification
	// Refund is set when the channel's refund callback parser claimed
	// the callback: what it states (VerdictRefund), or, refused
	// (VerdictRefused), the references it could read, stored with the
	// refusal.
	Refund *RefundResult
	// Err is why the callback was refused (VerdictRefused) or cannot be
	// judged yet (VerdictNotYet), of the classes above (ErrBadSignature,
	// ErrStale, ErrMalformed, ErrUnsupported; a TemporaryError; marked
	// ErrVerified when the signature was good); nil otherwise.
	Err error
}

// Refusal is the refusal of a refused callback, Err's message as the
// reason stored; zero for any other verdict.
func (v Verdict) Refusal() domain.Refusal {
	if v.Kind != VerdictRefused {
		return domain.Refusal{}
	}
	return domain.Refuse(v.Err.Error())
}

// RefundStatus is what a verified refund callback states, as the domain
// reads it (succeeded, failed or pending); zero for any other verdict.
func (v Verdict) RefundStatus() domain.PSPStatus {
	if v.Kind != VerdictRefund {
		return domain.PSPStatus{}
	}
	st, _ := refundStatus(v.Refund.Status)
	return st
}

// Verify judges one callback of channel ch: the one place a callback
// becomes a payment's notification, a refund's result, a refusal, or a
// "cannot judge yet". The ingress runs it to key the message and to send
// a returning buyer on; the callbacks group runs it again on what it
// read, at the stored ReceivedAt, and its verdict decides. It does no I/O
// (the channel's parsers do none).
//
// A status probe has nothing to verify (one naming no attempt is
// refused), and a callback whose query cannot be read is refused
// unread. Otherwise the channel's refund callback parser, if it has one,
// is asked first: it claims a refund event by its type and verifies it,
// or answers ErrNotRefundCallback before any verification, and then
// ParseCallback alone judges the callback. So every callback is verified
// once per run, and the payment parser need not know refund events
// (trying ParseCallback first and falling back on ErrUnsupported would
// not tell a refund event from a browser return or any other event it
// does not take). A verified refund callback that names no refund
// reference, or states no status paygate reads, is refused, as is a
// payment's notification that names no transaction code. A temporary
// error, from either parser, is VerdictNotYet.
func Verify(ch Channel, cb domain.Callback) Verdict {
	switch {
	case cb.Kind == domain.CallbackStatusProbe && cb.TransactionCode == "":
		return Verdict{Kind: VerdictRefused, Err: malformed("status probe names no transaction code")}
	case cb.Kind == domain.CallbackStatusProbe:
		return Verdict{Kind: VerdictProbe}
	case cb.QueryErr != nil:
		return Verdict{Kind: VerdictRefused, Err: malformed(fmt.Sprintf("malformed query: %v", cb.QueryErr))}
	}
	if res, err := parseRefund(ch, cb); !errors.Is(err, ErrNotRefundCallback) {
		return refundVerdict(res, err)
	}
	n, err := ch.ParseCallback(cb)
	switch {
	case err == nil && n.TransactionCode == "":
		// An adapter's fault: nothing to key it by, nothing to decide.
		return Verdict{Kind: VerdictRefused, Err: malformed("notification names no transaction code")}
	case err == nil:
		return Verdict{Kind: VerdictPayment, Notification: n}
	case IsTemporary(err):
		return Verdict{Kind: VerdictNotYet, Err: err}
	}
	return Verdict{Kind: VerdictRefused, Err: err}
}

// refundVerdict is Verify's verdict on what a refund callback parser
// said.
func refundVerdict(res RefundResult, err error) Verdict {
	v := Verdict{Kind: VerdictRefused, Refund: &res}
	switch {
	case err != nil && IsTemporary(err):
		return Verdict{Kind: VerdictNotYet, Err: err}
	case err != nil:
		v.Err = err
	case res.RefundRef == "":
		v.Err = malformed("refund callback names no refund reference")
	default:
		if _, ok := refundStatus(res.Status); !ok {
			v.Err = malformed(fmt.Sprintf("refund callback states no refund status (%q)", res.Status))
		} else {
			v.Kind = VerdictRefund
		}
	}
	return v
}

// refundStatus is a refund callback's status as the domain reads it: ok
// for succeeded, failed and pending only.
func refundStatus(s RefundStatus) (domain.PSPStatus, bool) {
	switch s {
	case RefundSucceeded:
		return domain.PSPSucceeded, true
	case RefundFailed:
		return domain.PSPFailed, true
	case RefundPending:
		return domain.PSPPending, true
	}
	return domain.PSPStatus{}, false
}

// malformed is a refusal of Verify's own: its text is the reason stored,
// and it is of class ErrMalformed.
type malformed string

func (e malformed) Error() string        { return string(e) }
func (e malformed) Is(target error) bool { return target == ErrMalformed }
