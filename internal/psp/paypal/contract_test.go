package paypal

import (
	"crypto/rsa"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

func harness(e *testEnv, webhookID string) psptest.Harness {
	sign := func(key *rsa.PrivateKey) func(domain.CallbackKind, domain.Notification, time.Time) domain.Callback {
		return func(_ domain.CallbackKind, n domain.Notification, at time.Time) domain.Callback {
			cb := callbackFor(e, n, at, key)
			signHeaders(cb.Headers, key, e.certURL, webhookID, "tx-"+n.EventID, at, cb.Body)
			return cb
		}
	}
	return psptest.Harness{
		Channel:       e.ch,
		Sign:          sign(signKey),
		Forge:         sign(otherKey),
		SignatureKeys: map[domain.CallbackKind][]string{domain.CallbackAsync: {headerTransmissionSig}},
		TimestampKeys: map[domain.CallbackKind][]string{domain.CallbackAsync: {headerTransmissionTime}},
		Notifications: append([]domain.Notification{{
			TransactionCode: "T261125095957100ABCDEFGZ", PSPReference: "5O190127TN364715T", EventID: "WH-58D329510W468432D-8HN650336L201105X",
			Status: domain.PSPSucceeded, Amount: domain.MustMoney(251, "USD"), OccurredAt: psptest.Epoch.Add(-3 * time.Second),
		}, {
			TransactionCode: "T261125095957101ABCDEFGY", PSPReference: "5O190127TN364716T", EventID: "WH-2",
			Status: domain.PSPPending, Amount: domain.MustMoney(100000, "HUF"), OccurredAt: psptest.Epoch.Add(-3 * time.Second),
		}}, psptest.Notifications()...),
		Requests: e.cnt.n.Load,
	}
}

func TestContract(t *testing.T) {
	e := newEnv(t, "", true)
	psptest.Run(t, harness(e, testWebhookIDs[0]))
}

// BenchmarkParseCallback: the check of a webhook's transmission
// signature (RSA with the cached certificate) and its parse.
func BenchmarkParseCallback(b *testing.B) {
	psptest.Bench(b, harness(newEnv(b, "", true), testWebhookIDs[0]))
}

// TestContractRotatedWebhookID: callbacks signed for the second webhook
// id (a rotation in progress) pass the suite as well.
func TestContractRotatedWebhookID(t *testing.T) {
	e := newEnv(t, "", true)
	psptest.Run(t, harness(e, testWebhookIDs[1]))
}

func TestContractTolerance(t *testing.T) {
	e := newEnv(t, "", true, func(c *ChannelConfig) { c.Tolerance = 30 * time.Second })
	h := harness(e, testWebhookIDs[0])
	h.Tolerance = 30 * time.Second
	psptest.Run(t, h)
}

// TestUnknownWebhookID: a webhook id the channel does not hold is a bad
// signature, however good the key.
func TestUnknownWebhookID(t *testing.T) {
	e := newEnv(t, "", true)
	n := psptest.Notifications()[0]
	cb := callbackFor(e, n, psptest.Epoch, signKey)
	signHeaders(cb.Headers, signKey, e.certURL, "WH-SOMEONE-ELSES", "tx-1", psptest.Epoch, cb.Body)
	cb.ReceivedAt = psptest.Epoch
	if _, err := e.ch.ParseCallback(cb); err == nil || psp.IsTemporary(err) {
		t.Fatalf("another webhook's signature: %v", err)
	}
	cb.Headers.Set(headerAuthAlgo, "SHA1withRSA")
	if _, err := e.ch.ParseCallback(cb); err == nil {
		t.Fatal("another algorithm accepted")
	}
}
