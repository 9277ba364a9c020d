package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// paypalFake is PayPal's REST API as the PayPal adapter uses it
// (developer.paypal.com/docs/api/): the OAuth2 client credentials grant
// (/v1/oauth2/token), Orders v2 (create with PayPal-Request-Id, show,
// capture), Payments v2 refunds (refund a capture, show a refund),
// Transaction Search (/v1/reporting/transactions), and webhooks signed as
// PayPal signs them: SHA256withRSA over
// "transmission_id|transmission_time|webhook_id|crc32(body)", with the
// key of the certificate PAYPAL-CERT-URL names, which the same host serves
// under /v1/notifications/certs/ (the leaf, then its intermediate), issued
// for messageverificationcerts.sandbox.paypal.com by a CA the test makes.
//
// The buyer approving an order sends CHECKOUT.ORDER.APPROVED; the
// merchant's capture, PAYMENT.CAPTURE.COMPLETED (a notice). Refunds are
// PENDING when made (the buyer's account funded by an eCheck not cleared
// yet) and COMPLETED by the time they are next looked at. Transaction
// Search lists a day's captures (T0006) and completed refunds (T1107) at
// once, where PayPal takes up to three hours.
type paypalFake struct {
	srv                *httptest.Server
	clientID, secret   string
	webhookID          string
	certURL            string
	chainPEM           []byte // leaf and intermediate, as the cert URL serves them
	signer             *rsa.PrivateKey
	rootsFile, tlsFile string // the CA's root, the TLS server's certificate
	mu                 sync.Mutex
	n                  int
	tokens             map[string]bool
	orders             map[string]*paypalOrder // by id
	answers            map[string][]byte       // "METHOD path PayPal-Request-Id" → the answer given
	refunds            []*paypalRefund
	sent               []webhook
}

type paypalAmount struct {
	CurrencyCode string `json:"currency_code"`
	Value        string `json:"value"`
}

type paypalOrder struct {
	ID, Status, Code, InvoiceID, Description, ReturnURL string
	Amount                                              paypalAmount
	Created, Updated                                    time.Time
	Capture                                             *paypalCapture
}

type paypalCapture struct {
	ID, Status, OrderID, CustomID, InvoiceID string
	Amount                                   paypalAmount
	At                                       time.Time
}

type paypalRefund struct {
	ID, Status, CaptureID, CustomID, InvoiceID, Note string
	Amount                                           paypalAmount
	Created, Updated                                 time.Time
}

// paypalTime is Transaction Search's time format.
const paypalTime = "2006-01-02T15:04:05-0700"

var (
	paypalKeysOnce sync.Once
	paypalSignKey  *rsa.PrivateKey
	paypalCAKey    *ecdsa.PrivateKey // the test CA's root and intermediate
)

func newPayPalFake(t *testing.T) pspFake {
	paypalKeysOnce.Do(func() {
		var err error
		if paypalSignKey, err = rsa.GenerateKey(rand.Reader, 2048); err == nil {
			paypalCAKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err != nil {
			panic(err)
		}
	})
	f := &paypalFake{clientID: "AeE2EqhxBE6dbT4QSd5OMm-ZUBHr8Ce4KcVcUhWd5Q2HcIxKr1u0BoAZ", secret: "EJ_e2e-client-secret",
		webhookID: "4JH86294D6297924G", signer: paypalSignKey, tokens: map[string]bool{}, orders: map[string]*paypalOrder{},
		answers: map[string][]byte{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	f.certURL = f.srv.URL + "/v1/notifications/certs/CERT-360caa42-fca2a594-e2e00001"

	// The signing certificate's chain: root → intermediate → leaf, the
	// leaf for PayPal's sandbox name, as PayPal's are (by DigiCert).
	from, to := time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	issue := func(tmpl, parent *x509.Certificate, pub any) ([]byte, *x509.Certificate) {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, paypalCAKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), c
	}
	ca := func(serial int64, cn string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: []string{"paygate e2e"}},
			NotBefore: from, NotAfter: to, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	}
	rootPEM, root := issue(ca(1, "e2e Root CA"), ca(1, "e2e Root CA"), &paypalCAKey.PublicKey)
	interPEM, inter := issue(ca(2, "e2e High Assurance Server CA"), root, &paypalCAKey.PublicKey)
	leafPEM, _ := issue(&x509.Certificate{SerialNumber: big.NewInt(3),
		Subject:  pkix.Name{CommonName: "messageverificationcerts.sandbox.paypal.com", Organization: []string{"PayPal, Inc."}},
		DNSNames: []string{"messageverificationcerts.sandbox.paypal.com"}, NotBefore: from, NotAfter: to,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		inter, &f.signer.PublicKey)
	f.chainPEM = append(leafPEM, interPEM...)

	dir := t.TempDir()
	f.rootsFile, f.tlsFile = filepath.Join(dir, "paypal-roots.pem"), filepath.Join(dir, "paypal-tls.pem")
	tlsPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(f.rootsFile, rootPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.tlsFile, tlsPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// channel: the channel trusts the test CA for webhook certificates
// (cert_roots_file) and the fake's own TLS certificate for the API and
// the certificate URL (tls_roots_file), and allows certificates from the
// fake's host (cert_hosts); nothing is pinned: the certificate is fetched.
func (f *paypalFake) channel(name string) string {
	b, _ := json.Marshal(map[string]any{"name": name, "kind": "paypal", "enabled": true, "weight": 1, "settings": map[string]any{
		"base_url": f.srv.URL, "client_id": f.clientID, "client_secret": f.secret, "webhook_ids": []string{f.webhookID},
		"brand_name": "paygate e2e", "cert_hosts": []string{f.srv.Listener.Addr().String()},
		"cert_roots_file": f.rootsFile, "tls_roots_file": f.tlsFile,
	}})
	return string(b)
}

func (f *paypalFake) id(kind int) string {
	f.n++
	return fmt.Sprintf("%dE2E%012dT", kind, f.n) // 17 characters, as PayPal's ids
}

// paypalError writes PayPal's error body.
func paypalError(w http.ResponseWriter, status int, name, issue, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body := map[string]any{"name": name, "message": message, "debug_id": "e2e0c5b1d6d5b"}
	if issue != "" {
		body["details"] = []map[string]string{{"issue": issue, "description": message}}
	}
	json.NewEncoder(w).Encode(body)
}

var (
	paypalOrderPath   = regexp.MustCompile(`^/v2/checkout/orders/([0-9A-Z]+)(/capture)?$`)
	paypalCapturePath = regexp.MustCompile(`^/v2/payments/captures/([0-9A-Z]+)/refund$`)
	paypalRefundPath  = regexp.MustCompile(`^/v2/payments/refunds/([0-9A-Z]+)$`)
	paypalValue       = regexp.MustCompile(`^(0|[1-9][0-9]{0,9})(\.[0-9]{2})?$`)
)

func (f *paypalFake) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/notifications/certs/") {
		if r.URL.Path != strings.TrimPrefix(f.certURL, f.srv.URL) {
			paypalError(w, http.StatusNotFound, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "The specified resource does not exist.")
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(f.chainPEM)
		return
	}
	if r.URL.Path == "/v1/oauth2/token" {
		f.token(w, r)
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	defer f.mu.Unlock()
	if !ok || !f.tokens[tok] {
		paypalError(w, http.StatusUnauthorized, "AUTHENTICATION_FAILURE", "",
			"Authentication failed due to invalid authentication credentials or a missing Authorization header.")
		return
	}
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
	}
	full := r.Header.Get("Prefer") == "return=representation"
	reqID := r.Header.Get("PayPal-Request-Id")
	key := r.Method + " " + r.URL.Path + " " + reqID
	if b, ok := f.answers[key]; ok && reqID != "" {
		// PayPal answers a request id it has seen with the first answer.
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
		return
	}
	status, answer := http.StatusOK, any(nil)
	switch m := paypalOrderPath.FindStringSubmatch(r.URL.Path); {
	case r.Method == http.MethodPost && r.URL.Path == "/v2/checkout/orders":
		o, err := f.createOrder(body, reqID)
		if err != nil {
			paypalError(w, http.StatusBadRequest, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", err.Error())
			return
		}
		status, answer = http.StatusCreated, f.orderJSON(o, full)
	case m != nil && r.Method == http.MethodGet && m[2] == "":
		o, ok := f.orders[m[1]]
		if !ok {
			paypalError(w, http.StatusNotFound, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
			return
		}
		answer = f.orderJSON(o, true)
	case m != nil && r.Method == http.MethodPost && m[2] == "/capture":
		o, ok := f.orders[m[1]]
		switch {
		case !ok:
			paypalError(w, http.StatusNotFound, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
			return
		case o.Status == "COMPLETED":
			paypalError(w, http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED", "Order already captured.")
			return
		case o.Status != "APPROVED":
			paypalError(w, http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED", "Payer has not yet approved the Order for payment.")
			return
		}
		now := time.Now().UTC()
		o.Capture = &paypalCapture{ID: f.id(2), Status: "COMPLETED", OrderID: o.ID, CustomID: o.Code, InvoiceID: o.InvoiceID, Amount: o.Amount, At: now}
		o.Status, o.Updated = "COMPLETED", now
		f.sent = append(f.sent, f.event("PAYMENT.CAPTURE.COMPLETED", "capture", "Payment completed for "+o.Amount.Value+" "+o.Amount.CurrencyCode,
			f.captureJSON(o.Capture, true)))
		status, answer = http.StatusCreated, f.orderJSON(o, full)
	case r.Method == http.MethodPost && paypalCapturePath.MatchString(r.URL.Path):
		re, errStatus, issue := f.refund(paypalCapturePath.FindStringSubmatch(r.URL.Path)[1], body)
		if re == nil {
			name := map[int]string{http.StatusNotFound: "RESOURCE_NOT_FOUND", http.StatusUnprocessableEntity: "UNPROCESSABLE_ENTITY"}[errStatus]
			paypalError(w, errStatus, cmpDefault(name, "INVALID_REQUEST"), issue, "The requested action could not be performed: "+issue+".")
			return
		}
		status, answer = http.StatusCreated, f.refundJSON(re, full)
	case r.Method == http.MethodGet && paypalRefundPath.MatchString(r.URL.Path):
		i := slices.IndexFunc(f.refunds, func(re *paypalRefund) bool { return re.ID == paypalRefundPath.FindStringSubmatch(r.URL.Path)[1] })
		if i < 0 {
			paypalError(w, http.StatusNotFound, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
			return
		}
		re := f.refunds[i]
		if re.Status == "PENDING" { // the eCheck has cleared meanwhile
			re.Status, re.Updated = "COMPLETED", time.Now().UTC()
		}
		answer = f.refundJSON(re, true)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/reporting/transactions":
		var errMsg string
		if answer, errMsg = f.transactions(r.URL.Query()); errMsg != "" {
			paypalError(w, http.StatusBadRequest, "INVALID_REQUEST", "INVALID_REQUEST", errMsg)
			return
		}
	default:
		paypalError(w, http.StatusNotFound, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "The requested resource "+r.URL.Path+" was not found.")
		return
	}
	b, _ := json.Marshal(answer)
	if reqID != "" && r.Method == http.MethodPost {
		f.answers[key] = b
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Paypal-Debug-Id", "e2e0c5b1d6d5b")
	w.WriteHeader(status)
	w.Write(b)
}

// token is the client credentials grant: the app's id and secret in Basic
// authorization, grant_type in the form.
func (f *paypalFake) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"unsupported_grant_type","error_description":"Grant Type is NULL"}`)
		return
	}
	if !ok || id != f.clientID || secret != f.secret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client","error_description":"Client Authentication failed"}`)
		return
	}
	f.mu.Lock()
	f.n++
	tok := fmt.Sprintf("A21AAE2E%06d", f.n)
	f.tokens[tok] = true
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"scope":        "https://uri.paypal.com/services/payments/refund https://uri.paypal.com/services/reporting/search/read https://uri.paypal.com/services/payments/payment",
		"access_token": tok, "token_type": "Bearer", "app_id": "APP-80W284485P519543T", "expires_in": 32400,
		"nonce": time.Now().UTC().Format("2006-01-02T15:04:05Z") + "e2e",
	})
}

// createOrder takes an order of intent CAPTURE with one purchase unit.
// With payment_source.paypal's experience context (the return URL), the
// order waits for the buyer: PAYER_ACTION_REQUIRED, with a payer-action
// link; otherwise CREATED, with an approve link.
// A single-step order (with a payment_source) needs a PayPal-Request-Id.
func (f *paypalFake) createOrder(body []byte, reqID string) (*paypalOrder, error) {
	var in struct {
		Intent        string `json:"intent"`
		PurchaseUnits []struct {
			ReferenceID string        `json:"reference_id"`
			CustomID    string        `json:"custom_id"`
			InvoiceID   string        `json:"invoice_id"`
			Description string        `json:"description"`
			Amount      *paypalAmount `json:"amount"`
		} `json:"purchase_units"`
		PaymentSource *struct {
			PayPal *struct {
				ExperienceContext struct {
					ReturnURL string `json:"return_url"`
					CancelURL string `json:"cancel_url"`
				} `json:"experience_context"`
			} `json:"paypal"`
		} `json:"payment_source"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("MALFORMED_REQUEST_JSON: %v", err)
	}
	if in.Intent != "CAPTURE" || len(in.PurchaseUnits) != 1 {
		return nil, fmt.Errorf("intent %q with %d purchase units: this fake takes CAPTURE and one", in.Intent, len(in.PurchaseUnits))
	}
	pu := in.PurchaseUnits[0]
	if pu.Amount == nil || !paypalValue.MatchString(pu.Amount.Value) || len(pu.Amount.CurrencyCode) != 3 || pu.CustomID == "" {
		return nil, fmt.Errorf("purchase_units[0]: amount %+v, custom_id %q", pu.Amount, pu.CustomID)
	}
	now := time.Now().UTC()
	o := &paypalOrder{ID: f.id(5), Status: "CREATED", Code: pu.CustomID, InvoiceID: pu.InvoiceID, Description: pu.Description,
		Amount: *pu.Amount, Created: now, Updated: now}
	if ps := in.PaymentSource; ps != nil && ps.PayPal != nil {
		if reqID == "" {
			return nil, errors.New("MISSING_REQUIRED_PARAMETER: PayPal-Request-Id is required with payment_source")
		}
		u, err := url.Parse(ps.PayPal.ExperienceContext.ReturnURL)
		if err != nil || !u.IsAbs() {
			return nil, fmt.Errorf("payment_source.paypal.experience_context.return_url %q is not an absolute URL", ps.PayPal.ExperienceContext.ReturnURL)
		}
		o.Status, o.ReturnURL = "PAYER_ACTION_REQUIRED", u.String()
	}
	f.orders[o.ID] = o
	return o, nil
}

func (f *paypalFake) orderJSON(o *paypalOrder, full bool) map[string]any {
	self := f.srv.URL + "/v2/checkout/orders/" + o.ID
	links := []map[string]string{{"href": self, "rel": "self", "method": "GET"}}
	switch o.Status {
	case "PAYER_ACTION_REQUIRED":
		links = append(links, map[string]string{"href": "https://www.sandbox.paypal.com/checkoutnow?token=" + o.ID, "rel": "payer-action", "method": "GET"})
	case "CREATED":
		links = append(links, map[string]string{"href": "https://www.sandbox.paypal.com/checkoutnow?token=" + o.ID, "rel": "approve", "method": "GET"},
			map[string]string{"href": self + "/capture", "rel": "capture", "method": "POST"})
	case "APPROVED":
		links = append(links, map[string]string{"href": self + "/capture", "rel": "capture", "method": "POST"})
	}
	if !full {
		return map[string]any{"id": o.ID, "status": o.Status, "links": links}
	}
	pu := map[string]any{"reference_id": o.Code, "custom_id": o.Code, "invoice_id": o.InvoiceID, "description": o.Description,
		"amount": o.Amount, "payee": map[string]string{"email_address": "merchant@paygate.example", "merchant_id": "E2EMERCHANT01"}}
	if o.Capture != nil {
		pu["payments"] = map[string]any{"captures": []any{f.captureJSON(o.Capture, false)}}
	}
	out := map[string]any{"id": o.ID, "intent": "CAPTURE", "status": o.Status, "purchase_units": []any{pu},
		"payment_source": map[string]any{"paypal": map[string]any{}}, "create_time": o.Created.Format(time.RFC3339), "links": links}
	if o.Status == "APPROVED" || o.Status == "COMPLETED" {
		out["payer"] = map[string]any{"name": map[string]string{"given_name": "John", "surname": "Doe"},
			"email_address": "sb-buyer@personal.example.com", "payer_id": "QYR5Z8XDVJNXQ", "address": map[string]string{"country_code": "US"}}
		out["update_time"] = o.Updated.Format(time.RFC3339)
	}
	return out
}

// captureJSON is a capture as the order shows it, or, in a webhook, as
// Payments v2 does (with the order it belongs to).
func (f *paypalFake) captureJSON(c *paypalCapture, standalone bool) map[string]any {
	fee := paypalAmount{CurrencyCode: c.Amount.CurrencyCode, Value: "0.30"}
	out := map[string]any{"id": c.ID, "status": c.Status, "amount": c.Amount, "final_capture": true,
		"custom_id": c.CustomID, "invoice_id": c.InvoiceID,
		"seller_protection":           map[string]any{"status": "ELIGIBLE", "dispute_categories": []string{"ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"}},
		"seller_receivable_breakdown": map[string]any{"gross_amount": c.Amount, "paypal_fee": fee},
		"create_time":                 c.At.Format(time.RFC3339), "update_time": c.At.Format(time.RFC3339),
		"links": []map[string]string{{"href": f.srv.URL + "/v2/payments/captures/" + c.ID, "rel": "self", "method": "GET"},
			{"href": f.srv.URL + "/v2/payments/captures/" + c.ID + "/refund", "rel": "refund", "method": "POST"},
			{"href": f.srv.URL + "/v2/checkout/orders/" + c.OrderID, "rel": "up", "method": "GET"}},
	}
	if standalone {
		out["supplementary_data"] = map[string]any{"related_ids": map[string]string{"order_id": c.OrderID}}
	}
	return out
}

// refund refunds a completed capture: the amount asked, or what is left;
// never more than what is left.
func (f *paypalFake) refund(captureID string, body []byte) (*paypalRefund, int, string) {
	var c *paypalCapture
	for _, o := range f.orders {
		if o.Capture != nil && o.Capture.ID == captureID {
			c = o.Capture
		}
	}
	if c == nil {
		return nil, http.StatusNotFound, "INVALID_RESOURCE_ID"
	}
	var in struct {
		Amount      *paypalAmount `json:"amount"`
		CustomID    string        `json:"custom_id"`
		NoteToPayer string        `json:"note_to_payer"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, http.StatusBadRequest, "MALFORMED_REQUEST_JSON"
	}
	captured, _ := paypalMinor(c.Amount.Value)
	left := captured
	for _, re := range f.refunds {
		if re.CaptureID == c.ID && re.Status != "FAILED" && re.Status != "CANCELLED" {
			n, _ := paypalMinor(re.Amount.Value)
			left -= n
		}
	}
	amount := paypalAmount{CurrencyCode: c.Amount.CurrencyCode, Value: paypalValueOf(left)}
	if in.Amount != nil {
		amount = *in.Amount
	}
	n, err := paypalMinor(amount.Value)
	switch {
	case err != nil || n <= 0:
		return nil, http.StatusBadRequest, "INVALID_PARAMETER_VALUE"
	case amount.CurrencyCode != c.Amount.CurrencyCode:
		return nil, http.StatusUnprocessableEntity, "REFUND_CURRENCY_MISMATCH"
	case left == 0:
		return nil, http.StatusUnprocessableEntity, "CAPTURE_FULLY_REFUNDED"
	case n > left:
		return nil, http.StatusUnprocessableEntity, "REFUND_AMOUNT_EXCEEDED"
	}
	now := time.Now().UTC()
	re := &paypalRefund{ID: f.id(8), Status: "PENDING", CaptureID: c.ID, CustomID: in.CustomID, InvoiceID: c.InvoiceID, Note: in.NoteToPayer,
		Amount: amount, Created: now, Updated: now}
	f.refunds = append(f.refunds, re)
	return re, 0, ""
}

func (f *paypalFake) refundJSON(re *paypalRefund, full bool) map[string]any {
	links := []map[string]string{{"href": f.srv.URL + "/v2/payments/refunds/" + re.ID, "rel": "self", "method": "GET"},
		{"href": f.srv.URL + "/v2/payments/captures/" + re.CaptureID, "rel": "up", "method": "GET"}}
	if !full {
		return map[string]any{"id": re.ID, "status": re.Status, "links": links}
	}
	out := map[string]any{"id": re.ID, "status": re.Status, "amount": re.Amount, "custom_id": re.CustomID, "invoice_id": re.InvoiceID,
		"note_to_payer": re.Note, "seller_payable_breakdown": map[string]any{"gross_amount": re.Amount, "net_amount": re.Amount},
		"create_time": re.Created.Format(time.RFC3339), "update_time": re.Updated.Format(time.RFC3339), "links": links}
	if re.Status == "PENDING" {
		out["status_details"] = map[string]string{"reason": "ECHECK"}
	}
	return out
}

// transactions is Transaction Search: the balance-affecting transactions
// between start_date and end_date (at most 31 days), here captures
// (T0006, PayPal Checkout APIs) and completed refunds (T1107, negative),
// page_size to a page.
func (f *paypalFake) transactions(q url.Values) (any, string) {
	from, err1 := time.Parse(paypalTime, q.Get("start_date"))
	to, err2 := time.Parse(paypalTime, q.Get("end_date"))
	if err1 != nil || err2 != nil || to.Before(from) || to.Sub(from) > 31*24*time.Hour {
		return nil, "start_date and end_date must be a range of at most 31 days"
	}
	size, err1 := strconv.Atoi(cmpDefault(q.Get("page_size"), "100"))
	page, err2 := strconv.Atoi(cmpDefault(q.Get("page"), "1"))
	if err1 != nil || err2 != nil || size < 1 || size > 500 || page < 1 {
		return nil, "page_size must be 1 to 500, page at least 1"
	}
	type row struct {
		at   time.Time
		info map[string]any
	}
	var rows []row
	in := func(t time.Time) bool { return !t.Before(from) && !t.After(to) }
	// Every transaction here is successful (S): another status finds none.
	status := cmpDefault(q.Get("transaction_status"), "S")
	for _, o := range f.orders {
		if c := o.Capture; c != nil && in(c.At) && status == "S" {
			rows = append(rows, row{c.At, map[string]any{"paypal_account_id": "QYR5Z8XDVJNXQ", "transaction_id": c.ID,
				"transaction_event_code": "T0006", "transaction_initiation_date": c.At.Format(paypalTime),
				"transaction_updated_date": c.At.Format(paypalTime), "transaction_amount": c.Amount,
				"fee_amount": paypalAmount{CurrencyCode: c.Amount.CurrencyCode, Value: "-0.30"}, "transaction_status": "S",
				"invoice_id": c.InvoiceID, "custom_field": c.CustomID, "protection_eligibility": "01"}})
		}
	}
	for _, re := range f.refunds {
		if re.Status == "COMPLETED" && in(re.Updated) && status == "S" {
			rows = append(rows, row{re.Updated, map[string]any{"paypal_account_id": "QYR5Z8XDVJNXQ", "transaction_id": re.ID,
				"paypal_reference_id": re.CaptureID, "paypal_reference_id_type": "TXN", "transaction_event_code": "T1107",
				"transaction_initiation_date": re.Created.Format(paypalTime), "transaction_updated_date": re.Updated.Format(paypalTime),
				"transaction_amount": paypalAmount{CurrencyCode: re.Amount.CurrencyCode, Value: "-" + re.Amount.Value},
				"transaction_status": "S", "invoice_id": re.InvoiceID, "custom_field": re.CustomID}})
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return a.at.Compare(b.at) })
	details := []any{}
	for i := (page - 1) * size; i < len(rows) && i < page*size; i++ {
		details = append(details, map[string]any{"transaction_info": rows[i].info})
	}
	return map[string]any{"transaction_details": details, "account_number": "E2EMERCHANT01",
		"start_date": from.Format(paypalTime), "end_date": to.Format(paypalTime),
		"last_refreshed_datetime": time.Now().UTC().Format(paypalTime), "page": page, "total_items": len(rows),
		"total_pages": max(1, (len(rows)+size-1)/size)}, ""
}

func cmpDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// paypalMinor reads a two-decimal value ("25.99", "26") as minor units.
func paypalMinor(v string) (int64, error) {
	if !paypalValue.MatchString(v) {
		return 0, fmt.Errorf("value %q", v)
	}
	whole, frac, _ := strings.Cut(v, ".")
	n, _ := strconv.ParseInt(whole+(frac + "00")[:2], 10, 64)
	return n, nil
}

func paypalValueOf(minor int64) string { return fmt.Sprintf("%d.%02d", minor/100, minor%100) }

// event is a webhook event PayPal sends, signed.
func (f *paypalFake) event(typ, resourceType, summary string, resource map[string]any) webhook {
	f.n++
	id := fmt.Sprintf("WH-E2E%011d-%017d", f.n, f.n)
	body, _ := json.Marshal(map[string]any{"id": id, "event_version": "1.0", "create_time": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"resource_type": resourceType, "resource_version": "2.0", "event_type": typ, "summary": summary, "resource": resource,
		"links": []map[string]string{{"href": f.srv.URL + "/v1/notifications/webhooks-events/" + id, "rel": "self", "method": "GET"},
			{"href": f.srv.URL + "/v1/notifications/webhooks-events/" + id + "/resend", "rel": "resend", "method": "POST"}}})
	transmission := fmt.Sprintf("e2e0%04d-1b2c-11ef-8d5c-%012d", f.n, f.n)
	sent := time.Now().UTC().Format(time.RFC3339)
	d := sha256.Sum256([]byte(transmission + "|" + sent + "|" + f.webhookID + "|" + strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10)))
	sig, err := rsa.SignPKCS1v15(rand.Reader, f.signer, crypto.SHA256, d[:])
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "PayPal/AUHD-214.0-58405437")
	h.Set("Paypal-Transmission-Id", transmission)
	h.Set("Paypal-Transmission-Time", sent)
	h.Set("Paypal-Transmission-Sig", base64.StdEncoding.EncodeToString(sig))
	h.Set("Paypal-Cert-Url", f.certURL)
	h.Set("Paypal-Auth-Algo", "SHA256withRSA")
	return webhook{header: h, body: body}
}

// pay is the buyer approving the order made for the transaction code at
// PayPal: PayPal sends CHECKOUT.ORDER.APPROVED, and the merchant is to
// capture it.
func (f *paypalFake) pay(t *testing.T, code string, _ map[string]string) webhook {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.orders {
		if o.Code == code && (o.Status == "PAYER_ACTION_REQUIRED" || o.Status == "CREATED") {
			o.Status, o.Updated = "APPROVED", time.Now().UTC()
			return f.event("CHECKOUT.ORDER.APPROVED", "checkout-order", "An order has been approved by buyer", f.orderJSON(o, true))
		}
	}
	t.Fatalf("paypal: no order waiting for the buyer for %s", code)
	return webhook{}
}

// refunded sums the completed refunds of the transaction code's capture.
func (f *paypalFake) refunded(code string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, re := range f.refunds {
		if re.Status == "COMPLETED" {
			for _, o := range f.orders {
				if o.Capture != nil && o.Capture.ID == re.CaptureID && o.Code == code {
					m, _ := paypalMinor(re.Amount.Value)
					n += m
				}
			}
		}
	}
	return n
}

// notices are the PAYMENT.CAPTURE.COMPLETED webhooks PayPal sent after
// the merchant's captures.
func (f *paypalFake) notices() []webhook {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.sent
	f.sent = nil
	return out
}
