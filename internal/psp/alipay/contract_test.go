package alipay

import (
	"crypto/rsa"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// The contract suite moves and deletes signatures in headers and query
// parameters only, while Alipay posts its notification as a form body.
// ParseCallback reads the query and the form body alike (what Alipay's
// SDK demos do with getParameterMap), so the suite is run with the same
// signed parameters in the query; TestFormNotification* below do the
// suite's cases on the real form-body shape.
func harness(ch *Channel, cnt *counting) psptest.Harness {
	asQuery := func(n domain.Notification, at time.Time, key func() *rsa.PrivateKey) domain.Callback {
		return domain.Callback{Kind: domain.CallbackAsync, Method: http.MethodGet, Path: "/v1/callbacks/alipay",
			Query: notifyParams(n, at, key()), Headers: http.Header{}}
	}
	return psptest.Harness{
		Channel: ch,
		Sign: func(_ domain.CallbackKind, n domain.Notification, at time.Time) domain.Callback {
			return asQuery(n, at, func() *rsa.PrivateKey { return alipayKey })
		},
		Forge: func(_ domain.CallbackKind, n domain.Notification, at time.Time) domain.Callback {
			return asQuery(n, at, func() *rsa.PrivateKey { return otherKey })
		},
		SignatureKeys: map[domain.CallbackKind][]string{domain.CallbackAsync: {"sign"}},
		TimestampKeys: map[domain.CallbackKind][]string{domain.CallbackAsync: {"notify_time"}},
		Notifications: append([]domain.Notification{{
			TransactionCode: "T261125095957100ABCDEFGZ", PSPReference: "2013112011001004330000121536", EventID: "ac05099524730693a8b330c5ecf72da9786",
			Status: domain.PSPSucceeded, Amount: domain.MustMoney(2000, "CNY"), OccurredAt: psptest.Epoch.Add(-3 * time.Second),
		}}, psptest.Notifications()...),
		Requests: cnt.n.Load,
	}
}

func TestContract(t *testing.T) {
	ch, cnt := newChannel(t, "")
	psptest.Run(t, harness(ch, cnt))
}

// BenchmarkParseCallback: the RSA2 check and parse of an asynchronous
// notification.
func BenchmarkParseCallback(b *testing.B) {
	ch, cnt := newChannel(b, "")
	psptest.Bench(b, harness(ch, cnt))
}

func TestContractTolerance(t *testing.T) {
	ch, cnt := newChannel(t, "", func(c *ChannelConfig) { c.Tolerance = 30 * time.Second })
	h := harness(ch, cnt)
	h.Tolerance = 30 * time.Second
	psptest.Run(t, h)
}

var _ = url.Values{}
