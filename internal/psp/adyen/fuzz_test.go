package adyen

import (
	"bytes"
	"errors"
	"testing"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// FuzzParseCallback feeds arbitrary bodies to ParseCallback: it never
// panics; whatever verifies states exactly the signed facts of a message
// we signed (Adyen signs eight fields, not the bytes, so a body that
// differs only outside them — whitespace, unsigned fields — may verify,
// but never with another reference, amount, currency, status or
// merchant); and a refusal carries the zero notification.
func FuzzParseCallback(f *testing.F) {
	ch := newTestChannel(f)
	n := psptest.Notifications()[0]
	signed := webhook(testKey, "false", item(n))
	want, err := ch.ParseCallback(asyncCallback(signed))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	f.Add(webhook(testKey, "false", item(n), item(n)))
	f.Add(webhook("", "false", item(n)))
	f.Add([]byte(`{"live":"false","notificationItems":[{"NotificationRequestItem":{"amount":{"value":1e400}}}]}`))
	f.Add([]byte(`{"live":"false","notificationItems":[null]}`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := ch.ParseCallback(asyncCallback(body))
		if err != nil {
			if got != (domain.Notification{}) {
				t.Fatalf("refused (%v) but read %+v", err, got)
			}
			if !errors.Is(err, psp.ErrBadSignature) && !errors.Is(err, psp.ErrMalformed) && !errors.Is(err, psp.ErrUnsupported) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if !bytes.Equal(body, signed) && (got.TransactionCode != want.TransactionCode || got.PSPReference != want.PSPReference ||
			got.Status != want.Status || !got.Amount.Equal(want.Amount) || got.EventID != want.EventID) {
			t.Fatalf("a message we never signed verified: %q → %+v", body, got)
		}
	})
}

// FuzzParseRefundCallback is FuzzParseCallback for refund webhooks: it
// never panics, a refusal carries the zero result and is classified, and
// whatever verifies states exactly the signed facts of a refund webhook
// we signed.
func FuzzParseRefundCallback(f *testing.F) {
	ch := newTestChannel(f)
	// The results of the refund webhooks we signed: nothing else may verify.
	signed := map[psp.RefundResult]bool{}
	for _, b := range [][]byte{webhook(testKey, "false", refundItem(EventRefund, "true")),
		webhook(testKey, "false", refundItem(EventRefundFailed, "true"))} {
		res, err := ch.ParseRefundCallback(asyncCallback(b))
		if err != nil {
			f.Fatal(err)
		}
		signed[res] = true
		f.Add(b)
	}
	f.Add(webhook("", "false", refundItem(EventRefund, "true")))
	f.Add(webhook(testKey, "false", item(psptest.Notifications()[0])))
	f.Add([]byte(`{"live":"false","notificationItems":[{"NotificationRequestItem":{"eventCode":"REFUND"}}]}`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := ch.ParseRefundCallback(asyncCallback(body))
		if err != nil {
			if got != (psp.RefundResult{}) {
				t.Fatalf("refused (%v) but read %+v", err, got)
			}
			if !errors.Is(err, psp.ErrNotRefundCallback) && !errors.Is(err, psp.ErrBadSignature) && !errors.Is(err, psp.ErrMalformed) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if !signed[got] {
			t.Fatalf("a refund webhook we never signed verified: %q → %+v", body, got)
		}
	})
}
