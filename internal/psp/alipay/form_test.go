package alipay

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

func formNote() domain.Notification {
	return domain.Notification{TransactionCode: "T261125095957100ABCDEFGZ", PSPReference: "2013112011001004330000121536",
		EventID: "ac05099524730693a8b330c5ecf72da9786", Status: domain.PSPSucceeded, Amount: domain.MustMoney(2000, "CNY"),
		OccurredAt: psptest.Epoch.Add(-3 * time.Second)}
}

func parseAt(t *testing.T, ch *Channel, cb domain.Callback) (domain.Notification, error) {
	t.Helper()
	cb.ReceivedAt = psptest.Epoch
	return ch.ParseCallback(cb)
}

func refused(t *testing.T, what string, ch *Channel, cb domain.Callback, target error) {
	t.Helper()
	n, err := parseAt(t, ch, cb)
	if !errors.Is(err, target) || !psptest.SameNotification(n, domain.Notification{}) {
		t.Errorf("%s: %+v, %v; want %v", what, n, err, target)
	}
}

// TestFormNotification does the contract suite's cases on the
// notification as Alipay sends it: a form-encoded POST body.
func TestFormNotification(t *testing.T) {
	ch, _ := newChannel(t, "")
	n := formNote()
	good := notification(n, psptest.Epoch, alipayKey)
	got, err := parseAt(t, ch, good)
	if err != nil || !psptest.SameNotification(got, n) {
		t.Fatalf("good: %+v, %v", got, err)
	}
	for i := range good.Body {
		c := psptest.Clone(good)
		c.Body[i] ^= 0x01
		refused(t, fmt.Sprintf("body byte %d", i), ch, c, psp.ErrBadSignature)
	}
	c := psptest.Clone(good)
	c.Body = append(c.Body, '&', 'x', '=', '1')
	refused(t, "a parameter appended", ch, c, psp.ErrBadSignature)

	// Another statement under the original sign.
	orig := notifyParams(n, psptest.Epoch, alipayKey)
	for name, edit := range map[string]func(*domain.Notification){
		"amount+1": func(m *domain.Notification) { m.Amount = domain.MustMoney(m.Amount.Minor()+1, "CNY") },
		"currency": func(m *domain.Notification) { m.Amount = domain.MustMoney(m.Amount.Minor(), "USD") },
		"status":   func(m *domain.Notification) { m.Status = domain.PSPFailed },
		"code":     func(m *domain.Notification) { m.TransactionCode += "X" },
	} {
		m := n
		edit(&m)
		p := notifyParams(m, psptest.Epoch, alipayKey)
		p.Set("sign", orig.Get("sign"))
		cb := notification(m, psptest.Epoch, alipayKey)
		cb.Body = []byte(p.Encode())
		refused(t, name+" under the original sign", ch, cb, psp.ErrBadSignature)
	}
	for name, del := range map[string][]string{"sign": {"sign"}, "sign_type": {"sign_type"}, "notify_time": {"notify_time"}} {
		p := notifyParams(n, psptest.Epoch, alipayKey)
		for _, k := range del {
			p.Del(k)
		}
		cb := psptest.Clone(good)
		cb.Body = []byte(p.Encode())
		refused(t, "without "+name, ch, cb, psp.ErrBadSignature)
	}
	refused(t, "forged", ch, notification(n, psptest.Epoch, otherKey), psp.ErrBadSignature)
	refused(t, "stale", ch, notification(n, psptest.Epoch.Add(-301*time.Second), alipayKey), psp.ErrStale)
	refused(t, "future", ch, notification(n, psptest.Epoch.Add(301*time.Second), alipayKey), psp.ErrStale)

	// RSA (SHA1) or anything but RSA2 is refused, even correctly signed.
	p := notifyParams(n, psptest.Epoch, alipayKey)
	p.Set("sign_type", "RSA")
	cb := psptest.Clone(good)
	cb.Body = []byte(p.Encode())
	refused(t, "sign_type RSA", ch, cb, psp.ErrBadSignature)

	// A parameter in both query and body: ambiguous.
	cb = psptest.Clone(good)
	cb.Query = url.Values{"out_trade_no": {"T-OTHER"}}
	refused(t, "parameter in query and body", ch, cb, psp.ErrBadSignature)

	// Signed by Alipay, but for another app or seller.
	for k, v := range map[string]string{"app_id": "2014072300000000", "seller_id": "2088000000000000"} {
		p := notifyParams(n, psptest.Epoch, alipayKey)
		p.Set(k, v)
		signParams(p, alipayKey)
		cb := psptest.Clone(good)
		cb.Body = []byte(p.Encode())
		refused(t, "other "+k, ch, cb, psp.ErrMalformed)
	}
	// Amount with more decimals than the currency has: never rounded.
	p = notifyParams(n, psptest.Epoch, alipayKey)
	p.Set("total_amount", "20.001")
	signParams(p, alipayKey)
	cb = psptest.Clone(good)
	cb.Body = []byte(p.Encode())
	refused(t, "total_amount 20.001", ch, cb, psp.ErrMalformed)

	if a := ch.Ack(); a.Body != "success" || a.Status != http.StatusOK {
		t.Errorf("Ack %+v", a)
	}
}

// TestSignTypeSigned: Alipay has signed notifications over sign_type
// too; its SDKs verify the content without sign_type, then with it, and
// so does the channel. Signed so by another key, or altered after, it is
// still refused.
func TestSignTypeSigned(t *testing.T) {
	ch, _ := newChannel(t, "")
	n := formNote()
	signed := func(key *rsa.PrivateKey, edit func(url.Values)) domain.Callback {
		p := notifyParams(n, psptest.Epoch, alipayKey)
		p.Del("sign")
		content, err := signContent(p, false)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(content, "&sign_type=RSA2&") {
			t.Fatalf("sign_type is not in the signed content: %s", content)
		}
		sig, err := rsa2Sign(key, []byte(content))
		if err != nil {
			t.Fatal(err)
		}
		p.Set("sign", sig)
		if edit != nil {
			edit(p)
		}
		cb := notification(n, psptest.Epoch, alipayKey)
		cb.Body = []byte(p.Encode())
		return cb
	}
	got, err := parseAt(t, ch, signed(alipayKey, nil))
	if err != nil || !psptest.SameNotification(got, n) {
		t.Fatalf("signed with sign_type: %+v, %v", got, err)
	}
	sync := signed(alipayKey, nil)
	sync.Kind, sync.Method, sync.Query, sync.Body = domain.CallbackSync, http.MethodGet, mustQuery(t, string(sync.Body)), nil
	if _, err := parseAt(t, ch, sync); err != nil {
		t.Errorf("a return signed with sign_type: %v", err)
	}
	refused(t, "signed with sign_type by another key", ch, signed(otherKey, nil), psp.ErrBadSignature)
	refused(t, "signed with sign_type, amount altered", ch, signed(alipayKey, func(p url.Values) { p.Set("total_amount", "2000.01") }), psp.ErrBadSignature)
	refused(t, "signed with sign_type, sign_type RSA", ch, signed(alipayKey, func(p url.Values) { p.Set("sign_type", "RSA") }), psp.ErrBadSignature)
	_, err = parseAt(t, ch, signed(otherKey, nil))
	if err == nil || !strings.Contains(err.Error(), "without sign_type, and with it") {
		t.Errorf("refusal %v does not say both contents were tried", err)
	}
}

func mustQuery(t *testing.T, s string) url.Values {
	t.Helper()
	q, err := url.ParseQuery(s)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestKeyRotation: every configured Alipay public key verifies.
func TestKeyRotation(t *testing.T) {
	keys()
	ch, _ := newChannel(t, "", func(c *ChannelConfig) { c.AlipayPublicKeys = append(c.AlipayPublicKeys, &otherKey.PublicKey) })
	for _, k := range []string{"alipay", "other"} {
		key := alipayKey
		if k == "other" {
			key = otherKey
		}
		if _, err := parseAt(t, ch, notification(formNote(), psptest.Epoch, key)); err != nil {
			t.Errorf("signed with %s key: %v", k, err)
		}
	}
}

// TestSyncReturn: the browser's return (GET to return_url) is signed
// like a notification but states no status: it reads as pending.
func TestSyncReturn(t *testing.T) {
	ch, _ := newChannel(t, "")
	// Parameters of a return, as the page-pay reference lists them.
	q := url.Values{"charset": {"utf-8"}, "out_trade_no": {"T1"}, "method": {"alipay.trade.page.pay.return"},
		"total_amount": {"88.88"}, "trade_no": {"2016071921001003030200089909"}, "auth_app_id": {testAppID},
		"version": {"1.0"}, "app_id": {testAppID}, "sign_type": {"RSA2"}, "seller_id": {testSellerID},
		"timestamp": {"2016-07-19 17:37:30"}}
	signParams(q, alipayKey)
	cb := domain.Callback{Kind: domain.CallbackSync, Method: http.MethodGet, Query: q, Headers: http.Header{}}
	n, err := parseAt(t, ch, cb)
	if err != nil || n.Status != domain.PSPPending || n.TransactionCode != "T1" || n.Amount.String() != "88.88 CNY" {
		t.Fatalf("return: %+v, %v", n, err)
	}
	c := psptest.Clone(cb)
	c.Query.Set("total_amount", "0.01")
	refused(t, "return with another amount", ch, c, psp.ErrBadSignature)
	c = psptest.Clone(cb)
	c.Kind = domain.CallbackStatusProbe
	refused(t, "status probe", ch, c, psp.ErrMalformed)
}

// TestSignContentVector is the worked example of Alipay's "自行实现签名"
// guide (opendocs.alipay.com/common/02kf5q, mirrored at
// git.aopcloud.com/k/SOP sop-website/website-front/pages/doc/sign.html):
// the parameters and the exact string to sign (sign and empty values
// left out, names sorted, values not encoded).
func TestSignContentVector(t *testing.T) {
	biz := `{"button":[{"actionParam":"ZFB_HFCZ","actionType":"out","name":"话费充值"},{"name":"查询","subButton":[{"actionParam":"ZFB_YECX","actionType":"out","name":"余额查询"},{"actionParam":"ZFB_LLCX","actionType":"out","name":"流量查询"},{"actionParam":"ZFB_HFCX","actionType":"out","name":"话费查询"}]},{"actionParam":"http://m.alipay.com","actionType":"link","name":"最新优惠"}]}`
	p := url.Values{"app_id": {"2014072300007148"}, "method": {"alipay.mobile.public.menu.add"}, "charset": {"GBK"},
		"sign_type": {"RSA2"}, "timestamp": {"2014-07-24 03:07:50"}, "biz_content": {biz},
		"sign":    {"e9zEAe4TTQ4LPLQvETPoLGXTiURcxiAKfMVQ6Hrrsx2hmyIEGvSfAQzbLxHrhyZ48wOJXTsD4FPnt+YGdK57+fP1BCbf9rIVycfjhYCqlFhbTu9pFnZgT55W+xbAFb9y7vL0MyAxwXUXvZtQVqEwW7pURtKilbcBTEW7TAxzgro="},
		"version": {"1.0"}, "empty": {""}}
	want := `app_id=2014072300007148&biz_content=` + biz + `&charset=GBK&method=alipay.mobile.public.menu.add&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0`
	got, err := signContent(p, false)
	if err != nil || got != want {
		t.Fatalf("signContent =\n%s\nwant\n%s", got, want)
	}
	// For notifications, sign_type is left out as well.
	got, _ = signContent(p, true)
	if strings.Contains(got, "sign_type") {
		t.Fatalf("notification content holds sign_type: %s", got)
	}
}
