package razorpay

import (
	"context"
	"encoding/json"
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

// The answers below follow Razorpay's API reference examples
// (https://razorpay.com/docs/api/orders/create/, /orders/fetch-all/,
// /orders/fetch-payments/, /payments/fetch-all-payments/,
// /refunds/create-normal/, /errors/) and the official SDK's recorded
// mocks (razorpay/razorpay-python tests/mocks/fake_order.json,
// order_collection_with_one_order.json, payment_collection.json,
// fake_refund.json), with ids, amounts, statuses, receipts and notes set
// per case. Note Razorpay's empty notes, an array.

func orderAnswer(id, receipt string, amount int64, currency, status string) string {
	return fmt.Sprintf(`{"id": %q, "entity": "order", "amount": %d, "amount_paid": 0, "amount_due": %d, "currency": %q,
  "receipt": %q, "offer_id": null, "status": %q, "attempts": 0, "notes": [], "created_at": 1642662092}`,
		id, amount, amount, currency, receipt, status)
}

func paymentAnswer(id, order string, amount int64, currency, status, code string, created int64) string {
	notes := `[]`
	if code != "" {
		notes = fmt.Sprintf(`{"transaction_code": %q}`, code)
	}
	return fmt.Sprintf(`{"id": %q, "entity": "payment", "amount": %d, "currency": %q, "status": %q, "order_id": %q,
  "invoice_id": null, "international": false, "method": "upi", "amount_refunded": 0, "refund_status": null,
  "captured": %t, "description": "Purchase Shoes", "card_id": null, "bank": null, "wallet": null,
  "vpa": "gaurav.kumar@exampleupi", "email": "gaurav.kumar@example.com", "contact": "+919999999999",
  "customer_id": "cust_DitrYCFtCIokBO", "notes": %s, "fee": 24, "tax": 4, "error_code": null,
  "error_description": null, "error_source": null, "error_step": null, "error_reason": null,
  "acquirer_data": {"rrn": "033814379298"}, "created_at": %d}`, id, amount, currency, status, order, status == "captured", notes, created)
}

func refundAnswer(id, payment, receipt string, amount int64, status string) string {
	return fmt.Sprintf(`{"id": %q, "entity": "refund", "amount": %d, "currency": "INR", "payment_id": %q,
  "notes": {"notes_key_1": "Beam me up Scotty."}, "receipt": %q, "acquirer_data": {"arn": null},
  "created_at": 1597078866, "batch_id": null, "status": %q, "speed_processed": "normal", "speed_requested": "normal"}`,
		id, amount, payment, receipt, status)
}

func collection(items ...string) string {
	return fmt.Sprintf(`{"entity": "collection", "count": %d, "items": [%s]}`, len(items), strings.Join(items, ","))
}

const badRequest = `{"error": {"code": "BAD_REQUEST_ERROR", "description": "The amount must be atleast INR 1.00",
  "source": "business", "step": "payment_initiation", "reason": "input_validation_failed",
  "metadata": {}, "field": "amount"}}`

type fake struct {
	mu     sync.Mutex
	routes map[string]func(r *http.Request, body []byte) (int, string)
	got    []string
	bodies [][]byte
}

func newFake(t *testing.T, routes map[string]func(*http.Request, []byte) (int, string)) (*env, *fake) {
	f := &fake{routes: routes}
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if id, secret, ok := r.BasicAuth(); !ok || id != testKeyID || secret != testKeySecret {
			t.Errorf("%s %s: no basic auth with the key", r.Method, r.URL)
		}
		f.mu.Lock()
		f.got = append(f.got, r.Method+" "+r.URL.RequestURI())
		f.bodies = append(f.bodies, body)
		h := f.routes[r.Method+" "+r.URL.Path]
		f.mu.Unlock()
		if h == nil {
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			w.WriteHeader(http.StatusNotFound)
			return
		}
		status, answer := h(r, body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	})
	return e, f
}

func initiateRequest() psp.InitiateRequest {
	return psp.InitiateRequest{TransactionCode: "T261125095957123ABCDEFGH", OrderID: "A1001", Amount: domain.MustMoney(50000, "INR"),
		Description: "Phone case", BuyerEmail: "a@example.com", ReturnURL: "https://pay.example/v1/return/razorpay_test"}
}

func TestInitiate(t *testing.T) {
	req := initiateRequest()
	e, f := newFake(t, map[string]func(*http.Request, []byte) (int, string){
		"GET /v1/orders": func(*http.Request, []byte) (int, string) { return 200, collection() },
		"POST /v1/orders": func(_ *http.Request, b []byte) (int, string) {
			var in struct {
				Amount   int64  `json:"amount"`
				Currency string `json:"currency"`
				Receipt  string `json:"receipt"`
			}
			if err := json.Unmarshal(b, &in); err != nil {
				t.Error(err)
			}
			return 200, orderAnswer("order_IluGWxBm9U8zJ8", in.Receipt, in.Amount, in.Currency, "created")
		},
	})
	var ex []psp.Exchange
	ctx := psp.WithRecorder(context.Background(), "initiate", func(x psp.Exchange) { ex = append(ex, x) })
	s, err := e.ch.Initiate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if s.PSPReference != "order_IluGWxBm9U8zJ8" || s.PayURL != DefaultCheckoutURL || s.Form["order_id"] != s.PSPReference ||
		s.Form["key_id"] != testKeyID || s.Form["amount"] != "50000" || s.Form["currency"] != "INR" || s.Form["notes[transaction_code]"] != req.TransactionCode {
		t.Errorf("session %+v", s)
	}
	if _, ok := s.Form["key_secret"]; ok {
		t.Error("the key secret is in the browser's form")
	}
	cb, _ := url.Parse(s.Form["callback_url"])
	if cb.Query().Get(qCode) != req.TransactionCode || cb.Query().Get(qOrder) != s.PSPReference {
		t.Errorf("callback_url %s", s.Form["callback_url"])
	}
	if f.got[0] != "GET /v1/orders?receipt="+req.TransactionCode || !strings.Contains(string(f.bodies[1]), `"receipt":"`+req.TransactionCode+`"`) ||
		!strings.Contains(string(f.bodies[1]), `"amount":50000`) {
		t.Errorf("requests %v %s", f.got, f.bodies[1])
	}
	if strings.Contains(fmt.Sprintf("%+v", ex), testKeySecret) || len(ex) != 2 {
		t.Errorf("evidence %+v", ex)
	}
}

// TestInitiateRetry: Razorpay's orders take no idempotency key; an order
// made by an earlier try is found by receipt and reused, one for another
// amount is refused.
func TestInitiateRetry(t *testing.T) {
	req := initiateRequest()
	amount := int64(50000)
	e, f := newFake(t, map[string]func(*http.Request, []byte) (int, string){
		"GET /v1/orders": func(*http.Request, []byte) (int, string) {
			return 200, collection(orderAnswer("order_1", req.TransactionCode, amount, "INR", "created"))
		},
	})
	s, err := e.ch.Initiate(context.Background(), req)
	if err != nil || s.PSPReference != "order_1" || len(f.got) != 1 {
		t.Errorf("retry: %+v, %v, requests %v", s, err, f.got)
	}
	amount = 1
	if _, err := e.ch.Initiate(context.Background(), req); !errors.Is(err, psp.ErrDeclined) {
		t.Errorf("existing order of another amount: %v", err)
	}
}

func TestQuery(t *testing.T) {
	const code = "T1"
	cases := []struct {
		name     string
		orders   string
		payments string
		want     domain.Notification
	}{
		{"no order", collection(), "", domain.Notification{TransactionCode: code, Status: domain.PSPUnknown}},
		{"order, no payment", collection(orderAnswer("order_1", code, 50000, "INR", "created")), collection(),
			domain.Notification{TransactionCode: code, PSPReference: "order_1", Status: domain.PSPPending, Amount: domain.MustMoney(50000, "INR")}},
		{"captured", collection(orderAnswer("order_1", code, 50000, "INR", "paid")),
			collection(paymentAnswer("pay_1", "order_1", 50000, "INR", "captured", code, 1606985209)),
			domain.Notification{TransactionCode: code, PSPReference: "pay_1", Status: domain.PSPSucceeded, Amount: domain.MustMoney(50000, "INR")}},
		{"captured less than the order", collection(orderAnswer("order_1", code, 50000, "INR", "paid")),
			collection(paymentAnswer("pay_1", "order_1", 100, "INR", "captured", code, 1606985209)),
			domain.Notification{TransactionCode: code, PSPReference: "pay_1", Status: domain.PSPSucceeded, Amount: domain.MustMoney(100, "INR")}},
		{"failed, then captured", collection(orderAnswer("order_1", code, 50000, "INR", "paid")),
			collection(paymentAnswer("pay_1", "order_1", 50000, "INR", "failed", code, 1), paymentAnswer("pay_2", "order_1", 50000, "INR", "captured", code, 2)),
			domain.Notification{TransactionCode: code, PSPReference: "pay_2", Status: domain.PSPSucceeded, Amount: domain.MustMoney(50000, "INR")}},
		{"authorized", collection(orderAnswer("order_1", code, 50000, "INR", "attempted")),
			collection(paymentAnswer("pay_1", "order_1", 50000, "INR", "authorized", code, 1)),
			domain.Notification{TransactionCode: code, PSPReference: "order_1", Status: domain.PSPPending, Amount: domain.MustMoney(50000, "INR")}},
		{"only failed", collection(orderAnswer("order_1", code, 50000, "INR", "attempted")),
			collection(paymentAnswer("pay_1", "order_1", 50000, "INR", "failed", code, 1)),
			domain.Notification{TransactionCode: code, PSPReference: "pay_1", Status: domain.PSPFailed, Amount: domain.MustMoney(50000, "INR")}},
	}
	for _, c := range cases {
		e, _ := newFake(t, map[string]func(*http.Request, []byte) (int, string){
			"GET /v1/orders":                  func(*http.Request, []byte) (int, string) { return 200, c.orders },
			"GET /v1/orders/order_1/payments": func(*http.Request, []byte) (int, string) { return 200, c.payments },
		})
		got, err := e.ch.Query(context.Background(), code)
		if err != nil || got != c.want {
			t.Errorf("%s: %+v, %v\nwant %+v", c.name, got, err, c.want)
		}
	}
	// A payment of another order in the answer is not trusted.
	e, _ := newFake(t, map[string]func(*http.Request, []byte) (int, string){
		"GET /v1/orders": func(*http.Request, []byte) (int, string) {
			return 200, collection(orderAnswer("order_1", code, 50000, "INR", "paid"))
		},
		"GET /v1/orders/order_1/payments": func(*http.Request, []byte) (int, string) {
			return 200, collection(paymentAnswer("pay_1", "order_2", 50000, "INR", "captured", code, 1))
		},
	})
	if _, err := e.ch.Query(context.Background(), code); !errors.Is(err, psp.ErrMalformed) {
		t.Errorf("payment of another order: %v", err)
	}
}

func TestErrorClasses(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		check  func(error) bool
	}{
		{500, `{"error":{"code":"SERVER_ERROR","description":"The server encountered an error."}}`, psp.IsTemporary},
		{429, `{"error":{"code":"BAD_REQUEST_ERROR","description":"Too many requests"}}`, psp.IsTemporary},
		{400, badRequest, func(err error) bool { return errors.Is(err, psp.ErrDeclined) && !psp.IsTemporary(err) }},
		{401, `{"error":{"code":"BAD_REQUEST_ERROR","description":"Authentication failed"}}`, func(err error) bool { return errors.Is(err, psp.ErrDeclined) }},
		{404, `{"error":{"code":"BAD_REQUEST_ERROR","description":"The id provided does not exist"}}`, func(err error) bool { return errors.Is(err, psp.ErrNotFound) }},
		{200, `{"entity":"collection","items":[{"amount":1e3}]}`, func(err error) bool { return errors.Is(err, psp.ErrMalformed) }},
	} {
		e, _ := newFake(t, map[string]func(*http.Request, []byte) (int, string){
			"GET /v1/orders": func(*http.Request, []byte) (int, string) { return c.status, c.body },
		})
		_, err := e.ch.Query(context.Background(), "T1")
		if !c.check(err) {
			t.Errorf("%d: %v", c.status, err)
		}
		var ae *APIError
		if c.status != 200 && (!errors.As(err, &ae) || ae.Status != c.status) {
			t.Errorf("%d: no *APIError in %v", c.status, err)
		}
	}
	e := newEnv(t, nil)
	e.api.Close()
	if _, err := e.ch.Query(context.Background(), "T1"); !psp.IsTemporary(err) {
		t.Errorf("closed server: %v", err)
	}
}

func TestRefund(t *testing.T) {
	var refunds []string
	e, f := newFake(t, map[string]func(*http.Request, []byte) (int, string){
		"GET /v1/payments/pay_1/refunds": func(*http.Request, []byte) (int, string) { return 200, collection(refunds...) },
		"POST /v1/payments/pay_1/refund": func(_ *http.Request, b []byte) (int, string) {
			r := refundAnswer("rfnd_1", "pay_1", "R1", 20000, "pending")
			refunds = append(refunds, r)
			return 200, r
		},
	})
	req := psp.RefundRequest{RefundRef: "R1", TransactionCode: "T1", PSPReference: "pay_1", Amount: domain.MustMoney(20000, "INR"), Reason: "partial"}
	want := psp.RefundResult{RefundRef: "R1", PSPReference: "rfnd_1", Status: psp.RefundPending, Amount: domain.MustMoney(20000, "INR")}
	for try := range 2 { // the second try finds the first one's refund
		got, err := e.ch.Refund(context.Background(), req)
		if err != nil || got != want {
			t.Errorf("try %d: %+v, %v", try, got, err)
		}
	}
	posts := 0
	for _, g := range f.got {
		if strings.HasPrefix(g, "POST") {
			posts++
		}
	}
	if posts != 1 || !strings.Contains(string(f.bodies[1]), `"receipt":"R1"`) || !strings.Contains(string(f.bodies[1]), `"amount":20000`) {
		t.Errorf("requests %v %s", f.got, f.bodies[1])
	}
}

func TestQueryRefundAndSettlements(t *testing.T) {
	e, f := newFake(t, map[string]func(*http.Request, []byte) (int, string){
		"GET /v1/refunds": func(*http.Request, []byte) (int, string) {
			return 200, collection(refundAnswer("rfnd_0", "pay_0", "R0", 100, "processed"), refundAnswer("rfnd_1", "pay_1", "R1", 300100, "processed"))
		},
		"GET /v1/payments": func(*http.Request, []byte) (int, string) {
			return 200, collection(paymentAnswer("pay_1", "order_1", 50000, "INR", "captured", "T1", 1764050000),
				paymentAnswer("pay_2", "order_2", 50000, "INR", "failed", "T2", 1764050001),
				paymentAnswer("pay_3", "order_3", 50000, "INR", "captured", "", 1764050002))
		},
	})
	got, err := e.ch.QueryRefund(context.Background(), "R1")
	if err != nil || got != (psp.RefundResult{RefundRef: "R1", PSPReference: "rfnd_1", Status: psp.RefundSucceeded, Amount: domain.MustMoney(300100, "INR")}) {
		t.Errorf("QueryRefund: %+v, %v", got, err)
	}
	if got, err := e.ch.QueryRefund(context.Background(), "R-none"); err != nil || got.Status != psp.RefundUnknown {
		t.Errorf("unknown: %+v, %v", got, err)
	}
	ist := time.FixedZone("IST", 5*3600+1800)
	p, err := e.ch.SettledPayments(context.Background(), time.Date(2025, 11, 25, 12, 0, 0, 0, ist), "")
	if err != nil || len(p.Rows) != 1 || p.Rows[0].TransactionCode != "T1" || p.NextPage != "" {
		t.Errorf("SettledPayments: %+v, %v", p, err)
	}
	from := time.Date(2025, 11, 25, 0, 0, 0, 0, ist).Unix()
	if last := f.got[len(f.got)-1]; last != fmt.Sprintf("GET /v1/payments?count=100&from=%d&skip=0&to=%d", from, from+86399) {
		t.Errorf("settlement request %s", last)
	}
}

func TestNotes(t *testing.T) {
	for in, want := range map[string]int{`[]`: 0, `{}`: 0, `{"a":"b","n":5}`: 2, `null`: 0} {
		var n notes
		if err := json.Unmarshal([]byte(in), &n); err != nil || len(n) != want {
			t.Errorf("%s: %v, %v", in, n, err)
		}
	}
	for _, in := range []string{`["x"]`, `{"a":{"b":1}}`, `"s"`} {
		var n notes
		if err := json.Unmarshal([]byte(in), &n); err == nil {
			t.Errorf("%s: accepted", in)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]ChannelConfig{
		"no key id":         {KeySecret: "s", WebhookSecrets: []string{"w"}},
		"no webhook secret": {KeyID: testKeyID, KeySecret: "s"},
		"bad account":       {KeyID: testKeyID, KeySecret: "s", WebhookSecrets: []string{"w"}, AccountID: "x"},
		"bad checkout URL":  {KeyID: testKeyID, KeySecret: "s", WebhookSecrets: []string{"w"}, CheckoutURL: "javascript:alert(1)"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
}
