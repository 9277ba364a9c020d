package adyen

import (
	"errors"
	"testing"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// refundItem is the notification item Adyen sends about a refund Refund
// asked for: merchantReference is the reference the refund request sent
// (our refund ref), pspReference Adyen's id of the refund,
// originalReference the payment's.
func refundItem(event, success string) map[string]any {
	return map[string]any{
		"amount":              map[string]any{"currency": "EUR", "value": 500},
		"eventCode":           event,
		"eventDate":           "2026-11-25T10:00:00+01:00",
		"merchantAccountCode": testMerchant,
		"merchantReference":   "R261125100000123ABCDEFGH",
		"originalReference":   "psp_payment_1",
		"pspReference":        "psp_refund_1",
		"reason":              "",
		"success":             success,
	}
}

func TestParseRefundCallback(t *testing.T) {
	ch := newTestChannel(t)
	var _ psp.RefundCallbackParser = ch
	cases := []struct {
		name string
		body []byte
		want psp.RefundStatus
	}{
		{"refund succeeded", webhook(testKey, "false", refundItem(EventRefund, "true")), psp.RefundSucceeded},
		{"refund refused", webhook(testKey, "false", refundItem(EventRefund, "false")), psp.RefundFailed},
		{"refund failed later", webhook(testKey, "false", refundItem(EventRefundFailed, "true")), psp.RefundFailed},
		{"signed with the old key", webhook(oldKey, "false", refundItem(EventRefund, "true")), psp.RefundSucceeded},
	}
	for _, c := range cases {
		got, err := ch.ParseRefundCallback(asyncCallback(c.body))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		want := psp.RefundResult{RefundRef: "R261125100000123ABCDEFGH", PSPReference: "psp_refund_1", Status: c.want,
			Amount: domain.MustMoney(500, "EUR")}
		if got != want {
			t.Errorf("%s: %+v, want %+v", c.name, got, want)
		}
	}
}

func TestParseRefundCallbackRefusals(t *testing.T) {
	ch := newTestChannel(t)
	other := refundItem(EventRefund, "true")
	other["merchantAccountCode"] = "SomeoneElseECOM"
	tampered := refundItem(EventRefund, "false")
	tamperedBody := webhook(testKey, "false", tampered)
	tampered["success"] = "true" // signed as refused, claims success
	forged := webhook(wrongKey, "false", refundItem(EventRefund, "true"))
	noRef := refundItem(EventRefund, "true")
	noRef["merchantReference"] = ""
	odd := refundItem(EventRefund, "maybe")
	cases := []struct {
		name string
		body []byte
		want error
		say  string
	}{
		{"forged: another key", forged, psp.ErrBadSignature, "no HMAC key"},
		{"unsigned", webhook("", "false", refundItem(EventRefund, "true")), psp.ErrBadSignature, "no hmacSignature"},
		{"tampered success", replaceItem(tamperedBody, tampered), psp.ErrBadSignature, "no HMAC key"},
		{"another merchant account", webhook(testKey, "false", other), psp.ErrBadSignature, "merchant account"},
		{"live flag on a test channel", webhook(testKey, "true", refundItem(EventRefund, "true")), psp.ErrBadSignature, "live flag"},
		{"no merchant reference", webhook(testKey, "false", noRef), psp.ErrMalformed, "merchantReference"},
		{"odd success", webhook(testKey, "false", odd), psp.ErrMalformed, "success"},
	}
	for _, c := range cases {
		got, err := ch.ParseRefundCallback(asyncCallback(c.body))
		if !errors.Is(err, c.want) || got != (psp.RefundResult{}) {
			t.Errorf("%s: (%+v, %v), want %v and the zero result", c.name, got, err, c.want)
			continue
		}
		mustContain(t, err, c.say)
	}
}

// replaceItem swaps the item of a signed one-item webhook for it, keeping
// the signature: a tampered webhook.
func replaceItem(signed []byte, it map[string]any) []byte {
	it = cloneMap(it)
	it["additionalData"] = map[string]any{"hmacSignature": webhookSignature(signed)}
	return webhook("", "false", it)
}

func webhookSignature(body []byte) string {
	var v notificationJSON
	if err := decodeStrict(body, &v); err != nil {
		panic(err)
	}
	return *v.NotificationItems[0].Item.AdditionalData.HMACSignature
}

func TestNotRefundCallbacksAreLeftToParseCallback(t *testing.T) {
	ch := newTestChannel(t)
	n := psptest.Notifications()[0]
	sync := asyncCallback(nil)
	sync.Kind = domain.CallbackSync
	cases := map[string]domain.Callback{
		"authorisation":    asyncCallback(webhook(testKey, "false", item(n))),
		"forged payment":   asyncCallback(webhook(wrongKey, "false", item(n))),
		"batch of refunds": asyncCallback(webhook(testKey, "false", refundItem(EventRefund, "true"), refundItem(EventRefund, "true"))),
		"not JSON":         asyncCallback([]byte("eventCode=REFUND")),
		"browser return":   sync,
	}
	for name, cb := range cases {
		if _, err := ch.ParseRefundCallback(cb); !errors.Is(err, psp.ErrNotRefundCallback) {
			t.Errorf("%s: %v, want ErrNotRefundCallback", name, err)
		}
	}
	// The payment parser still refuses refund events on its own.
	if _, err := ch.ParseCallback(asyncCallback(webhook(testKey, "false", refundItem(EventRefund, "true")))); !errors.Is(err, psp.ErrUnsupported) {
		t.Errorf("ParseCallback of a REFUND: %v", err)
	}
}
