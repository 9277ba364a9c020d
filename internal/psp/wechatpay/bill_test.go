package wechatpay

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// billSampleALL is the ALL trade bill wechatpay-go's client test serves
// (github.com/gunsluo/wechatpay-go client_test.go, TestDownloadForClient),
// its 商户号 1601959334 replaced by the tests' merchant. Its columns are
// those of the ALL bill in WeChat's format description
// (pay.weixin.qq.com/docs/merchant/products/bill-download/format-trade.html).
var billSampleALL = strings.ReplaceAll("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\n"+
	"`2021-01-28 17:07:11,`wx81be3101902f7cb2,`1601959334,`0,`,`4200000925202101284997714292,`S20210128170702357723,`ofyak5qR_1wYsC99CsWA6R9MJazA,`NATIVE,`SUCCESS,`OTHERS,`CNY,`0.01,`0.00,`0,`0,`0.00,`0.00,`,`,`for testing,`cipher code,`0.00000,`1.00%,`0.01,`0.00,`\n"+
	"`2021-01-28 15:35:18,`wx81be3101902f7cb2,`1601959334,`0,`,`4200000910202101282955148400,`S20210128153505214586,`ofyak5qR_1wYsC99CsWA6R9MJazA,`NATIVE,`SUCCESS,`OTHERS,`CNY,`0.01,`0.00,`0,`0,`0.00,`0.00,`,`,`for testing,`cipher code,`0.00000,`1.00%,`0.01,`0.00,`\n"+
	"`2021-01-28 16:59:46,`wx81be3101902f7cb2,`1601959334,`0,`,`4200000926202101281412639609,`S20210128165824499930,`ofyak5qR_1wYsC99CsWA6R9MJazA,`NATIVE,`SUCCESS,`OTHERS,`CNY,`0.01,`0.00,`0,`0,`0.00,`0.00,`,`,`for testing,`cipher code,`0.00000,`1.00%,`0.01,`0.00,`\n"+
	"总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n"+
	"`3,`0.03,`0.00,`0.00,`0.00000,`0.03,`0.00\n", "`1601959334,", "`"+testMchID+",")

// The SUCCESS bill's detail and summary headers, from WeChat's format
// description (format-trade.html above).
const (
	successHeader  = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,商品名称,商户数据包,手续费,费率,订单金额,费率备注"
	successSummary = "总交易单数,应结订单总金额,手续费总金额,订单总金额"
)

// successRow is a SUCCESS bill detail line: every field after a backtick.
func successRow(at, txID, outTradeNo, state, settle, coupon, product, fee, total string) string {
	f := []string{at, "wx81be3101902f7cb2", testMchID, "0", "", txID, outTradeNo, "ofyak5qR_1wYsC99CsWA6R9MJazA", "NATIVE",
		state, "OTHERS", "CNY", settle, coupon, product, "", fee, "0.60%", total, ""}
	return "`" + strings.Join(f, ",`")
}

// billSuccess is a SUCCESS bill of 2021-01-28 shaped like the documented
// one: amounts a float would not keep, a coupon that makes the settled
// amount (应结订单金额) lower than the order's, a product name with a
// comma, CRLF line ends, and a revoked payment, which is not listed.
var billSuccess = strings.Join([]string{
	successHeader,
	successRow("2021-01-28 00:00:01", "4200000925202101284997714292", "T-CENT", "SUCCESS", "0.01", "0.00", "for testing", "0.00000", "0.01"),
	successRow("2021-01-28 09:15:00", "4200000910202101282955148400", "T-COUPON", "SUCCESS", "18.00", "2.00", "手机壳, 蓝色", "0.11000", "20.00"),
	successRow("2021-01-28 12:00:00", "4200000926202101281412639609", "T-BIG", "SUCCESS", "12345678.90", "0.00", "大单", "74074.07000", "12345678.90"),
	successRow("2021-01-28 23:59:59", "4200000891202103228088184743", "T-LAST", "SUCCESS", "1999.99", "0.00", "最后一单", "12.00000", "1999.99"),
	successRow("2021-01-28 13:00:00", "4200000891202103228088180000", "T-REVOKED", "REVOKED", "1.00", "0.00", "撤销", "0.00000", "1.00"),
	successSummary,
	"`5,`12347697.90,`74098.18000,`12347699.90",
	"",
}, "\r\n")

// billEmpty is the bill of a day whose only lines are the headers and a
// zero summary.
var billEmpty = successHeader + "\n" + successSummary + "\n`0,`0.00,`0.00000,`0.00\n"

const (
	pathBillDownload = "/v3/billdownload/file"
	billToken        = "6XIv5TUPto7pByrTQKhd6kwvyKLG2uY2wMMR8cNXqaA_Cv_isgaUtBzp4QtiozLO" // the API reference's example token
)

// billDay is 2021-01-28 (the sample's day); billNow is when the tests
// ask for it: 2021-01-30 12:00 Beijing, its bill long due.
var (
	billDay = time.Date(2021, 1, 28, 0, 0, 0, 0, beijing)
	billNow = time.Date(2021, 1, 30, 12, 0, 0, 0, beijing)
)

// billFake is the fake API at a fixed clock, answering the bill call
// with file's SHA1 (hash, when not "") and a download_url on its own host
// (url, when not ""), and the download with file, unsigned.
func billFake(t *testing.T, now time.Time, file, hash, url string) (*fake, *Channel, *counting) {
	f, ch, cnt := newFake(t, map[string]answer{}, func(c *ChannelConfig) { c.Now = func() time.Time { return now } })
	f.clock = func() time.Time { return now }
	if hash == "" {
		sum := sha1.Sum([]byte(file))
		hash = hex.EncodeToString(sum[:])
	}
	if url == "" {
		url = ch.base + pathBillDownload + "?token=" + billToken
	}
	b, _ := json.Marshal(map[string]string{"download_url": url, "hash_type": "SHA1", "hash_value": hash})
	f.answers["GET "+pathTradeBill] = answer{200, string(b)}
	f.raw = map[string]answer{"GET " + pathBillDownload: {200, file}}
	return f, ch, cnt
}

func TestSettledPaymentsSample(t *testing.T) {
	f, ch, cnt := billFake(t, billNow, billSampleALL, "", "")
	// 20:00 UTC on the 28th is the 29th in Beijing: the day's own
	// location gives the bill date.
	p, err := ch.SettledPayments(context.Background(), time.Date(2021, 1, 28, 20, 0, 0, 0, time.UTC), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []psp.SettlementRow{
		{TransactionCode: "S20210128170702357723", PSPReference: "4200000925202101284997714292", Amount: domain.MustMoney(1, "CNY"),
			Status: domain.PSPSucceeded, SettledAt: time.Date(2021, 1, 28, 9, 7, 11, 0, time.UTC)},
		{TransactionCode: "S20210128153505214586", PSPReference: "4200000910202101282955148400", Amount: domain.MustMoney(1, "CNY"),
			Status: domain.PSPSucceeded, SettledAt: time.Date(2021, 1, 28, 7, 35, 18, 0, time.UTC)},
		{TransactionCode: "S20210128165824499930", PSPReference: "4200000926202101281412639609", Amount: domain.MustMoney(1, "CNY"),
			Status: domain.PSPSucceeded, SettledAt: time.Date(2021, 1, 28, 8, 59, 46, 0, time.UTC)},
	}
	if p.NextPage != "" || len(p.Rows) != len(want) {
		t.Fatalf("page = %+v", p)
	}
	for i, r := range p.Rows {
		if r.TransactionCode != want[i].TransactionCode || r.PSPReference != want[i].PSPReference || !r.Amount.Equal(want[i].Amount) ||
			r.Status != want[i].Status || !r.SettledAt.Equal(want[i].SettledAt) {
			t.Errorf("row %d = %+v, want %+v", i, r, want[i])
		}
	}
	wantReq := []string{
		"GET " + pathTradeBill + "?bill_date=2021-01-28&bill_type=SUCCESS ",
		"GET " + pathBillDownload + "?token=" + billToken + " ",
	}
	if strings.Join(f.requests, "\n") != strings.Join(wantReq, "\n") {
		t.Errorf("requests (each signed, checked by the fake) =\n%s\nwant\n%s", strings.Join(f.requests, "\n"), strings.Join(wantReq, "\n"))
	}
	if cnt.n.Load() != 2 {
		t.Errorf("%d requests, want 2", cnt.n.Load())
	}
}

func TestSettledPaymentsExactAmounts(t *testing.T) {
	_, ch, _ := billFake(t, billNow, billSuccess, "", "")
	p, err := ch.SettledPayments(context.Background(), billDay, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		minor int64
		at    time.Time
	}{
		"T-CENT":   {1, time.Date(2021, 1, 27, 16, 0, 1, 0, time.UTC)},
		"T-COUPON": {2000, time.Date(2021, 1, 28, 1, 15, 0, 0, time.UTC)}, // the order's 20.00, not the settled 18.00
		"T-BIG":    {1234567890, time.Date(2021, 1, 28, 4, 0, 0, 0, time.UTC)},
		"T-LAST":   {199999, time.Date(2021, 1, 28, 15, 59, 59, 0, time.UTC)},
	}
	if len(p.Rows) != len(want) {
		t.Fatalf("rows = %+v, want %d (the revoked one left out)", p.Rows, len(want))
	}
	for _, r := range p.Rows {
		w, ok := want[r.TransactionCode]
		if !ok || r.Amount.Minor() != w.minor || r.Amount.Currency().Code() != "CNY" || !r.SettledAt.Equal(w.at) || r.Status != domain.PSPSucceeded {
			t.Errorf("row %+v, want %+v", r, w)
		}
	}
}

func TestSettledPaymentsHashMismatch(t *testing.T) {
	sum := sha1.Sum([]byte(billSuccess + "`tampered"))
	_, ch, cnt := billFake(t, billNow, billSuccess, hex.EncodeToString(sum[:]), "")
	_, err := ch.SettledPayments(context.Background(), billDay, "")
	if !errors.Is(err, psp.ErrMalformed) || psp.IsTemporary(err) {
		t.Fatalf("err = %v, want malformed", err)
	}
	if cnt.n.Load() != 2 {
		t.Errorf("%d requests, want 2", cnt.n.Load())
	}
}

func TestSettledPaymentsForeignDownloadHost(t *testing.T) {
	for _, u := range []string{
		"https://evil.example/v3/billdownload/file?token=x",
		"https://api.mch.weixin.qq.com@evil.example/v3/billdownload/file?token=x",
		"https://api.mch.weixin.qq.com.evil.example/v3/billdownload/file?token=x",
		"http://api.mch.weixin.qq.com/v3/billdownload/file?token=x", // not https
		"https://127.0.0.1:1/v3/billdownload/file?token=x",          // the fake's host, not its port
		"/v3/billdownload/file?token=x",
		"https:///v3/billdownload/file?token=x",
	} {
		_, ch, cnt := billFake(t, billNow, billSuccess, "", u)
		_, err := ch.SettledPayments(context.Background(), billDay, "")
		if !errors.Is(err, psp.ErrMalformed) {
			t.Errorf("%q: err = %v, want malformed", u, err)
		}
		if n := cnt.n.Load(); n != 1 {
			t.Errorf("%q: %d requests, want only the bill call", u, n)
		}
	}
}

func TestDownloadTarget(t *testing.T) {
	ch, _ := newChannel(t, "https://api2.mch.weixin.qq.com")
	for u, ok := range map[string]bool{
		" https://api.mch.weixin.qq.com/v3/billdownload/file?token=xxx": true, // the reference's example, with its space
		"https://API2.mch.weixin.qq.com/v3/billdownload/file?token=xxx": true,
		"https://api.mch.weixin.qq.com:8443/v3/billdownload/file":       false,
		"https://evil.example/v3/billdownload/file?token=xxx":           false,
		"http://api2.mch.weixin.qq.com/v3/billdownload/file":            false,
		"https://u:p@api.mch.weixin.qq.com/v3/billdownload/file":        false,
	} {
		target, pq, err := ch.downloadTarget(u)
		if (err == nil) != ok {
			t.Errorf("%q: err = %v, want ok %v", u, err, ok)
		}
		if ok && (pq != "/v3/billdownload/file?token=xxx" || !strings.HasSuffix(target, pq)) {
			t.Errorf("%q: target %q, signed %q", u, target, pq)
		}
	}
}

func TestSettledPaymentsEmptyDay(t *testing.T) {
	// A day without trades: NO_STATEMENT_EXIST once the bill is due.
	f, ch, cnt := billFake(t, billNow, "", "", "")
	f.answers["GET "+pathTradeBill] = answer{http.StatusBadRequest, `{"code":"NO_STATEMENT_EXIST","message":"请求的账单文件不存在"}`}
	p, err := ch.SettledPayments(context.Background(), billDay, "")
	if err != nil || p.Rows == nil || len(p.Rows) != 0 || p.NextPage != "" {
		t.Fatalf("page = %+v, err = %v; want an empty list", p, err)
	}
	if cnt.n.Load() != 1 {
		t.Errorf("%d requests, want 1", cnt.n.Load())
	}
	// A bill whose only lines are headers and a zero summary.
	_, ch, _ = billFake(t, billNow, billEmpty, "", "")
	if p, err = ch.SettledPayments(context.Background(), billDay, ""); err != nil || len(p.Rows) != 0 {
		t.Fatalf("page = %+v, err = %v; want an empty list", p, err)
	}
}

func TestSettledPaymentsNotReady(t *testing.T) {
	noStatement := answer{http.StatusBadRequest, `{"code":"NO_STATEMENT_EXIST","message":"请求的账单文件不存在"}`}
	creating := answer{http.StatusBadRequest, `{"code":"STATEMENT_CREATING","message":"账单生成中"}`}
	for _, c := range []struct {
		name string
		now  time.Time
		a    answer
	}{
		{"no bill before 10:00 the next day", time.Date(2021, 1, 29, 9, 30, 0, 0, beijing), noStatement},
		{"being made", billNow, creating},
		{"server error", billNow, answer{500, recSystemError}},
		{"frequency limited", billNow, answer{429, recFrequencyLimited}},
	} {
		f, ch, _ := billFake(t, c.now, "", "", "")
		f.answers["GET "+pathTradeBill] = c.a
		_, err := ch.SettledPayments(context.Background(), billDay, "")
		if !psp.IsTemporary(err) || errors.Is(err, psp.ErrDeclined) {
			t.Errorf("%s: err = %v, want temporary", c.name, err)
		}
	}
	// A day that has not ended has no bill: nothing is asked.
	_, ch, cnt := billFake(t, time.Date(2021, 1, 28, 18, 0, 0, 0, beijing), billSuccess, "", "")
	p, err := ch.SettledPayments(context.Background(), billDay, "")
	if err != nil || len(p.Rows) != 0 || cnt.n.Load() != 0 {
		t.Fatalf("page = %+v, err = %v, %d requests; want an empty list and no request", p, err, cnt.n.Load())
	}
}

func TestSettledPaymentsRefused(t *testing.T) {
	other := strings.ReplaceAll(billSampleALL, "`"+testMchID+",", "`1601959334,")
	truncated := billSampleALL[:strings.Index(billSampleALL, "总交易单数")]
	miscounted := strings.Replace(billSampleALL, "`3,`0.03", "`4,`0.04", 1)
	badAmount := strings.Replace(billSampleALL, "`0.00000,`1.00%,`0.01,", "`0.00000,`1.00%,`0.001,", 1)
	for name, file := range map[string]string{
		"another merchant's bill": other,
		"truncated":               truncated,
		"summary miscounts":       miscounted,
		"three decimals":          badAmount,
		"not a bill":              "<html>hello</html>",
	} {
		_, ch, _ := billFake(t, billNow, file, "", "")
		if _, err := ch.SettledPayments(context.Background(), billDay, ""); !errors.Is(err, psp.ErrMalformed) {
			t.Errorf("%s: err = %v, want malformed", name, err)
		}
	}
	// An unsigned bill answer is not trusted, nor its hash.
	f, ch, cnt := billFake(t, billNow, billSuccess, "", "")
	f.unsigned = true
	if _, err := ch.SettledPayments(context.Background(), billDay, ""); !errors.Is(err, psp.ErrMalformed) || cnt.n.Load() != 1 {
		t.Errorf("unsigned: err = %v, %d requests; want malformed after one", err, cnt.n.Load())
	}
	if _, err := ch.SettledPayments(context.Background(), billDay, "2"); !errors.Is(err, psp.ErrMalformed) {
		t.Errorf("page 2: err = %v, want malformed", err)
	}
	// An old bill asked for (over three months) is refused by WeChat.
	f, ch, _ = billFake(t, billNow, "", "", "")
	f.answers["GET "+pathTradeBill] = answer{http.StatusBadRequest, recParamError}
	if _, err := ch.SettledPayments(context.Background(), billDay, ""); !errors.Is(err, psp.ErrDeclined) || psp.IsTemporary(err) {
		t.Errorf("param error: err = %v, want declined", err)
	}
}
