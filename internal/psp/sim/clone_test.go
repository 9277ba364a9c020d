package sim

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
)

// Copies answer the API as their template does, under their own
// reference, id and amount; a paid template gives paid copies, and the
// ledger counts them.
func TestClone(t *testing.T) {
	e := newEnv(t, ServerConfig{})
	paid := e.initiate("tc_paid", domain.MustMoney(1000, "USD"))
	if code, _, _ := e.pay(paid.PayURL, url.Values{"result": {"success"}, "callbacks": {"none"}}); code != 200 {
		t.Fatalf("pay: %d", code)
	}
	e.initiate("tc_open", domain.MustMoney(500, "USD"))

	copies := []Copy{{MerchantRef: "tc_c1", Amount: 1234}, {MerchantRef: "tc_c2", Amount: 99}}
	if err := e.srv.Clone("tc_paid", copies); err != nil {
		t.Fatal(err)
	}
	open := []Copy{{MerchantRef: "tc_o1", Amount: 700}}
	if err := e.srv.Clone("tc_open", open); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range copies {
		n, err := e.ch.Query(ctx, c.MerchantRef)
		if err != nil {
			t.Fatal(err)
		}
		if n.Status != domain.PSPSucceeded || n.PSPReference != c.PaymentID || n.PSPReference == paid.PSPReference ||
			n.Amount != domain.MustMoney(c.Amount, "USD") || n.TransactionCode != c.MerchantRef {
			t.Errorf("copy %s: %+v (copy %+v)", c.MerchantRef, n, c)
		}
		w, err := e.srv.Webhook(c.MerchantRef, statusSucceeded, false)
		if err != nil {
			t.Fatal(err)
		}
		if h, err := e.ch.ParseCallback(domain.Callback{Kind: domain.CallbackAsync, Method: http.MethodPost, Headers: w.Header, Body: w.Body, ReceivedAt: time.Now()}); err != nil || h.Amount.Minor() != c.Amount || h.PSPReference != c.PaymentID {
			t.Errorf("webhook of copy %s: %+v %v", c.MerchantRef, h, err)
		}
	}
	n, err := e.ch.Query(ctx, "tc_o1")
	if err != nil || n.Status == domain.PSPSucceeded || n.PSPReference != open[0].PaymentID {
		t.Errorf("copy of an open payment: %+v %v", n, err)
	}
	if code, _, _ := e.pay(open[0].PayURL, url.Values{"result": {"success"}, "callbacks": {"none"}}); code != 200 {
		t.Errorf("the copy's pay page %s: %d", open[0].PayURL, code)
	}
	if l := e.srv.Ledger(); len(l.Payments) != 5 {
		t.Errorf("ledger: %d payments, want 5", len(l.Payments))
	}

	for name, tc := range map[string]struct {
		tmpl string
		c    Copy
	}{
		"unknown template":  {"nope", Copy{MerchantRef: "tc_x", Amount: 1}},
		"taken reference":   {"tc_paid", Copy{MerchantRef: "tc_open", Amount: 1}},
		"zero amount":       {"tc_paid", Copy{MerchantRef: "tc_y", Amount: 0}},
		"bad reference":     {"tc_paid", Copy{MerchantRef: "", Amount: 1}},
		"twice in one call": {"tc_paid", Copy{MerchantRef: "tc_fine", Amount: 6}},
	} {
		if err := e.srv.Clone(tc.tmpl, []Copy{{MerchantRef: "tc_fine", Amount: 5}, tc.c}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if n, err := e.ch.Query(ctx, "tc_fine"); err != nil || n.Status != domain.PSPUnknown {
		t.Errorf("a refused Clone added a payment: %+v %v", n, err)
	}
}

// Latency holds every API answer back that long; a caller that gives up
// is let go at once.
func TestLatency(t *testing.T) {
	e := newEnv(t, ServerConfig{Latency: 150 * time.Millisecond})
	start := time.Now()
	e.initiate("tc_slow", domain.MustMoney(100, "USD"))
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("initiate answered in %s", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := e.ch.Query(ctx, "tc_slow"); err == nil {
		t.Error("a query given up after 20 ms succeeded")
	}
	if err := (ServerConfig{Merchants: map[string]string{"m": "s"}, Latency: -time.Second}).Validate(); err == nil {
		t.Error("negative latency is valid")
	}
}
