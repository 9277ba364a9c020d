package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/signature"
)

func TestQuery(t *testing.T) {
	clk := &clock{t: time.Now()}
	e := newEnv(t, ServerConfig{Now: clk.Now})
	e.initiate("T-created", usd1999)
	paid := e.initiate("T-paid", usd1999)
	e.pay(paid.PayURL, url.Values{"result": {"success"}, "callbacks": {"none"}})
	failed := e.initiate("T-failed", usd1999)
	e.pay(failed.PayURL, url.Values{"result": {"decline"}, "callbacks": {"none"}})
	e.initiate("T-expired", domain.MustMoney(5, "JPY"))
	paidAt := clk.Now()

	cases := []struct {
		code   string
		status domain.PSPStatus
		amount domain.Money
		at     time.Time
		after  time.Duration // clock moves before the query
	}{
		{code: "T-unknown", status: domain.PSPUnknown},
		{code: "T-created", status: domain.PSPPending, amount: usd1999},
		{code: "T-paid", status: domain.PSPSucceeded, amount: usd1999, at: paidAt},
		{code: "T-failed", status: domain.PSPFailed, amount: usd1999},
		{code: "T-expired", status: domain.PSPFailed, amount: domain.MustMoney(5, "JPY"), after: 31 * time.Minute},
	}
	for _, c := range cases {
		clk.Add(c.after)
		n, err := e.ch.Query(t.Context(), c.code)
		if err != nil {
			t.Errorf("%s: Query: %v", c.code, err)
			continue
		}
		if n.TransactionCode != c.code || n.Status != c.status || !n.Amount.Equal(c.amount) || !n.OccurredAt.Equal(c.at) {
			t.Errorf("%s: Query = %+v, want %s %s at %s", c.code, n, c.status, c.amount, c.at)
		}
		if c.status != domain.PSPUnknown && !strings.HasPrefix(n.PSPReference, "sp_") {
			t.Errorf("%s: PSPReference %q", c.code, n.PSPReference)
		}
	}
}

func TestAPITimeout(t *testing.T) {
	e := newEnv(t, ServerConfig{APITimeoutRate: 1, APITimeout: time.Minute},
		func(c *ChannelConfig) { c.Timeout = 100 * time.Millisecond })
	start := time.Now()
	_, err := e.ch.Initiate(t.Context(), e.initiateRequest("T-slow", usd1999))
	if !psp.IsTemporary(err) {
		t.Fatalf("Initiate = %v, want a temporary error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Initiate took %s with a 100ms timeout", d)
	}
	if _, err := e.ch.Query(t.Context(), "T-slow"); !psp.IsTemporary(err) {
		t.Errorf("Query = %v, want a temporary error", err)
	}
	// The call took effect: the outcome was unknown, not negative.
	if l := e.srv.Ledger(); len(l.Payments) != 1 {
		t.Errorf("ledger has %d payments, want the 1 created before the answer was lost", len(l.Payments))
	}
}

// TestAPITimeoutScripted: the answer to the first Initiate is lost; the
// retry with the same transaction code finds the same payment.
func TestAPITimeoutScripted(t *testing.T) {
	e := newEnv(t, ServerConfig{APITimeout: time.Minute}, func(c *ChannelConfig) { c.Timeout = 100 * time.Millisecond })
	e.srv.Script("T-lost", Script{APITimeouts: 1})
	_, err := e.ch.Initiate(t.Context(), e.initiateRequest("T-lost", usd1999))
	var te *psp.TemporaryError
	if !errors.As(err, &te) {
		t.Fatalf("first Initiate = %v, want *psp.TemporaryError", err)
	}
	s := e.initiate("T-lost", usd1999)
	if l := e.srv.Ledger(); len(l.Payments) != 1 || l.Payments[0].ID != s.PSPReference {
		t.Errorf("ledger %+v, want one payment %s", l.Payments, s.PSPReference)
	}
}

// TestAPITimeoutServerAnswer: a caller that waits gets the 504, which is
// temporary too.
func TestAPITimeoutServerAnswer(t *testing.T) {
	e := newEnv(t, ServerConfig{APITimeoutRate: 1, APITimeout: 20 * time.Millisecond})
	_, err := e.ch.Query(t.Context(), "T-x")
	var ae *APIError
	if !psp.IsTemporary(err) || !errors.As(err, &ae) || ae.Status != http.StatusGatewayTimeout {
		t.Errorf("Query = %v, want temporary wrapping a 504", err)
	}
}

func TestRefunds(t *testing.T) {
	e := newEnv(t, ServerConfig{})
	s := e.initiate("T-r", usd1999)
	e.pay(s.PayURL, url.Values{"result": {"success"}, "callbacks": {"none"}})
	declined := e.initiate("T-r-declined", usd1999)
	e.pay(declined.PayURL, url.Values{"result": {"decline"}, "callbacks": {"none"}})
	e.initiate("T-r-open", usd1999)

	refund := func(ref, code string, amount domain.Money) (psp.RefundResult, error) {
		return e.ch.Refund(t.Context(), psp.RefundRequest{RefundRef: ref, TransactionCode: code, PSPReference: s.PSPReference, Amount: amount, Reason: "customer"})
	}
	usd := func(n int64) domain.Money { return domain.MustMoney(n, "USD") }

	r1, err := refund("R1", "T-r", usd(999))
	if err != nil || r1.Status != psp.RefundSucceeded || !r1.Amount.Equal(usd(999)) || r1.RefundRef != "R1" || !strings.HasPrefix(r1.PSPReference, "sr_") {
		t.Fatalf("partial refund = %+v %v", r1, err)
	}
	again, err := refund("R1", "T-r", usd(999))
	if err != nil || again != r1 {
		t.Errorf("same refund again = %+v %v, want %+v", again, err, r1)
	}

	refused := []struct {
		name, ref, code string
		amount          domain.Money
		target          error
		apiCode         string
	}{
		{"over-refund", "R2", "T-r", usd(1001), psp.ErrDeclined, "exceeds_refundable"},
		{"same ref, other amount", "R1", "T-r", usd(998), psp.ErrDeclined, "conflict"},
		{"other currency", "R3", "T-r", domain.MustMoney(10, "EUR"), psp.ErrDeclined, "currency_mismatch"},
		{"declined payment", "R4", "T-r-declined", usd(1), psp.ErrDeclined, "payment_not_succeeded"},
		{"unpaid payment", "R5", "T-r-open", usd(1), psp.ErrDeclined, "payment_not_succeeded"},
		{"unknown payment", "R6", "T-nope", usd(1), psp.ErrNotFound, "not_found"},
	}
	for _, c := range refused {
		_, err := refund(c.ref, c.code, c.amount)
		var ae *APIError
		if !errors.Is(err, c.target) || !errors.As(err, &ae) || ae.Code != c.apiCode || psp.IsTemporary(err) {
			t.Errorf("%s: Refund = %v, want %v with code %s", c.name, err, c.target, c.apiCode)
		}
	}

	r2, err := refund("R7", "T-r", usd(1000))
	if err != nil || r2.Status != psp.RefundSucceeded {
		t.Fatalf("refund of the rest = %+v %v", r2, err)
	}
	if _, err := refund("R8", "T-r", usd(1)); !errors.Is(err, psp.ErrDeclined) {
		t.Errorf("refund beyond the fully refunded payment = %v, want ErrDeclined", err)
	}

	q, err := e.ch.QueryRefund(t.Context(), "R7")
	if err != nil || q != r2 {
		t.Errorf("QueryRefund = %+v %v, want %+v", q, err, r2)
	}
	u, err := e.ch.QueryRefund(t.Context(), "R-unknown")
	if err != nil || u.Status != psp.RefundUnknown || u.RefundRef != "R-unknown" {
		t.Errorf("QueryRefund unknown = %+v %v, want RefundUnknown", u, err)
	}
	l := e.srv.Ledger()
	if len(l.Refunds) != 2 || l.Refunds[0].Amount.Minor()+l.Refunds[1].Amount.Minor() != 1999 {
		t.Errorf("ledger refunds = %+v, want 9.99 and 10.00", l.Refunds)
	}
}

func TestRefundPending(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail=%v", fail), func(t *testing.T) {
			clk := &clock{t: time.Now()}
			cfg := ServerConfig{Now: clk.Now, RefundPendingRate: 1, RefundPendingFor: 2 * time.Second}
			if fail {
				cfg.RefundFailRate = 1
			}
			e := newEnv(t, cfg)
			s := e.initiate("T-p", usd1999)
			e.pay(s.PayURL, url.Values{"result": {"success"}, "callbacks": {"none"}})
			req := psp.RefundRequest{RefundRef: "RP", TransactionCode: "T-p", Amount: usd1999}
			r, err := e.ch.Refund(t.Context(), req)
			if err != nil || r.Status != psp.RefundPending {
				t.Fatalf("Refund = %+v %v, want pending", r, err)
			}
			// A pending refund holds its amount.
			if _, err := e.ch.Refund(t.Context(), psp.RefundRequest{RefundRef: "RP2", TransactionCode: "T-p", Amount: domain.MustMoney(1, "USD")}); !errors.Is(err, psp.ErrDeclined) {
				t.Errorf("refund beside a pending full refund = %v, want ErrDeclined", err)
			}
			clk.Add(time.Second)
			if q, _ := e.ch.QueryRefund(t.Context(), "RP"); q.Status != psp.RefundPending {
				t.Errorf("after 1s: %s, want pending", q.Status)
			}
			clk.Add(time.Second)
			want := psp.RefundSucceeded
			if fail {
				want = psp.RefundFailed
			}
			q, err := e.ch.QueryRefund(t.Context(), "RP")
			if err != nil || q.Status != want {
				t.Errorf("after 2s: %+v %v, want %s", q, err, want)
			}
			// The idempotent replay reports the refund as it is now.
			if r, err := e.ch.Refund(t.Context(), req); err != nil || r.Status != want {
				t.Errorf("replay = %+v %v, want %s", r, err, want)
			}
			// A failed refund gives its amount back.
			_, err = e.ch.Refund(t.Context(), psp.RefundRequest{RefundRef: "RP3", TransactionCode: "T-p", Amount: usd1999})
			if fail && err != nil {
				t.Errorf("refund after a failed one = %v, want accepted", err)
			}
			if !fail && !errors.Is(err, psp.ErrDeclined) {
				t.Errorf("refund after a succeeded full refund = %v, want ErrDeclined", err)
			}
		})
	}
}

func TestSettlements(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	clk := &clock{}
	e := newEnv(t, ServerConfig{Now: clk.Now, Location: tokyo,
		Merchants: map[string]string{testMerchant: testSecret, "m2": "secret-m2"}})
	// Payments around the Tokyo midnight that starts 2026-11-25 (15:00 UTC on the 24th).
	midnight := time.Date(2026, 11, 25, 0, 0, 0, 0, tokyo)
	at := []struct {
		code string
		t    time.Time
		pay  string
	}{
		{"T-before", midnight.Add(-time.Nanosecond), "success"},
		{"T-first", midnight, "success"},
		{"T-second", midnight.Add(time.Hour), "success"},
		{"T-declined", midnight.Add(2 * time.Hour), "decline"},
		{"T-third", midnight.Add(3 * time.Hour), "success"},
		{"T-fourth", midnight.Add(3 * time.Hour), "success"}, // same instant: ordered by id
		{"T-fifth", midnight.Add(24*time.Hour - time.Nanosecond), "success"},
		{"T-next-day", midnight.Add(24 * time.Hour), "success"},
	}
	for _, p := range at {
		clk.Set(p.t)
		s := e.initiate(p.code, usd1999)
		e.pay(s.PayURL, url.Values{"result": {p.pay}, "callbacks": {"none"}})
	}
	// Another merchant's payment on that day never shows.
	other, err := NewChannel(ChannelConfig{BaseURL: e.api.URL, MerchantID: "m2", Secrets: []string{"secret-m2"}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(midnight.Add(time.Minute))
	os, err := other.Initiate(t.Context(), psp.InitiateRequest{TransactionCode: "T-m2", Amount: usd1999})
	if err != nil {
		t.Fatal(err)
	}
	e.pay(os.PayURL, url.Values{"result": {"success"}})
	clk.Set(midnight.Add(48 * time.Hour))

	var all []psp.SettlementRow
	pages := 0
	call := func(page string, size int) settlementJSON {
		t.Helper()
		q := url.Values{"date": {"2026-11-25"}, "page_size": {fmt.Sprint(size)}}
		if page != "" {
			q.Set("page", page)
		}
		var out settlementJSON
		status, body, err := e.ch.call(t.Context(), "settlements", http.MethodGet, pathSettlements+"?"+q.Encode(), nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("settlements: %d %v", status, err)
		}
		if err := decodeJSON(body, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// Through the adapter with the default page size: one page.
	page, err := e.ch.SettledPayments(t.Context(), midnight, "")
	if err != nil || page.NextPage != "" {
		t.Fatalf("SettledPayments = %+v %v", page, err)
	}
	all = page.Rows
	// Page by page, size 2.
	var paged []string
	for tok := ""; ; pages++ {
		p := call(tok, 2)
		for _, r := range p.Rows {
			paged = append(paged, r.MerchantRef)
		}
		if p.NextPage == "" {
			break
		}
		tok = p.NextPage
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	var codes []string
	for _, r := range all {
		codes = append(codes, r.TransactionCode)
		if !r.Amount.Equal(usd1999) || r.Status != domain.PSPSucceeded || !strings.HasPrefix(r.PSPReference, "sp_") {
			t.Errorf("row %+v", r)
		}
	}
	// T-third and T-fourth share an instant: their order is by payment id.
	l := e.srv.Ledger()
	third, fourth := "T-third", "T-fourth"
	if l.Payments[4].ID > l.Payments[5].ID {
		third, fourth = fourth, third
	}
	want := []string{"T-first", "T-second", third, fourth, "T-fifth"}
	if strings.Join(codes, ",") != strings.Join(want, ",") {
		t.Errorf("rows %v, want %v", codes, want)
	}
	if strings.Join(paged, ",") != strings.Join(want, ",") || pages != 2 {
		t.Errorf("paged rows %v in %d pages, want %v in 3", paged, pages+1, want)
	}
	if !all[0].SettledAt.Equal(midnight) {
		t.Errorf("first row settled at %s, want %s", all[0].SettledAt, midnight)
	}

	// The adapter reads the date in the location of the day it is given.
	prev, err := e.ch.SettledPayments(t.Context(), midnight.Add(-time.Hour), "")
	if err != nil || len(prev.Rows) != 1 || prev.Rows[0].TransactionCode != "T-before" {
		t.Errorf("2026-11-24 = %+v %v, want T-before only", prev, err)
	}

	// Bad parameters are refused, and refusals are permanent.
	for _, q := range []string{"date=2026-13-01", "date=2026-11-25&page_size=5001", "date=2026-11-25&page_size=0", "date=2026-11-25&page=garbage"} {
		status, _, err := e.ch.call(t.Context(), "settlements", http.MethodGet, pathSettlements+"?"+q, nil)
		if err != nil || status != http.StatusBadRequest {
			t.Errorf("%s: %d %v, want 400", q, status, err)
		}
	}
}

// TestSettlementsDST: a business day in a zone with daylight saving has
// 23 or 25 hours, not 24.
func TestSettlementsDST(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no tz database: %v", err)
	}
	clk := &clock{}
	e := newEnv(t, ServerConfig{Now: clk.Now, Location: ny})
	// 2026-11-01 is the day New York falls back: 25 hours.
	late := time.Date(2026, 11, 1, 23, 30, 0, 0, ny)
	clk.Set(late)
	s := e.initiate("T-late", usd1999)
	e.pay(s.PayURL, url.Values{"result": {"success"}, "callbacks": {"none"}})
	clk.Set(late.Add(48 * time.Hour))
	page, err := e.ch.SettledPayments(t.Context(), time.Date(2026, 11, 1, 0, 0, 0, 0, ny), "")
	if err != nil || len(page.Rows) != 1 {
		t.Errorf("2026-11-01 in New York = %+v %v, want the 23:30 payment", page, err)
	}
}

func TestAPIAuth(t *testing.T) {
	e := newEnv(t, ServerConfig{})
	now := time.Now()
	body := []byte(`{"merchant_ref":"T-auth","amount":1999,"currency":"USD"}`)
	cases := []struct {
		name     string
		merchant string
		secret   string
		at       time.Time
		body     []byte
		want     int
	}{
		{"signed", testMerchant, testSecret, now, body, http.StatusCreated},
		{"unsigned", "", "", now, body, http.StatusUnauthorized},
		{"no signature", testMerchant, "", now, body, http.StatusUnauthorized},
		{"unknown merchant", "m2", testSecret, now, body, http.StatusUnauthorized},
		{"wrong secret", testMerchant, "guess", now, body, http.StatusUnauthorized},
		{"stale", testMerchant, testSecret, now.Add(-301 * time.Second), body, http.StatusUnauthorized},
		// A second past the tolerance would be flaky on the wall clock: the
		// timestamp is whole seconds and the server reads its clock later.
		{"future", testMerchant, testSecret, now.Add(signature.DefaultTolerance + 30*time.Second), body, http.StatusUnauthorized},
		{"malformed JSON", testMerchant, testSecret, now, []byte(`{"merchant_ref":`), http.StatusBadRequest},
		{"float amount", testMerchant, testSecret, now, []byte(`{"merchant_ref":"T-f","amount":19.99,"currency":"USD"}`), http.StatusBadRequest},
		{"unknown currency", testMerchant, testSecret, now, []byte(`{"merchant_ref":"T-c","amount":1,"currency":"XXX"}`), http.StatusBadRequest},
		{"trailing data", testMerchant, testSecret, now, []byte(`{"merchant_ref":"T-t","amount":1,"currency":"USD"} {}`), http.StatusBadRequest},
		{"too large", testMerchant, testSecret, now, bytes.Repeat([]byte(" "), 64<<10+1), http.StatusRequestEntityTooLarge},
	}
	for _, c := range cases {
		status, ej := signedAPI(t, e.api.URL, http.MethodPost, pathPayments, c.body, c.merchant, c.secret, c.at)
		if status != c.want {
			t.Errorf("%s: %d %+v, want %d", c.name, status, ej, c.want)
		}
		if status >= 400 && ej.Error == "" {
			t.Errorf("%s: error answer without a JSON error code", c.name)
		}
	}
	// The signature covers the request URI: a query signed for one
	// reference cannot be replayed for another.
	req, _ := http.NewRequest(http.MethodGet, e.api.URL+pathPayments+"?merchant_ref=T-auth", nil)
	ts := now.Unix()
	req.Header.Set(headerMerchant, testMerchant)
	req.Header.Set(headerTimestamp, fmt.Sprint(ts))
	req.Header.Set(headerSignature, signatureFor(pathPayments+"?merchant_ref=T-other", ts))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("replayed signature for another URI: %v %v, want 401", resp.StatusCode, err)
	}
	resp.Body.Close()
	// The adapter maps a 401 (a misconfigured secret) to a permanent error.
	bad, _ := NewChannel(ChannelConfig{BaseURL: e.api.URL, MerchantID: testMerchant, Secrets: []string{"wrong"}})
	var ae *APIError
	if _, err := bad.Query(t.Context(), "T-auth"); !errors.Is(err, psp.ErrDeclined) || !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("Query with a wrong secret = %v, want ErrDeclined wrapping 401", err)
	}
}

func signatureFor(requestURI string, ts int64) string {
	return signature.Header([]byte(testSecret), ts, apiMessage(http.MethodGet, requestURI, nil))
}

// TestEvidence: every API exchange is recorded under its operation, and
// neither the secret nor the request signature is in the evidence.
func TestEvidence(t *testing.T) {
	e := newEnv(t, ServerConfig{})
	var mu sync.Mutex
	var got []psp.Exchange
	rec := func(x psp.Exchange) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, x)
	}
	s, err := e.ch.Initiate(psp.WithRecorder(t.Context(), "initiate", rec), e.initiateRequest("T-ev", usd1999))
	if err != nil {
		t.Fatal(err)
	}
	e.pay(s.PayURL, url.Values{"result": {"success"}, "callbacks": {"none"}})
	if _, err := e.ch.Query(psp.WithRecorder(t.Context(), "query", rec), "T-ev"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ch.Refund(psp.WithRecorder(t.Context(), "refund", rec), psp.RefundRequest{RefundRef: "R-ev", TransactionCode: "T-ev", Amount: usd1999}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d exchanges recorded, want 3", len(got))
	}
	for i, op := range []string{"initiate", "query", "refund"} {
		x := got[i]
		if x.Operation != op || x.Channel != "sim" || x.StatusCode/100 != 2 || x.ResponseBody == "" || x.Duration <= 0 {
			t.Errorf("exchange %d = %+v", i, x)
		}
		all := fmt.Sprintf("%+v", x)
		if strings.Contains(all, testSecret) || strings.Contains(all, "v1=") {
			t.Errorf("exchange %d holds the secret or a signature: %s", i, all)
		}
	}
	if !strings.Contains(got[0].RequestBody, `"merchant_ref":"T-ev"`) || !strings.Contains(got[0].RequestBody, `"amount":1999`) {
		t.Errorf("initiate request evidence %q", got[0].RequestBody)
	}
	if got[1].RequestBody != "" || !strings.Contains(got[1].URL, "merchant_ref=T-ev") {
		t.Errorf("query evidence %q %q", got[1].URL, got[1].RequestBody)
	}
}

// TestErrorMapping: how the adapter classes what comes back, against a
// stub that answers as told.
func TestErrorMapping(t *testing.T) {
	type answer struct {
		status int
		body   string
	}
	cases := []struct {
		name    string
		answer  answer
		check   func(error) bool
		explain string
	}{
		{"500", answer{500, `{"error":"internal"}`}, psp.IsTemporary, "temporary"},
		{"502 html", answer{502, `<html>bad gateway</html>`}, psp.IsTemporary, "temporary"},
		{"503", answer{503, ``}, psp.IsTemporary, "temporary"},
		{"429", answer{429, `{"error":"rate_limited"}`}, psp.IsTemporary, "temporary"},
		{"400", answer{400, `{"error":"invalid_request"}`}, isPermanent(psp.ErrDeclined), "permanent ErrDeclined"},
		{"409", answer{409, `{"error":"conflict"}`}, isPermanent(psp.ErrDeclined), "permanent ErrDeclined"},
		{"422", answer{422, `{"error":"exceeds_refundable"}`}, isPermanent(psp.ErrDeclined), "permanent ErrDeclined"},
		{"404 route", answer{404, `404 page not found`}, isPermanent(psp.ErrNotFound), "permanent ErrNotFound"},
		{"200 garbage", answer{200, `<html>`}, isPermanent(psp.ErrMalformed), "permanent ErrMalformed"},
		{"200 empty", answer{200, ``}, isPermanent(psp.ErrMalformed), "permanent ErrMalformed"},
		{"200 float amount", answer{200, `{"id":"sp_1","merchant_ref":"T-m","status":"created","amount":19.99,"currency":"USD","pay_url":"x"}`}, isPermanent(psp.ErrMalformed), "permanent ErrMalformed"},
		{"200 other ref", answer{200, `{"id":"sp_1","merchant_ref":"T-other","status":"created","amount":1999,"currency":"USD","pay_url":"x"}`}, isPermanent(psp.ErrMalformed), "permanent ErrMalformed"},
		{"302", answer{302, ``}, isPermanent(psp.ErrMalformed), "permanent ErrMalformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.answer.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(c.answer.status)
				_, _ = w.Write([]byte(c.answer.body))
			}))
			defer stub.Close()
			ch, err := NewChannel(ChannelConfig{BaseURL: stub.URL, MerchantID: testMerchant, Secrets: []string{testSecret}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = ch.Initiate(t.Context(), psp.InitiateRequest{TransactionCode: "T-m", Amount: usd1999})
			if !c.check(err) {
				t.Errorf("Initiate = %v, want %s", err, c.explain)
			}
			if _, err = ch.Query(t.Context(), "T-m"); err == nil {
				t.Errorf("Query = nil error, want %s", c.explain)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		stub := httptest.NewServer(http.NotFoundHandler())
		base := stub.URL
		stub.Close()
		ch, _ := NewChannel(ChannelConfig{BaseURL: base, MerchantID: testMerchant, Secrets: []string{testSecret}})
		if _, err := ch.Query(t.Context(), "T-m"); !psp.IsTemporary(err) {
			t.Errorf("Query = %v, want temporary", err)
		}
	})
	t.Run("caller cancels", func(t *testing.T) {
		e := newEnv(t, ServerConfig{APITimeoutRate: 1, APITimeout: time.Minute})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := e.ch.Query(ctx, "T-m")
		if !psp.IsTemporary(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Query = %v, want temporary wrapping the deadline", err)
		}
	})
}

func isPermanent(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) && !psp.IsTemporary(err) }
}

func TestChannelConfig(t *testing.T) {
	ok := ChannelConfig{BaseURL: "http://127.0.0.1:8090", MerchantID: "m", Secrets: []string{"s"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	ch, err := NewChannel(ok)
	if err != nil || ch.Name() != "sim" || ch.cfg.Timeout != 10*time.Second || ch.cfg.Tolerance != 300*time.Second {
		t.Errorf("defaults: %+v %v", ch, err)
	}
	caps := ch.Capabilities()
	if !caps.PartialRefund || !caps.Settlement || caps.RefundCallbacks || !caps.ConfirmByQuery {
		t.Errorf("capabilities %+v", caps)
	}
	if a := ch.Ack(); a.Status != 200 || a.Body != "OK" || !strings.HasPrefix(a.ContentType, "text/plain") {
		t.Errorf("ack %+v", a)
	}
	bad := []func(*ChannelConfig){
		func(c *ChannelConfig) { c.BaseURL = "" },
		func(c *ChannelConfig) { c.BaseURL = "127.0.0.1:8090" },
		func(c *ChannelConfig) { c.BaseURL = "ftp://x" },
		func(c *ChannelConfig) { c.MerchantID = "" },
		func(c *ChannelConfig) { c.Secrets = nil },
		func(c *ChannelConfig) { c.Secrets = []string{"s", ""} },
		func(c *ChannelConfig) { c.Timeout = -1 },
	}
	for i, edit := range bad {
		c := ok
		edit(&c)
		if _, err := NewChannel(c); err == nil {
			t.Errorf("bad config %d accepted: %+v", i, c)
		}
	}
}

func TestServerConfigValidate(t *testing.T) {
	bad := []ServerConfig{
		{DeclineRate: -0.1},
		{APITimeoutRate: 1.5},
		{RefundFailRate: nanRate()},
		{Merchants: map[string]string{"m": ""}},
		{PublicURL: "localhost:8090"},
		{WebhookRetry: []time.Duration{-time.Second}},
	}
	for i, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("bad config %d accepted", i)
		}
	}
	if err := (ServerConfig{PublicURL: "http://127.0.0.1:8090", DeclineRate: 1}).Validate(); err != nil {
		t.Errorf("good config: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("NewServer accepted an invalid config")
		}
	}()
	NewServer(ServerConfig{DeclineRate: 2})
}

func nanRate() float64 {
	zero := 0.0
	return zero / zero
}

// TestPublicURL: pay_url is built on PublicURL when set.
func TestPublicURL(t *testing.T) {
	e := newEnv(t, ServerConfig{PublicURL: "https://sim.example"})
	s := e.initiate("T-pub", usd1999)
	if !strings.HasPrefix(s.PayURL, "https://sim.example/pay/sp_") {
		t.Errorf("pay_url %q", s.PayURL)
	}
}
