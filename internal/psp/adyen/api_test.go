package adyen

import (
	"context"
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

// Answers shaped after the examples of Adyen's API Explorer, Checkout API
// v71 (https://docs.adyen.com/api-explorer/Checkout/71/post/sessions and
// .../post/payments/{paymentPspReference}/refunds), with our references
// substituted; error bodies are Adyen's ServiceError
// (status, errorCode, message, errorType, pspReference).
const (
	sessionAnswer = `{"amount":{"currency":"EUR","value":1000},"countryCode":"NL","expiresAt":"2026-11-25T11:00:00+01:00",` +
		`"id":"CS451F2AB1ED897A94","merchantAccount":"PaygateECOM","reference":"T261125095957123ABCDEFGH",` +
		`"returnUrl":"https://shop.example/return","mode":"hosted","shopperLocale":"en-US",` +
		`"url":"https://checkoutshopper-test.adyen.com/checkoutshopper/v3/pay/CS451F2AB1ED897A94","sessionData":"Ab02b4c0!BQABAgBfYI29..."}`
	refundAnswer = `{"merchantAccount":"PaygateECOM","paymentPspReference":"993617895204576J","pspReference":"993617895215577D",` +
		`"reference":"R-1001","status":"received","amount":{"currency":"EUR","value":500}}`
	validationError   = `{"status":422,"errorCode":"14_006","message":"Required field 'reference' is not provided.","errorType":"validation"}`
	unauthorizedError = `{"status":401,"errorCode":"000","message":"HTTP Status Response - Unauthorized","errorType":"security"}`
	inProgressError   = `{"status":422,"errorCode":"704","message":"request already processed or in progress","errorType":"validation"}`
)

type fake struct {
	mu      sync.Mutex
	reqs    []*http.Request
	bodies  []string
	status  int
	answer  string
	srv     *httptest.Server
	latency time.Duration
}

func newFake(t *testing.T, status int, answer string) *fake {
	f := &fake{status: status, answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs, f.bodies = append(f.reqs, r), append(f.bodies, string(b))
		status, answer, latency := f.status, f.answer, f.latency
		f.mu.Unlock()
		time.Sleep(latency)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) channel(t *testing.T) *Channel {
	return newTestChannel(t, func(c *ChannelConfig) { c.BaseURL, c.Timeout = f.srv.URL, 2*time.Second })
}

func initiateRequest() psp.InitiateRequest {
	return psp.InitiateRequest{TransactionCode: "T261125095957123ABCDEFGH", OrderID: "A1001", Amount: domain.MustMoney(1000, "EUR"),
		Country: "NL", BuyerEmail: "a@example.com", ReturnURL: "https://shop.example/return"}
}

func TestInitiate(t *testing.T) {
	f := newFake(t, http.StatusCreated, sessionAnswer)
	ch := f.channel(t)
	var evidence []psp.Exchange
	ctx := psp.WithRecorder(context.Background(), "initiate", func(e psp.Exchange) { evidence = append(evidence, e) })
	s, err := ch.Initiate(ctx, initiateRequest())
	if err != nil {
		t.Fatalf("Initiate: %v", err)
	}
	if s.PayURL != "https://checkoutshopper-test.adyen.com/checkoutshopper/v3/pay/CS451F2AB1ED897A94" || s.Token != "CS451F2AB1ED897A94" ||
		!s.ExpiresAt.Equal(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("session %+v", s)
	}
	r := f.reqs[0]
	if r.URL.Path != "/v71/sessions" || r.Header.Get("X-API-Key") != "test_api_key" ||
		r.Header.Get("Idempotency-Key") != "paygate-session-T261125095957123ABCDEFGH" {
		t.Errorf("request %s %v", r.URL.Path, r.Header)
	}
	var sent map[string]any
	_ = json.Unmarshal([]byte(f.bodies[0]), &sent)
	if sent["reference"] != "T261125095957123ABCDEFGH" || sent["merchantAccount"] != testMerchant || sent["mode"] != "hosted" ||
		sent["amount"].(map[string]any)["value"] != 1000.0 {
		t.Errorf("sent %s", f.bodies[0])
	}
	// The API key travels in a header only: the evidence never holds it.
	for _, e := range evidence {
		if strings.Contains(e.URL+e.RequestBody+e.ResponseBody, "test_api_key") {
			t.Errorf("evidence holds the API key: %+v", e)
		}
	}
	if len(evidence) != 1 {
		t.Errorf("%d exchanges recorded, want 1", len(evidence))
	}
}

func TestInitiateRefusesAnswerForAnotherRequest(t *testing.T) {
	f := newFake(t, http.StatusCreated, strings.Replace(sessionAnswer, `"value":1000`, `"value":999`, 1))
	if _, err := f.channel(t).Initiate(context.Background(), initiateRequest()); !errors.Is(err, psp.ErrMalformed) {
		t.Errorf("answer with another amount: %v, want ErrMalformed", err)
	}
	req := initiateRequest()
	req.Amount = domain.MustMoney(1500050, "IDR")
	if _, err := f.channel(t).Initiate(context.Background(), req); !errors.Is(err, psp.ErrDeclined) {
		t.Errorf("IDR with sen: %v, want ErrDeclined", err)
	}
}

func TestErrorsClassified(t *testing.T) {
	cases := []struct {
		status    int
		answer    string
		temporary bool
		want      error
	}{
		{http.StatusUnprocessableEntity, validationError, false, psp.ErrDeclined},
		{http.StatusUnauthorized, unauthorizedError, false, psp.ErrDeclined},
		{http.StatusUnprocessableEntity, inProgressError, true, nil},
		{http.StatusTooManyRequests, `{}`, true, nil},
		{http.StatusInternalServerError, `{"status":500,"errorCode":"901","message":"Internal error","errorType":"internal"}`, true, nil},
		{http.StatusServiceUnavailable, `<html>down</html>`, true, nil},
		{http.StatusNotFound, `{"status":404,"errorCode":"000","message":"not found","errorType":"validation"}`, false, psp.ErrNotFound},
	}
	for _, c := range cases {
		f := newFake(t, c.status, c.answer)
		_, err := f.channel(t).Refund(context.Background(), psp.RefundRequest{RefundRef: "R-1001", PSPReference: "993617895204576J", Amount: domain.MustMoney(500, "EUR")})
		if psp.IsTemporary(err) != c.temporary || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("HTTP %d %s: %v (temporary %v), want temporary %v, %v", c.status, c.answer, err, psp.IsTemporary(err), c.temporary, c.want)
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != c.status {
			t.Errorf("HTTP %d: no APIError in %v", c.status, err)
		}
	}
	// A timeout and a refused connection are temporary.
	f := newFake(t, http.StatusCreated, sessionAnswer)
	f.latency = 300 * time.Millisecond
	ch := newTestChannel(t, func(c *ChannelConfig) { c.BaseURL, c.Timeout = f.srv.URL, 50*time.Millisecond })
	if _, err := ch.Initiate(context.Background(), initiateRequest()); !psp.IsTemporary(err) {
		t.Errorf("timeout: %v, want temporary", err)
	}
	if _, err := newTestChannel(t).Initiate(context.Background(), initiateRequest()); !psp.IsTemporary(err) {
		t.Errorf("connection refused: %v, want temporary", err)
	}
}

func TestRefund(t *testing.T) {
	f := newFake(t, http.StatusCreated, refundAnswer)
	res, err := f.channel(t).Refund(context.Background(), psp.RefundRequest{RefundRef: "R-1001", TransactionCode: "T1",
		PSPReference: "993617895204576J", Amount: domain.MustMoney(500, "EUR")})
	if err != nil {
		t.Fatalf("Refund: %v", err)
	}
	if res.Status != psp.RefundPending || res.PSPReference != "993617895215577D" || res.RefundRef != "R-1001" || !res.Amount.Equal(domain.MustMoney(500, "EUR")) {
		t.Errorf("result %+v", res)
	}
	r := f.reqs[0]
	if r.URL.Path != "/v71/payments/993617895204576J/refunds" || r.Header.Get("Idempotency-Key") != "paygate-refund-R-1001" {
		t.Errorf("request %s %v", r.URL.Path, r.Header)
	}
	if _, err := f.channel(t).Refund(context.Background(), psp.RefundRequest{RefundRef: "R-1002", PSPReference: "993617895204576J",
		Amount: domain.MustMoney(500, "EUR")}); !errors.Is(err, psp.ErrMalformed) {
		t.Errorf("answer about another refund: %v, want ErrMalformed", err)
	}
	if _, err := f.channel(t).Refund(context.Background(), psp.RefundRequest{RefundRef: "R-1001", Amount: domain.MustMoney(500, "EUR")}); !errors.Is(err, psp.ErrDeclined) {
		t.Errorf("no payment reference: %v, want ErrDeclined", err)
	}
}

func TestWhatAdyenOffers(t *testing.T) {
	f := newFake(t, http.StatusOK, `{}`)
	ch := f.channel(t)
	n, err := ch.Query(context.Background(), "T1")
	if err != nil || n.Status != domain.PSPPending || n.TransactionCode != "T1" {
		t.Errorf("Query = %+v, %v; want pending without error", n, err)
	}
	if _, err := ch.QueryRefund(context.Background(), "R-1"); !errors.Is(err, psp.ErrUnsupported) {
		t.Errorf("QueryRefund: %v", err)
	}
	if len(f.reqs) != 0 {
		t.Errorf("%d requests made", len(f.reqs))
	}
	if c := ch.Capabilities(); c.ConfirmByQuery || !c.Settlement || !c.PartialRefund || !c.RefundCallbacks {
		t.Errorf("capabilities %+v", c)
	}
	if a := ch.Ack(); a.Status != 200 || a.Body != "[accepted]" {
		t.Errorf("ack %+v", a)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []ChannelConfig{
		{MerchantAccount: "M", HMACKeys: []string{testKey}},
		{APIKey: "k", HMACKeys: []string{testKey}},
		{APIKey: "k", MerchantAccount: "M"},
		{APIKey: "k", MerchantAccount: "M", HMACKeys: []string{"not hex"}},
		{APIKey: "k", MerchantAccount: "M", HMACKeys: []string{testKey}, Environment: EnvLive},
		{APIKey: "k", MerchantAccount: "M", HMACKeys: []string{testKey}, Environment: "prod"},
	}
	for i, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("config %d valid: %+v", i, c)
		}
	}
}
