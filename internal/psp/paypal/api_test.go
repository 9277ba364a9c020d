package paypal

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// Recorded answers, shaped as the examples of PayPal's REST API reference
// (developer.paypal.com/api/rest/authentication/ for the token;
// developer.paypal.com/docs/api/orders/v2/ orders_create, orders_get,
// orders_capture; developer.paypal.com/docs/api/payments/v2/
// captures_refund; developer.paypal.com/docs/api/transaction-search/v1/
// transactions_get; the error bodies of
// developer.paypal.com/api/rest/reference/orders/v2/errors/). The ids
// (order 5O190127TN364715T, capture 3C679366HH908993F, refund
// 1JU08902781691411, transaction 5TY05013RG002845M) are the examples'
// own; custom_id/invoice_id/reference_id are set to a transaction code as
// Initiate sets them.
const (
	testCode = "T261125095957123ABCDEFGH"
	testRef  = "5O190127TN364715T"

	recToken = `{"scope":"https://uri.paypal.com/services/invoicing https://uri.paypal.com/services/payments/refund https://api-m.paypal.com/v1/payments/.*",` +
		`"access_token":"A21AAFEpH4PsADK7qSS7pSRsgzfENtu-Q1ysgEDVDESseMHBYXVJYE8ovjj68elIDy8nF26AwPhfXTIeWAZHSLIsQkSYz9ifg",` +
		`"token_type":"Bearer","app_id":"APP-80W284485P519543T","expires_in":31668,"nonce":"2020-04-03T15:35:36ZaYZlGvEkV4yVSz8g6bAKFoGSEzuy3CQcz3ljhibkOHg"}`
	recTokenBadClient = `{"error":"invalid_client","error_description":"Client Authentication failed"}`
	recCreated        = `{"id":"5O190127TN364715T","status":"PAYER_ACTION_REQUIRED","payment_source":{"paypal":{}},"links":[` +
		`{"href":"https://api-m.paypal.com/v2/checkout/orders/5O190127TN364715T","rel":"self","method":"GET"},` +
		`{"href":"https://www.paypal.com/checkoutnow?token=5O190127TN364715T","rel":"payer-action","method":"GET"}]}`
	recCreatedApprove = `{"id":"5O190127TN364715T","status":"CREATED","links":[` +
		`{"href":"https://api-m.paypal.com/v2/checkout/orders/5O190127TN364715T","rel":"self","method":"GET"},` +
		`{"href":"https://www.paypal.com/checkoutnow?token=5O190127TN364715T","rel":"approve","method":"GET"},` +
		`{"href":"https://api-m.paypal.com/v2/checkout/orders/5O190127TN364715T","rel":"update","method":"PATCH"},` +
		`{"href":"https://api-m.paypal.com/v2/checkout/orders/5O190127TN364715T/capture","rel":"capture","method":"POST"}]}`
	recOrderApproved = `{"id":"5O190127TN364715T","intent":"CAPTURE","status":"APPROVED","payment_source":{"paypal":{"name":{"given_name":"John","surname":"Doe"},` +
		`"email_address":"customer@example.com","account_id":"QYR5Z8XDVJNXQ"}},"purchase_units":[{"reference_id":"` + testCode + `","custom_id":"` + testCode + `",` +
		`"invoice_id":"` + testCode + `","amount":{"currency_code":"USD","value":"100.00"}}],"payer":{"name":{"given_name":"John","surname":"Doe"},` +
		`"email_address":"customer@example.com","payer_id":"QYR5Z8XDVJNXQ"},"create_time":"2018-04-01T21:18:49Z",` +
		`"links":[{"href":"https://api-m.paypal.com/v2/checkout/orders/5O190127TN364715T","rel":"self","method":"GET"}]}`
	recOrderCompleted = `{"id":"5O190127TN364715T","intent":"CAPTURE","status":"COMPLETED","payment_source":{"paypal":{"name":{"given_name":"John","surname":"Doe"},` +
		`"email_address":"customer@example.com","account_id":"QYR5Z8XDVJNXQ"}},"purchase_units":[{"reference_id":"` + testCode + `","custom_id":"` + testCode + `",` +
		`"invoice_id":"` + testCode + `","amount":{"currency_code":"USD","value":"100.00"},"shipping":{"address":{"address_line_1":"123 Townsend St",` +
		`"address_line_2":"Floor 6","admin_area_2":"San Francisco","admin_area_1":"CA","postal_code":"94107","country_code":"US"}},` +
		`"payments":{"captures":[{"id":"3C679366HH908993F","status":"COMPLETED","amount":{"currency_code":"USD","value":"100.00"},` +
		`"custom_id":"` + testCode + `","invoice_id":"` + testCode + `","final_capture":true,` +
		`"seller_protection":{"status":"ELIGIBLE","dispute_categories":["ITEM_NOT_RECEIVED","UNAUTHORIZED_TRANSACTION"]},` +
		`"seller_receivable_breakdown":{"gross_amount":{"currency_code":"USD","value":"100.00"},"paypal_fee":{"currency_code":"USD","value":"3.00"},` +
		`"net_amount":{"currency_code":"USD","value":"97.00"}},"links":[{"href":"https://api-m.paypal.com/v2/payments/captures/3C679366HH908993F","rel":"self","method":"GET"},` +
		`{"href":"https://api-m.paypal.com/v2/payments/captures/3C679366HH908993F/refund","rel":"refund","method":"POST"}],` +
		`"create_time":"2018-04-01T21:20:49Z","update_time":"2018-04-01T21:20:49Z"}]}}],` +
		`"payer":{"name":{"given_name":"John","surname":"Doe"},"email_address":"customer@example.com","payer_id":"QYR5Z8XDVJNXQ"},` +
		`"links":[{"href":"https://api-m.paypal.com/v2/checkout/orders/5O190127TN364715T","rel":"self","method":"GET"}]}`
	recOrderDeclined = `{"id":"5O190127TN364715T","intent":"CAPTURE","status":"COMPLETED","purchase_units":[{"reference_id":"` + testCode + `","custom_id":"` + testCode + `",` +
		`"amount":{"currency_code":"USD","value":"100.00"},"payments":{"captures":[{"id":"3C679366HH908993F","status":"DECLINED",` +
		`"amount":{"currency_code":"USD","value":"100.00"},"create_time":"2018-04-01T21:20:49Z","update_time":"2018-04-01T21:20:49Z"}]}}]}`
	recOrderCreated = `{"id":"5O190127TN364715T","intent":"CAPTURE","status":"PAYER_ACTION_REQUIRED","purchase_units":[{"reference_id":"` + testCode + `",` +
		`"custom_id":"` + testCode + `","amount":{"currency_code":"JPY","value":"1200"}}],"create_time":"2018-04-01T21:18:49Z"}`
	recOrderVoided = `{"id":"5O190127TN364715T","intent":"CAPTURE","status":"VOIDED","purchase_units":[{"reference_id":"` + testCode + `",` +
		`"custom_id":"` + testCode + `","amount":{"currency_code":"HUF","value":"1000"}}]}`
	recOrderOther = `{"id":"5O190127TN364715T","intent":"CAPTURE","status":"APPROVED","purchase_units":[{"reference_id":"default",` +
		`"custom_id":"SOMEONE-ELSES","amount":{"currency_code":"USD","value":"100.00"}}]}`
	recRefund = `{"id":"1JU08902781691411","amount":{"value":"10.99","currency_code":"USD"},"status":"COMPLETED","note_to_payer":"Defective product",` +
		`"seller_payable_breakdown":{"gross_amount":{"value":"10.99","currency_code":"USD"},"paypal_fee":{"value":"0","currency_code":"USD"},` +
		`"net_amount":{"value":"10.99","currency_code":"USD"},"total_refunded_amount":{"value":"10.99","currency_code":"USD"}},` +
		`"custom_id":"R-1","create_time":"2018-09-11T23:24:19Z","update_time":"2018-09-11T23:24:19Z",` +
		`"links":[{"href":"https://api-m.paypal.com/v2/payments/refunds/1JU08902781691411","rel":"self","method":"GET"},` +
		`{"href":"https://api-m.paypal.com/v2/payments/captures/3C679366HH908993F","rel":"up","method":"GET"}]}`
	recRefundPending = `{"id":"1JU08902781691411","status":"PENDING","status_details":{"reason":"ECHECK"},` +
		`"links":[{"href":"https://api-m.paypal.com/v2/payments/refunds/1JU08902781691411","rel":"self","method":"GET"}]}`
	recNotFound = `{"name":"RESOURCE_NOT_FOUND","details":[{"field":"order_id","value":"5O190127TN364715T","location":"path","issue":"INVALID_RESOURCE_ID",` +
		`"description":"Specified resource ID does not exist. Please check the resource ID and try again."}],` +
		`"message":"The specified resource does not exist.","debug_id":"b3e6ea5d4e2bf"}`
	recAlreadyCaptured = `{"name":"UNPROCESSABLE_ENTITY","details":[{"issue":"ORDER_ALREADY_CAPTURED",` +
		`"description":"Order already captured.If 'intent=CAPTURE' only one capture per order is allowed."}],` +
		`"message":"The requested action could not be performed, semantically incorrect, or failed business validation.","debug_id":"f8bd4e3bb5d0e"}`
	recRefundExceeded = `{"name":"UNPROCESSABLE_ENTITY","details":[{"issue":"REFUND_AMOUNT_EXCEEDED",` +
		`"description":"The refund amount must be less than or equal to the capture amount that has not yet been refunded."}],` +
		`"message":"The requested action could not be performed, semantically incorrect, or failed business validation.","debug_id":"9f1b9d3c7f0f9"}`
	recServerError  = `{"name":"INTERNAL_SERVER_ERROR","message":"An internal server error occurred.","debug_id":"90957fca61718"}`
	recUnauthorized = `{"error":"invalid_token","error_description":"Token signature verification failed"}`
	recTransactions = `{"transaction_details":[{"transaction_info":{"paypal_account_id":"6STWC2LSUYYYE","transaction_id":"5TY05013RG002845M",` +
		`"transaction_event_code":"T0006","transaction_initiation_date":"2014-07-11T04:03:52+0000","transaction_updated_date":"2014-07-11T04:03:52+0000",` +
		`"transaction_amount":{"currency_code":"USD","value":"465.00"},"fee_amount":{"currency_code":"USD","value":"-13.79"},` +
		`"transaction_status":"S","transaction_subject":"Bill for your purchase","invoice_id":"` + testCode + `","custom_field":"` + testCode + `",` +
		`"protection_eligibility":"01"}},` +
		`{"transaction_info":{"transaction_id":"1FN09943JY662130R","transaction_event_code":"T1107","transaction_initiation_date":"2014-07-11T05:10:00+0000",` +
		`"transaction_amount":{"currency_code":"USD","value":"-10.00"},"transaction_status":"S","invoice_id":"` + testCode + `"}},` +
		`{"transaction_info":{"transaction_id":"8RS34178AF3512451","transaction_event_code":"T0006","transaction_initiation_date":"2014-07-11T06:00:00+0000",` +
		`"transaction_amount":{"currency_code":"JPY","value":"1200"},"transaction_status":"S","custom_field":"T2"}},` +
		`{"transaction_info":{"transaction_id":"0AB12345CD678901E","transaction_event_code":"T0400","transaction_initiation_date":"2014-07-11T07:00:00+0000",` +
		`"transaction_amount":{"currency_code":"USD","value":"-100.00"},"transaction_status":"S"}}],` +
		`"account_number":"XZXSPECPDZHZU","last_refreshed_datetime":"2017-01-02T06:59:59+0000","page":1,"total_items":4,"total_pages":2,` +
		`"links":[{"href":"https://api-m.paypal.com/v1/reporting/transactions?page=2","rel":"next","method":"GET"}]}`
)

type answer struct {
	status int
	body   string
}

type seen struct {
	method, path, query, auth, requestID, prefer, body string
}

// fake is PayPal's REST API as far as the adapter uses it. Answers are
// queued per "METHOD path"; the last one repeats.
type fake struct {
	mu       sync.Mutex
	answers  map[string][]answer
	requests []seen
}

func (f *fake) on(route string, a ...answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.answers == nil {
		f.answers = map[string][]answer{}
	}
	f.answers[route] = a
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"),
		r.Header.Get("PayPal-Request-Id"), r.Header.Get("Prefer"), string(body)})
	route := r.Method + " " + r.URL.Path
	q := f.answers[route]
	var a answer
	switch {
	case len(q) == 0:
		a = answer{http.StatusNotFound, recNotFound}
	case len(q) == 1:
		a = q[0]
	default:
		a, f.answers[route] = q[0], q[1:]
	}
	f.mu.Unlock()
	if r.URL.Path != "/v1/oauth2/token" && r.Header.Get("Authorization") != "Bearer A21AAFEpH4PsADK7qSS7pSRsgzfENtu-Q1ysgEDVDESseMHBYXVJYE8ovjj68elIDy8nF26AwPhfXTIeWAZHSLIsQkSYz9ifg" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, recUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Paypal-Debug-Id", "b3e6ea5d4e2bf")
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (f *fake) seen() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.requests...)
}

// routes lists the requests as "METHOD path", tokens left out.
func (f *fake) routes() []string {
	var out []string
	for _, s := range f.seen() {
		if s.path != "/v1/oauth2/token" {
			out = append(out, s.method+" "+s.path)
		}
	}
	return out
}

func newAPI(t *testing.T, edit ...func(*ChannelConfig)) (*Channel, *fake) {
	t.Helper()
	f := &fake{}
	f.on("POST /v1/oauth2/token", answer{200, recToken})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	e := newEnv(t, srv.URL, false, append([]func(*ChannelConfig){func(c *ChannelConfig) { c.Transport = nil }}, edit...)...)
	return e.ch, f
}

func TestInitiate(t *testing.T) {
	ch, f := newAPI(t)
	f.on("POST /v2/checkout/orders", answer{201, recCreated}, answer{200, recCreatedApprove})
	req := psp.InitiateRequest{TransactionCode: testCode, OrderID: "ord_1", Amount: domain.MustMoney(100000, "HUF"),
		Description: "Order ord_1", ReturnURL: "https://shop.example/v1/return/paypal?tc=" + testCode}
	for i := range 2 {
		s, err := ch.Initiate(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if s.PSPReference != testRef || s.PayURL != "https://www.paypal.com/checkoutnow?token=5O190127TN364715T" {
			t.Fatalf("call %d: session %+v", i, s)
		}
	}
	reqs := f.seen()
	if len(reqs) != 3 || reqs[0].path != "/v1/oauth2/token" {
		t.Fatalf("requests %+v, want one token and two orders", reqs)
	}
	tok := reqs[0]
	if tok.method != http.MethodPost || tok.body != "grant_type=client_credentials" || !strings.HasPrefix(tok.auth, "Basic ") {
		t.Fatalf("token request %+v", tok)
	}
	for _, r := range reqs[1:] {
		if r.requestID != "order-"+testCode || r.prefer != "return=representation" {
			t.Errorf("order request headers %+v", r)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(r.body), &v); err != nil {
			t.Fatal(err)
		}
		pu := v["purchase_units"].([]any)[0].(map[string]any)
		amt := pu["amount"].(map[string]any)
		if v["intent"] != "CAPTURE" || pu["reference_id"] != testCode || pu["custom_id"] != testCode || pu["invoice_id"] != testCode ||
			amt["currency_code"] != "HUF" || amt["value"] != "1000" {
			t.Errorf("order body %s", r.body)
		}
		xc := v["payment_source"].(map[string]any)["paypal"].(map[string]any)["experience_context"].(map[string]any)
		if xc["return_url"] != req.ReturnURL || xc["cancel_url"] != req.ReturnURL {
			t.Errorf("experience context %v", xc)
		}
		for _, secret := range []string{"ECYYrrSHdKfk", "AeA1QIZXiflr1"} {
			if strings.Contains(r.body, secret) || strings.Contains(r.query, secret) {
				t.Errorf("a credential in a body or URL: %+v", r)
			}
		}
	}
}

func TestInitiateRefused(t *testing.T) {
	ch, f := newAPI(t)
	for name, m := range map[string]domain.Money{
		"KWD, not a PayPal currency": domain.MustMoney(1999, "KWD"),
		"HUF with fillér":            domain.MustMoney(100050, "HUF"),
		"TWD with cents":             domain.MustMoney(101, "TWD"),
	} {
		_, err := ch.Initiate(t.Context(), psp.InitiateRequest{TransactionCode: testCode, Amount: m})
		if !errors.Is(err, psp.ErrDeclined) {
			t.Errorf("%s: %v, want declined", name, err)
		}
	}
	f.on("POST /v2/checkout/orders", answer{500, recServerError})
	_, err := ch.Initiate(t.Context(), psp.InitiateRequest{TransactionCode: testCode, Amount: domain.MustMoney(100, "USD")})
	if !psp.IsTemporary(err) {
		t.Errorf("500: %v, want temporary", err)
	}
	if routes := f.routes(); len(routes) != 1 {
		t.Errorf("requests %v, want only the one answered 500", routes)
	}
}

func TestTokenFailure(t *testing.T) {
	ch, f := newAPI(t)
	f.on("POST /v1/oauth2/token", answer{401, recTokenBadClient})
	_, err := ch.Initiate(t.Context(), psp.InitiateRequest{TransactionCode: testCode, Amount: domain.MustMoney(100, "USD")})
	var ae *APIError
	if !errors.Is(err, psp.ErrDeclined) || !errors.As(err, &ae) || ae.Name != "invalid_client" {
		t.Fatalf("bad client: %v", err)
	}
	if strings.Contains(err.Error(), "ECYYrrSHdKfk") {
		t.Fatal("the error holds the secret")
	}
}

// TestTokenCachedUntilExpiry: one token for many calls; a new one when
// the clock passes its expiry (less the margin), and after a 401.
func TestTokenCachedUntilExpiry(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	ch, f := newAPI(t, func(c *ChannelConfig) {
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	f.on("GET /v2/checkout/orders/"+testRef, answer{200, recOrderCreated})
	tokens := func() (n int) {
		for _, s := range f.seen() {
			if s.path == "/v1/oauth2/token" {
				n++
			}
		}
		return n
	}
	for range 3 {
		if _, err := ch.QueryByReference(t.Context(), testCode, testRef); err != nil {
			t.Fatal(err)
		}
	}
	if tokens() != 1 {
		t.Fatalf("%d token requests, want 1", tokens())
	}
	mu.Lock()
	now = now.Add(31668*time.Second - tokenMargin + time.Second)
	mu.Unlock()
	if _, err := ch.QueryByReference(t.Context(), testCode, testRef); err != nil {
		t.Fatal(err)
	}
	if tokens() != 2 {
		t.Fatalf("%d token requests after expiry, want 2", tokens())
	}
	// A token revoked early: 401, a new token, the call again.
	ch.tokenMu.Lock()
	ch.token = "revoked"
	ch.tokenMu.Unlock()
	if _, err := ch.QueryByReference(t.Context(), testCode, testRef); err != nil {
		t.Fatal(err)
	}
	if tokens() != 3 {
		t.Fatalf("%d token requests after a 401, want 3", tokens())
	}
}

func TestQueryByReference(t *testing.T) {
	paidAt := time.Date(2018, 4, 1, 21, 20, 49, 0, time.UTC)
	cases := []struct {
		name   string
		get    []answer
		cap    []answer
		want   domain.Notification
		routes []string
		err    func(error) bool
	}{
		{name: "approved: captured", get: []answer{{200, recOrderApproved}}, cap: []answer{{201, recOrderCompleted}},
			want:   domain.Notification{TransactionCode: testCode, PSPReference: testRef, Status: domain.PSPSucceeded, Amount: domain.MustMoney(10000, "USD"), OccurredAt: paidAt},
			routes: []string{"GET /v2/checkout/orders/" + testRef, "POST /v2/checkout/orders/" + testRef + "/capture"}},
		{name: "approved, captured before (422)", get: []answer{{200, recOrderApproved}, {200, recOrderCompleted}}, cap: []answer{{422, recAlreadyCaptured}},
			want: domain.Notification{TransactionCode: testCode, PSPReference: testRef, Status: domain.PSPSucceeded, Amount: domain.MustMoney(10000, "USD"), OccurredAt: paidAt},
			routes: []string{"GET /v2/checkout/orders/" + testRef, "POST /v2/checkout/orders/" + testRef + "/capture",
				"GET /v2/checkout/orders/" + testRef}},
		{name: "completed", get: []answer{{200, recOrderCompleted}},
			want:   domain.Notification{TransactionCode: testCode, PSPReference: testRef, Status: domain.PSPSucceeded, Amount: domain.MustMoney(10000, "USD"), OccurredAt: paidAt},
			routes: []string{"GET /v2/checkout/orders/" + testRef}},
		{name: "capture declined", get: []answer{{200, recOrderDeclined}},
			want: domain.Notification{TransactionCode: testCode, PSPReference: testRef, Status: domain.PSPFailed, Amount: domain.MustMoney(10000, "USD")}},
		{name: "waiting for the buyer", get: []answer{{200, recOrderCreated}},
			want: domain.Notification{TransactionCode: testCode, PSPReference: testRef, Status: domain.PSPPending, Amount: domain.MustMoney(1200, "JPY")}},
		{name: "voided", get: []answer{{200, recOrderVoided}},
			want: domain.Notification{TransactionCode: testCode, PSPReference: testRef, Status: domain.PSPFailed, Amount: domain.MustMoney(100000, "HUF")}},
		{name: "unknown order", get: []answer{{404, recNotFound}},
			want: domain.Notification{TransactionCode: testCode, Status: domain.PSPUnknown}},
		{name: "another attempt's order", get: []answer{{200, recOrderOther}}, err: func(err error) bool { return errors.Is(err, psp.ErrMalformed) },
			routes: []string{"GET /v2/checkout/orders/" + testRef}},
		{name: "server error", get: []answer{{500, recServerError}}, err: psp.IsTemporary},
		{name: "capture server error", get: []answer{{200, recOrderApproved}}, cap: []answer{{503, recServerError}}, err: psp.IsTemporary},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch, f := newAPI(t)
			f.on("GET /v2/checkout/orders/"+testRef, c.get...)
			if c.cap != nil {
				f.on("POST /v2/checkout/orders/"+testRef+"/capture", c.cap...)
			}
			got, err := psp.QueryAttempt(t.Context(), ch, testCode, testRef)
			if c.err != nil {
				if !c.err(err) {
					t.Fatalf("err = %v", err)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if got != c.want {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
			if c.routes != nil && strings.Join(f.routes(), ",") != strings.Join(c.routes, ",") {
				t.Fatalf("requests %v, want %v", f.routes(), c.routes)
			}
			for _, s := range f.seen() {
				if strings.HasSuffix(s.path, "/capture") && s.requestID != "capture-"+testCode {
					t.Fatalf("capture without PayPal-Request-Id capture-<code>: %+v", s)
				}
			}
		})
	}
}

// TestQueryWithoutReference: without the order id there is nothing to
// ask: PSPUnknown, no error, no request.
func TestQueryWithoutReference(t *testing.T) {
	ch, f := newAPI(t)
	for _, q := range []func() (domain.Notification, error){
		func() (domain.Notification, error) { return ch.Query(t.Context(), testCode) },
		func() (domain.Notification, error) { return psp.QueryAttempt(t.Context(), ch, testCode, "") },
	} {
		n, err := q()
		if err != nil || n.Status != domain.PSPUnknown || n.TransactionCode != testCode {
			t.Fatalf("%+v, %v", n, err)
		}
	}
	if len(f.seen()) != 0 {
		t.Fatalf("requests %v", f.seen())
	}
}

func TestRefund(t *testing.T) {
	req := psp.RefundRequest{RefundRef: "R-1", TransactionCode: testCode, PSPReference: testRef, Amount: domain.MustMoney(1099, "USD"), Reason: "Defective product"}
	t.Run("refunded", func(t *testing.T) {
		ch, f := newAPI(t)
		f.on("GET /v2/checkout/orders/"+testRef, answer{200, recOrderCompleted})
		f.on("POST /v2/payments/captures/3C679366HH908993F/refund", answer{201, recRefund})
		got, err := ch.Refund(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		want := psp.RefundResult{RefundRef: "R-1", PSPReference: "1JU08902781691411", Status: psp.RefundSucceeded, Amount: domain.MustMoney(1099, "USD")}
		if got != want {
			t.Fatalf("got %+v want %+v", got, want)
		}
		reqs := f.seen()
		last := reqs[len(reqs)-1]
		if last.requestID != "R-1" || !strings.Contains(last.body, `"value":"10.99"`) || !strings.Contains(last.body, `"custom_id":"R-1"`) {
			t.Fatalf("refund request %+v", last)
		}
	})
	t.Run("pending, minimal answer", func(t *testing.T) {
		ch, f := newAPI(t)
		f.on("GET /v2/checkout/orders/"+testRef, answer{200, recOrderCompleted})
		f.on("POST /v2/payments/captures/3C679366HH908993F/refund", answer{201, recRefundPending})
		got, err := ch.Refund(t.Context(), req)
		if err != nil || got.Status != psp.RefundPending || !got.Amount.Equal(req.Amount) {
			t.Fatalf("%+v, %v", got, err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		ch, f := newAPI(t)
		f.on("GET /v2/checkout/orders/"+testRef, answer{200, recOrderCompleted})
		f.on("POST /v2/payments/captures/3C679366HH908993F/refund", answer{422, recRefundExceeded})
		if _, err := ch.Refund(t.Context(), req); !errors.Is(err, psp.ErrDeclined) {
			t.Fatalf("%v, want declined", err)
		}
	})
	t.Run("not captured", func(t *testing.T) {
		ch, f := newAPI(t)
		f.on("GET /v2/checkout/orders/"+testRef, answer{200, recOrderApproved})
		if _, err := ch.Refund(t.Context(), req); !errors.Is(err, psp.ErrDeclined) {
			t.Fatalf("%v, want declined", err)
		}
		if r := f.routes(); len(r) != 1 {
			t.Fatalf("requests %v", r)
		}
	})
	t.Run("no order id", func(t *testing.T) {
		ch, f := newAPI(t)
		r := req
		r.PSPReference = ""
		if _, err := ch.Refund(t.Context(), r); !errors.Is(err, psp.ErrDeclined) {
			t.Fatalf("%v, want declined", err)
		}
		if len(f.seen()) != 0 {
			t.Fatal("requests made")
		}
	})
	t.Run("unknown order", func(t *testing.T) {
		ch, _ := newAPI(t)
		if _, err := ch.Refund(t.Context(), req); !errors.Is(err, psp.ErrNotFound) {
			t.Fatalf("%v, want not found", err)
		}
	})
	t.Run("query refund", func(t *testing.T) {
		ch, f := newAPI(t)
		got, err := ch.QueryRefund(t.Context(), "R-1")
		if err != nil || got.Status != psp.RefundUnknown || got.RefundRef != "R-1" || len(f.seen()) != 0 {
			t.Fatalf("%+v, %v", got, err)
		}
	})
	t.Run("query refund by PayPal's id follows a pending refund", func(t *testing.T) {
		ch, f := newAPI(t)
		f.on("GET /v2/payments/refunds/1JU08902781691411", answer{200, recRefund})
		got, err := psp.QueryRefundOf(t.Context(), ch, psp.RefundQuery{RefundRef: "R-1", PSPReference: "1JU08902781691411", TransactionCode: testCode})
		want := psp.RefundResult{RefundRef: "R-1", PSPReference: "1JU08902781691411", Status: psp.RefundSucceeded, Amount: domain.MustMoney(1099, "USD")}
		if err != nil || got != want {
			t.Fatalf("%+v, %v; want %+v", got, err, want)
		}
	})
	t.Run("query refund by id of someone else's refund", func(t *testing.T) {
		ch, f := newAPI(t)
		f.on("GET /v2/payments/refunds/1JU08902781691411", answer{200, recRefund})
		if _, err := psp.QueryRefundOf(t.Context(), ch, psp.RefundQuery{RefundRef: "R-2", PSPReference: "1JU08902781691411"}); !errors.Is(err, psp.ErrMalformed) {
			t.Fatalf("%v, want malformed", err)
		}
	})
	t.Run("query refund by an unknown id", func(t *testing.T) {
		ch, _ := newAPI(t)
		got, err := psp.QueryRefundOf(t.Context(), ch, psp.RefundQuery{RefundRef: "R-1", PSPReference: "NOPE"})
		if err != nil || got.Status != psp.RefundUnknown {
			t.Fatalf("%+v, %v", got, err)
		}
	})
}

func TestSettledPayments(t *testing.T) {
	ch, f := newAPI(t)
	f.on("GET /v1/reporting/transactions", answer{200, recTransactions})
	day := time.Date(2014, 7, 11, 15, 0, 0, 0, time.FixedZone("X", -7*3600))
	p, err := ch.SettledPayments(t.Context(), day, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []psp.SettlementRow{
		{TransactionCode: testCode, PSPReference: "5TY05013RG002845M", Amount: domain.MustMoney(46500, "USD"), Status: domain.PSPSucceeded,
			SettledAt: time.Date(2014, 7, 11, 4, 3, 52, 0, time.UTC)},
		{TransactionCode: "T2", PSPReference: "8RS34178AF3512451", Amount: domain.MustMoney(1200, "JPY"), Status: domain.PSPSucceeded,
			SettledAt: time.Date(2014, 7, 11, 6, 0, 0, 0, time.UTC)},
	}
	if len(p.Rows) != len(want) || p.NextPage != "2" {
		t.Fatalf("page %+v", p)
	}
	for i := range want {
		if p.Rows[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, p.Rows[i], want[i])
		}
	}
	q := f.seen()[len(f.seen())-1].query
	for _, s := range []string{"start_date=2014-07-11T00%3A00%3A00%2B0000", "end_date=2014-07-11T23%3A59%3A59%2B0000", "transaction_status=S", "page=1"} {
		if !strings.Contains(q, s) {
			t.Errorf("query %s lacks %s", q, s)
		}
	}
	if _, err := ch.SettledPayments(t.Context(), day, "x"); !errors.Is(err, psp.ErrMalformed) {
		t.Errorf("bad page: %v", err)
	}
}
