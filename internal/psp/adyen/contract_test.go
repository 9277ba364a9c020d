package adyen

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// The contract suite names where a signature travels as headers or query
// parameters, and tampers with a callback by moving or deleting them.
// Adyen's travels inside the body (additionalData.hmacSignature), so the
// suite runs against sigShim: the harness carries the signature in the
// query parameter "hmacSignature" and leaves the placeholder
// `"hmacSignature":""` in the body; the shim puts the one into the other,
// byte for byte, and hands the result to the real ParseCallback. A
// deleted or moved parameter, or a flipped byte in the placeholder, so
// reaches the parser as a missing or foreign signature.
//
// The harness's bodies carry only the fields the HMAC covers (plus
// "live", which the channel checks): Adyen's signature does not cover
// eventDate, reason, paymentMethod, operations or the rest of
// additionalData, so a flipped byte there would still verify — by
// design, ParseCallback reads none of them for a decision (eventDate only
// becomes OccurredAt). TestRealWebhookShape covers bodies with them.
type sigShim struct{ *Channel }

const placeholder = `"hmacSignature":""`

func (s sigShim) ParseCallback(cb domain.Callback) (domain.Notification, error) {
	sig, ok := cb.Query["hmacSignature"]
	c := psptest.Clone(cb)
	delete(c.Query, "hmacSignature")
	if ok && len(sig) == 1 && bytes.Count(c.Body, []byte(placeholder)) == 1 {
		c.Body = bytes.Replace(c.Body, []byte(placeholder), []byte(`"hmacSignature":"`+sig[0]+`"`), 1)
	}
	return s.Channel.ParseCallback(c)
}

func harnessCallback(n domain.Notification, key string) domain.Callback {
	body := webhook(key, "false", item(n))
	it := requestItemOf(item(n))
	k := mustHex(key)
	body = bytes.Replace(body, []byte(`"hmacSignature":"`+Sign(k, it.signedData())+`"`), []byte(placeholder), 1)
	cb := asyncCallback(body)
	cb.Query = url.Values{"hmacSignature": {Sign(k, it.signedData())}}
	return cb
}

func TestContract(t *testing.T) {
	var calls atomic.Int64
	ch := newTestChannel(t, func(c *ChannelConfig) {
		c.Transport = roundTripFunc(func(*http.Request) (*http.Response, error) {
			calls.Add(1)
			return nil, errors.New("no network in tests")
		})
	})
	psptest.Run(t, psptest.Harness{
		Channel:   sigShim{ch},
		Requests:  calls.Load,
		Tolerance: -1, // Adyen signs no time
		Sign: func(_ domain.CallbackKind, n domain.Notification, _ time.Time) domain.Callback {
			return harnessCallback(n, testKey)
		},
		Forge: func(_ domain.CallbackKind, n domain.Notification, _ time.Time) domain.Callback {
			return harnessCallback(n, wrongKey)
		},
		SignatureKeys: map[domain.CallbackKind][]string{domain.CallbackAsync: {"hmacSignature"}},
		Want:          harnessWant,
	})
}

// harnessWant is what the harness's bodies read as.
func harnessWant(_ domain.CallbackKind, n domain.Notification) domain.Notification {
	success := "false"
	if n.Status == domain.PSPSucceeded {
		success = "true"
	}
	n.EventID = EventAuthorisation + ":" + n.PSPReference + ":" + success
	n.OccurredAt = time.Time{} // no eventDate in the harness's bodies
	return n
}

// BenchmarkParseCallback: the HMAC check and parse of a webhook as Adyen
// sends it (the signature in the body), on the channel itself.
func BenchmarkParseCallback(b *testing.B) {
	sign := func(key string) func(domain.CallbackKind, domain.Notification, time.Time) domain.Callback {
		return func(_ domain.CallbackKind, n domain.Notification, _ time.Time) domain.Callback {
			return asyncCallback(webhook(key, "false", item(n)))
		}
	}
	psptest.Bench(b, psptest.Harness{
		Channel:       newTestChannel(b),
		Tolerance:     -1,
		Sign:          sign(testKey),
		Forge:         sign(wrongKey),
		SignatureKeys: map[domain.CallbackKind][]string{domain.CallbackAsync: {"hmacSignature"}},
		Want:          harnessWant,
	})
}

// TestContractOldKey: a webhook signed with a key being rotated out still
// verifies.
func TestContractOldKey(t *testing.T) {
	for _, n := range psptest.Notifications() {
		cb := harnessCallback(n, oldKey)
		cb.ReceivedAt = psptest.Epoch
		if _, err := (sigShim{newTestChannel(t)}).ParseCallback(cb); err != nil {
			t.Errorf("%s signed with the old key: %v", n.TransactionCode, err)
		}
	}
}
