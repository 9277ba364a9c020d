package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// razorpayFake is Razorpay's API as the Razorpay adapter uses it
// (razorpay.com/docs/api): Orders (found by receipt), an order's Payments,
// Payments by creation time, a payment's Refunds, and webhooks signed in
// X-Razorpay-Signature (hex HMAC-SHA256 of the body with the webhook
// secret). The checkout itself is Razorpay's page: the fake's pay is the
// buyer paying there.
type razorpayFake struct {
	srv              *httptest.Server
	keyID, keySecret string
	webhookSecret    string
	mu               sync.Mutex
	n                int
	orders           []rzpEntity
	payments         []rzpEntity
	refunds          []rzpEntity
}

// rzpEntity is an order, a payment or a refund, as Razorpay writes them.
type rzpEntity struct {
	ID        string            `json:"id"`
	Entity    string            `json:"entity"`
	Amount    int64             `json:"amount"`
	Currency  string            `json:"currency"`
	Receipt   string            `json:"receipt,omitempty"`
	Status    string            `json:"status"`
	OrderID   string            `json:"order_id,omitempty"`
	PaymentID string            `json:"payment_id,omitempty"`
	Captured  bool              `json:"captured,omitempty"`
	Notes     map[string]string `json:"notes"`
	CreatedAt int64             `json:"created_at"`
}

func newRazorpayFake(t *testing.T) pspFake {
	f := &razorpayFake{keyID: "rzp_test_e2e", keySecret: "rzp-key-secret", webhookSecret: "rzp-webhook-secret"}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *razorpayFake) channel(name string) string {
	return fmt.Sprintf(`{"name":%q,"kind":"razorpay","enabled":true,"weight":1,"settings":{"base_url":%q,"checkout_url":%q,"key_id":%q,"key_secret":%q,"webhook_secrets":[%q]}}`,
		name, f.srv.URL, f.srv.URL+"/v1/checkout/embedded", f.keyID, f.keySecret, f.webhookSecret)
}

func (f *razorpayFake) id(prefix string) string {
	f.n++
	return fmt.Sprintf("%s_E2e%011d", prefix, f.n)
}

func rzpError(w http.ResponseWriter, status int, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":"BAD_REQUEST_ERROR","description":%q,"source":"business","step":"payment_initiation","reason":"input_validation_failed"}}`, description)
}

func (f *razorpayFake) serve(w http.ResponseWriter, r *http.Request) {
	if id, secret, ok := r.BasicAuth(); !ok || id != f.keyID || secret != f.keySecret {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":"BAD_REQUEST_ERROR","description":"The api key provided is invalid"}}`)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // v1, what, [id, sub]
	collection := func(items []rzpEntity) any {
		if items == nil {
			items = []rzpEntity{}
		}
		return map[string]any{"entity": "collection", "count": len(items), "items": items}
	}
	var answer any
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/orders":
		var in struct {
			Amount   int64             `json:"amount"`
			Currency string            `json:"currency"`
			Receipt  string            `json:"receipt"`
			Notes    map[string]string `json:"notes"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Amount < 100 || in.Receipt == "" {
			rzpError(w, http.StatusBadRequest, "The amount must be at least INR 1.00, with a receipt")
			return
		}
		o := rzpEntity{ID: f.id("order"), Entity: "order", Amount: in.Amount, Currency: in.Currency, Receipt: in.Receipt,
			Status: "created", Notes: in.Notes, CreatedAt: time.Now().Unix()}
		f.orders = append(f.orders, o)
		answer = o
	case r.Method == http.MethodGet && r.URL.Path == "/v1/orders":
		var out []rzpEntity
		for _, o := range f.orders {
			if o.Receipt == r.URL.Query().Get("receipt") {
				out = append(out, o)
			}
		}
		answer = collection(out)
	case r.Method == http.MethodGet && len(parts) == 4 && parts[1] == "orders" && parts[3] == "payments":
		var out []rzpEntity
		for _, p := range f.payments {
			if p.OrderID == parts[2] {
				out = append(out, p)
			}
		}
		answer = collection(out)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/payments":
		from, _ := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
		to, _ := strconv.ParseInt(r.URL.Query().Get("to"), 10, 64)
		var out []rzpEntity
		for _, p := range slices.Backward(f.payments) {
			if p.CreatedAt >= from && p.CreatedAt <= to {
				out = append(out, p)
			}
		}
		answer = collection(out)
	case r.Method == http.MethodGet && len(parts) == 4 && parts[1] == "payments" && parts[3] == "refunds":
		var out []rzpEntity
		for _, re := range f.refunds {
			if re.PaymentID == parts[2] {
				out = append(out, re)
			}
		}
		answer = collection(out)
	case r.Method == http.MethodPost && len(parts) == 4 && parts[1] == "payments" && parts[3] == "refund":
		i := slices.IndexFunc(f.payments, func(p rzpEntity) bool { return p.ID == parts[2] })
		var in struct {
			Amount  int64             `json:"amount"`
			Receipt string            `json:"receipt"`
			Notes   map[string]string `json:"notes"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || i < 0 {
			rzpError(w, http.StatusBadRequest, "The id provided does not exist")
			return
		}
		p := &f.payments[i]
		var done int64
		for _, re := range f.refunds {
			if re.PaymentID == p.ID {
				done += re.Amount
			}
		}
		if p.Status != "captured" && p.Status != "refunded" || done+in.Amount > p.Amount {
			rzpError(w, http.StatusBadRequest, "The refund amount provided is greater than amount captured")
			return
		}
		re := rzpEntity{ID: f.id("rfnd"), Entity: "refund", Amount: in.Amount, Currency: p.Currency, PaymentID: p.ID,
			Receipt: in.Receipt, Notes: in.Notes, Status: "processed", CreatedAt: time.Now().Unix()}
		f.refunds = append(f.refunds, re)
		if done+in.Amount == p.Amount {
			p.Status = "refunded"
		}
		answer = re
	case r.Method == http.MethodGet && r.URL.Path == "/v1/refunds":
		out := slices.Clone(f.refunds)
		slices.Reverse(out)
		answer = collection(out)
	default:
		rzpError(w, http.StatusNotFound, "The requested URL was not found on the server.")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(answer)
}

// pay is the buyer paying the order of the transaction code at
// Razorpay's checkout: the payment is captured, and Razorpay sends
// payment.captured.
func (f *razorpayFake) pay(t *testing.T, code string, _ map[string]string) webhook {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.orders, func(o rzpEntity) bool { return o.Receipt == code })
	if i < 0 {
		t.Fatalf("razorpay: no order for %s", code)
	}
	o := &f.orders[i]
	o.Status = "paid"
	p := rzpEntity{ID: f.id("pay"), Entity: "payment", Amount: o.Amount, Currency: o.Currency, Status: "captured", OrderID: o.ID,
		Captured: true, Notes: map[string]string{"transaction_code": code}, CreatedAt: time.Now().Unix()}
	f.payments = append(f.payments, p)
	body, _ := json.Marshal(map[string]any{"entity": "event", "account_id": "acc_E2e", "event": "payment.captured",
		"contains": []string{"payment"}, "payload": map[string]any{"payment": map[string]any{"entity": p}}, "created_at": time.Now().Unix()})
	m := hmac.New(sha256.New, []byte(f.webhookSecret))
	m.Write(body)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Razorpay-Signature", hex.EncodeToString(m.Sum(nil)))
	h.Set("X-Razorpay-Event-Id", f.id("evt"))
	return webhook{header: h, body: body}
}

func (f *razorpayFake) refunded(code string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, re := range f.refunds {
		if re.Notes["transaction_code"] == code && re.Status == "processed" {
			n += re.Amount
		}
	}
	return n
}

// notices: Razorpay reports refunds in the refund call's answer, and
// sends nothing else on its own here.
func (f *razorpayFake) notices() []webhook { return nil }
