package alipay

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
)

// Alipay publishes no key pair with which a notification could be
// signed, so the tests generate theirs: alipayKey plays Alipay, appKey
// the merchant's app, otherKey a forger.
var (
	keysOnce                    sync.Once
	alipayKey, appKey, otherKey *rsa.PrivateKey
)

const (
	testAppID    = "2014072300007148"
	testSellerID = "2088101106499364"
)

func keys() {
	keysOnce.Do(func() {
		for _, k := range []**rsa.PrivateKey{&alipayKey, &appKey, &otherKey} {
			var err error
			if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		}
	})
}

type counting struct {
	n    atomic.Int64
	base http.RoundTripper
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	if c.base == nil {
		return nil, errNoNetwork
	}
	return c.base.RoundTrip(r)
}

type netErr string

func (e netErr) Error() string { return string(e) }

const errNoNetwork = netErr("no network in this test")

func newChannel(t testing.TB, gateway string, edit ...func(*ChannelConfig)) (*Channel, *counting) {
	t.Helper()
	keys()
	cnt := &counting{}
	if gateway != "" {
		cnt.base = http.DefaultTransport
	} else {
		gateway = "http://127.0.0.1:1/gateway.do"
	}
	cfg := ChannelConfig{GatewayURL: gateway, AppID: testAppID, PrivateKey: appKey,
		AlipayPublicKeys: []*rsa.PublicKey{&alipayKey.PublicKey}, SellerID: testSellerID, Transport: cnt,
		Now: func() time.Time { return time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC) }}
	for _, f := range edit {
		f(&cfg)
	}
	ch, err := NewChannel(cfg)
	if err != nil {
		t.Fatalf("NewChannel: %v", err)
	}
	return ch, cnt
}

// notifyParams are the parameters of Alipay's trade_status_sync
// notification stating n, sent at at, signed with key (the field names
// and formats are those of the notification reference,
// opendocs.alipay.com/open/270/105902).
func notifyParams(n domain.Notification, at time.Time, key *rsa.PrivateKey) url.Values {
	p := url.Values{
		"notify_time": {at.In(beijing).Format(timeLayout)}, "notify_type": {"trade_status_sync"},
		"notify_id": {n.EventID}, "app_id": {testAppID}, "charset": {"utf-8"}, "version": {"1.0"},
		"sign_type": {"RSA2"}, "trade_no": {n.PSPReference}, "out_trade_no": {n.TransactionCode},
		"buyer_id": {"2088102122524333"}, "buyer_logon_id": {"159****5620"}, "seller_id": {testSellerID},
		"seller_email": {"zhuzhanghu@alitest.com"}, "total_amount": {n.Amount.Decimal()},
		"receipt_amount": {n.Amount.Decimal()}, "subject": {"Phone case 手机壳"},
		"gmt_create": {n.OccurredAt.Add(-time.Minute).In(beijing).Format(timeLayout)},
	}
	if c := n.Amount.Currency().Code(); c != "CNY" {
		p.Set("trans_currency", c)
	}
	switch n.Status {
	case domain.PSPSucceeded:
		p.Set("trade_status", tradeSuccess)
		p.Set("gmt_payment", n.OccurredAt.In(beijing).Format(timeLayout))
	case domain.PSPFailed:
		p.Set("trade_status", tradeClosed)
		p.Set("gmt_close", n.OccurredAt.In(beijing).Format(timeLayout))
	default:
		p.Set("trade_status", tradeWaitBuyerPay)
	}
	signParams(p, key)
	return p
}

func signParams(p url.Values, key *rsa.PrivateKey) {
	p.Del("sign")
	content, err := signContent(p, true)
	if err != nil {
		panic(err)
	}
	sig, err := rsa2Sign(key, []byte(content))
	if err != nil {
		panic(err)
	}
	p.Set("sign", sig)
}

// notification is the POST Alipay makes to notify_url.
func notification(n domain.Notification, at time.Time, key *rsa.PrivateKey) domain.Callback {
	return domain.Callback{Kind: domain.CallbackAsync, Method: http.MethodPost, Path: "/v1/callbacks/alipay", Query: url.Values{},
		Headers: http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}},
		Body:    []byte(notifyParams(n, at, key).Encode())}
}
