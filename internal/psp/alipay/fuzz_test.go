package alipay

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// FuzzParseCallback: never panics; a body other than the signed one
// never verifies unless it decodes to the very same signed parameters
// ("%41" for "A", or an added empty parameter, which Alipay's scheme
// leaves unsigned and ParseCallback reads as absent); a correctly signed arbitrary parameter set is either
// malformed or a sane notification.
func FuzzParseCallback(f *testing.F) {
	ch, _ := newChannel(f, "")
	good := notification(formNote(), psptest.Epoch, alipayKey)
	f.Add(good.Body)
	f.Add([]byte("sign=&sign_type=RSA2"))
	f.Add([]byte("total_amount=1e400&trans_currency=usd&notify_time=2026-11-25+18%3A00%3A00"))
	f.Add([]byte("%zz&&=="))
	goodParams, _ := url.ParseQuery(string(good.Body))
	f.Fuzz(func(t *testing.T, body []byte) {
		cb := psptest.Clone(good)
		cb.Body, cb.ReceivedAt = body, psptest.Epoch
		got, err := ch.ParseCallback(cb)
		if err == nil {
			p, perr := url.ParseQuery(string(body))
			if perr != nil || !sameParams(p, goodParams) {
				t.Fatalf("a changed body verified: %q → %+v", body, got)
			}
		} else if !bytes.Equal(body, good.Body) && !errors.Is(err, psp.ErrBadSignature) && !errors.Is(err, psp.ErrMalformed) {
			t.Fatalf("unexpected error class: %v", err)
		}
		if err != nil && !psptest.SameNotification(got, domain.Notification{}) {
			t.Fatalf("refused but read: %+v", got)
		}

		// The fuzzed parameters, signed by Alipay, received as a form.
		p, perr := url.ParseQuery(string(body))
		if perr != nil {
			return
		}
		for k, v := range p {
			p[k] = v[:1]
		}
		p.Set("sign_type", "RSA2")
		signParams(p, alipayKey)
		got, err = ch.ParseCallback(domain.Callback{Kind: domain.CallbackAsync, Method: http.MethodPost, Body: []byte(p.Encode()), ReceivedAt: psptest.Epoch})
		if err != nil {
			if !(errors.Is(err, psp.ErrMalformed) || errors.Is(err, psp.ErrStale)) || !psptest.SameNotification(got, domain.Notification{}) {
				t.Fatalf("signed parameters refused with %v", err)
			}
			return
		}
		if got.TransactionCode == "" || got.PSPReference == "" || got.EventID == "" || got.Amount.IsZero() {
			t.Fatalf("accepted an insane notification %+v", got)
		}
	})
}

// sameParams compares parameter sets as Alipay's signature sees them:
// an empty value is no parameter (it is left out of the signed content,
// and ParseCallback reads it as absent, never as a value).
func sameParams(a, b url.Values) bool {
	nonEmpty := func(p url.Values) map[string]string {
		m := map[string]string{}
		for k, v := range p {
			if len(v) != 1 {
				m[k] = "\x00several"
			} else if v[0] != "" {
				m[k] = v[0]
			}
		}
		return m
	}
	x, y := nonEmpty(a), nonEmpty(b)
	if len(x) != len(y) {
		return false
	}
	for k, v := range x {
		if y[k] != v {
			return false
		}
	}
	return true
}
