package e2e

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// wechatFake is WeChat Pay API v3 as the WeChat Pay adapter uses it
// (pay.weixin.qq.com/doc/v3): requests signed by the merchant's key in
// Authorization (WECHATPAY2-SHA256-RSA2048 over "METHOD\nPATH?QUERY\n
// TIMESTAMP\nNONCE\nBODY\n"), answers and callbacks signed by the
// platform key in Wechatpay-Signature (over "TIMESTAMP\nNONCE\nBODY\n"),
// Native payments, the query by out_trade_no, domestic refunds, the trade
// bill (its SHA1 in the signed answer, the file itself unsigned), and the
// TRANSACTION.SUCCESS callback, its resource encrypted with the APIv3 key
// (AEAD_AES_256_GCM).
type wechatFake struct {
	srv      *httptest.Server
	mchID    string
	appID    string
	serial   string // the merchant certificate's serial
	platform string // the platform certificate's serial
	apiv3    string
	merchant *rsa.PrivateKey
	signer   *rsa.PrivateKey // the platform's
	mu       sync.Mutex
	n        int
	orders   map[string]*wechatOrder // by out_trade_no
	refunds  []wechatRefund
	beijing  *time.Location
	bills    map[string][]byte // download token → file
}

type wechatOrder struct {
	OutTradeNo, TransactionID, Description, State string
	Total                                         int64
	PaidAt                                        time.Time
}

type wechatRefund struct {
	RefundID, OutRefundNo, OutTradeNo string
	Refund                            int64
}

var (
	wechatKeysOnce                 sync.Once
	wechatMerchantKey, wechatPlatK *rsa.PrivateKey
)

func newWeChatFake(t *testing.T) pspFake {
	wechatKeysOnce.Do(func() {
		var err error
		if wechatMerchantKey, err = rsa.GenerateKey(rand.Reader, 2048); err == nil {
			wechatPlatK, err = rsa.GenerateKey(rand.Reader, 2048)
		}
		if err != nil {
			panic(err)
		}
	})
	f := &wechatFake{mchID: "1900000109", appID: "wxd678efh567hg6787", serial: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
		platform: "PUB_KEY_ID_0114232134912410000000000000", apiv3: "e2eApiV3Key0123456789abcdefghijk",
		merchant: wechatMerchantKey, signer: wechatPlatK, orders: map[string]*wechatOrder{}, beijing: time.FixedZone("CST", 8*3600),
		bills: map[string][]byte{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *wechatFake) channel(name string) string {
	priv, _ := x509.MarshalPKCS8PrivateKey(f.merchant)
	pub, _ := x509.MarshalPKIXPublicKey(&f.signer.PublicKey)
	return fmt.Sprintf(`{"name":%q,"kind":"wechatpay","enabled":true,"weight":1,"settings":{"base_url":%q,"mchid":%q,"appid":%q,"merchant_serial_no":%q,"merchant_private_key":%q,"apiv3_key":%q,"platform_keys":[{"serial":%q,"pem":%q}],"mode":"native"}}`,
		name, f.srv.URL, f.mchID, f.appID, f.serial, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), f.apiv3,
		f.platform, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
}

var wechatAuth = regexp.MustCompile(`^WECHATPAY2-SHA256-RSA2048 mchid="([^"]*)",nonce_str="([^"]*)",signature="([^"]*)",timestamp="([^"]*)",serial_no="([^"]*)"$`)

// signed writes an answer (or builds a callback's headers) signed by the
// platform key.
func (f *wechatFake) headers(body []byte) http.Header {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	var nb [16]byte
	rand.Read(nb[:])
	nonce := hex.EncodeToString(nb[:])
	h := sha256.Sum256([]byte(ts + "\n" + nonce + "\n" + string(body) + "\n"))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, f.signer, crypto.SHA256, h[:])
	hd := http.Header{}
	hd.Set("Content-Type", "application/json")
	hd.Set("Wechatpay-Timestamp", ts)
	hd.Set("Wechatpay-Nonce", nonce)
	hd.Set("Wechatpay-Signature", base64.StdEncoding.EncodeToString(sig))
	hd.Set("Wechatpay-Serial", f.platform)
	hd.Set("Request-ID", "08F78BB5AF0610D302"+nonce[:8])
	return hd
}

func (f *wechatFake) answer(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	for k, vs := range f.headers(body) {
		w.Header()[k] = vs
	}
	w.WriteHeader(status)
	w.Write(body)
}

func (f *wechatFake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m := wechatAuth.FindStringSubmatch(r.Header.Get("Authorization"))
	ok := m != nil && m[1] == f.mchID && m[5] == f.serial
	if ok {
		sig, err := base64.StdEncoding.DecodeString(m[3])
		h := sha256.Sum256([]byte(r.Method + "\n" + r.URL.RequestURI() + "\n" + m[4] + "\n" + m[2] + "\n" + string(body) + "\n"))
		ok = err == nil && rsa.VerifyPKCS1v15(&f.merchant.PublicKey, crypto.SHA256, h[:], sig) == nil
	}
	if !ok {
		f.answer(w, http.StatusUnauthorized, map[string]string{"code": "SIGN_ERROR", "message": "签名错误"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	const byOutTradeNo = "/v3/pay/transactions/out-trade-no/"
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v3/pay/transactions/native":
		var in struct {
			AppID       string `json:"appid"`
			MchID       string `json:"mchid"`
			Description string `json:"description"`
			OutTradeNo  string `json:"out_trade_no"`
			NotifyURL   string `json:"notify_url"`
			Amount      struct {
				Total int64 `json:"total"`
			} `json:"amount"`
		}
		if err := json.Unmarshal(body, &in); err != nil || in.MchID != f.mchID || in.AppID != f.appID || in.OutTradeNo == "" || in.Amount.Total <= 0 {
			f.answer(w, http.StatusBadRequest, map[string]string{"code": "PARAM_ERROR", "message": "参数错误"})
			return
		}
		if _, ok := f.orders[in.OutTradeNo]; !ok {
			f.orders[in.OutTradeNo] = &wechatOrder{OutTradeNo: in.OutTradeNo, Description: in.Description, State: "NOTPAY", Total: in.Amount.Total}
		}
		f.answer(w, http.StatusOK, map[string]string{"code_url": "weixin://wxpay/bizpayurl?pr=E2E" + strconv.Itoa(len(f.orders))})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, byOutTradeNo):
		o, ok := f.orders[strings.TrimPrefix(r.URL.Path, byOutTradeNo)]
		if !ok || r.URL.Query().Get("mchid") != f.mchID {
			f.answer(w, http.StatusNotFound, map[string]string{"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
			return
		}
		f.answer(w, http.StatusOK, f.transaction(o))
	case r.Method == http.MethodPost && r.URL.Path == "/v3/refund/domestic/refunds":
		var in struct {
			OutTradeNo  string `json:"out_trade_no"`
			OutRefundNo string `json:"out_refund_no"`
			Amount      struct {
				Refund   int64  `json:"refund"`
				Total    int64  `json:"total"`
				Currency string `json:"currency"`
			} `json:"amount"`
		}
		o, known := (*wechatOrder)(nil), false
		if err := json.Unmarshal(body, &in); err == nil {
			o, known = f.orders[in.OutTradeNo]
		}
		if !known || o.State != "SUCCESS" && o.State != "REFUND" || in.Amount.Total != o.Total {
			f.answer(w, http.StatusBadRequest, map[string]string{"code": "INVALID_REQUEST", "message": "订单状态或金额不符"})
			return
		}
		i := slices.IndexFunc(f.refunds, func(re wechatRefund) bool { return re.OutRefundNo == in.OutRefundNo })
		if i < 0 {
			if f.refundedLocked(o.OutTradeNo)+in.Amount.Refund > o.Total {
				f.answer(w, http.StatusBadRequest, map[string]string{"code": "NOT_ENOUGH", "message": "退款金额超过可退金额"})
				return
			}
			f.n++
			f.refunds = append(f.refunds, wechatRefund{RefundID: fmt.Sprintf("50000000382019052709732%06d", f.n), OutRefundNo: in.OutRefundNo,
				OutTradeNo: o.OutTradeNo, Refund: in.Amount.Refund})
			i = len(f.refunds) - 1
			o.State = "REFUND"
		}
		f.answer(w, http.StatusOK, f.refundJSON(f.refunds[i]))
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v3/refund/domestic/refunds/"):
		i := slices.IndexFunc(f.refunds, func(re wechatRefund) bool {
			return re.OutRefundNo == strings.TrimPrefix(r.URL.Path, "/v3/refund/domestic/refunds/")
		})
		if i < 0 {
			f.answer(w, http.StatusNotFound, map[string]string{"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"})
			return
		}
		f.answer(w, http.StatusOK, f.refundJSON(f.refunds[i]))
	case r.Method == http.MethodGet && r.URL.Path == "/v3/bill/tradebill":
		file := f.bill(r.URL.Query().Get("bill_date"))
		f.n++
		token := strconv.Itoa(f.n)
		f.bills[token] = file
		sum := sha1.Sum(file)
		f.answer(w, http.StatusOK, map[string]string{"hash_type": "SHA1", "hash_value": hex.EncodeToString(sum[:]),
			"download_url": f.srv.URL + "/v3/billdownload/file?token=" + token})
	case r.Method == http.MethodGet && r.URL.Path == "/v3/billdownload/file":
		file, ok := f.bills[r.URL.Query().Get("token")]
		if !ok {
			f.answer(w, http.StatusNotFound, map[string]string{"code": "RESOURCE_NOT_EXISTS", "message": "账单不存在"})
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(file) // unsigned: the bill answer's SHA1 vouches for it
	default:
		f.answer(w, http.StatusNotFound, map[string]string{"code": "NOT_FOUND", "message": "no such API"})
	}
}

func (f *wechatFake) transaction(o *wechatOrder) map[string]any {
	v := map[string]any{"appid": f.appID, "mchid": f.mchID, "out_trade_no": o.OutTradeNo, "trade_type": "NATIVE",
		"trade_state": o.State, "trade_state_desc": o.State, "amount": map[string]any{"total": o.Total, "currency": "CNY"}}
	if o.State != "NOTPAY" {
		v["transaction_id"] = o.TransactionID
		v["success_time"] = o.PaidAt.In(f.beijing).Format(time.RFC3339)
		v["bank_type"] = "CMC"
		v["payer"] = map[string]string{"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
		v["amount"] = map[string]any{"total": o.Total, "payer_total": o.Total, "currency": "CNY", "payer_currency": "CNY"}
	}
	return v
}

func (f *wechatFake) refundJSON(re wechatRefund) map[string]any {
	return map[string]any{"refund_id": re.RefundID, "out_refund_no": re.OutRefundNo, "transaction_id": f.orders[re.OutTradeNo].TransactionID,
		"out_trade_no": re.OutTradeNo, "channel": "ORIGINAL", "user_received_account": "招商银行信用卡0403", "status": "SUCCESS",
		"create_time": time.Now().In(f.beijing).Format(time.RFC3339), "success_time": time.Now().In(f.beijing).Format(time.RFC3339),
		"amount": map[string]any{"total": f.orders[re.OutTradeNo].Total, "refund": re.Refund, "payer_total": f.orders[re.OutTradeNo].Total,
			"payer_refund": re.Refund, "currency": "CNY"}}
}

// bill is the SUCCESS trade bill of a Beijing day: a header, one line per
// payment (every field after a backtick), and the summary.
func (f *wechatFake) bill(day string) []byte {
	var b strings.Builder
	b.WriteString("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,商品名称,商户数据包,手续费,费率,订单金额,费率备注\n")
	n, total := 0, int64(0)
	for _, o := range f.orders {
		if o.State == "NOTPAY" || o.PaidAt.In(f.beijing).Format(time.DateOnly) != day {
			continue
		}
		yuan := fmt.Sprintf("%d.%02d", o.Total/100, o.Total%100)
		fmt.Fprintf(&b, "`%s,`%s,`%s,`0,`,`%s,`%s,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`SUCCESS,`CMC,`CNY,`%s,`0.00,`%s,`,`0.00000,`0.60%%,`%s,`\n",
			o.PaidAt.In(f.beijing).Format(time.DateTime), f.appID, f.mchID, o.TransactionID, o.OutTradeNo, yuan, o.Description, yuan)
		n, total = n+1, total+o.Total
	}
	fmt.Fprintf(&b, "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n`%d,`%d.%02d,`0.00,`0.00,`0.00000,`%d.%02d,`0.00\n",
		n, total/100, total%100, total/100, total%100)
	return []byte(b.String())
}

func (f *wechatFake) refundedLocked(code string) int64 {
	var n int64
	for _, re := range f.refunds {
		if re.OutTradeNo == code {
			n += re.Refund
		}
	}
	return n
}

// pay is the buyer scanning the Native code and paying: the trade
// succeeds, and WeChat Pay posts TRANSACTION.SUCCESS, the transaction
// encrypted with the APIv3 key, the envelope signed by the platform key.
func (f *wechatFake) pay(t *testing.T, code string, _ map[string]string) webhook {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.orders[code]
	if !ok {
		t.Fatalf("wechatpay: no order %s", code)
	}
	f.n++
	o.State, o.TransactionID, o.PaidAt = "SUCCESS", fmt.Sprintf("42000008912021032280%08d", f.n), time.Now()
	plain, _ := json.Marshal(f.transaction(o))
	block, _ := aes.NewCipher([]byte(f.apiv3))
	gcm, _ := cipher.NewGCM(block)
	nonce := fmt.Sprintf("e2e%09d", f.n) // 12 bytes
	ct := gcm.Seal(nil, []byte(nonce), plain, []byte("transaction"))
	body, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("EV-2026120710%08d", f.n), "create_time": time.Now().In(f.beijing).Format(time.RFC3339),
		"resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
		"resource": map[string]string{"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
			"ciphertext": base64.StdEncoding.EncodeToString(ct), "associated_data": "transaction", "nonce": nonce}})
	return webhook{header: f.headers(body), body: body}
}

func (f *wechatFake) refunded(code string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refundedLocked(code)
}

// notices: WeChat Pay's refund answer says SUCCESS at once here.
func (f *wechatFake) notices() []webhook { return nil }
