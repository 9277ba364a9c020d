package razorpay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/paygate/paygate/domain"
)

const (
	testKeyID     = "rzp_test_1DP5mmOlF5G5ag" // the key id of Razorpay's API reference examples
	testKeySecret = "key_secret"              // razorpay-python tests/helpers.py
	testWhsec     = "chosen_webhook_secret"   // razorpay-ruby test/razorpay/test_utility.rb
	testAccount   = "acc_BFQ7uQEaa7j2z7"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type env struct {
	ch    *Channel
	api   *httptest.Server
	calls atomic.Int64
}

func newEnv(t testing.TB, h http.HandlerFunc, opts ...func(*ChannelConfig)) *env {
	t.Helper()
	e := &env{}
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			t.Errorf("unexpected API request %s %s", r.Method, r.URL)
			http.Error(w, "unexpected", http.StatusTeapot)
		}
	}
	e.api = httptest.NewServer(h)
	t.Cleanup(e.api.Close)
	cfg := ChannelConfig{
		Name: "razorpay_test", BaseURL: e.api.URL, KeyID: testKeyID, KeySecret: testKeySecret,
		WebhookSecrets: []string{testWhsec}, AccountID: testAccount, MerchantName: "Shop",
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			e.calls.Add(1)
			return http.DefaultTransport.RoundTrip(r)
		}),
	}
	for _, o := range opts {
		o(&cfg)
	}
	ch, err := NewChannel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.ch = ch
	return e
}

func mac(secret string, msg []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil))
}

// eventBody is the webhook Razorpay sends for n
// (https://razorpay.com/docs/webhooks/payloads/orders/ and
// /payloads/payments/): order.paid for a success, payment.failed for a
// failure.
func eventBody(n domain.Notification) []byte {
	status := "captured"
	if n.Status == domain.PSPFailed {
		status = "failed"
	}
	payment := map[string]any{
		"id": n.PSPReference, "entity": "payment", "amount": n.Amount.Minor(), "currency": n.Amount.Currency().Code(),
		"status": status, "order_id": "order_" + n.PSPReference, "invoice_id": nil, "international": false,
		"method": "upi", "amount_refunded": 0, "refund_status": nil, "captured": status == "captured",
		"description": "Phone case", "card_id": nil, "bank": nil, "wallet": nil, "vpa": "gaurav.kumar@exampleupi",
		"email": "gaurav.kumar@example.com", "contact": "+919876543210",
		"notes": map[string]string{"transaction_code": n.TransactionCode},
		"fee":   24, "tax": 4, "error_code": nil, "error_description": nil, "created_at": n.OccurredAt.Unix() - 30,
	}
	ev := map[string]any{"entity": "event", "account_id": testAccount, "created_at": n.OccurredAt.Unix()}
	if n.Status == domain.PSPFailed {
		ev["event"], ev["contains"] = "payment.failed", []string{"payment"}
		ev["payload"] = map[string]any{"payment": map[string]any{"entity": payment}}
	} else {
		order := map[string]any{
			"id": "order_" + n.PSPReference, "entity": "order", "amount": n.Amount.Minor(), "amount_paid": n.Amount.Minor(),
			"amount_due": 0, "currency": n.Amount.Currency().Code(), "receipt": n.TransactionCode, "offer_id": nil,
			"status": "paid", "attempts": 1, "notes": []string{}, "created_at": n.OccurredAt.Unix() - 60,
		}
		ev["event"], ev["contains"] = "order.paid", []string{"payment", "order"}
		ev["payload"] = map[string]any{"payment": map[string]any{"entity": payment}, "order": map[string]any{"entity": order}}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

func signedWebhook(n domain.Notification, secret string) domain.Callback {
	body := eventBody(n)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(HeaderSignature, mac(secret, body))
	h.Set("X-Razorpay-Event-Id", "KbWtHPnOk0rBOY")
	return domain.Callback{Kind: domain.CallbackAsync, Method: http.MethodPost, Path: "/v1/callbacks/razorpay_test", Headers: h, Body: body}
}

// want is what the channel reads from signedWebhook(n): the event id is
// derived from signed content.
func want(n domain.Notification) domain.Notification {
	ev := "order.paid"
	if n.Status == domain.PSPFailed {
		ev = "payment.failed"
	}
	n.EventID = ev + ":" + n.PSPReference + ":" + strconv.FormatInt(n.OccurredAt.Unix(), 10)
	return n
}
