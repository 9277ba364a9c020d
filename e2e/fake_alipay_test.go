package e2e

import (
	"archive/zip"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// alipayFake is Alipay's open platform as the Alipay adapter uses it
// (opendocs.alipay.com): one gateway taking form-encoded requests signed
// RSA2 (SHA256withRSA over the sorted "k=v&…" of every non-empty
// parameter but sign) with the app's key, answering
// {"<method>_response": {...}, "sign": "…"} signed over the response
// object's bytes with Alipay's key — alipay.trade.query,
// alipay.trade.refund, alipay.trade.fastpay.refund.query and
// alipay.data.dataservice.bill.downloadurl.query, whose bill is a ZIP of
// CSV files — and the trade_status_sync notification, a form signed with
// Alipay's key over every parameter but sign and sign_type. This fake
// publishes a day's bill at once (Alipay does the next day).
type alipayFake struct {
	srv      *httptest.Server
	appID    string
	appKey   *rsa.PrivateKey // the merchant app's: in the channel's settings
	alipay   *rsa.PrivateKey // Alipay's: its public half in the settings
	mu       sync.Mutex
	n        int
	trades   map[string]*alipayTrade // by out_trade_no
	refunds  []alipayRefund
	beijing  *time.Location
	payments []string // out_trade_no in payment order
}

type alipayTrade struct {
	OutTradeNo, TradeNo, Amount, Subject, Status string
	PaidAt                                       time.Time
}

type alipayRefund struct {
	OutTradeNo, OutRequestNo, Amount string
}

var (
	alipayKeysOnce          sync.Once
	alipayAppKey, alipayKey *rsa.PrivateKey
)

func newAlipayFake(t *testing.T) pspFake {
	alipayKeysOnce.Do(func() {
		var err error
		if alipayAppKey, err = rsa.GenerateKey(rand.Reader, 2048); err == nil {
			alipayKey, err = rsa.GenerateKey(rand.Reader, 2048)
		}
		if err != nil {
			panic(err)
		}
	})
	f := &alipayFake{appID: "2021000122600000", appKey: alipayAppKey, alipay: alipayKey, trades: map[string]*alipayTrade{},
		beijing: time.FixedZone("CST", 8*3600)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *alipayFake) channel(name string) string {
	priv, _ := x509.MarshalPKCS8PrivateKey(f.appKey)
	pub, _ := x509.MarshalPKIXPublicKey(&f.alipay.PublicKey)
	return fmt.Sprintf(`{"name":%q,"kind":"alipay","enabled":true,"weight":1,"settings":{"gateway_url":%q,"app_id":%q,"app_private_key":%q,"alipay_public_keys":[{"pem":%q}]}}`,
		name, f.srv.URL+"/gateway.do", f.appID, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
}

// alipayContent is the sorted "k=v&…" of the non-empty parameters, but
// the names in skip.
func alipayContent(p url.Values, skip ...string) string {
	var keys []string
	for k, v := range p {
		if len(v) == 1 && v[0] != "" && !slices.Contains(skip, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+p.Get(k))
	}
	return strings.Join(parts, "&")
}

func rsa2(key *rsa.PrivateKey, content []byte) string {
	h := sha256.Sum256(content)
	sig, _ := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	return base64.StdEncoding.EncodeToString(sig)
}

func (f *alipayFake) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/bill.zip" {
		f.bill(w, r)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/gateway.do" || r.ParseForm() != nil {
		http.NotFound(w, r)
		return
	}
	p := r.PostForm
	method := p.Get("method")
	respond := func(obj map[string]any) {
		raw, _ := json.Marshal(obj)
		key := strings.ReplaceAll(method, ".", "_") + "_response"
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		fmt.Fprintf(w, `{%q:%s,"sign":%q}`, key, raw, rsa2(f.alipay, raw))
	}
	sig, err := base64.StdEncoding.DecodeString(p.Get("sign"))
	h := sha256.Sum256([]byte(alipayContent(p, "sign")))
	if err != nil || p.Get("app_id") != f.appID || p.Get("sign_type") != "RSA2" ||
		rsa.VerifyPKCS1v15(&f.appKey.PublicKey, crypto.SHA256, h[:], sig) != nil {
		respond(map[string]any{"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature", "sub_msg": "验签出错"})
		return
	}
	var biz map[string]string
	if err := json.Unmarshal([]byte(p.Get("biz_content")), &biz); err != nil {
		respond(map[string]any{"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-parameter", "sub_msg": "biz_content"})
		return
	}
	notExist := map[string]any{"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch method {
	case "alipay.trade.query":
		tr, ok := f.trades[biz["out_trade_no"]]
		if !ok {
			respond(notExist)
			return
		}
		respond(map[string]any{"code": "10000", "msg": "Success", "trade_no": tr.TradeNo, "out_trade_no": tr.OutTradeNo,
			"trade_status": tr.Status, "total_amount": tr.Amount, "buyer_logon_id": "159****5620",
			"send_pay_date": tr.PaidAt.In(f.beijing).Format(time.DateTime)})
	case "alipay.trade.refund":
		tr, ok := f.trades[biz["out_trade_no"]]
		if !ok {
			respond(notExist)
			return
		}
		change := "N"
		if !slices.ContainsFunc(f.refunds, func(re alipayRefund) bool { return re.OutRequestNo == biz["out_request_no"] }) {
			if cents(biz["refund_amount"])+f.refundedLocked(tr.OutTradeNo) > cents(tr.Amount) {
				respond(map[string]any{"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "sub_msg": "退款金额超限"})
				return
			}
			f.refunds = append(f.refunds, alipayRefund{OutTradeNo: tr.OutTradeNo, OutRequestNo: biz["out_request_no"], Amount: biz["refund_amount"]})
			change = "Y"
		}
		respond(map[string]any{"code": "10000", "msg": "Success", "trade_no": tr.TradeNo, "out_trade_no": tr.OutTradeNo,
			"fund_change": change, "refund_fee": biz["refund_amount"], "buyer_logon_id": "159****5620"})
	case "alipay.trade.fastpay.refund.query":
		i := slices.IndexFunc(f.refunds, func(re alipayRefund) bool {
			return re.OutTradeNo == biz["out_trade_no"] && re.OutRequestNo == biz["out_request_no"]
		})
		if i < 0 {
			respond(map[string]any{"code": "10000", "msg": "Success"})
			return
		}
		re := f.refunds[i]
		respond(map[string]any{"code": "10000", "msg": "Success", "trade_no": f.trades[re.OutTradeNo].TradeNo, "out_trade_no": re.OutTradeNo,
			"out_request_no": re.OutRequestNo, "refund_amount": re.Amount, "refund_status": "REFUND_SUCCESS"})
	case "alipay.data.dataservice.bill.downloadurl.query":
		respond(map[string]any{"code": "10000", "msg": "Success",
			"bill_download_url": f.srv.URL + "/bill.zip?bill_date=" + url.QueryEscape(biz["bill_date"])})
	default:
		respond(map[string]any{"code": "40004", "msg": "Business Failed", "sub_code": "isv.invalid-method", "sub_msg": method})
	}
}

// bill is a day's trade bill: a ZIP of a detail file (业务明细) and a
// summary (业务汇总), CSV with Alipay's "#" lines around the rows.
func (f *alipayFake) bill(w http.ResponseWriter, r *http.Request) {
	day := r.URL.Query().Get("bill_date")
	f.mu.Lock()
	var b strings.Builder
	b.WriteString("#支付宝业务明细查询\n#账号：[20880000000000000156]\n#起始日期：[" + day + " 00:00:00]   终止日期：[" + day + " 23:59:59]\n")
	b.WriteString("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注\n")
	for _, code := range f.payments {
		tr := f.trades[code]
		at := tr.PaidAt.In(f.beijing)
		if at.Format(time.DateOnly) != day {
			continue
		}
		fmt.Fprintf(&b, "%s\t,%s\t,交易,%s,%s,%s,,,,,159****5620,%s,%s,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,0.00,0.00,\n",
			tr.TradeNo, tr.OutTradeNo, tr.Subject, at.Add(-time.Minute).Format(time.DateTime), at.Format(time.DateTime), tr.Amount, tr.Amount)
	}
	f.mu.Unlock()
	b.WriteString("#-----------------------------------------业务明细列表结束------------------------------------\n#导出时间：[" + time.Now().In(f.beijing).Format(time.DateTime) + "]\n")
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	detail, _ := zw.Create("20880000000000000156_" + strings.ReplaceAll(day, "-", "") + "_业务明细.csv")
	detail.Write([]byte(b.String()))
	summary, _ := zw.Create("20880000000000000156_" + strings.ReplaceAll(day, "-", "") + "_业务明细(汇总).csv")
	summary.Write([]byte("#支付宝业务汇总查询\n业务类型,交易笔数,退款笔数\n交易,0,0\n"))
	zw.Close()
	w.Header().Set("Content-Type", "application/zip")
	w.Write(z.Bytes())
}

// cents reads an amount in yuan ("88.00") as fen.
func cents(s string) int64 {
	yuan, fen, _ := strings.Cut(s, ".")
	var y, c int64
	fmt.Sscan(yuan, &y)
	fmt.Sscan((fen + "00")[:2], &c)
	return y*100 + c
}

func (f *alipayFake) refundedLocked(code string) int64 {
	var n int64
	for _, re := range f.refunds {
		if re.OutTradeNo == code {
			n += cents(re.Amount)
		}
	}
	return n
}

// pay is the buyer paying at Alipay's cashier with the signed
// alipay.trade.page.pay request paygate gave: Alipay checks it, the
// trade succeeds, and it sends trade_status_sync to notify_url.
func (f *alipayFake) pay(t *testing.T, code string, form map[string]string) webhook {
	t.Helper()
	p := url.Values{}
	for k, v := range form {
		p.Set(k, v)
	}
	sig, err := base64.StdEncoding.DecodeString(p.Get("sign"))
	h := sha256.Sum256([]byte(alipayContent(p, "sign")))
	if err != nil || p.Get("method") != "alipay.trade.page.pay" || rsa.VerifyPKCS1v15(&f.appKey.PublicKey, crypto.SHA256, h[:], sig) != nil {
		t.Fatalf("alipay: the page pay request for %s does not verify: %v", code, form)
	}
	var biz map[string]string
	if err := json.Unmarshal([]byte(p.Get("biz_content")), &biz); err != nil || biz["out_trade_no"] != code {
		t.Fatalf("alipay: biz_content %q", p.Get("biz_content"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	now := time.Now()
	tr := &alipayTrade{OutTradeNo: code, TradeNo: fmt.Sprintf("2026%024d", f.n), Amount: biz["total_amount"], Subject: biz["subject"],
		Status: "TRADE_SUCCESS", PaidAt: now}
	f.trades[code] = tr
	f.payments = append(f.payments, code)
	n := url.Values{
		"notify_time": {now.In(f.beijing).Format(time.DateTime)}, "notify_type": {"trade_status_sync"},
		"notify_id": {fmt.Sprintf("2026e2e%026d", f.n)}, "app_id": {f.appID}, "charset": {"utf-8"}, "version": {"1.0"},
		"sign_type": {"RSA2"}, "trade_no": {tr.TradeNo}, "out_trade_no": {code}, "buyer_id": {"2088102122524333"},
		"buyer_logon_id": {"159****5620"}, "seller_id": {"2088101106499364"}, "trade_status": {"TRADE_SUCCESS"},
		"total_amount": {tr.Amount}, "receipt_amount": {tr.Amount}, "subject": {tr.Subject},
		"gmt_create": {now.Add(-time.Minute).In(f.beijing).Format(time.DateTime)}, "gmt_payment": {now.In(f.beijing).Format(time.DateTime)},
	}
	n.Set("sign", rsa2(f.alipay, []byte(alipayContent(n, "sign", "sign_type"))))
	hd := http.Header{}
	hd.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	return webhook{header: hd, body: []byte(n.Encode())}
}

func (f *alipayFake) refunded(code string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refundedLocked(code)
}

// notices: Alipay's refund outcomes are in the refund call's answer.
func (f *alipayFake) notices() []webhook { return nil }
