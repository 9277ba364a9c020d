package psp_test

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

var cbAt = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// fakeChannel reads a webhook body "pay:<code>" as a payment,
// "refund:<ref>:<status>" as a refund (when refunds is set), "later" as a
// callback it cannot judge yet, and refuses anything starting "forged".
// It counts the parser calls.
type fakeChannel struct {
	psp.Channel
	calls *int
}

func (fakeChannel) Name() string { return "fake" }

func (c fakeChannel) ParseCallback(cb domain.Callback) (domain.Notification, error) {
	*c.calls++
	body := string(cb.Body)
	switch {
	case body == "later":
		return domain.Notification{}, &psp.TemporaryError{Op: "fake callback", Err: psp.ErrCertificateMissing}
	case strings.HasPrefix(body, "forged"):
		return domain.Notification{}, fmt.Errorf("fake webhook: %w", psp.ErrBadSignature)
	}
	code, ok := strings.CutPrefix(body, "pay:")
	if !ok {
		return domain.Notification{}, psp.Verified(fmt.Errorf("fake webhook: %q is not an event paygate acts on: %w", body, psp.ErrUnsupported))
	}
	return domain.Notification{TransactionCode: code, Status: domain.PSPSucceeded}, nil
}

// refundChannel is fakeChannel with refund callbacks.
type refundChannel struct{ fakeChannel }

func (c refundChannel) ParseRefundCallback(cb domain.Callback) (psp.RefundResult, error) {
	*c.calls++
	body := string(cb.Body)
	rest, ok := strings.CutPrefix(body, "refund:")
	switch {
	case !ok && !strings.HasPrefix(body, "forged refund"):
		return psp.RefundResult{}, psp.ErrNotRefundCallback
	case !ok:
		return psp.RefundResult{}, fmt.Errorf("fake refund webhook: %w", psp.ErrBadSignature)
	case rest == "later":
		return psp.RefundResult{}, &psp.TemporaryError{Op: "fake refund", Err: errors.New("not yet")}
	}
	ref, status, _ := strings.Cut(rest, ":")
	st := map[string]psp.RefundStatus{"succeeded": psp.RefundSucceeded, "failed": psp.RefundFailed, "pending": psp.RefundPending,
		"unknown": psp.RefundUnknown}[status]
	return psp.RefundResult{RefundRef: ref, PSPReference: "psp-" + ref, Status: st}, nil
}

// TestVerify: Verify's classification of every kind of callback — the one
// place a callback becomes a notification, a refund's result, a refusal
// (with the reason stored) or "not yet".
func TestVerify(t *testing.T) {
	t.Parallel()
	webhook := func(body string) domain.Callback {
		return domain.Callback{MessageID: "m", Kind: domain.CallbackAsync, Channel: "fake", Method: "POST", Path: "/v1/callbacks/fake",
			Query: url.Values{}, Body: []byte(body)}
	}
	badQuery := webhook("pay:T1")
	badQuery.RawQuery = "a=%zz"
	badQuery.Query, badQuery.QueryErr = url.ParseQuery(badQuery.RawQuery)
	cases := []struct {
		name     string
		refunds  bool // the channel has refund callbacks
		cb       domain.Callback
		kind     psp.VerdictKind
		code     string // the notification's transaction code
		refund   *psp.RefundResult
		status   domain.PSPStatus // RefundStatus
		reason   string           // the refusal's text ("" if none)
		class    error            // what Err is
		parsings int              // parser calls
	}{
		{name: "probe", cb: domain.ProbeCallback("p", "fake", "T1", cbAt, false), kind: psp.VerdictProbe},
		{name: "probe naming no attempt", cb: domain.ProbeCallback("p", "fake", "", cbAt, true), kind: psp.VerdictRefused,
			reason: "status probe names no transaction code", class: psp.ErrMalformed},
		{name: "malformed query", refunds: true, cb: badQuery, kind: psp.VerdictRefused,
			reason: `malformed query: invalid URL escape "%zz"`, class: psp.ErrMalformed},
		{name: "payment", cb: webhook("pay:T1"), kind: psp.VerdictPayment, code: "T1", parsings: 1},
		{name: "payment on a channel with refunds", refunds: true, cb: webhook("pay:T1"), kind: psp.VerdictPayment, code: "T1", parsings: 2},
		{name: "forged payment", refunds: true, cb: webhook("forged pay:T1"), kind: psp.VerdictRefused,
			reason: "fake webhook: bad signature", class: psp.ErrBadSignature, parsings: 2},
		{name: "payment naming no attempt", cb: webhook("pay:"), kind: psp.VerdictRefused,
			reason: "notification names no transaction code", class: psp.ErrMalformed, parsings: 1},
		{name: "not judged yet", cb: webhook("later"), kind: psp.VerdictNotYet, class: psp.ErrCertificateMissing, parsings: 1},
		{name: "refund succeeded", refunds: true, cb: webhook("refund:R1:succeeded"), kind: psp.VerdictRefund,
			refund: &psp.RefundResult{RefundRef: "R1", PSPReference: "psp-R1", Status: psp.RefundSucceeded}, status: domain.PSPSucceeded, parsings: 1},
		{name: "refund failed", refunds: true, cb: webhook("refund:R1:failed"), kind: psp.VerdictRefund,
			refund: &psp.RefundResult{RefundRef: "R1", PSPReference: "psp-R1", Status: psp.RefundFailed}, status: domain.PSPFailed, parsings: 1},
		{name: "refund pending", refunds: true, cb: webhook("refund:R1:pending"), kind: psp.VerdictRefund,
			refund: &psp.RefundResult{RefundRef: "R1", PSPReference: "psp-R1", Status: psp.RefundPending}, status: domain.PSPPending, parsings: 1},
		{name: "forged refund", refunds: true, cb: webhook("forged refund:R1:succeeded"), kind: psp.VerdictRefused,
			refund: &psp.RefundResult{}, reason: "fake refund webhook: bad signature", class: psp.ErrBadSignature, parsings: 1},
		{name: "refund naming no reference", refunds: true, cb: webhook("refund::succeeded"), kind: psp.VerdictRefused,
			refund: &psp.RefundResult{PSPReference: "psp-", Status: psp.RefundSucceeded}, reason: "refund callback names no refund reference",
			class: psp.ErrMalformed, parsings: 1},
		{name: "refund stating no status", refunds: true, cb: webhook("refund:R1:unknown"), kind: psp.VerdictRefused,
			refund: &psp.RefundResult{RefundRef: "R1", PSPReference: "psp-R1", Status: psp.RefundUnknown},
			reason: `refund callback states no refund status ("unknown")`, class: psp.ErrMalformed, parsings: 1},
		{name: "refund not judged yet", refunds: true, cb: webhook("refund:later"), kind: psp.VerdictNotYet, parsings: 1},
		{name: "refund on a channel without refund callbacks", cb: webhook("refund:R1:succeeded"), kind: psp.VerdictRefused,
			reason: `fake webhook: "refund:R1:succeeded" is not an event paygate acts on: not supported by this PSP`,
			class:  psp.ErrVerified, parsings: 1},
	}
	for _, c := range cases {
		calls := 0
		var ch psp.Channel = fakeChannel{calls: &calls}
		if c.refunds {
			ch = refundChannel{fakeChannel{calls: &calls}}
		}
		for _, ch := range []psp.Channel{ch, psp.Instrument(ch, psp.NewMetrics(nil))} { // wrapping hides nothing
			calls = 0
			v := psp.Verify(ch, c.cb)
			if v.Kind != c.kind {
				t.Errorf("%s: %v (%v), want %v", c.name, v.Kind, v.Err, c.kind)
				continue
			}
			if v.Notification.TransactionCode != c.code || (c.refund == nil) != (v.Refund == nil) ||
				(c.refund != nil && *v.Refund != *c.refund) || v.RefundStatus() != c.status {
				t.Errorf("%s: %+v (refund %+v)", c.name, v, v.Refund)
			}
			if r := v.Refusal(); r.String() != c.reason || r.Refused() != (c.kind == psp.VerdictRefused) {
				t.Errorf("%s: refusal %q, want %q", c.name, r, c.reason)
			}
			if (v.Err != nil) != (c.kind == psp.VerdictRefused || c.kind == psp.VerdictNotYet) ||
				(c.class != nil && !errors.Is(v.Err, c.class)) || (c.kind == psp.VerdictNotYet && !psp.IsTemporary(v.Err)) {
				t.Errorf("%s: error %v, want one of class %v", c.name, v.Err, c.class)
			}
			if calls != c.parsings {
				t.Errorf("%s: %d parser calls, want %d", c.name, calls, c.parsings)
			}
		}
	}
}
