package alipay

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// Recorded answer objects, from the examples of the API reference
// (opendocs.alipay.com/open/028woa alipay.trade.query, 028sm9
// alipay.trade.refund, 028sma alipay.trade.fastpay.refund.query, and the
// common error codes); the fake signs them with the test Alipay key as
// the gateway does, so the adapter verifies them exactly as sent.
const (
	recQueryClosedTWD = `{"code":"10000","msg":"Success","trade_no":"2013112011001004330000121536","out_trade_no":"6823789339978248",` +
		`"buyer_logon_id":"159****5620","trade_status":"TRADE_CLOSED","total_amount":"88.88","trans_currency":"TWD",` +
		`"settle_currency":"USD","settle_amount":"2.96","pay_currency":"CNY","pay_amount":"8.88","settle_trans_rate":"30.025",` +
		`"trans_pay_rate":"0.264","buyer_pay_amount":"8.88","point_amount":"10","invoice_amount":"12.11",` +
		`"send_pay_date":"2014-11-27 15:45:57","receipt_amount":"15.25","store_id":"NJ_S_001","terminal_id":"NJ_T_001"}`
	recQueryPaid = `{"code":"10000","msg":"Success","trade_no":"2013112011001004330000121536","out_trade_no":"T1",` +
		`"buyer_logon_id":"159****5620","trade_status":"TRADE_SUCCESS","total_amount":"88.88","buyer_pay_amount":"88.88",` +
		`"receipt_amount":"88.88","send_pay_date":"2014-11-27 15:45:57"}`
	recQueryWaiting = `{"code":"10000","msg":"Success","trade_no":"2013112011001004330000121537","out_trade_no":"T-WAIT",` +
		`"trade_status":"WAIT_BUYER_PAY","total_amount":"0.01"}`
	recTradeNotExist = `{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}`
	recSystemError   = `{"code":"40004","msg":"Business Failed","sub_code":"ACQ.SYSTEM_ERROR","sub_msg":"系统错误"}`
	recUnavailable   = `{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error","sub_msg":"系统繁忙"}`
	recInvalidParam  = `{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature","sub_msg":"验签出错"}`
	recRefundDone    = `{"code":"10000","msg":"Success","trade_no":"2013112011001004330000121536","out_trade_no":"T1",` +
		`"buyer_logon_id":"159****5620","fund_change":"Y","refund_fee":"88.88","store_name":"望湘园联洋店","buyer_user_id":"2088101117955611"}`
	recRefundRepeat = `{"code":"10000","msg":"Success","trade_no":"2013112011001004330000121536","out_trade_no":"T1",` +
		`"buyer_logon_id":"159****5620","fund_change":"N","refund_fee":"88.88"}`
	recRefundQuery = `{"code":"10000","msg":"Success","trade_no":"2013112011001004330000121536","out_trade_no":"T1",` +
		`"out_request_no":"R2","total_amount":"88.88","refund_amount":"12.33","refund_status":"REFUND_SUCCESS"}`
	recRefundExceeds = `{"code":"40004","msg":"Business Failed","sub_code":"ACQ.REFUND_AMT_NOT_EQUAL_TOTAL","sub_msg":"退款金额超限"}`
)

// gateway fakes the open API gateway: it checks the request's RSA2
// signature with the app's public key and answers "<method>_response"
// with the recorded object for (method, out_trade_no), signed.
type gateway struct {
	mu       sync.Mutex
	answers  map[string]string // "method out_trade_no" → response object
	requests []url.Values
	unsigned bool
	forged   bool
	status   int
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	p, err := url.ParseQuery(string(b))
	method := p.Get("method")
	key := strings.ReplaceAll(method, ".", "_") + "_response"
	content, _ := signContent(p, false)
	if err != nil || rsa2Verify([]*rsa.PublicKey{&appKey.PublicKey}, []byte(content), p.Get("sign")) != nil {
		writeSigned(w, key, recInvalidParam, false, false)
		return
	}
	var biz map[string]string
	_ = json.Unmarshal([]byte(p.Get("biz_content")), &biz)
	g.mu.Lock()
	g.requests = append(g.requests, p)
	ans, ok := g.answers[method+" "+biz["out_trade_no"]]
	unsigned, forged, status := g.unsigned, g.forged, g.status
	g.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	if !ok {
		ans = recTradeNotExist
	}
	writeSigned(w, key, ans, unsigned, forged)
}

func writeSigned(w http.ResponseWriter, key, obj string, unsigned, forged bool) {
	signer := alipayKey
	if forged {
		signer = otherKey
	}
	sig, _ := rsa2Sign(signer, []byte(obj))
	w.Header().Set("Content-Type", "text/html;charset=utf-8") // as the gateway labels its JSON
	out := `{"` + key + `":` + obj
	if !unsigned {
		out += `,"sign":"` + sig + `"`
	}
	_, _ = io.WriteString(w, out+`}`)
}

func newGateway(t *testing.T, answers map[string]string) (*gateway, *Channel) {
	keys()
	g := &gateway{answers: answers}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	ch, _ := newChannel(t, srv.URL+"/gateway.do")
	return g, ch
}

func TestInitiate(t *testing.T) {
	ch, cnt := newChannel(t, "")
	s, err := ch.Initiate(context.Background(), psp.InitiateRequest{TransactionCode: "T1", OrderID: "A1", Amount: domain.MustMoney(1999, "CNY"),
		Description: "Phone case", NotifyURL: "https://gw.example/v1/callbacks/alipay", ReturnURL: "https://gw.example/v1/return/alipay"})
	if err != nil {
		t.Fatal(err)
	}
	if cnt.n.Load() != 0 {
		t.Fatal("Initiate made a request")
	}
	u, err := url.Parse(s.PayURL)
	if err != nil || !strings.HasPrefix(s.PayURL, "http://127.0.0.1:1/gateway.do?") {
		t.Fatalf("PayURL %s", s.PayURL)
	}
	q := u.Query()
	content, _ := signContent(q, false)
	if err := rsa2Verify([]*rsa.PublicKey{&appKey.PublicKey}, []byte(content), q.Get("sign")); err != nil {
		t.Fatalf("pay URL is not signed with the app key: %v", err)
	}
	var biz map[string]string
	if err := json.Unmarshal([]byte(q.Get("biz_content")), &biz); err != nil {
		t.Fatal(err)
	}
	if q.Get("method") != methodPagePay || q.Get("app_id") != testAppID || q.Get("timestamp") != "2026-11-25 18:00:00" ||
		q.Get("notify_url") != "https://gw.example/v1/callbacks/alipay" || q.Get("return_url") != "https://gw.example/v1/return/alipay" ||
		biz["out_trade_no"] != "T1" || biz["total_amount"] != "19.99" || biz["product_code"] != "FAST_INSTANT_TRADE_PAY" ||
		biz["timeout_express"] != "30m" || biz["trans_currency"] != "" || s.Form["sign"] != q.Get("sign") {
		t.Fatalf("page pay request %v %v", q, biz)
	}
	if !s.ExpiresAt.Equal(time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC)) || s.PSPReference != "" {
		t.Fatalf("session %+v", s)
	}
	// The pay URL names no key: only the signature.
	if strings.Contains(s.PayURL, "PRIVATE") {
		t.Fatal("private key in the pay URL")
	}
	s, _ = ch.Initiate(context.Background(), psp.InitiateRequest{TransactionCode: "T2", Amount: domain.MustMoney(120000, "JPY")})
	u, _ = url.Parse(s.PayURL)
	_ = json.Unmarshal([]byte(u.Query().Get("biz_content")), &biz)
	if biz["total_amount"] != "120000" || biz["trans_currency"] != "JPY" {
		t.Fatalf("JPY biz %v", biz)
	}
}

func TestQuery(t *testing.T) {
	g, ch := newGateway(t, map[string]string{
		methodQuery + " 6823789339978248": recQueryClosedTWD, methodQuery + " T1": recQueryPaid,
		methodQuery + " T-WAIT": recQueryWaiting, methodQuery + " T-OTHER": recQueryPaid,
		methodQuery + " T-BUSY": recSystemError, methodQuery + " T-DOWN": recUnavailable,
	})
	ctx := context.Background()
	var ex []psp.Exchange
	rctx := psp.WithRecorder(ctx, "query", func(e psp.Exchange) { ex = append(ex, e) })
	n, err := ch.Query(rctx, "T1")
	want := domain.Notification{TransactionCode: "T1", PSPReference: "2013112011001004330000121536", Status: domain.PSPSucceeded,
		Amount: domain.MustMoney(8888, "CNY"), OccurredAt: time.Date(2014, 11, 27, 7, 45, 57, 0, time.UTC)}
	if err != nil || !psptest.SameNotification(n, want) {
		t.Fatalf("Query = %+v, %v", n, err)
	}
	if len(ex) != 1 || strings.Contains(ex[0].RequestBody, "PRIVATE") || !strings.Contains(ex[0].RequestBody, "alipay.trade.query") {
		t.Fatalf("evidence %+v", ex)
	}
	if g.requests[0].Get("biz_content") != `{"out_trade_no":"T1"}` {
		t.Fatalf("biz_content %s", g.requests[0].Get("biz_content"))
	}
	n, err = ch.Query(ctx, "6823789339978248")
	if err != nil || n.Status != domain.PSPFailed || n.Amount.String() != "88.88 TWD" {
		t.Fatalf("closed TWD trade: %+v, %v", n, err)
	}
	for code, st := range map[string]domain.PSPStatus{"T-WAIT": domain.PSPPending, "T-NONE": domain.PSPUnknown} {
		if n, err := ch.Query(ctx, code); err != nil || n.Status != st {
			t.Errorf("%s: %+v, %v", code, n, err)
		}
	}
	if _, err := ch.Query(ctx, "T-OTHER"); !errors.Is(err, psp.ErrMalformed) {
		t.Errorf("answer about another trade: %v", err)
	}
	for _, code := range []string{"T-BUSY", "T-DOWN"} {
		if _, err := ch.Query(ctx, code); !psp.IsTemporary(err) {
			t.Errorf("%s: %v, want temporary", code, err)
		}
	}
	g.forged = true
	if _, err := ch.Query(ctx, "T1"); !errors.Is(err, psp.ErrMalformed) {
		t.Errorf("answer signed by another key: %v", err)
	}
	g.forged, g.unsigned = false, true
	if _, err := ch.Query(ctx, "T1"); !errors.Is(err, psp.ErrMalformed) {
		t.Errorf("unsigned success answer: %v", err)
	}
	g.unsigned, g.status = false, 502
	if _, err := ch.Query(ctx, "T1"); !psp.IsTemporary(err) {
		t.Errorf("HTTP 502: %v", err)
	}
	g.status = 0
	down, _ := newChannel(t, "http://127.0.0.1:1/gateway.do", func(c *ChannelConfig) { c.Transport = http.DefaultTransport })
	if _, err := down.Query(ctx, "T1"); !psp.IsTemporary(err) {
		t.Errorf("connection refused: %v", err)
	}
}

func TestRefund(t *testing.T) {
	g, ch := newGateway(t, map[string]string{
		methodRefund + " T1": recRefundDone, methodRefund + " T2": recRefundExceeds,
		methodRefund + " T3":      strings.Replace(recRefundRepeat, `"T1"`, `"T3"`, 1),
		methodRefundQuery + " T3": strings.NewReplacer(`"T1"`, `"T3"`, `"R2"`, `"R3"`).Replace(recRefundQuery),
	})
	ctx := context.Background()
	r, err := ch.Refund(ctx, psp.RefundRequest{RefundRef: "R1", TransactionCode: "T1", Amount: domain.MustMoney(8888, "CNY"), Reason: "dup"})
	if err != nil || r.Status != psp.RefundSucceeded || !r.Amount.Equal(domain.MustMoney(8888, "CNY")) {
		t.Fatalf("Refund = %+v, %v", r, err)
	}
	var biz map[string]string
	_ = json.Unmarshal([]byte(g.requests[0].Get("biz_content")), &biz)
	if biz["out_request_no"] != "R1" || biz["refund_amount"] != "88.88" || biz["out_trade_no"] != "T1" {
		t.Fatalf("refund biz %v", biz)
	}
	if _, err := ch.Refund(ctx, psp.RefundRequest{RefundRef: "R2", TransactionCode: "T2", Amount: domain.MustMoney(1, "CNY")}); !errors.Is(err, psp.ErrDeclined) {
		t.Fatalf("refused refund: %v", err)
	}
	if _, err := ch.Refund(ctx, psp.RefundRequest{RefundRef: "R9", TransactionCode: "T-NONE", Amount: domain.MustMoney(1, "CNY")}); !errors.Is(err, psp.ErrNotFound) {
		t.Fatalf("refund of an unknown trade: %v", err)
	}
	// fund_change N: resolved by the refund query at once.
	r, err = ch.Refund(ctx, psp.RefundRequest{RefundRef: "R3", TransactionCode: "T3", Amount: domain.MustMoney(1233, "CNY")})
	if err != nil || r.Status != psp.RefundSucceeded || r.Amount.String() != "12.33 CNY" {
		t.Fatalf("repeat refund = %+v, %v", r, err)
	}
	// QueryRefund of a refund this process made; of one it did not.
	if r, err = ch.QueryRefund(ctx, "R3"); err != nil || r.Status != psp.RefundSucceeded {
		t.Fatalf("QueryRefund R3 = %+v, %v", r, err)
	}
	if r, err = ch.QueryRefund(ctx, "R-ELSEWHERE"); err != nil || r.Status != psp.RefundUnknown {
		t.Fatalf("QueryRefund of a refund made elsewhere = %+v, %v", r, err)
	}
	// Another process (a fresh channel) answers it when told the trade.
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	other, _ := newChannel(t, srv.URL+"/gateway.do")
	if r, err = psp.QueryRefundOf(ctx, other, psp.RefundQuery{RefundRef: "R3", TransactionCode: "T3"}); err != nil || r.Status != psp.RefundSucceeded {
		t.Fatalf("QueryRefundOf R3 from another process = %+v, %v", r, err)
	}
}

// TestAmounts: exact conversions between minor units and Alipay's yuan
// strings, both ways; never a rounding.
func TestAmounts(t *testing.T) {
	for _, c := range []struct {
		minor int64
		cur   string
		dec   string
	}{
		{1, "CNY", "0.01"}, {10, "CNY", "0.10"}, {1999, "CNY", "19.99"}, {100000000_00, "CNY", "100000000.00"},
		{120000, "JPY", "120000"}, {1999, "KWD", "1.999"}, {1<<53 + 1, "CNY", "90071992547409.93"},
	} {
		m := domain.MustMoney(c.minor, c.cur)
		if m.Decimal() != c.dec {
			t.Errorf("%d %s → %q, want %q", c.minor, c.cur, m.Decimal(), c.dec)
		}
		trans := c.cur
		if trans == "CNY" {
			trans = ""
		}
		back, err := money(c.dec, trans)
		if err != nil || !back.Equal(m) {
			t.Errorf("%q %s → %v, %v", c.dec, c.cur, back, err)
		}
	}
	for _, s := range []string{"20", "20.0", "20.00"} {
		if m, err := money(s, ""); err != nil || m.Minor() != 2000 {
			t.Errorf("%q → %v, %v", s, m, err)
		}
	}
	for _, bad := range []string{"", "19.999", "-1.00", "1e3", "1,000.00", " 1.00", "0x10", "１.00"} {
		if m, err := money(bad, ""); err == nil {
			t.Errorf("%q accepted as %v", bad, m)
		}
	}
}
