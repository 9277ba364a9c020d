package wechatpay

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// Recorded answers, from the API v3 reference's examples
// (pay.weixin.qq.com/doc/v3/merchant/4012791877 Native 下单,
// 4013070356 商户订单号查询订单, 4012791862 退款申请, 4012791863 查询单笔退款,
// and the error-code tables); the merchant ids and amounts are the
// examples' own.
const (
	recNative    = `{"code_url":"weixin://wxpay/bizpayurl?pr=p4lpSuKzz"}`
	recQueryPaid = `{"amount":{"currency":"CNY","payer_currency":"CNY","payer_total":1,"total":1},"appid":"wxdace645e0bc2cXXX",` +
		`"attach":"","bank_type":"OTHERS","mchid":"1900006XXX","out_trade_no":"44_2126281063_5504",` +
		`"payer":{"openid":"o4GgauJP_mgWEWictzA15WT15XXX"},"promotion_detail":[],"success_time":"2021-03-22T10:29:05+08:00",` +
		`"trade_state":"SUCCESS","trade_state_desc":"支付成功","trade_type":"JSAPI","transaction_id":"4200000891202103228088184743"}`
	recQueryNotPaid = `{"amount":{"currency":"CNY","payer_currency":"CNY","total":100},"appid":"wxdace645e0bc2cXXX",` +
		`"mchid":"1900006XXX","out_trade_no":"T-NOTPAY","trade_state":"NOTPAY","trade_state_desc":"订单未支付"}`
	recQueryClosed = `{"amount":{"currency":"CNY","total":100},"appid":"wxdace645e0bc2cXXX",` +
		`"mchid":"1900006XXX","out_trade_no":"T-CLOSED","trade_state":"CLOSED","trade_state_desc":"订单已关闭"}`
	recRefund = `{"refund_id":"50000000382019052709732678859","out_refund_no":"R1","transaction_id":"4200000891202103228088184743",` +
		`"out_trade_no":"44_2126281063_5504","channel":"ORIGINAL","user_received_account":"招商银行信用卡0403",` +
		`"create_time":"2020-12-01T16:18:12+08:00","status":"PROCESSING","funds_account":"UNSETTLED",` +
		`"amount":{"total":1,"refund":1,"payer_total":1,"payer_refund":1,"settlement_refund":1,"settlement_total":1,"discount_refund":0,"currency":"CNY"}}`
	recRefundDone = `{"refund_id":"50000000382019052709732678859","out_refund_no":"R1","transaction_id":"4200000891202103228088184743",` +
		`"out_trade_no":"44_2126281063_5504","channel":"ORIGINAL","user_received_account":"招商银行信用卡0403",` +
		`"success_time":"2020-12-01T16:18:12+08:00","create_time":"2020-12-01T16:18:12+08:00","status":"SUCCESS",` +
		`"amount":{"total":1,"refund":1,"payer_total":1,"payer_refund":1,"currency":"CNY"}}`
	recOrderNotExist    = `{"code":"ORDER_NOT_EXIST","message":"订单不存在"}`
	recRefundNotExist   = `{"code":"RESOURCE_NOT_EXISTS","message":"退款单不存在"}`
	recSystemError      = `{"code":"SYSTEM_ERROR","message":"系统错误"}`
	recFrequencyLimited = `{"code":"FREQUENCY_LIMITED","message":"频率超限"}`
	recParamError       = `{"code":"PARAM_ERROR","message":"参数错误"}`
	recNoAuth           = `{"code":"SIGN_ERROR","message":"签名错误"}`
)

// fake is WeChat Pay's API as far as the adapter uses it: it checks each
// request's Authorization against the merchant's public key and answers
// with the recorded bodies, signed with the platform key.
type fake struct {
	t        *testing.T
	mu       sync.Mutex
	answers  map[string]answer // "METHOD path" → answer
	requests []string          // "METHOD path-and-query body"
	unsigned bool              // answer without Wechatpay-* headers
	// raw are answers WeChat does not sign (the bill download), by
	// "METHOD path"; clock, when set, timestamps the signed answers.
	raw   map[string]answer
	clock func() time.Time
}

type answer struct {
	status int
	body   string
}

var authRE = regexp.MustCompile(`^WECHATPAY2-SHA256-RSA2048 mchid="([^"]+)",nonce_str="([^"]+)",signature="([^"]+)",timestamp="(\d+)",serial_no="([^"]+)"$`)

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m := authRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil || m[1] != testMchID || m[5] != testSerialNo {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, recNoAuth)
		return
	}
	msg := r.Method + "\n" + r.URL.RequestURI() + "\n" + m[4] + "\n" + m[2] + "\n" + string(body) + "\n"
	if err := verifySHA256RSA(&merchantKey.PublicKey, []byte(msg), m[3]); err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, recNoAuth)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI()+" "+string(body))
	a, ok := f.answers[r.Method+" "+r.URL.Path]
	unsigned := f.unsigned
	if ra, isRaw := f.raw[r.Method+" "+r.URL.Path]; isRaw {
		a, ok, unsigned = ra, true, true
	}
	now := time.Now()
	if f.clock != nil {
		now = f.clock()
	}
	f.mu.Unlock()
	if !ok {
		a = answer{http.StatusNotFound, recOrderNotExist}
	}
	if !unsigned {
		signHeaders(w.Header(), platformKey, sdkPubKeyID, now.Unix(), "fake-nonce", []byte(a.body))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func newFake(t *testing.T, answers map[string]answer, edit ...func(*ChannelConfig)) (*fake, *Channel, *counting) {
	keys(t)
	f := &fake{t: t, answers: answers}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	ch, cnt := newChannel(t, srv.URL, edit...)
	return f, ch, cnt
}

const queryPath = "GET /v3/pay/transactions/out-trade-no/"

func TestInitiateNative(t *testing.T) {
	f, ch, _ := newFake(t, map[string]answer{"POST " + pathNative: {200, recNative}})
	var exchanges []psp.Exchange
	ctx := psp.WithRecorder(context.Background(), "initiate", func(e psp.Exchange) { exchanges = append(exchanges, e) })
	s, err := ch.Initiate(ctx, psp.InitiateRequest{TransactionCode: "T1", OrderID: "A1", Amount: domain.MustMoney(1999, "CNY"),
		Description: "Phone case", NotifyURL: "https://gw.example/v1/callbacks/wechatpay"})
	if err != nil {
		t.Fatal(err)
	}
	if s.PayURL != "weixin://wxpay/bizpayurl?pr=p4lpSuKzz" || s.Token != s.PayURL {
		t.Fatalf("session %+v", s)
	}
	var sent map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(f.requests[0], " ", 3)[2]), &sent); err != nil {
		t.Fatal(err)
	}
	if sent["out_trade_no"] != "T1" || sent["mchid"] != testMchID || sent["appid"] != testAppID ||
		sent["notify_url"] != "https://gw.example/v1/callbacks/wechatpay" ||
		sent["amount"].(map[string]any)["total"] != float64(1999) || sent["amount"].(map[string]any)["currency"] != "CNY" {
		t.Fatalf("request body %v", sent)
	}
	// Evidence: the request is recorded, and neither key nor
	// Authorization is in it.
	if len(exchanges) != 1 || exchanges[0].StatusCode != 200 {
		t.Fatalf("exchanges %+v", exchanges)
	}
	pk := base64.StdEncoding.EncodeToString(merchantKey.D.Bytes())[:40]
	for _, s := range []string{exchanges[0].URL, exchanges[0].RequestBody, exchanges[0].ResponseBody} {
		if strings.Contains(s, "WECHATPAY2") || strings.Contains(s, pk) || strings.Contains(s, testAPIv3Key) {
			t.Fatalf("evidence holds a secret: %s", s)
		}
	}

	// Only CNY; never a request for another currency.
	if _, err := ch.Initiate(ctx, psp.InitiateRequest{TransactionCode: "T2", Amount: domain.MustMoney(1999, "USD")}); !errors.Is(err, psp.ErrDeclined) {
		t.Fatalf("USD: %v", err)
	}
}

func TestInitiateH5(t *testing.T) {
	keys(t)
	f := &fake{t: t, answers: map[string]answer{"POST " + pathH5: {200, `{"h5_url":"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx2916263004719461949c84457c735b0000&package=2150917749"}`}}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	ch, _ := newChannel(t, srv.URL, func(c *ChannelConfig) { c.Mode = ModeH5 })
	req := psp.InitiateRequest{TransactionCode: "T1", Amount: domain.MustMoney(1, "CNY"), ReturnURL: "https://gw.example/v1/return/wechatpay?x=1"}
	if _, err := ch.Initiate(context.Background(), req); !errors.Is(err, psp.ErrDeclined) {
		t.Fatalf("H5 without buyer IP: %v", err)
	}
	req.BuyerIP = "203.0.113.7"
	s, err := ch.Initiate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(s.PayURL, "&redirect_url=https%3A%2F%2Fgw.example%2Fv1%2Freturn%2Fwechatpay%3Fx%3D1") {
		t.Fatalf("PayURL %s", s.PayURL)
	}
	if !strings.Contains(f.requests[0], `"payer_client_ip":"203.0.113.7"`) {
		t.Fatalf("request %s", f.requests[0])
	}
}

func TestQuery(t *testing.T) {
	f, ch, _ := newFake(t, map[string]answer{
		queryPath + "44_2126281063_5504": {200, recQueryPaid},
		queryPath + "T-NOTPAY":           {200, recQueryNotPaid},
		queryPath + "T-CLOSED":           {200, recQueryClosed},
		queryPath + "T-OTHER":            {200, recQueryPaid}, // answers about another order
	})
	ctx := context.Background()
	n, err := ch.Query(ctx, "44_2126281063_5504")
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Notification{TransactionCode: "44_2126281063_5504", PSPReference: "4200000891202103228088184743",
		Status: domain.PSPSucceeded, Amount: domain.MustMoney(1, "CNY"), OccurredAt: time.Date(2021, 3, 22, 2, 29, 5, 0, time.UTC)}
	if !psptest.SameNotification(n, want) {
		t.Fatalf("Query = %+v, want %+v", n, want)
	}
	if f.requests[0] != "GET /v3/pay/transactions/out-trade-no/44_2126281063_5504?mchid=1900006XXX " {
		t.Fatalf("request %q", f.requests[0])
	}
	for code, st := range map[string]domain.PSPStatus{"T-NOTPAY": domain.PSPPending, "T-CLOSED": domain.PSPFailed, "T-NONE": domain.PSPUnknown} {
		n, err := ch.Query(ctx, code)
		if err != nil || n.Status != st || n.TransactionCode != code {
			t.Errorf("Query %s = %+v, %v; want %s", code, n, err, st)
		}
	}
	if _, err := ch.Query(ctx, "T-OTHER"); !errors.Is(err, psp.ErrMalformed) {
		t.Errorf("answer about another order: %v", err)
	}
}

func TestErrorClasses(t *testing.T) {
	_, ch, _ := newFake(t, map[string]answer{
		queryPath + "T500": {500, recSystemError},
		queryPath + "T429": {429, recFrequencyLimited},
		queryPath + "T400": {400, recParamError},
		queryPath + "T404": {404, `404 page not found`}, // a wrong route, not "no such order"
	})
	ctx := context.Background()
	for code, check := range map[string]func(error) bool{
		"T500": psp.IsTemporary, "T429": psp.IsTemporary,
		"T400": func(err error) bool { return errors.Is(err, psp.ErrDeclined) && !psp.IsTemporary(err) },
		"T404": func(err error) bool { return errors.Is(err, psp.ErrNotFound) },
	} {
		if _, err := ch.Query(ctx, code); !check(err) {
			t.Errorf("%s: %v", code, err)
		}
	}
	var ae *APIError
	if _, err := ch.Query(ctx, "T400"); !errors.As(err, &ae) || ae.Code != "PARAM_ERROR" {
		t.Errorf("APIError: %v", err)
	}
	// No server at all: temporary.
	down, _ := newChannel(t, "http://127.0.0.1:1", func(c *ChannelConfig) { c.Transport = http.DefaultTransport })
	if _, err := down.Query(ctx, "T1"); !psp.IsTemporary(err) {
		t.Errorf("connection refused: %v", err)
	}
}

func TestUnsignedAnswerIsRefused(t *testing.T) {
	f, ch, _ := newFake(t, map[string]answer{queryPath + "44_2126281063_5504": {200, recQueryPaid}})
	f.unsigned = true
	if _, err := ch.Query(context.Background(), "44_2126281063_5504"); !errors.Is(err, psp.ErrMalformed) {
		t.Fatalf("unsigned answer: %v", err)
	}
}

func TestRefund(t *testing.T) {
	f, ch, _ := newFake(t, map[string]answer{
		queryPath + "44_2126281063_5504": {200, recQueryPaid},
		queryPath + "T-NOTPAY":           {200, recQueryNotPaid},
		"POST " + pathRefunds:            {200, recRefund},
		"GET " + pathRefunds + "/R1":     {200, recRefundDone},
		"GET " + pathRefunds + "/R404":   {404, recRefundNotExist},
	})
	ctx := context.Background()
	r, err := ch.Refund(ctx, psp.RefundRequest{RefundRef: "R1", TransactionCode: "44_2126281063_5504", Amount: domain.MustMoney(1, "CNY"), Reason: "duplicate"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != psp.RefundPending || r.PSPReference != "50000000382019052709732678859" || !r.Amount.Equal(domain.MustMoney(1, "CNY")) {
		t.Fatalf("Refund = %+v", r)
	}
	last := f.requests[len(f.requests)-1]
	if !strings.Contains(last, `"out_refund_no":"R1"`) || !strings.Contains(last, `"amount":{"refund":1,"total":1,"currency":"CNY"}`) {
		t.Fatalf("refund request %s", last)
	}
	if r, err = ch.QueryRefund(ctx, "R1"); err != nil || r.Status != psp.RefundSucceeded {
		t.Fatalf("QueryRefund = %+v, %v", r, err)
	}
	if r, err = ch.QueryRefund(ctx, "R404"); err != nil || r.Status != psp.RefundUnknown {
		t.Fatalf("QueryRefund unknown = %+v, %v", r, err)
	}
	n := len(f.requests)
	if _, err := ch.Refund(ctx, psp.RefundRequest{RefundRef: "R2", TransactionCode: "T-NOTPAY", Amount: domain.MustMoney(1, "CNY")}); !errors.Is(err, psp.ErrDeclined) {
		t.Fatalf("refund of an unpaid order: %v", err)
	}
	if _, err := ch.Refund(ctx, psp.RefundRequest{RefundRef: "R3", TransactionCode: "T-NONE", Amount: domain.MustMoney(1, "CNY")}); !errors.Is(err, psp.ErrNotFound) {
		t.Fatalf("refund of an unknown order: %v", err)
	}
	if len(f.requests) != n+2 {
		t.Fatalf("refunds of unpaid orders reached the refund API: %v", f.requests[n:])
	}
	if !ch.Capabilities().Settlement {
		t.Fatal("no Settlement capability: the trade bill is read (bill_test.go)")
	}
}

// TestAmounts: amounts cross in the currency's minor unit, both ways.
func TestAmounts(t *testing.T) {
	ch, _ := newChannel(t, "")
	for _, c := range []struct {
		total int64
		cur   string
		want  string
	}{
		{1, "CNY", "0.01 CNY"}, {1999, "CNY", "19.99 CNY"}, {100, "", "1.00 CNY"}, {120000, "JPY", "120000 JPY"},
		{1999, "KWD", "1.999 KWD"}, {1<<53 + 1, "CNY", "90071992547409.93 CNY"},
	} {
		var v transactionJSON
		_ = json.Unmarshal([]byte(`{"mchid":"`+testMchID+`","out_trade_no":"T","trade_state":"NOTPAY","amount":{"total":`+
			jsonInt(c.total)+`,"currency":"`+c.cur+`"}}`), &v)
		n, err := ch.transaction(v)
		if err != nil || n.Amount.String() != c.want {
			t.Errorf("%d %q: %v, %v; want %s", c.total, c.cur, n.Amount, err, c.want)
		}
	}
	for _, bad := range []string{`1.5`, `-1`, `1e3`, `"1"`, `99999999999999999999`} {
		var v transactionJSON
		err := decodeJSON([]byte(`{"mchid":"`+testMchID+`","out_trade_no":"T","trade_state":"NOTPAY","amount":{"total":`+bad+`}}`), &v)
		if err == nil {
			if _, err = ch.transaction(v); err == nil {
				t.Errorf("total %s accepted", bad)
			}
		}
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }
