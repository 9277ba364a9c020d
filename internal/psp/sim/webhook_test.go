package sim

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

func benchWebhook(t testing.TB, secret string) (*Channel, domain.Callback) {
	t.Helper()
	ch, err := NewChannel(ChannelConfig{Name: "sim", BaseURL: "http://127.0.0.1:1", MerchantID: testMerchant, Secrets: []string{testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	w, err := SignWebhook("http://gw/v1/callbacks/sim", testMerchant, []byte(secret), WebhookEvent{PaymentID: "sp_1", MerchantRef: "tc_1",
		Status: statusSucceeded, Amount: 1999, Currency: "USD"}, now)
	if err != nil {
		t.Fatal(err)
	}
	return ch, domain.Callback{Kind: domain.CallbackAsync, Method: http.MethodPost, Path: "/v1/callbacks/sim", Query: url.Values{},
		Headers: w.Header, Body: w.Body, ReceivedAt: now}
}

func TestSignWebhookVerifies(t *testing.T) {
	ch, cb := benchWebhook(t, testSecret)
	n, err := ch.ParseCallback(cb)
	if err != nil {
		t.Fatal(err)
	}
	if n.TransactionCode != "tc_1" || n.Status != domain.PSPSucceeded || n.Amount.Minor() != 1999 {
		t.Errorf("parsed %+v", n)
	}
	_, forged := benchWebhook(t, "forged:"+testSecret)
	if _, err := ch.ParseCallback(forged); !errors.Is(err, psp.ErrBadSignature) {
		t.Errorf("forged webhook: %v, want ErrBadSignature", err)
	}
}

func TestServerWebhook(t *testing.T) {
	e := newEnv(t, ServerConfig{})
	s := e.initiate("tc_w", domain.MustMoney(1999, "USD"))
	w, err := e.srv.Webhook("tc_w", statusSucceeded, false)
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.ch.ParseCallback(domain.Callback{Kind: domain.CallbackAsync, Method: http.MethodPost, Headers: w.Header, Body: w.Body, ReceivedAt: time.Now()})
	if err != nil || n.PSPReference != s.PSPReference || n.TransactionCode != "tc_w" {
		t.Fatalf("webhook of %s: %+v %v", s.PSPReference, n, err)
	}
	f, err := e.srv.Webhook("tc_w", statusSucceeded, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ch.ParseCallback(domain.Callback{Kind: domain.CallbackAsync, Headers: f.Header, Body: f.Body, ReceivedAt: time.Now()}); !errors.Is(err, psp.ErrBadSignature) {
		t.Errorf("forged: %v", err)
	}
	if _, err := e.srv.Webhook("nope", statusSucceeded, false); err == nil {
		t.Error("webhook for an unknown payment: no error")
	}
}

// BenchmarkParseCallback is the adapter's whole check of a webhook:
// HMAC over the body, then JSON.
func BenchmarkParseCallback(b *testing.B) {
	ch, cb := benchWebhook(b, testSecret)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ch.ParseCallback(cb); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseCallbackForged(b *testing.B) {
	ch, cb := benchWebhook(b, "forged")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ch.ParseCallback(cb); err == nil {
			b.Fatal("forged verified")
		}
	}
}
