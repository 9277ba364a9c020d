package wechatpay

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp/pemkey"
)

// The platform key pair of the tests is the one wechatpay-go publishes
// in its tests, with the signature it expects of "source":
// github.com/wechatpay-apiv3/wechatpay-go utils/sign_test.go
// (testAlgorithmPrivateKeyStr, testAlgorithmExpectSignature) and
// core/auth/verifiers/sha256withrsa_pubkey_verifier_test.go (testPubKey,
// testPubKeyID). The private key's PEM type is written "TESTING KEY"
// there, as here, so that scanners do not take it for a live key.
const (
	sdkPrivateKeyPEM = `-----BEGIN TESTING KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDZUJN33V+dSfvd
fL0Mu+39XrZNXFFMQSy1V15FpncHeV47SmV0TzTqZc7hHB0ddqAdDi8Z5k3TKqb7
6sOwYr5TcAfuR6PIPaleyE0/0KrljBum2Isa2Nyq7Dgc3ElBQ6YN4l/a+DpvKaz1
FSKmKrhLNskqokWVSlu4g8OlKlbPXQ9ibII14MZRQrrkTmHYHzfi7GXXM0thAKuR
0HNvyhTHBh4/lrYM3GaMvmWwkwvsMavnOex6+eioZHBOb1/EIZ/LzC6zuHArPpyW
3daGaZ1rtQB1vVzTyERAVVFsXXgBHvfFud3w3ShsJYk8JvMwK2RpJ5/gV0QSARcm
LDRUAlPzAgMBAAECggEBAMc7rDeUaXiWv6bMGbZ3BTXpg1FhdddnWUnYE8HfX/km
OFI7XtBHXcgYFpcjYz4D5787pcsk7ezPidAj58zqenuclmjKnUmT3pfbI5eCA2v4
C9HnbYDrmUPK1ZcADtka4D6ScDccpNYNa1g2TFHzkIrEa6H+q7S3O2fqxY/DRVtN
0JIXalBb8daaqL5QVzSmM2BMVnHy+YITJWIkP2a3pKs9C0W65JGDsnG0wVrHinHF
+cnhFZIbaPEI//DAFMc9NkrWOKVRTEgcCUxCFaHOZVNxDWZD7A2ZfJB2rK6eg//y
gEiFDR2h6mTaDowMB4YF2n2dsIO4/dCG8vPHI20jn4ECgYEA/ZGu6lEMlO0XZnam
AZGtiNgLcCfM/C2ZERZE7QTRPZH1WdK92Al9ndldsswFw4baJrJLCmghjF/iG4zi
hhBvLnOLksnZUfjdumxoHDWXo2QBWbI5QsWIE7AuTiWgWj1I7X4fCXSQf6i+M/y2
6TogQ7d0ANpZFyOkTNMn/tiJvLECgYEA22XqlamG/yfAGWery5KNH2DGlTIyd6xJ
WtJ9j3jU99lZ0bCQ5xhiBbU9ImxCi3zgTsoqLWgA/p00HhNFNoUcTl9ofc0G3zwT
D1y0ZzcnVKxGJdZ6ohW52V0hJStAigtjYAsUgjm7//FH7PiQDBDP1Wa6xSRkDQU/
aSbQxvEE8+MCgYEA3bb8krW7opyM0XL9RHH0oqsFlVO30Oit5lrqebS0oHl3Zsr2
ZGgoBlWBsEzk3UqUhTFwm/DhJLTSJ/TQPRkxnhQ5/mewNhS9C7yua7wQkzVmWN+V
YeUGTvDGDF6qDz12/vJAgSwDDRym8x4NcXD5tTw7mmNRcwIfL22SkysThIECgYAV
BgccoEoXWS/HP2/u6fQr9ZIR6eV8Ij5FPbZacTG3LlS1Cz5XZra95UgebFFUHHtC
EY1JHJY7z8SWvTH8r3Su7eWNaIAoFBGffzqqSVazfm6aYZsOvRY6BfqPHT3p/H1h
Tq6AbBffxrcltgvXnCTORjHPglU0CjSxVs7awW3AEQKBgB5WtaC8VLROM7rkfVIq
+RXqE5vtJfa3e3N7W3RqxKp4zHFAPfr82FK5CX2bppEaxY7SEZVvVInKDc5gKdG/
jWNRBmvvftZhY59PILHO2X5vO4FXh7suEjy6VIh0gsnK36mmRboYIBGsNuDHjXLe
BDa+8mDLkWu5nHEhOxy2JJZl
-----END TESTING KEY-----`
	sdkPublicKeyPEM = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA2VCTd91fnUn73Xy9DLvt
/V62TVxRTEEstVdeRaZ3B3leO0pldE806mXO4RwdHXagHQ4vGeZN0yqm++rDsGK+
U3AH7kejyD2pXshNP9Cq5YwbptiLGtjcquw4HNxJQUOmDeJf2vg6byms9RUipiq4
SzbJKqJFlUpbuIPDpSpWz10PYmyCNeDGUUK65E5h2B834uxl1zNLYQCrkdBzb8oU
xwYeP5a2DNxmjL5lsJML7DGr5znsevnoqGRwTm9fxCGfy8wus7hwKz6clt3Whmmd
a7UAdb1c08hEQFVRbF14AR73xbnd8N0obCWJPCbzMCtkaSef4FdEEgEXJiw0VAJT
8wIDAQAB
-----END PUBLIC KEY-----`
	sdkPubKeyID          = "F5765756002FDD77"
	sdkSignatureOfSource = "BKyAfU4iMCuvXMXS0Wzam3V/cnxZ+JaqigPM5OhljS2iOT95OO6Fsuml2JkFANJU9K6q9bLlDhPXuoV" +
		"z+pp4hAm6pHU4ld815U4jsKu1RkyaII+1CYBUYC8TK0XtJ8FwUXXz8vZHh58rrAVN1XwNyvD1vfpxrMT4SL536GLwvpUHlCqIMzoZUguLl" +
		"i/K8V29QiOhuH6IEqLNJn8e9b3nwNcQ7be3CzYGpDAKBfDGPCqCv8Rw5zndhlffk2FEA70G4hvMwe51qMN/RAJbknXG23bSlObuTCN7Ndj" +
		"1aJGH6/L+hdwfLpUtJm4QYVazzW7DFD27EpSQEqA8bX9+8m1rLg=="
)

const (
	testMchID    = "1900006XXX"
	testAppID    = "wxdace645e0bc2cXXX"
	testSerialNo = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
	testAPIv3Key = "0123456789abcdef0123456789ABCDEF" // 32 bytes
)

var (
	keysOnce    sync.Once
	platformKey *rsa.PrivateKey // wechatpay-go's published test key
	merchantKey *rsa.PrivateKey
	otherKey    *rsa.PrivateKey // signs forgeries
)

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		platformKey, err = pemkey.ParsePrivate([]byte(strings.ReplaceAll(sdkPrivateKeyPEM, "TESTING KEY", "PRIVATE KEY")))
		if err != nil {
			panic(err)
		}
		if merchantKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if otherKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
}

// counting wraps a transport and counts its requests.
type counting struct {
	n    atomic.Int64
	base http.RoundTripper
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	if c.base == nil {
		return nil, fmt.Errorf("no network in this test")
	}
	return c.base.RoundTrip(r)
}

// newChannel is a channel of the test merchant at baseURL, its requests
// counted.
func newChannel(t testing.TB, baseURL string, edit ...func(*ChannelConfig)) (*Channel, *counting) {
	t.Helper()
	keys(t)
	pub, err := pemkey.ParsePublic([]byte(sdkPublicKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	cnt := &counting{}
	if baseURL != "" {
		cnt.base = http.DefaultTransport
	} else {
		baseURL = "http://127.0.0.1:1"
	}
	cfg := ChannelConfig{
		BaseURL: baseURL, MchID: testMchID, AppID: testAppID, MerchantKey: merchantKey, MerchantSerialNo: testSerialNo,
		APIv3Key: testAPIv3Key, PlatformKeys: []PlatformKey{{Serial: sdkPubKeyID, Key: pub}}, Transport: cnt,
	}
	for _, f := range edit {
		f(&cfg)
	}
	ch, err := NewChannel(cfg)
	if err != nil {
		t.Fatalf("NewChannel: %v", err)
	}
	return ch, cnt
}

// encrypt seals plaintext as WeChat does a callback resource.
func encrypt(key, nonce, ad string, plaintext []byte) string {
	block, err := aes.NewCipher([]byte(key))
	if err != nil {
		panic(err)
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, len(nonce))
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(gcm.Seal(nil, []byte(nonce), plaintext, []byte(ad)))
}

// signHeaders sets the Wechatpay-* headers over body as WeChat would.
func signHeaders(h http.Header, key *rsa.PrivateKey, serial string, ts int64, nc string, body []byte) {
	sig, err := signSHA256RSA(key, responseMessage(strconv.FormatInt(ts, 10), nc, body))
	if err != nil {
		panic(err)
	}
	h.Set(headerTimestamp, strconv.FormatInt(ts, 10))
	h.Set(headerNonce, nc)
	h.Set(headerSignature, sig)
	h.Set(headerSerial, serial)
}

// transactionFor is the payment resource stating n.
func transactionFor(n domain.Notification) map[string]any {
	tx := map[string]any{
		"appid": testAppID, "mchid": testMchID, "out_trade_no": n.TransactionCode, "transaction_id": n.PSPReference,
		"trade_type": "NATIVE", "bank_type": "OTHERS", "attach": "",
		"payer":  map[string]any{"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
		"amount": map[string]any{"total": n.Amount.Minor(), "payer_total": n.Amount.Minor(), "currency": n.Amount.Currency().Code(), "payer_currency": n.Amount.Currency().Code()},
	}
	switch n.Status {
	case domain.PSPSucceeded:
		tx["trade_state"], tx["trade_state_desc"] = stateSuccess, "支付成功"
		tx["success_time"] = n.OccurredAt.In(beijing).Format(time.RFC3339)
	case domain.PSPFailed:
		tx["trade_state"], tx["trade_state_desc"] = statePayError, "支付失败"
	default:
		tx["trade_state"], tx["trade_state_desc"] = stateNotPay, "未支付"
	}
	return tx
}

// callbackFor is the callback WeChat would send stating n, signed at at
// with key. Its nonces derive from the statement so that the suite's
// callbacks are reproducible.
func callbackFor(n domain.Notification, at time.Time, key *rsa.PrivateKey) domain.Callback {
	pt, _ := json.Marshal(transactionFor(n))
	rnonce := (n.TransactionCode + "000000000000")[:12]
	ct := encrypt(testAPIv3Key, rnonce, "transaction", pt)
	summary := "支付成功"
	if n.Status != domain.PSPSucceeded {
		summary = "支付失败"
	}
	body, _ := json.Marshal(map[string]any{
		"id": n.EventID, "create_time": n.OccurredAt.In(beijing).Format(time.RFC3339), "resource_type": "encrypt-resource",
		"event_type": "TRANSACTION.SUCCESS", "summary": summary,
		"resource": map[string]any{"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
			"ciphertext": ct, "associated_data": "transaction", "nonce": rnonce},
	})
	h := http.Header{"Content-Type": {"application/json"}}
	signHeaders(h, key, sdkPubKeyID, at.Unix(), "nonce-"+n.TransactionCode, body)
	return domain.Callback{Kind: domain.CallbackAsync, Method: http.MethodPost, Path: "/v1/callbacks/wechatpay", Headers: h, Body: body}
}
