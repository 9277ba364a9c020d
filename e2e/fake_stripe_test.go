package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// stripeFake is Stripe's API as the Stripe adapter uses it
// (docs.stripe.com/api): Checkout Sessions, PaymentIntents and their
// search, Refunds, and webhooks signed in Stripe-Signature
// (t=<unix>,v1=<HMAC-SHA256 of "<t>.<payload>">).
type stripeFake struct {
	srv     *httptest.Server
	key     string
	secret  string
	mu      sync.Mutex
	n       int
	session map[string]stripeSession // by transaction code
	intents []stripeIntent
	refunds []stripeRefund
	idem    map[string][]byte // Idempotency-Key → the answer given
}

type stripeSession struct {
	ID, Code, Order, Currency string
	Amount                    int64
}

type stripeIntent struct {
	ID             string            `json:"id"`
	Object         string            `json:"object"`
	Amount         int64             `json:"amount"`
	AmountReceived int64             `json:"amount_received"`
	Currency       string            `json:"currency"`
	Created        int64             `json:"created"`
	Livemode       bool              `json:"livemode"`
	Metadata       map[string]string `json:"metadata"`
	Status         string            `json:"status"`
}

type stripeRefund struct {
	ID            string            `json:"id"`
	Object        string            `json:"object"`
	Amount        int64             `json:"amount"`
	Currency      string            `json:"currency"`
	Created       int64             `json:"created"`
	Metadata      map[string]string `json:"metadata"`
	PaymentIntent string            `json:"payment_intent"`
	Status        string            `json:"status"`
}

func newStripeFake(t *testing.T) pspFake {
	f := &stripeFake{key: "sk_test_e2e", secret: "whsec_e2e", session: map[string]stripeSession{}, idem: map[string][]byte{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *stripeFake) channel(name string) string {
	return fmt.Sprintf(`{"name":%q,"kind":"stripe","enabled":true,"weight":1,"settings":{"base_url":%q,"secret_key":%q,"webhook_secrets":[%q]}}`,
		name, f.srv.URL, f.key, f.secret)
}

func (f *stripeFake) id(prefix string) string {
	f.n++
	return fmt.Sprintf("%s_e2e%06d", prefix, f.n)
}

var stripeSearch = regexp.MustCompile(`^metadata\['transaction_code'\]:'([^']*)'$`)

func (f *stripeFake) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+f.key {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}}`)
		return
	}
	if err := r.ParseForm(); err != nil {
		jsonError(w, http.StatusBadRequest, "unreadable form: %v", err)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Method + " " + r.URL.Path + " " + r.Header.Get("Idempotency-Key")
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		if b, ok := f.idem[key]; ok {
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
			return
		}
	}
	var answer any
	switch r.Method + " " + r.URL.Path {
	case "POST /v1/checkout/sessions":
		amount, err := strconv.ParseInt(r.PostForm.Get("line_items[0][price_data][unit_amount]"), 10, 64)
		code := r.PostForm.Get("client_reference_id")
		if err != nil || code == "" || r.PostForm.Get("metadata[transaction_code]") != code ||
			r.PostForm.Get("payment_intent_data[metadata][transaction_code]") != code {
			jsonError(w, http.StatusBadRequest, "a session needs an amount and the transaction code in its metadata")
			return
		}
		s := stripeSession{ID: f.id("cs_test"), Code: code, Order: r.PostForm.Get("metadata[order_id]"),
			Currency: r.PostForm.Get("line_items[0][price_data][currency]"), Amount: amount}
		f.session[code] = s
		answer = map[string]any{"id": s.ID, "object": "checkout.session", "amount_total": s.Amount, "currency": s.Currency,
			"client_reference_id": code, "expires_at": time.Now().Add(24 * time.Hour).Unix(), "livemode": false,
			"metadata": map[string]string{"transaction_code": code, "order_id": s.Order}, "payment_intent": nil,
			"payment_status": "unpaid", "status": "open", "url": f.srv.URL + "/c/pay/" + s.ID}
	case "GET /v1/payment_intents/search":
		m := stripeSearch.FindStringSubmatch(r.Form.Get("query"))
		if m == nil {
			jsonError(w, http.StatusBadRequest, "unsupported query %q", r.Form.Get("query"))
			return
		}
		data := []stripeIntent{}
		for _, pi := range f.intents {
			if pi.Metadata["transaction_code"] == m[1] {
				data = append(data, pi)
			}
		}
		answer = map[string]any{"object": "search_result", "data": data, "has_more": false, "url": "/v1/payment_intents/search"}
	case "GET /v1/payment_intents":
		from, _ := strconv.ParseInt(r.Form.Get("created[gte]"), 10, 64)
		to, _ := strconv.ParseInt(r.Form.Get("created[lt]"), 10, 64)
		data := []stripeIntent{}
		for _, pi := range slices.Backward(f.intents) { // newest first, as Stripe lists
			if pi.Created >= from && pi.Created < to {
				data = append(data, pi)
			}
		}
		answer = map[string]any{"object": "list", "data": data, "has_more": false, "url": "/v1/payment_intents"}
	case "POST /v1/refunds":
		amount, err := strconv.ParseInt(r.PostForm.Get("amount"), 10, 64)
		i := slices.IndexFunc(f.intents, func(pi stripeIntent) bool { return pi.ID == r.PostForm.Get("payment_intent") })
		if err != nil || i < 0 || f.intents[i].Status != "succeeded" {
			jsonError(w, http.StatusBadRequest, "No such payment_intent: %q", r.PostForm.Get("payment_intent"))
			return
		}
		pi := f.intents[i]
		var done int64
		for _, re := range f.refunds {
			if re.PaymentIntent == pi.ID {
				done += re.Amount
			}
		}
		if done+amount > pi.AmountReceived {
			jsonError(w, http.StatusBadRequest, "Refund amount (%d) is greater than unrefunded amount on charge (%d)", amount, pi.AmountReceived-done)
			return
		}
		re := stripeRefund{ID: f.id("re"), Object: "refund", Amount: amount, Currency: pi.Currency, Created: time.Now().Unix(),
			Metadata:      map[string]string{"refund_ref": r.PostForm.Get("metadata[refund_ref]"), "transaction_code": r.PostForm.Get("metadata[transaction_code]")},
			PaymentIntent: pi.ID, Status: "succeeded"}
		f.refunds = append(f.refunds, re)
		answer = re
	case "GET /v1/refunds":
		data := slices.Clone(f.refunds)
		slices.Reverse(data)
		answer = map[string]any{"object": "list", "data": data, "has_more": false, "url": "/v1/refunds"}
	default:
		jsonError(w, http.StatusNotFound, "Unrecognized request URL (%s: %s)", r.Method, r.URL.Path)
		return
	}
	b, _ := json.Marshal(answer)
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		f.idem[key] = b
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_e2e")
	w.Write(b)
}

// pay is the buyer completing the Checkout Session: its PaymentIntent
// succeeds, and Stripe sends payment_intent.succeeded.
func (f *stripeFake) pay(t *testing.T, code string, _ map[string]string) webhook {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.session[code]
	if !ok {
		t.Fatalf("stripe: no session for %s", code)
	}
	pi := stripeIntent{ID: f.id("pi"), Object: "payment_intent", Amount: s.Amount, AmountReceived: s.Amount, Currency: s.Currency,
		Created: time.Now().Unix(), Metadata: map[string]string{"transaction_code": code, "order_id": s.Order}, Status: "succeeded"}
	f.intents = append(f.intents, pi)
	ev, _ := json.MarshalIndent(map[string]any{"id": f.id("evt"), "object": "event", "api_version": "2024-06-20", "created": time.Now().Unix(),
		"data": map[string]any{"object": pi}, "livemode": false, "pending_webhooks": 1, "type": "payment_intent.succeeded"}, "", "  ")
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	m := hmac.New(sha256.New, []byte(f.secret))
	m.Write([]byte(ts + "."))
	m.Write(ev)
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	h.Set("Stripe-Signature", "t="+ts+",v1="+hex.EncodeToString(m.Sum(nil)))
	return webhook{header: h, body: ev}
}

func (f *stripeFake) refunded(code string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, re := range f.refunds {
		if re.Metadata["transaction_code"] == code && re.Status == "succeeded" {
			n += re.Amount
		}
	}
	return n
}

// notices: Stripe reports refunds in the refund call's answer, and
// sends nothing else on its own here.
func (f *stripeFake) notices() []webhook { return nil }
