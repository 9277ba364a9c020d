package wechatpay

import (
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp/psptest"
)

func harness(ch *Channel, cnt *counting) psptest.Harness {
	return psptest.Harness{
		Channel: ch,
		Sign: func(_ domain.CallbackKind, n domain.Notification, at time.Time) domain.Callback {
			return callbackFor(n, at, platformKey)
		},
		Forge: func(_ domain.CallbackKind, n domain.Notification, at time.Time) domain.Callback {
			return callbackFor(n, at, otherKey)
		},
		// WeChat Pay's SDKs refuse a timestamp 300 s away (>= 300).
		StaleAtTolerance: true,
		SignatureKeys:    map[domain.CallbackKind][]string{domain.CallbackAsync: {headerSignature}},
		TimestampKeys:    map[domain.CallbackKind][]string{domain.CallbackAsync: {headerTimestamp}},
		Notifications: append([]domain.Notification{{
			TransactionCode: "T261125095957100ABCDEFGZ", PSPReference: "4200000891202103228088184743", EventID: "EV-2018022511223320873",
			Status: domain.PSPSucceeded, Amount: domain.MustMoney(1, "CNY"), OccurredAt: psptest.Epoch.Add(-3 * time.Second),
		}}, psptest.Notifications()...),
		Requests: cnt.n.Load,
	}
}

func TestContract(t *testing.T) {
	ch, cnt := newChannel(t, "")
	psptest.Run(t, harness(ch, cnt))
}

// BenchmarkParseCallback: the platform signature check (RSA), the
// AES-GCM decryption and the parse of a payment notification.
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
