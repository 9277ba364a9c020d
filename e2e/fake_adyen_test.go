package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
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

// adyenFake is Adyen as the Adyen adapter uses it (docs.adyen.com):
// Checkout's /sessions (hosted mode) and /payments/{pspReference}/refunds
// (answered "received"), standard webhooks — one NotificationRequestItem
// per request, HMAC-SHA256 (base64) over pspReference, originalReference,
// merchantAccountCode, merchantReference, value, currency, eventCode and
// success joined by ':', with the hex HMAC key — AUTHORISATION for a
// payment, REFUND for a refund's outcome, and the daily Payment
// accounting report (CSV) on the Customer Area's report host.
type adyenFake struct {
	srv      *httptest.Server
	apiKey   string
	account  string
	hmacKey  string
	mu       sync.Mutex
	n        int
	sessions map[string]adyenSession // by reference (transaction code)
	payments []adyenPayment
	refunds  []adyenRefund
	pending  []webhook // REFUND webhooks not yet sent
}

type adyenSession struct {
	ID, Reference, Currency string
	Value                   int64
}

type adyenPayment struct {
	PSPReference, Reference, Currency string
	Value                             int64
	At                                time.Time
}

type adyenRefund struct {
	PSPReference, Payment, Reference, Currency string
	Value                                      int64
}

func newAdyenFake(t *testing.T) pspFake {
	f := &adyenFake{apiKey: "AQE-e2e-api-key", account: "PaygateE2E_ECOM", hmacKey: strings.Repeat("44782DEF547AAA06C910C43932B1EB0C", 2),
		sessions: map[string]adyenSession{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *adyenFake) channel(name string) string {
	return fmt.Sprintf(`{"name":%q,"kind":"adyen","enabled":true,"weight":1,"settings":{"environment":"test","base_url":%q,"api_key":%q,"merchant_account":%q,"hmac_keys":[%q],"report_base_url":%q}}`,
		name, f.srv.URL+"/checkout", f.apiKey, f.account, f.hmacKey, f.srv.URL+"/reports/download/MerchantAccount")
}

// psp is a new 16-character pspReference.
func (f *adyenFake) psp() string {
	f.n++
	return fmt.Sprintf("E2E%013d", f.n)
}

func adyenError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"status":%d,"errorCode":%q,"message":%q,"errorType":"validation"}`, status, code, message)
}

func (f *adyenFake) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-API-Key") != f.apiKey {
		adyenError(w, http.StatusUnauthorized, "000", "HTTP Status Response - Unauthorized")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/checkout/") && strings.HasSuffix(r.URL.Path, "/sessions"):
		var in struct {
			MerchantAccount string `json:"merchantAccount"`
			Amount          struct {
				Currency string `json:"currency"`
				Value    int64  `json:"value"`
			} `json:"amount"`
			Reference string `json:"reference"`
			ReturnURL string `json:"returnUrl"`
			Mode      string `json:"mode"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.MerchantAccount != f.account || in.Reference == "" || in.ReturnURL == "" || in.Mode != "hosted" {
			adyenError(w, http.StatusUnprocessableEntity, "14_012", "The provided merchant account, reference, returnUrl or mode is invalid")
			return
		}
		s, ok := f.sessions[in.Reference]
		if !ok { // the Idempotency-Key's effect: one session per reference
			s = adyenSession{ID: "CS" + f.psp(), Reference: in.Reference, Currency: in.Amount.Currency, Value: in.Amount.Value}
			f.sessions[in.Reference] = s
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"id": s.ID, "url": f.srv.URL + "/checkoutshopper/" + s.ID, "reference": s.Reference,
			"merchantAccount": f.account, "amount": map[string]any{"currency": s.Currency, "value": s.Value}, "mode": "hosted",
			"expiresAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "returnUrl": in.ReturnURL})
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/checkout/") && strings.HasSuffix(r.URL.Path, "/refunds"):
		parts := strings.Split(r.URL.Path, "/") // "", checkout, v71, payments, ref, refunds
		var in struct {
			MerchantAccount string `json:"merchantAccount"`
			Amount          struct {
				Currency string `json:"currency"`
				Value    int64  `json:"value"`
			} `json:"amount"`
			Reference string `json:"reference"`
		}
		i := slices.IndexFunc(f.payments, func(p adyenPayment) bool { return len(parts) == 6 && p.PSPReference == parts[4] })
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || i < 0 || in.MerchantAccount != f.account {
			adyenError(w, http.StatusUnprocessableEntity, "167", "Original pspReference required for this operation")
			return
		}
		p := f.payments[i]
		var done int64
		for _, re := range f.refunds {
			if re.Payment == p.PSPReference {
				done += re.Value
			}
		}
		success := done+in.Amount.Value <= p.Value && in.Amount.Currency == p.Currency
		re := adyenRefund{PSPReference: f.psp(), Payment: p.PSPReference, Reference: in.Reference, Currency: in.Amount.Currency, Value: in.Amount.Value}
		if success {
			f.refunds = append(f.refunds, re)
		}
		// The outcome comes later, as a REFUND webhook.
		f.pending = append(f.pending, f.notification(map[string]any{"amount": map[string]any{"currency": re.Currency, "value": re.Value},
			"eventCode": "REFUND", "eventDate": time.Now().UTC().Format(time.RFC3339), "merchantAccountCode": f.account,
			"merchantReference": re.Reference, "originalReference": p.PSPReference, "pspReference": re.PSPReference,
			"success": strconv.FormatBool(success), "reason": ""}))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"merchantAccount": f.account, "paymentPspReference": p.PSPReference,
			"pspReference": re.PSPReference, "reference": re.Reference, "status": "received",
			"amount": map[string]any{"currency": re.Currency, "value": re.Value}})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/reports/download/MerchantAccount/"+f.account+"/payment_accounting_report_"):
		day, err := time.Parse("2006_01_02", strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/reports/download/MerchantAccount/"+f.account+"/payment_accounting_report_"), ".csv"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		var b bytes.Buffer
		cw := csv.NewWriter(&b)
		cw.Write([]string{"Company Account", "Merchant Account", "Psp Reference", "Merchant Reference", "Payment Method", "Booking Date",
			"TimeZone", "Main Currency", "Main Amount", "Record Type", "Payment Currency", "Received (PC)", "Authorised (PC)", "Captured (PC)"})
		for _, p := range f.payments {
			if at := p.At.UTC(); at.Format(time.DateOnly) == day.Format(time.DateOnly) {
				amount := strconv.FormatFloat(float64(p.Value)/100, 'f', 2, 64)
				for _, typ := range []string{"Received", "Authorised", "SentForSettle"} {
					cw.Write([]string{"PaygateE2E", f.account, p.PSPReference, p.Reference, "visa", at.Format("2006-01-02 15:04:05"),
						"UTC", p.Currency, amount, typ, p.Currency, "", "", ""})
				}
			}
		}
		cw.Flush()
		w.Header().Set("Content-Type", "text/csv")
		w.Write(b.Bytes())
	default:
		adyenError(w, http.StatusNotFound, "000", "Not found")
	}
}

// notification is a standard webhook of one item, signed.
func (f *adyenFake) notification(item map[string]any) webhook {
	amount := item["amount"].(map[string]any)
	data := strings.Join([]string{item["pspReference"].(string), fmt.Sprint(item["originalReference"]), item["merchantAccountCode"].(string),
		item["merchantReference"].(string), strconv.FormatInt(amount["value"].(int64), 10), amount["currency"].(string),
		item["eventCode"].(string), item["success"].(string)}, ":")
	key, _ := hex.DecodeString(f.hmacKey)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	item["additionalData"] = map[string]any{"hmacSignature": base64.StdEncoding.EncodeToString(m.Sum(nil))}
	body, _ := json.Marshal(map[string]any{"live": "false", "notificationItems": []any{map[string]any{"NotificationRequestItem": item}}})
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return webhook{header: h, body: body}
}

// pay is the shopper paying on the hosted page: the payment is
// authorised (the account captures automatically), and Adyen sends
// AUTHORISATION.
func (f *adyenFake) pay(t *testing.T, code string, _ map[string]string) webhook {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[code]
	if !ok {
		t.Fatalf("adyen: no session for %s", code)
	}
	p := adyenPayment{PSPReference: f.psp(), Reference: code, Currency: s.Currency, Value: s.Value, At: time.Now()}
	f.payments = append(f.payments, p)
	return f.notification(map[string]any{"amount": map[string]any{"currency": p.Currency, "value": p.Value},
		"eventCode": "AUTHORISATION", "eventDate": p.At.UTC().Format(time.RFC3339), "merchantAccountCode": f.account,
		"merchantReference": code, "originalReference": "", "pspReference": p.PSPReference, "success": "true",
		"paymentMethod": "visa", "operations": []string{"CANCEL", "CAPTURE", "REFUND"}, "reason": "011052:1111:03/2030"})
}

func (f *adyenFake) notices() []webhook {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.pending
	f.pending = nil
	return out
}

func (f *adyenFake) refunded(code string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, re := range f.refunds {
		for _, p := range f.payments {
			if p.PSPReference == re.Payment && p.Reference == code {
				n += re.Value
			}
		}
	}
	return n
}
