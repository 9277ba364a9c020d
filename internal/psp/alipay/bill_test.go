package alipay

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// The trade bill, as the tests serve it.
//
// The request, the answer's bill_download_url and the error BILL_NOT_EXIST
// are those of the API reference of
// alipay.data.dataservice.bill.downloadurl.query
// (docs.open.alipay.com/api_15/alipay.data.dataservice.bill.downloadurl.query;
// its English edition open.alitrip.com/docs/doc.htm?articleId=104674);
// the gateway's sub_code for it is isp.bill_not_exist, which the Go SDK
// smartwalle/alipay tests in IsBillNotExist.
//
// The ZIP holds a detail file (业务明细) and a summary file (业务汇总),
// GBK, with names in GBK. The detail file's shape — the "#" title,
// account and date lines, the list's start and end rules, the 25-column
// header, the tab that ends text fields, negative refund rows, the
// totals and export time — follows the sample bills that public bill
// readers test with (the same 25-column header in several of them); the
// values are ours. That a bill is made the next morning is from the
// reference as the official SDK docs carry it
// (alipay/alipay-sdk-java-all, v3/docs/AlipayDataDataserviceBillDownloadurlApi.md).
const (
	billHeader = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户," +
		"订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称," +
		"商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
	recBillNotExist = `{"code":"40004","msg":"Business Failed","sub_code":"isp.bill_not_exist","sub_msg":"账单不存在"}`
	recBillBadDate  = `{"code":"40004","msg":"Business Failed","sub_code":"isv.invalid_arguments","sub_msg":"参数不合法"}`
	billPath        = "/downloadBillFile.resource"
)

// billRow is one detail line: 25 fields, text ones ending in a tab.
func billRow(tradeNo, outTradeNo, kind, created, finished, amount, receipt, refundNo string) string {
	return strings.Join([]string{tradeNo + "\t", outTradeNo + "\t", kind + "\t", "手机壳 Phone case", created, finished,
		"\t", "\t", "\t", "\t", "*津水(602***@qq.com)\t", amount, receipt, "0.00", "0.00", "0.00", "0.00", "0.00", "",
		"0.00\t", "0.00", refundNo + "\t", "0.00", "0.00", ""}, ",")
}

func billDetail() string {
	return strings.Join([]string{
		"#支付宝业务明细查询",
		"#账号：[20880211096256330156]",
		"#起始日期：[2026年11月24日 00:00:00]   终止日期：[2026年11月25日 00:00:00]",
		"#-----------------------------------------业务明细列表----------------------------------------",
		billHeader,
		billRow("2026112422001458860515315453", "T261124A", "交易", "2026-11-24 10:55:16", "2026-11-24 10:55:23", "0.01", "0.01", ""),
		billRow("2026112422001458860515315453", "T261124A", "退款", "2026-11-24 10:55:16", "2026-11-24 10:56:48", "-0.01", "-0.01", "R261124A"),
		billRow("2026112422001458860513822558", "T261124B", "交易", "2026-11-24 11:07:03", "2026-11-24 11:07:09", "1234567.89", "1234567.00", ""),
		billRow("2026112422001465870515233238", "", "交易", "2026-11-24 16:58:56", "2026-11-24 16:58:58", "5.00", "5.00", ""),
		billRow("2026112422001458860517860493", "T261124C", "交易", "2026-11-24 23:59:50", "2026-11-24 23:59:59", "20.00", "20.00", ""),
		"#-----------------------------------------业务明细列表结束------------------------------------",
		"#交易合计：4笔，商家实收共1234592.01元，商家优惠共0.00元",
		"#退款合计：1笔，商家实收退款共-0.01元，商家优惠退款共0.00元",
		"#导出时间：[2026年11月25日 05:46:49]",
	}, "\r\n") + "\r\n"
}

func billSummary() string {
	return strings.Join([]string{
		"#支付宝业务汇总查询",
		"#账号：[20880211096256330156]",
		"#起始日期：[2026年11月24日 00:00:00]   终止日期：[2026年11月25日 00:00:00]",
		"#-----------------------------------------业务汇总列表----------------------------------------",
		"门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）",
		",,4,1,1234592.89,1234592.01,0.00,0.00,0.00,0.00,0.00,1234592.01",
		"合计,,4,1,1234592.89,1234592.01,0.00,0.00,0.00,0.00,0.00,1234592.01",
		"#-----------------------------------------业务汇总列表结束------------------------------------",
		"#导出时间：[2026年11月25日 05:46:49]",
	}, "\r\n") + "\r\n"
}

func gbk(t testing.TB, s string) []byte {
	t.Helper()
	b, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// billZip zips files (name → content), GBK names without the UTF-8 flag.
func billZip(t testing.TB, files ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, f := range files {
		fw, err := w.CreateHeader(&zip.FileHeader{Name: string(gbk(t, f[0])), Method: zip.Deflate, NonUTF8: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(gbk(t, f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func standardBill(t testing.TB) []byte {
	return billZip(t, [2]string{"20880211096256330156_20261124_业务明细.csv", billDetail()},
		[2]string{"20880211096256330156_20261124_业务明细(汇总).csv", billSummary()})
}

// billServer is the gateway and the bill file host in one server (a
// bill on the gateway's host is followed).
type billServer struct {
	g      *gateway
	srv    *httptest.Server
	bill   atomic.Pointer[[]byte]
	status atomic.Int64
	hits   atomic.Int64
}

func newBillServer(t *testing.T) *billServer {
	keys()
	s := &billServer{g: &gateway{answers: map[string]string{}}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != billPath {
			s.g.ServeHTTP(w, r)
			return
		}
		s.hits.Add(1)
		if st := s.status.Load(); st != 0 {
			w.WriteHeader(int(st))
			return
		}
		w.Header().Set("Content-Type", "application/oct-stream")
		_, _ = w.Write(*s.bill.Load())
	}))
	t.Cleanup(s.srv.Close)
	s.answer(s.srv.URL + billPath + "?bizType=trade&userId=20880211096256330156&fileType=csv.zip&bizDates=20261124&downloadFileName=20880211096256330156_20261124.csv.zip&fileId=%2Ftrade%2F20880211096256330156%2F20261124.csv.zip")
	return s
}

func (s *billServer) answer(billURL string) {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	s.g.answers[methodBillURL+" "] = `{"code":"10000","msg":"Success","bill_download_url":"` + billURL + `"}`
}

func (s *billServer) rawAnswer(obj string) {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	s.g.answers[methodBillURL+" "] = obj
}

// shanghai is the day's location of the tests: the bill is of that date.
var shanghai = time.FixedZone("Asia/Shanghai", 8*3600)

func TestSettledPayments(t *testing.T) {
	s := newBillServer(t)
	b := standardBill(t)
	s.bill.Store(&b)
	ch, cnt := newChannel(t, s.srv.URL+"/gateway.do")
	if !ch.Capabilities().Settlement {
		t.Fatal("Settlement capability off")
	}
	var ex []psp.Exchange
	ctx := psp.WithRecorder(context.Background(), "settlements", func(e psp.Exchange) { ex = append(ex, e) })
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, shanghai)
	p, err := ch.SettledPayments(ctx, day, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []psp.SettlementRow{
		{TransactionCode: "T261124A", PSPReference: "2026112422001458860515315453", Amount: domain.MustMoney(1, "CNY"),
			Status: domain.PSPSucceeded, SettledAt: time.Date(2026, 11, 24, 2, 55, 23, 0, time.UTC)},
		{TransactionCode: "T261124B", PSPReference: "2026112422001458860513822558", Amount: domain.MustMoney(123456789, "CNY"),
			Status: domain.PSPSucceeded, SettledAt: time.Date(2026, 11, 24, 3, 7, 9, 0, time.UTC)},
		{TransactionCode: "T261124C", PSPReference: "2026112422001458860517860493", Amount: domain.MustMoney(2000, "CNY"),
			Status: domain.PSPSucceeded, SettledAt: time.Date(2026, 11, 24, 15, 59, 59, 0, time.UTC)},
	}
	if p.NextPage != "" || len(p.Rows) != len(want) {
		t.Fatalf("page %+v", p)
	}
	for i, r := range p.Rows {
		w := want[i]
		if r.TransactionCode != w.TransactionCode || r.PSPReference != w.PSPReference || !r.Amount.Equal(w.Amount) ||
			r.Amount.Minor() != w.Amount.Minor() || r.Status != w.Status || !r.SettledAt.Equal(w.SettledAt) {
			t.Errorf("row %d = %+v, want %+v", i, r, w)
		}
	}
	if got := s.g.requests[0]; got.Get("method") != methodBillURL || got.Get("biz_content") != `{"bill_type":"trade","bill_date":"2026-11-24"}` {
		t.Fatalf("bill request %v", got)
	}
	// Both exchanges went through the recording client.
	if cnt.n.Load() != 2 || s.hits.Load() != 1 || len(ex) != 2 || ex[1].Method != http.MethodGet || !strings.Contains(ex[1].URL, billPath) {
		t.Fatalf("requests %d, bill hits %d, evidence %+v", cnt.n.Load(), s.hits.Load(), ex)
	}
	// The bill date is the day's own calendar date, not its UTC one.
	late := time.Date(2026, 11, 24, 23, 30, 0, 0, time.FixedZone("UTC-5", -5*3600)) // 2026-11-25 in UTC
	if _, err := ch.SettledPayments(context.Background(), late, ""); err != nil {
		t.Fatal(err)
	}
	if got := s.g.requests[1].Get("biz_content"); !strings.Contains(got, `"bill_date":"2026-11-24"`) {
		t.Fatalf("bill date of a day west of UTC: %s", got)
	}
	if _, err := ch.SettledPayments(context.Background(), day, "2"); !errors.Is(err, psp.ErrMalformed) {
		t.Fatalf("a second page: %v", err)
	}
}

func TestSettledPaymentsUTF8Bill(t *testing.T) {
	// A bill already in UTF-8 (as sandbox tools write them) reads alike.
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	fw, _ := w.Create("detail.csv")
	_, _ = fw.Write([]byte("\uFEFF" + billDetail()))
	_ = w.Close()
	rows, err := parseBill(buf.Bytes())
	if err != nil || len(rows) != 3 || rows[1].Amount.Minor() != 123456789 {
		t.Fatalf("UTF-8 bill: %+v, %v", rows, err)
	}
}

func TestSettledPaymentsErrors(t *testing.T) {
	s := newBillServer(t)
	b := standardBill(t)
	s.bill.Store(&b)
	ch, _ := newChannel(t, s.srv.URL+"/gateway.do")
	ctx := context.Background()
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, shanghai)

	s.rawAnswer(recBillNotExist)
	if _, err := ch.SettledPayments(ctx, day, ""); !psp.IsTemporary(err) {
		t.Errorf("bill not generated yet: %v, want temporary", err)
	}
	s.rawAnswer(recBillBadDate)
	if _, err := ch.SettledPayments(ctx, day, ""); !errors.Is(err, psp.ErrDeclined) {
		t.Errorf("invalid bill date: %v, want declined", err)
	}
	s.rawAnswer(recSystemError)
	if _, err := ch.SettledPayments(ctx, day, ""); !psp.IsTemporary(err) {
		t.Errorf("system error: %v, want temporary", err)
	}
	s.rawAnswer(`{"code":"10000","msg":"Success"}`)
	if _, err := ch.SettledPayments(ctx, day, ""); !errors.Is(err, psp.ErrMalformed) {
		t.Errorf("no bill_download_url: %v", err)
	}
	s.answer(s.srv.URL + billPath)

	for name, c := range map[string]struct {
		bill   []byte
		status int
		check  func(error) bool
	}{
		"not a zip":            {bill: []byte("<html>链接已失效</html>"), check: func(err error) bool { return errors.Is(err, psp.ErrMalformed) }},
		"cut zip":              {bill: b[:len(b)/2], check: func(err error) bool { return errors.Is(err, psp.ErrMalformed) }},
		"summary only":         {bill: billZip(t, [2]string{"s.csv", billSummary()}), check: func(err error) bool { return errors.Is(err, psp.ErrMalformed) }},
		"bad amount":           {bill: billZip(t, [2]string{"d.csv", strings.Replace(billDetail(), "1234567.89", "1,234,567.89", 1)}), check: func(err error) bool { return errors.Is(err, psp.ErrMalformed) }},
		"three decimals":       {bill: billZip(t, [2]string{"d.csv", strings.Replace(billDetail(), ",20.00,", ",20.001,", 1)}), check: func(err error) bool { return errors.Is(err, psp.ErrMalformed) }},
		"bad time":             {bill: billZip(t, [2]string{"d.csv", strings.Replace(billDetail(), "2026-11-24 23:59:59", "24/11/2026", 1)}), check: func(err error) bool { return errors.Is(err, psp.ErrMalformed) }},
		"short row":            {bill: billZip(t, [2]string{"d.csv", strings.Replace(billDetail(), ",分润（元）,备注", ",分润（元）,备注,额外", 1)}), check: func(err error) bool { return errors.Is(err, psp.ErrMalformed) }},
		"header missing a col": {bill: billZip(t, [2]string{"d.csv", strings.Replace(billDetail(), "完成时间", "时间", 1)}), check: func(err error) bool { return errors.Is(err, psp.ErrMalformed) }},
		"HTTP 503":             {status: 503, check: psp.IsTemporary},
		"HTTP 404":             {status: 404, check: func(err error) bool { return errors.Is(err, psp.ErrDeclined) }},
		"HTTP 302":             {status: 302, check: func(err error) bool { return errors.Is(err, psp.ErrDeclined) }},
	} {
		bill := c.bill
		s.bill.Store(&bill)
		s.status.Store(int64(c.status))
		if _, err := ch.SettledPayments(ctx, day, ""); !c.check(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSettledPaymentsForeignHost(t *testing.T) {
	s := newBillServer(t)
	b := standardBill(t)
	s.bill.Store(&b)
	var foreignHits atomic.Int64
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		foreignHits.Add(1)
		_, _ = w.Write(b)
	}))
	t.Cleanup(foreign.Close)
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, shanghai)

	// Same IP, another port: another host.
	for _, u := range []string{foreign.URL + billPath, "https://alipay.com.evil.example" + billPath, "https://evilalipay.com" + billPath,
		"https://x@dwbillcenter.alipay.com" + billPath, "file:///etc/passwd", "//dwbillcenter.alipay.com" + billPath} {
		ch, cnt := newChannel(t, s.srv.URL+"/gateway.do")
		s.answer(u)
		if _, err := ch.SettledPayments(context.Background(), day, ""); !errors.Is(err, psp.ErrMalformed) {
			t.Errorf("%s: %v, want malformed", u, err)
		}
		if cnt.n.Load() != 1 || foreignHits.Load() != 0 || s.hits.Load() != 0 {
			t.Fatalf("%s: %d requests, %d to the foreign host", u, cnt.n.Load(), foreignHits.Load())
		}
	}

	// Named in BillHosts, it is followed.
	fu, _ := url.Parse(foreign.URL)
	ch, _ := newChannel(t, s.srv.URL+"/gateway.do", func(c *ChannelConfig) { c.BillHosts = []string{fu.Host} })
	s.answer(foreign.URL + billPath)
	if p, err := ch.SettledPayments(context.Background(), day, ""); err != nil || len(p.Rows) != 3 || foreignHits.Load() != 1 {
		t.Fatalf("BillHosts: %+v, %v, %d hits", p, err, foreignHits.Load())
	}
}

func TestBillURL(t *testing.T) {
	ch, _ := newChannel(t, "", func(c *ChannelConfig) { c.BillHosts = []string{"bills.example:8443"} })
	for u, ok := range map[string]bool{
		"http://dwbillcenter.alipay.com/downloadBillFile.resource?bizType=X&userId=X&fileType=X&bizDates=X&downloadFileName=X&fileId=X": true,
		"https://dwbillcenter.alipay.com/downloadBillFile.resource":                                                                     true,
		"https://DWBILLCENTER.ALIPAY.COM/x":                                                                                             true,
		"https://alipay.com/x":                                                                                                          true,
		"https://openapi-sandbox.dl.alipaydev.com/x":                                                                                    true,
		"http://127.0.0.1:1/bill":                                                                                                       true, // the gateway's host
		"https://bills.example:8443/x":                                                                                                  true,
		"https://bills.example/x":                                                                                                       false,
		"http://127.0.0.1:2/bill":                                                                                                       false,
		"https://alipay.com.evil.example/x":                                                                                             false,
		"https://evilalipay.com/x":                                                                                                      false,
		"https://dwbillcenter.alipay.com.:443/x":                                                                                        false,
		"ftp://dwbillcenter.alipay.com/x":                                                                                               false,
		"https://user:pw@dwbillcenter.alipay.com/x":                                                                                     false,
		"/downloadBillFile.resource":                                                                                                    false,
		"":                                                                                                                              false,
		"https://dwbillcenter.alipay.com%2F@evil.example/x":                                                                             false,
		"https://evil.example/x?u=https://dwbillcenter.alipay.com/":                                                                     false,
		"https://evil.example#dwbillcenter.alipay.com":                                                                                  false,
		"https://evil.example\\@dwbillcenter.alipay.com/x":                                                                              false,
		"https://[::1]/x":                                                                                                               false,
		"https://dwbillcenter.alipay.com.evil.example/downloadBill":                                                                     false,
		"https://xn--alipay-9ya.com/x":                                                                                                  false,
		"https://sub.alipaydev.com.evil.example/x":                                                                                      false,
		"http://dwbillcenter.alipay.com:8080/downloadBillFile.resource":                                                                 true,
	} {
		if _, err := ch.billURL(u); (err == nil) != ok {
			t.Errorf("%q: %v, want allowed %v", u, err, ok)
		}
	}
}
