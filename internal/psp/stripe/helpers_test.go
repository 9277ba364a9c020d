package stripe

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
)

const (
	testKey = "sk_test_4eC39HqLyjWDarjtT1zdp7dc" // the key of Stripe's API reference examples
	// testWhsec is stripe/stripe-go webhook/client_test.go's testSecret.
	testWhsec = "whsec_test_secret"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// env is an adapter pointed at a fake Stripe API.
type env struct {
	ch    *Channel
	api   *httptest.Server
	calls atomic.Int64
}

// newEnv starts a fake API answering with h (nil: every request fails
// the test) and an adapter on it.
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
		Name: "stripe_test", BaseURL: e.api.URL, SecretKey: testKey, WebhookSecrets: []string{testWhsec},
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

// sign is the Stripe-Signature header for payload at ts with secret.
func sign(ts int64, payload []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(ts, 10) + "."))
	m.Write(payload)
	return "t=" + strconv.FormatInt(ts, 10) + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// eventBody is the Event Stripe sends for n: payment_intent.succeeded or
// payment_intent.payment_failed, in the shape of
// https://docs.stripe.com/api/events/object with a PaymentIntent
// (https://docs.stripe.com/api/payment_intents/object).
func eventBody(n domain.Notification) []byte {
	amount, currency, err := toStripe(n.Amount)
	if err != nil {
		// Amounts Stripe would not take still arrive (KWD 1.999): as is.
		amount, currency = n.Amount.Minor(), strings.ToLower(n.Amount.Currency().Code())
	}
	typ, status, received := "payment_intent.succeeded", "succeeded", amount
	if n.Status == domain.PSPFailed {
		typ, status, received = "payment_intent.payment_failed", "requires_payment_method", 0
	}
	pi := map[string]any{
		"id": n.PSPReference, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
		"amount_received": received, "capture_method": "automatic_async", "created": n.OccurredAt.Unix() - 60,
		"currency": currency, "livemode": false, "metadata": map[string]string{"transaction_code": n.TransactionCode, "order_id": "A1001"},
		"status": status, "latest_charge": nil, "payment_method_types": []string{"card"},
	}
	ev := map[string]any{
		"id": n.EventID, "object": "event", "api_version": "2024-06-20", "created": n.OccurredAt.Unix(),
		"data": map[string]any{"object": pi}, "livemode": false, "pending_webhooks": 1,
		"request": map[string]any{"id": nil, "idempotency_key": nil}, "type": typ,
	}
	b, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// signedWebhook is the webhook Stripe sends for n, signed at at.
func signedWebhook(n domain.Notification, at time.Time, secret string) domain.Callback {
	body := eventBody(n)
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	h.Set(HeaderSignature, sign(at.Unix(), body, secret))
	return domain.Callback{Kind: domain.CallbackAsync, Method: http.MethodPost, Path: "/v1/callbacks/stripe_test", Headers: h, Body: body}
}
