package razorpay

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// FuzzParseCallback: never panics; a body that differs from what was
// signed never verifies; a correctly signed but arbitrary body is refused
// as malformed or read as a sane notification; a return whose checkout
// body was changed never reads as succeeded.
func FuzzParseCallback(f *testing.F) {
	ch, err := NewChannel(ChannelConfig{BaseURL: "http://127.0.0.1:1", KeyID: testKeyID, KeySecret: testKeySecret, WebhookSecrets: []string{testWhsec}})
	if err != nil {
		f.Fatal(err)
	}
	n := psptest.Notifications()[0]
	hook := signedWebhook(n, testWhsec)
	ret, _ := url.Parse(ch.returnURL("https://pay.example/r", "T1", "fake_order_id"))
	retBody := url.Values{"razorpay_order_id": {"fake_order_id"}, "razorpay_payment_id": {"fake_payment_id"},
		"razorpay_signature": {"b2335e3b0801106b84a7faff035df56ecffde06918c9ddd1f0fafbb37a51cc89"}}.Encode()

	f.Add(hook.Body, retBody)
	f.Add([]byte(`{}`), "")
	f.Add([]byte(`{"entity":"event","event":"payment.captured","created_at":1,"payload":{"payment":{"entity":{"id":"pay","entity":"payment","amount":-5,"currency":"INR","status":"captured","notes":{"transaction_code":"T"}}}}}`), "razorpay_signature=&razorpay_order_id=fake_order_id")
	f.Add([]byte(`{"entity":"event","event":"order.paid","created_at":1,"payload":{"payment":{"entity":{"id":"pay","entity":"payment","amount":1e400,"currency":"INR","status":"captured","order_id":"o","notes":[]}},"order":{"entity":{"id":"o","entity":"order","receipt":"T","notes":["x"]}}}}`), "%zz")
	f.Add([]byte("\xff\xfe"), "error[code]=BAD_REQUEST_ERROR")

	f.Fuzz(func(t *testing.T, body []byte, form string) {
		cb := psptest.Clone(hook)
		cb.Body = body
		got, err := ch.ParseCallback(cb)
		if bytes.Equal(body, hook.Body) {
			if err != nil {
				t.Fatalf("the signed body itself: %v", err)
			}
		} else if !errors.Is(err, psp.ErrBadSignature) || got != (domain.Notification{}) {
			t.Fatalf("a changed body under the original signature: %+v, %v", got, err)
		}
		h := http.Header{HeaderSignature: {mac(testWhsec, body)}}
		got, err = ch.ParseCallback(domain.Callback{Kind: domain.CallbackAsync, Headers: h, Body: body})
		switch {
		case err == nil:
			if got.TransactionCode == "" || got.EventID == "" || got.PSPReference == "" || got.Amount.IsZero() ||
				(got.Status != domain.PSPSucceeded && got.Status != domain.PSPFailed && got.Status != domain.PSPPending) {
				t.Fatalf("insane notification %+v from %q", got, body)
			}
		case !errors.Is(err, psp.ErrMalformed) || got != (domain.Notification{}):
			t.Fatalf("signed body refused with %v (%+v), want ErrMalformed", err, got)
		}
		got, err = ch.ParseCallback(domain.Callback{Kind: domain.CallbackSync, Query: ret.Query(), Body: []byte(form), Headers: http.Header{}})
		if err == nil && got.Status == domain.PSPSucceeded && form != retBody {
			q, _ := url.ParseQuery(form)
			if q.Get("razorpay_payment_id") != "fake_payment_id" || q.Get("razorpay_order_id") != "fake_order_id" {
				t.Fatalf("return with body %q read as %+v", form, got)
			}
		}
		if err == nil && !got.Amount.IsZero() {
			t.Fatalf("a return stated an amount: %+v", got)
		}
	})
}
