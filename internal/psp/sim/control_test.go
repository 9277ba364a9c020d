package sim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

func controlCall(t *testing.T, e *env, method, merchant, body string) (int, Behaviour, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.api.URL+"/control/merchants/"+merchant, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var b Behaviour
	_ = json.Unmarshal(raw, &b)
	return resp.StatusCode, b, string(raw)
}

func TestControlEndpoint(t *testing.T) {
	e := newEnv(t, ServerConfig{DeclineRate: 0.1})
	if code, b, _ := controlCall(t, e, http.MethodGet, testMerchant, ""); code != 200 || b != (Behaviour{DeclineRate: 0.1}) {
		t.Fatalf("GET before any change: %d %+v, want the server-wide decline rate", code, b)
	}
	code, b, raw := controlCall(t, e, http.MethodPost, testMerchant, `{"decline_rate":0.8,"latency_ms":5}`)
	if code != 200 || b != (Behaviour{DeclineRate: 0.8, LatencyMS: 5}) {
		t.Fatalf("POST: %d %s", code, raw)
	}
	// Fields left out stay as they were.
	if code, b, raw = controlCall(t, e, http.MethodPost, testMerchant, `{"initiate_error_rate":0.5}`); code != 200 ||
		b != (Behaviour{DeclineRate: 0.8, InitiateErrorRate: 0.5, LatencyMS: 5}) {
		t.Fatalf("partial POST: %d %s", code, raw)
	}
	if code, b, _ = controlCall(t, e, http.MethodGet, testMerchant, ""); b.InitiateErrorRate != 0.5 || code != 200 {
		t.Fatalf("GET after: %d %+v", code, b)
	}
	for body, want := range map[string]string{
		`{"decline_rate":1.5}`:    "decline_rate 1.5",
		`{"latency_ms":-1}`:       "latency_ms -1",
		`{"decline":0.5}`:         "unknown field",
		`[1]`:                     "malformed",
		`{"decline_rate":"high"}`: "malformed",
	} {
		if code, _, raw := controlCall(t, e, http.MethodPost, testMerchant, body); code != 400 || !strings.Contains(raw, want) {
			t.Errorf("POST %s: %d %s, want 400 with %q", body, code, raw, want)
		}
	}
	if code, _, _ := controlCall(t, e, http.MethodPost, "nobody", `{}`); code != 404 {
		t.Errorf("unknown merchant: %d, want 404", code)
	}
	if code, b, _ := controlCall(t, e, http.MethodGet, testMerchant, ""); code != 200 || b.DeclineRate != 0.8 {
		t.Errorf("a refused POST changed the behaviour: %+v", b)
	}
}

func TestBehaviourTakesEffect(t *testing.T) {
	e := newEnv(t, ServerConfig{APITimeout: 200 * time.Millisecond}, func(c *ChannelConfig) { c.Timeout = 2 * time.Second })
	usd := domain.MustMoney(1999, "USD")

	if err := e.srv.SetBehaviour(testMerchant, Behaviour{InitiateErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ch.Initiate(context.Background(), e.initiateRequest("T-ERR", usd)); !psp.IsTemporary(err) {
		t.Fatalf("initiate_error_rate 1: %v, want a temporary error", err)
	}
	if n := len(e.srv.Ledger().Payments); n != 0 {
		t.Fatalf("a 503 created %d payments", n)
	}

	if err := e.srv.SetBehaviour(testMerchant, Behaviour{InitiateTimeoutRate: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ch.Initiate(context.Background(), e.initiateRequest("T-TIMEOUT", usd)); !psp.IsTemporary(err) {
		t.Fatalf("initiate_timeout_rate 1: %v, want a temporary error", err)
	}
	if l := e.srv.Ledger(); len(l.Payments) != 1 || l.Payments[0].MerchantRef != "T-TIMEOUT" {
		t.Fatalf("a timed-out Initiate must still create the payment: %+v", l.Payments)
	}

	if err := e.srv.SetBehaviour(testMerchant, Behaviour{DeclineRate: 1, LatencyMS: 50}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s := e.initiate("T-DECLINE", usd)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("latency_ms 50: the call took %s", d)
	}
	e.pay(s.PayURL, url.Values{"result": {"success"}})
	for _, p := range e.srv.Ledger().Payments {
		if p.MerchantRef == "T-DECLINE" && p.Status != statusFailed {
			t.Fatalf("decline_rate 1: a success click made %s", p.Status)
		}
	}
}

func TestLedgerEndpoint(t *testing.T) {
	e := newEnv(t, ServerConfig{})
	s := e.initiate("T-LEDGER", domain.MustMoney(1999, "USD"))
	e.pay(s.PayURL, url.Values{"result": {"success"}})
	resp, err := http.Get(e.api.URL + "/control/ledger")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l struct {
		Payments []struct {
			MerchantRef string `json:"merchant_ref"`
			Status      string
			Currency    string
			PaidAmount  int64 `json:"paid_amount"`
		}
		Refunds []any
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	if len(l.Payments) != 1 || l.Payments[0].MerchantRef != "T-LEDGER" || l.Payments[0].Status != "succeeded" ||
		l.Payments[0].PaidAmount != 1999 || l.Payments[0].Currency != "USD" || l.Refunds == nil {
		t.Fatalf("ledger %+v", l)
	}
}
