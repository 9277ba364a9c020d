package stripe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// The answers below are Stripe's API reference examples
// (https://docs.stripe.com/api/checkout/sessions/object,
// /api/payment_intents/object, /api/payment_intents/search,
// /api/refunds/object, /api/errors), trimmed of fields the adapter does
// not read, with ids, amounts, statuses and metadata set for each case.

const sessionAnswer = `{
  "id": "cs_test_a11YYufWQzNY63zpQ6QSNRQhkUpVph4WRmzW0zWJO2znZKdVujZ0N0S22u",
  "object": "checkout.session",
  "after_expiration": null,
  "allow_promotion_codes": null,
  "amount_subtotal": %[1]d,
  "amount_total": %[1]d,
  "automatic_tax": {"enabled": false, "liability": null, "status": null},
  "billing_address_collection": null,
  "cancel_url": null,
  "client_reference_id": %[2]q,
  "consent": null,
  "consent_collection": null,
  "created": 1679600215,
  "currency": %[3]q,
  "custom_fields": [],
  "custom_text": {"shipping_address": null, "submit": null},
  "customer": null,
  "customer_creation": "if_required",
  "customer_details": null,
  "customer_email": null,
  "expires_at": 1679686615,
  "invoice": null,
  "invoice_creation": {"enabled": false, "invoice_data": {"account_tax_ids": null, "custom_fields": null, "description": null, "footer": null, "issuer": null, "metadata": {}, "rendering_options": null}},
  "livemode": false,
  "locale": null,
  "metadata": {"transaction_code": %[2]q},
  "mode": "payment",
  "payment_intent": null,
  "payment_link": null,
  "payment_method_collection": "if_required",
  "payment_method_options": {},
  "payment_method_types": ["card"],
  "payment_status": "unpaid",
  "phone_number_collection": {"enabled": false},
  "recovered_from": null,
  "setup_intent": null,
  "shipping_address_collection": null,
  "shipping_cost": null,
  "shipping_details": null,
  "shipping_options": [],
  "status": "open",
  "submit_type": null,
  "subscription": null,
  "success_url": "https://example.com/success",
  "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
  "url": "https://checkout.stripe.com/c/pay/cs_test_a11YYufWQzNY63zpQ6QSNRQhkUpVph4WRmzW0zWJO2znZKdVujZ0N0S22u#fidkdWxOYHwnPyd1blpxYHZxWjA0SDdPUW5JbmFMck1wMmx9N2BLZjFEfGRUNWhqTmJ%%2FM2F8bUA2SDRySkFdUV81T1BSV0YxcWJcTUJcYW5rSzN3dzBLPUE0TzRKTTxzNFBjPWZEX1NKSkxpNTVjRjN8VHE0YicpJ2N3amhWYHdzYHcnP3F3cGApJ2lkfGpwcVF8dWAnPyd2bGtiaWBabHFgaCcpJ2BrZGdpYFVpZGZgbWppYWB3dic%%2FcXdwYHgl"
}`

// intentJSONAnswer is a PaymentIntent (API reference example object).
func intentAnswer(id, code string, amount, received int64, currency, status string, created int64) string {
	return fmt.Sprintf(`{
  "id": %q,
  "object": "payment_intent",
  "amount": %d,
  "amount_capturable": 0,
  "amount_details": {"tip": {}},
  "amount_received": %d,
  "application": null,
  "application_fee_amount": null,
  "automatic_payment_methods": {"enabled": true},
  "canceled_at": null,
  "cancellation_reason": null,
  "capture_method": "automatic",
  "client_secret": "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH",
  "confirmation_method": "automatic",
  "created": %d,
  "currency": %q,
  "customer": null,
  "description": null,
  "last_payment_error": null,
  "latest_charge": null,
  "livemode": false,
  "metadata": {"transaction_code": %q, "order_id": "A1001"},
  "next_action": null,
  "on_behalf_of": null,
  "payment_method": null,
  "payment_method_options": {"card": {"installments": null, "mandate_options": null, "network": null, "request_three_d_secure": "automatic"}},
  "payment_method_types": ["card", "link"],
  "processing": null,
  "receipt_email": null,
  "review": null,
  "setup_future_usage": null,
  "shipping": null,
  "source": null,
  "statement_descriptor": null,
  "statement_descriptor_suffix": null,
  "status": %q,
  "transfer_data": null,
  "transfer_group": null
}`, id, amount, received, created, currency, code, status)
}

func searchAnswer(items ...string) string {
	return `{"object": "search_result", "data": [` + strings.Join(items, ",") + `], "has_more": false, "next_page": null, "url": "/v1/payment_intents/search"}`
}

func refundAnswer(id, ref string, amount int64, currency, status, pi string) string {
	return fmt.Sprintf(`{
  "id": %q,
  "object": "refund",
  "amount": %d,
  "balance_transaction": "txn_1Nispe2eZvKYlo2CYezqFhEx",
  "charge": "ch_1NirD82eZvKYlo2CIvbtLWuY",
  "created": 1692942318,
  "currency": %q,
  "destination_details": {"card": {"reference": "123456789012", "reference_status": "available", "reference_type": "acquirer_reference_number", "type": "refund"}, "type": "card"},
  "metadata": {"refund_ref": %q},
  "payment_intent": %q,
  "reason": null,
  "receipt_number": null,
  "source_transfer_reversal": null,
  "status": %q,
  "transfer_reversal": null
}`, id, amount, currency, ref, pi, status)
}

// cardDeclined is https://docs.stripe.com/api/errors's card error.
const cardDeclined = `{
  "error": {
    "code": "card_declined",
    "decline_code": "generic_decline",
    "doc_url": "https://stripe.com/docs/error-codes/card-declined",
    "message": "Your card was declined.",
    "request_log_url": "https://dashboard.stripe.com/test/logs/req_a8mD9ZbTP9MFL0?t=1680546462",
    "type": "card_error"
  }
}`

// fake is a scripted Stripe API: one handler per "METHOD /path", and the
// requests it got.
type fake struct {
	mu     sync.Mutex
	routes map[string]func(r *http.Request, form url.Values) (int, string)
	got    []*http.Request
	forms  []url.Values
}

func (f *fake) handle(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		f.mu.Lock()
		f.got = append(f.got, r)
		f.forms = append(f.forms, form)
		h := f.routes[r.Method+" "+r.URL.Path]
		f.mu.Unlock()
		if got := r.Header.Get("Authorization"); got != "Bearer "+testKey {
			t.Errorf("%s %s: Authorization %q", r.Method, r.URL.Path, got)
		}
		if h == nil {
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			w.WriteHeader(http.StatusNotFound)
			return
		}
		status, answer := h(r, form)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Request-Id", "req_test")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}
}

func newFake(t *testing.T, routes map[string]func(*http.Request, url.Values) (int, string)) (*env, *fake) {
	f := &fake{routes: routes}
	return newEnv(t, f.handle(t)), f
}

func initiateRequest(m domain.Money) psp.InitiateRequest {
	return psp.InitiateRequest{TransactionCode: "T261125095957123ABCDEFGH", OrderID: "A1001", Amount: m, Description: "Phone case",
		BuyerEmail: "a@example.com", NotifyURL: "https://pay.example/v1/callbacks/stripe_test", ReturnURL: "https://pay.example/v1/return/stripe_test"}
}

func TestInitiate(t *testing.T) {
	for _, tt := range []struct {
		money    domain.Money
		amount   int64
		currency string
	}{
		{domain.MustMoney(1999, "USD"), 1999, "usd"},
		{domain.MustMoney(120000, "JPY"), 120000, "jpy"},
		{domain.MustMoney(5, "ISK"), 500, "isk"},
		{domain.MustMoney(1990, "KWD"), 1990, "kwd"},
	} {
		e, f := newFake(t, map[string]func(*http.Request, url.Values) (int, string){
			"POST /v1/checkout/sessions": func(r *http.Request, form url.Values) (int, string) {
				return 200, fmt.Sprintf(sessionAnswer, tt.amount, form.Get("client_reference_id"), form.Get("line_items[0][price_data][currency]"))
			},
		})
		var ex []psp.Exchange
		ctx := psp.WithRecorder(context.Background(), "initiate", func(x psp.Exchange) { ex = append(ex, x) })
		req := initiateRequest(tt.money)
		s, err := e.ch.Initiate(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", tt.money, err)
		}
		if !strings.HasPrefix(s.PayURL, "https://checkout.stripe.com/c/pay/cs_test_") || !strings.HasPrefix(s.PSPReference, "cs_test_") ||
			!s.ExpiresAt.Equal(time.Unix(1679686615, 0)) {
			t.Errorf("%s: session %+v", tt.money, s)
		}
		form, r := f.forms[0], f.got[0]
		if r.Header.Get("Idempotency-Key") != req.TransactionCode {
			t.Errorf("Idempotency-Key %q", r.Header.Get("Idempotency-Key"))
		}
		want := map[string]string{
			"mode": "payment", "client_reference_id": req.TransactionCode,
			"line_items[0][price_data][unit_amount]": fmt.Sprint(tt.amount), "line_items[0][price_data][currency]": tt.currency,
			"line_items[0][quantity]": "1", "line_items[0][price_data][product_data][name]": "Phone case",
			"metadata[transaction_code]": req.TransactionCode, "payment_intent_data[metadata][transaction_code]": req.TransactionCode,
			"customer_email": "a@example.com",
		}
		for k, v := range want {
			if form.Get(k) != v {
				t.Errorf("%s: form %s = %q, want %q", tt.money, k, form.Get(k), v)
			}
		}
		if su := form.Get("success_url"); !strings.HasPrefix(su, req.ReturnURL+"?paygate_tc="+req.TransactionCode+"&paygate_res=success&paygate_sig=") ||
			!strings.HasSuffix(su, "&session_id={CHECKOUT_SESSION_ID}") {
			t.Errorf("success_url %q", su)
		}
		// Evidence: the request and answer are recorded, never the key.
		if len(ex) != 1 || ex[0].StatusCode != 200 || !strings.Contains(ex[0].RequestBody, "client_reference_id") {
			t.Fatalf("exchanges %+v", ex)
		}
		if strings.Contains(fmt.Sprintf("%+v", ex), testKey) || strings.Contains(fmt.Sprintf("%+v", ex), "sk_test") {
			t.Errorf("the API key reached the evidence: %+v", ex)
		}
	}
}

func TestInitiateRefusals(t *testing.T) {
	e, _ := newFake(t, map[string]func(*http.Request, url.Values) (int, string){
		"POST /v1/checkout/sessions": func(r *http.Request, form url.Values) (int, string) {
			return 200, fmt.Sprintf(sessionAnswer, 1, form.Get("client_reference_id"), "usd") // another amount
		},
	})
	ctx := context.Background()
	if _, err := e.ch.Initiate(ctx, initiateRequest(domain.MustMoney(1999, "USD"))); !errors.Is(err, psp.ErrMalformed) {
		t.Errorf("answer with another amount: %v, want ErrMalformed", err)
	}
	for _, m := range []domain.Money{domain.MustMoney(1999, "KWD"), domain.MustMoney(5050, "MGA")} {
		if _, err := e.ch.Initiate(ctx, initiateRequest(m)); !errors.Is(err, psp.ErrDeclined) || !errors.Is(err, errAmount) {
			t.Errorf("%s: %v, want ErrDeclined before any call", m, err)
		}
	}
}

func TestErrorClasses(t *testing.T) {
	cases := []struct {
		status int
		header string
		body   string
		check  func(error) bool
		name   string
	}{
		{500, "", `{"error":{"type":"api_error","message":"An unknown error occurred"}}`, psp.IsTemporary, "500"},
		{429, "", `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}`, psp.IsTemporary, "429"},
		{402, "", cardDeclined, func(err error) bool { return errors.Is(err, psp.ErrDeclined) && !psp.IsTemporary(err) }, "402 card declined"},
		{400, "", `{"error":{"type":"invalid_request_error","message":"Invalid currency"}}`, func(err error) bool { return errors.Is(err, psp.ErrDeclined) }, "400"},
		{409, "true", `{"error":{"type":"idempotency_error","message":"in progress"}}`, psp.IsTemporary, "409 with Stripe-Should-Retry: true"},
		{503, "false", `{"error":{"type":"api_error"}}`, func(err error) bool { return errors.Is(err, psp.ErrDeclined) }, "503 with Stripe-Should-Retry: false"},
		{200, "", `{"object":"checkout.session"`, func(err error) bool { return errors.Is(err, psp.ErrMalformed) }, "truncated JSON"},
	}
	for _, c := range cases {
		e, _ := newFake(t, map[string]func(*http.Request, url.Values) (int, string){})
		e.api.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c.header != "" {
				w.Header().Set("Stripe-Should-Retry", c.header)
			}
			w.WriteHeader(c.status)
			io.WriteString(w, c.body)
		})
		_, err := e.ch.Initiate(context.Background(), initiateRequest(domain.MustMoney(1999, "USD")))
		if !c.check(err) {
			t.Errorf("%s: %v", c.name, err)
		}
		var ae *APIError
		if c.status != 200 && (!errors.As(err, &ae) || ae.Status != c.status) {
			t.Errorf("%s: no *APIError in %v", c.name, err)
		}
	}
	// A network error is temporary.
	e := newEnv(t, nil)
	e.api.Close()
	if _, err := e.ch.Query(context.Background(), "T1"); !psp.IsTemporary(err) {
		t.Errorf("closed server: %v, want temporary", err)
	}
}

func TestQuery(t *testing.T) {
	const code = "T261125095957123ABCDEFGH"
	cases := []struct {
		name   string
		answer string
		want   domain.Notification
	}{
		{"none", searchAnswer(), domain.Notification{TransactionCode: code, Status: domain.PSPUnknown}},
		{"succeeded", searchAnswer(intentAnswer("pi_1", code, 1999, 1999, "usd", "succeeded", 1680800504)),
			domain.Notification{TransactionCode: code, PSPReference: "pi_1", Status: domain.PSPSucceeded, Amount: domain.MustMoney(1999, "USD")}},
		{"received less than asked", searchAnswer(intentAnswer("pi_1", code, 1999, 1000, "usd", "succeeded", 1680800504)),
			domain.Notification{TransactionCode: code, PSPReference: "pi_1", Status: domain.PSPSucceeded, Amount: domain.MustMoney(1000, "USD")}},
		{"ISK", searchAnswer(intentAnswer("pi_1", code, 500, 500, "isk", "succeeded", 1680800504)),
			domain.Notification{TransactionCode: code, PSPReference: "pi_1", Status: domain.PSPSucceeded, Amount: domain.MustMoney(5, "ISK")}},
		{"declined, may retry", searchAnswer(intentAnswer("pi_1", code, 1999, 0, "usd", "requires_payment_method", 1680800504)),
			domain.Notification{TransactionCode: code, PSPReference: "pi_1", Status: domain.PSPPending, Amount: domain.MustMoney(1999, "USD")}},
		{"canceled", searchAnswer(intentAnswer("pi_1", code, 1999, 0, "usd", "canceled", 1680800504)),
			domain.Notification{TransactionCode: code, PSPReference: "pi_1", Status: domain.PSPFailed, Amount: domain.MustMoney(1999, "USD")}},
		{"canceled and a newer open one", searchAnswer(
			intentAnswer("pi_1", code, 1999, 0, "usd", "canceled", 1680800504),
			intentAnswer("pi_2", code, 1999, 0, "usd", "processing", 1680800600)),
			domain.Notification{TransactionCode: code, PSPReference: "pi_2", Status: domain.PSPPending, Amount: domain.MustMoney(1999, "USD")}},
		{"succeeded wins", searchAnswer(
			intentAnswer("pi_1", code, 1999, 0, "usd", "processing", 1680800504),
			intentAnswer("pi_2", code, 1999, 1999, "usd", "succeeded", 1680800600)),
			domain.Notification{TransactionCode: code, PSPReference: "pi_2", Status: domain.PSPSucceeded, Amount: domain.MustMoney(1999, "USD")}},
	}
	for _, c := range cases {
		e, f := newFake(t, map[string]func(*http.Request, url.Values) (int, string){
			"GET /v1/payment_intents/search": func(*http.Request, url.Values) (int, string) { return 200, c.answer },
		})
		got, err := e.ch.Query(context.Background(), code)
		if err != nil || got != c.want {
			t.Errorf("%s: %+v, %v\nwant %+v", c.name, got, err, c.want)
		}
		if q := f.got[0].URL.Query().Get("query"); q != "metadata['transaction_code']:'"+code+"'" {
			t.Errorf("search query %q", q)
		}
	}
	// An answer about another attempt is malformed, not trusted.
	e, _ := newFake(t, map[string]func(*http.Request, url.Values) (int, string){
		"GET /v1/payment_intents/search": func(*http.Request, url.Values) (int, string) {
			return 200, searchAnswer(intentAnswer("pi_1", "T-other", 1999, 1999, "usd", "succeeded", 1))
		},
	})
	if _, err := e.ch.Query(context.Background(), code); !errors.Is(err, psp.ErrMalformed) {
		t.Errorf("answer about another code: %v", err)
	}
	if q := searchQuote(`a'b\c`); q != `'a\'b\\c'` {
		t.Errorf("searchQuote = %s", q)
	}
}

func TestRefund(t *testing.T) {
	const code = "T261125095957123ABCDEFGH"
	e, f := newFake(t, map[string]func(*http.Request, url.Values) (int, string){
		"POST /v1/refunds": func(r *http.Request, form url.Values) (int, string) {
			return 200, refundAnswer("re_1", form.Get("metadata[refund_ref]"), 500, "usd", "pending", form.Get("payment_intent"))
		},
		"GET /v1/payment_intents/search": func(*http.Request, url.Values) (int, string) {
			return 200, searchAnswer(intentAnswer("pi_9", code, 1999, 1999, "usd", "succeeded", 1))
		},
	})
	req := psp.RefundRequest{RefundRef: "R1", TransactionCode: code, PSPReference: "pi_3MtwBwLkdIwHu7ix28a3tqPa", Amount: domain.MustMoney(500, "USD"), Reason: "partial"}
	got, err := e.ch.Refund(context.Background(), req)
	want := psp.RefundResult{RefundRef: "R1", PSPReference: "re_1", Status: psp.RefundPending, Amount: domain.MustMoney(500, "USD")}
	if err != nil || got != want {
		t.Fatalf("Refund = %+v, %v", got, err)
	}
	if k := f.got[0].Header.Get("Idempotency-Key"); k != "R1" {
		t.Errorf("Idempotency-Key %q", k)
	}
	if form := f.forms[0]; form.Get("payment_intent") != req.PSPReference || form.Get("amount") != "500" || form.Get("metadata[refund_ref]") != "R1" {
		t.Errorf("form %v", form)
	}
	// With the session id as reference, the intent is looked up first.
	req.PSPReference = "cs_test_1"
	if _, err := e.ch.Refund(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if last := f.forms[len(f.forms)-1]; last.Get("payment_intent") != "pi_9" {
		t.Errorf("refund of %q, want the looked-up pi_9", last.Get("payment_intent"))
	}
}

func TestQueryRefund(t *testing.T) {
	page := 0
	e, f := newFake(t, map[string]func(*http.Request, url.Values) (int, string){
		"GET /v1/refunds": func(r *http.Request, _ url.Values) (int, string) {
			page++
			if page == 1 {
				return 200, `{"object":"list","url":"/v1/refunds","has_more":true,"data":[` +
					refundAnswer("re_a", "R-other", 100, "usd", "succeeded", "pi_a") + `]}`
			}
			return 200, `{"object":"list","url":"/v1/refunds","has_more":false,"data":[` +
				refundAnswer("re_b", "R1", 50, "jpy", "succeeded", "pi_b") + `]}`
		},
	})
	got, err := e.ch.QueryRefund(context.Background(), "R1")
	want := psp.RefundResult{RefundRef: "R1", PSPReference: "re_b", Status: psp.RefundSucceeded, Amount: domain.MustMoney(50, "JPY")}
	if err != nil || got != want {
		t.Errorf("QueryRefund = %+v, %v", got, err)
	}
	if after := f.got[1].URL.Query().Get("starting_after"); after != "re_a" {
		t.Errorf("second page starting_after %q", after)
	}
	got, err = e.ch.QueryRefund(context.Background(), "R-none")
	if err != nil || got.Status != psp.RefundUnknown {
		t.Errorf("unknown refund: %+v, %v", got, err)
	}
}

func TestSettledPayments(t *testing.T) {
	e, f := newFake(t, map[string]func(*http.Request, url.Values) (int, string){
		"GET /v1/payment_intents": func(*http.Request, url.Values) (int, string) {
			return 200, `{"object":"list","url":"/v1/payment_intents","has_more":true,"data":[` +
				intentAnswer("pi_1", "T1", 1999, 1999, "usd", "succeeded", 1764064800) + "," +
				intentAnswer("pi_2", "T2", 1999, 0, "usd", "canceled", 1764064900) + "," +
				intentAnswer("pi_3", "", 500, 500, "usd", "succeeded", 1764065000) + "]}"
		},
	})
	day := time.Date(2025, 11, 25, 15, 0, 0, 0, time.FixedZone("PST", -8*3600))
	p, err := e.ch.SettledPayments(context.Background(), day, "pi_0")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rows) != 1 || p.Rows[0].TransactionCode != "T1" || !p.Rows[0].Amount.Equal(domain.MustMoney(1999, "USD")) || p.NextPage != "pi_3" {
		t.Errorf("page %+v", p)
	}
	q := f.got[0].URL.Query()
	from := time.Date(2025, 11, 25, 0, 0, 0, 0, day.Location()).Unix()
	if q.Get("created[gte]") != fmt.Sprint(from) || q.Get("created[lt]") != fmt.Sprint(from+86400) || q.Get("starting_after") != "pi_0" {
		t.Errorf("query %v", q)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := ChannelConfig{SecretKey: testKey, WebhookSecrets: []string{"whsec_x"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]ChannelConfig{
		"publishable key": {SecretKey: "pk_test_x", WebhookSecrets: []string{"w"}},
		"no secrets":      {SecretKey: testKey},
		"empty secret":    {SecretKey: testKey, WebhookSecrets: []string{""}},
		"bad URL":         {SecretKey: testKey, WebhookSecrets: []string{"w"}, BaseURL: "ftp://x"},
	} {
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: valid", name)
		} else if strings.Contains(err.Error(), testKey) {
			t.Errorf("%s: error shows the key: %v", name, err)
		}
	}
}
