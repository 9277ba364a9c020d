package payu

import (
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// inrNotifications are the suite's statements in the one currency PayU
// India takes, with the same spread: success and failure, and an amount
// a float64 cannot hold (2^53+1 paise).
func inrNotifications() []domain.Notification {
	var out []domain.Notification
	for _, n := range psptest.Notifications() {
		if n.Amount.Currency().Exponent() != 2 {
			continue // PayU India has no 0- or 3-decimal currency
		}
		n.Amount = domain.MustMoney(n.Amount.Minor(), "INR")
		out = append(out, n)
	}
	return out
}

// The suite tampers with a callback by moving or deleting the headers or
// query parameters that carry its signature. PayU's hash travels with the
// other response parameters; ParseCallback reads them from a form body
// (PayU's POST) or, when there is no body, from the query, so the
// harness signs GET callbacks and TestFormBody repeats the tampering on
// POSTed forms.
//
// The harness's responses carry only the fields the reverse hash covers,
// and only non-empty ones: PayU does not sign mihpayid, mode, addedon,
// bank_ref_num and the rest, and a flipped byte in an empty udf's name
// leaves what is signed unchanged. ParseCallback reads none of those; the
// confirming Query supplies mihpayid and the time (Want below).
func harness(ch *Channel, calls *atomic.Int64) psptest.Harness {
	sign := func(kind domain.CallbackKind, n domain.Notification, salt string) domain.Callback {
		return domain.Callback{Kind: kind, Method: http.MethodGet, Path: "/v1/return/payu", Headers: http.Header{},
			Query: responseParams(n, salt, nil)}
	}
	return psptest.Harness{
		Channel:       ch,
		Kinds:         []domain.CallbackKind{domain.CallbackAsync, domain.CallbackSync},
		Tolerance:     -1, // PayU signs no time
		Notifications: inrNotifications(),
		Sign: func(k domain.CallbackKind, n domain.Notification, _ time.Time) domain.Callback {
			return sign(k, n, testSalt)
		},
		Forge: func(k domain.CallbackKind, n domain.Notification, _ time.Time) domain.Callback {
			return sign(k, n, "not-"+testSalt)
		},
		SignatureKeys: map[domain.CallbackKind][]string{domain.CallbackAsync: {"hash"}, domain.CallbackSync: {"hash"}},
		Want: func(_ domain.CallbackKind, n domain.Notification) domain.Notification {
			n.PSPReference, n.EventID, n.OccurredAt = "", "", time.Time{}
			return n
		},
		Requests: calls.Load,
	}
}

func TestContract(t *testing.T) {
	var calls atomic.Int64
	ch := newTestChannel(t, func(c *ChannelConfig) {
		c.Transport = roundTripFunc(func(*http.Request) (*http.Response, error) {
			calls.Add(1)
			return nil, errors.New("no network in tests")
		})
	})
	psptest.Run(t, harness(ch, &calls))
}

// BenchmarkParseCallback: the SHA-512 hash check and parse of PayU's
// response, as a notification and as the buyer's return.
func BenchmarkParseCallback(b *testing.B) {
	var calls atomic.Int64
	psptest.Bench(b, harness(newTestChannel(b), &calls))
}

// TestFormBody repeats the suite's tampering on the form PayU POSTs: a
// correct form verifies, every flipped byte, a cut or appended byte, a
// missing, repeated or moved hash, and another salt are refused.
func TestFormBody(t *testing.T) {
	ch := newTestChannel(t)
	n := inrNotifications()[0]
	cb := formCallback(domain.CallbackSync, responseParams(n, testSalt, nil))
	got, err := ch.ParseCallback(cb)
	if err != nil || got.TransactionCode != n.TransactionCode || !got.Amount.Equal(n.Amount) || got.Status != domain.PSPSucceeded {
		t.Fatalf("signed form: (%+v, %v)", got, err)
	}
	refused := func(what string, c domain.Callback) {
		t.Helper()
		got, err := ch.ParseCallback(c)
		if !errors.Is(err, psp.ErrBadSignature) || got != (domain.Notification{}) {
			t.Errorf("%s: (%+v, %v), want ErrBadSignature", what, got, err)
		}
	}
	for i := range cb.Body {
		c := psptest.Clone(cb)
		c.Body[i] ^= 0x01
		refused("flipped byte", c)
	}
	c := psptest.Clone(cb)
	c.Body = c.Body[:len(c.Body)-1]
	refused("cut", c)
	c = psptest.Clone(cb)
	c.Body = append(c.Body, 'x')
	refused("appended", c)
	q := responseParams(n, testSalt, nil)
	q.Del("hash")
	refused("no hash", formCallback(domain.CallbackSync, q))
	q = responseParams(n, testSalt, nil)
	q.Add("hash", q.Get("hash"))
	refused("hash twice", formCallback(domain.CallbackSync, q))
	m := n
	m.Amount = domain.MustMoney(n.Amount.Minor()+1, "INR")
	q = responseParams(m, testSalt, nil)
	q.Set("hash", responseParams(n, testSalt, nil).Get("hash"))
	refused("amount+1 under the original hash", formCallback(domain.CallbackSync, q))
	refused("another salt", formCallback(domain.CallbackAsync, responseParams(n, "wrong", nil)))
	if _, err := ch.ParseCallback(formCallback(domain.CallbackAsync, responseParams(n, oldSalt, nil))); err != nil {
		t.Errorf("hashed with the old salt: %v", err)
	}
	// Unsigned fields do not stop a response, and are not read.
	extra := url.Values{"mihpayid": {"403993715521210667"}, "mode": {"CC"}, "unmappedstatus": {"captured"},
		"addedon": {"2020-06-30 12:32:16"}, "udf2": {""}, "field9": {"No Error"}}
	got, err = ch.ParseCallback(formCallback(domain.CallbackSync, responseParams(n, testSalt, extra)))
	if err != nil || got.PSPReference != "" {
		t.Errorf("real-shaped form: (%+v, %v)", got, err)
	}
	// Another merchant key, correctly hashed with our salt, is refused.
	q = responseParams(n, testSalt, nil)
	q.Set("key", "other1")
	q.Set("hash", ResponseHash(testSalt, "success", [5]string{"INR"}, "asha@example.com", "Asha", "Phone case", n.Amount.Decimal(), n.TransactionCode, "other1", ""))
	refused("another merchant key", formCallback(domain.CallbackSync, q))
}
