package razorpay

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// TestContract: webhooks pass the shared suite. Razorpay signs no time,
// so the stale cases do not apply (Tolerance < 0). The checkout return is
// not in it: its signature does not cover the amount, so the suite's
// changed-amount case cannot apply — TestReturn covers it, and Query
// supplies the amount.
func TestContract(t *testing.T) {
	psptest.Run(t, harness(newEnv(t, nil)))
}

func harness(e *env) psptest.Harness {
	return psptest.Harness{
		Channel:   e.ch,
		Kinds:     []domain.CallbackKind{domain.CallbackAsync},
		Tolerance: -1,
		Sign: func(_ domain.CallbackKind, n domain.Notification, _ time.Time) domain.Callback {
			return signedWebhook(n, testWhsec)
		},
		Forge: func(_ domain.CallbackKind, n domain.Notification, _ time.Time) domain.Callback {
			return signedWebhook(n, "not-ours")
		},
		SignatureKeys: map[domain.CallbackKind][]string{domain.CallbackAsync: {HeaderSignature}},
		Want:          func(_ domain.CallbackKind, n domain.Notification) domain.Notification { return want(n) },
		Requests:      e.calls.Load,
	}
}

// BenchmarkParseCallback: the HMAC check and parse of an order.paid
// webhook.
func BenchmarkParseCallback(b *testing.B) {
	psptest.Bench(b, harness(newEnv(b, nil)))
}

func TestWebhookSecretRotation(t *testing.T) {
	e := newEnv(t, nil, func(c *ChannelConfig) { c.WebhookSecrets = []string{"new-secret", testWhsec} })
	n := psptest.Notifications()[0]
	for _, s := range []string{"new-secret", testWhsec} {
		if _, err := e.ch.ParseCallback(signedWebhook(n, s)); err != nil {
			t.Errorf("signed with %q: %v", s, err)
		}
	}
	if _, err := e.ch.ParseCallback(signedWebhook(n, "retired")); !errors.Is(err, psp.ErrBadSignature) {
		t.Errorf("retired secret: %v", err)
	}
}

// TestWebhookRefusals: signed, but not for us or not what paygate acts on.
func TestWebhookRefusals(t *testing.T) {
	e := newEnv(t, nil)
	n := psptest.Notifications()[0]
	resign := func(body string) domain.Callback {
		return domain.Callback{Kind: domain.CallbackAsync, Headers: http.Header{HeaderSignature: {mac(testWhsec, []byte(body))}}, Body: []byte(body)}
	}
	good := string(eventBody(n))
	cases := map[string]domain.Callback{
		"another account":            resign(strings.Replace(good, testAccount, "acc_other", 1)),
		"receipt differs from notes": resign(strings.Replace(good, `"receipt":"`+n.TransactionCode, `"receipt":"T-other`, 1)),
		"payment of another order":   resign(strings.Replace(good, `"order_id":"order_`, `"order_id":"order_x`, 1)),
		"order.paid not captured":    resign(strings.Replace(good, `"status":"captured"`, `"status":"authorized"`, 1)),
		"refund.processed":           resign(strings.Replace(good, `"event":"order.paid"`, `"event":"refund.processed"`, 1)),
		"lower-case currency":        resign(strings.ReplaceAll(good, `"currency":"USD"`, `"currency":"usd"`)),
		"fractional amount":          resign(strings.Replace(good, `"amount":1999,`, `"amount":19.99,`, 1)),
		"trailing data":              resign(good + "{}"),
	}
	for name, cb := range cases {
		if got, err := e.ch.ParseCallback(cb); !errors.Is(err, psp.ErrMalformed) || got != (domain.Notification{}) {
			t.Errorf("%s: %+v, %v; want ErrMalformed", name, got, err)
		}
	}
	two := signedWebhook(n, testWhsec)
	two.Headers.Add(HeaderSignature, two.Headers.Get(HeaderSignature))
	if _, err := e.ch.ParseCallback(two); !errors.Is(err, psp.ErrBadSignature) {
		t.Errorf("two signature headers: %v", err)
	}
}

// TestReturn: the checkout's POST to our callback URL. Razorpay's own
// vector (razorpay-ruby test/razorpay/test_utility.rb
// test_payment_signature_verification; razorpay-python
// tests/test_client_utility.py): key secret "key_secret", order
// "fake_order_id", payment "fake_payment_id", signature
// b2335e3b0801106b84a7faff035df56ecffde06918c9ddd1f0fafbb37a51cc89.
func TestReturn(t *testing.T) {
	const vectorSig = "b2335e3b0801106b84a7faff035df56ecffde06918c9ddd1f0fafbb37a51cc89"
	e := newEnv(t, nil)
	u, err := url.Parse(e.ch.returnURL("https://pay.example/v1/return/razorpay_test", "T1", "fake_order_id"))
	if err != nil {
		t.Fatal(err)
	}
	body := func(order, payment, sig string) []byte {
		return []byte(url.Values{"razorpay_order_id": {order}, "razorpay_payment_id": {payment}, "razorpay_signature": {sig}}.Encode())
	}
	parse := func(q url.Values, b []byte) (domain.Notification, error) {
		return e.ch.ParseCallback(domain.Callback{Kind: domain.CallbackSync, Method: http.MethodPost, Query: q, Body: b, Headers: http.Header{}})
	}
	n, err := parse(u.Query(), body("fake_order_id", "fake_payment_id", vectorSig))
	if err != nil || n != (domain.Notification{TransactionCode: "T1", PSPReference: "fake_payment_id", Status: domain.PSPSucceeded}) {
		t.Errorf("the published vector: %+v, %v", n, err)
	}
	// A failure post (error[...] fields, unsigned) is pending.
	fail := []byte(url.Values{"error[code]": {"BAD_REQUEST_ERROR"}, "error[description]": {"Payment failed"},
		"error[metadata]": {`{"payment_id":"pay_1","order_id":"fake_order_id"}`}}.Encode())
	if n, err := parse(u.Query(), fail); err != nil || n != (domain.Notification{TransactionCode: "T1", Status: domain.PSPPending}) {
		t.Errorf("failure post: %+v, %v", n, err)
	}
	refused := map[string]struct {
		q url.Values
		b []byte
	}{
		"signature of another payment":   {u.Query(), body("fake_order_id", "pay_other", vectorSig)},
		"signed for another order":       {u.Query(), body("order_other", "fake_payment_id", mac(testKeySecret, []byte("order_other|fake_payment_id")))},
		"signature under another secret": {u.Query(), body("fake_order_id", "fake_payment_id", mac("other", []byte("fake_order_id|fake_payment_id")))},
		"no MAC":                         {url.Values{qCode: {"T1"}, qOrder: {"fake_order_id"}}, body("fake_order_id", "fake_payment_id", vectorSig)},
		"code swapped":                   {func() url.Values { q := u.Query(); q.Set(qCode, "T2"); return q }(), body("fake_order_id", "fake_payment_id", vectorSig)},
		"two payment ids":                {u.Query(), []byte(string(body("fake_order_id", "fake_payment_id", vectorSig)) + "&razorpay_payment_id=pay_x")},
	}
	for name, c := range refused {
		if n, err := parse(c.q, c.b); !errors.Is(err, psp.ErrBadSignature) {
			t.Errorf("%s: %+v, %v; want ErrBadSignature", name, n, err)
		}
	}
	// During a key rotation, a checkout opened under the previous key.
	e2 := newEnv(t, nil, func(c *ChannelConfig) { c.KeySecret, c.PreviousKeySecrets = "new_secret", []string{testKeySecret} })
	u2, _ := url.Parse(e2.ch.returnURL("https://pay.example/r", "T1", "fake_order_id"))
	if n, err := e2.ch.ParseCallback(domain.Callback{Kind: domain.CallbackSync, Query: u2.Query(), Body: body("fake_order_id", "fake_payment_id", vectorSig), Headers: http.Header{}}); err != nil || n.Status != domain.PSPSucceeded {
		t.Errorf("previous key secret: %+v, %v", n, err)
	}
}
