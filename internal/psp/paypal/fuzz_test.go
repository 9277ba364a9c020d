package paypal

import (
	"bytes"
	"errors"
	"hash/crc32"
	"net/http"
	"testing"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// FuzzParseCallback: ParseCallback never panics and never makes a
// request; a body other than the one signed never verifies under the
// original headers (unless it has the same CRC-32, PayPal's design,
// which the target skips: see verify); an arbitrary header value never
// verifies under another's signature; a correctly signed arbitrary body
// is either malformed or a sane notification.
func FuzzParseCallback(f *testing.F) {
	e := newEnv(f, "", true)
	n := psptest.Notifications()[0]
	good := callbackFor(e, n, psptest.Epoch, signKey)
	f.Add(good.Body, "")
	f.Add([]byte(`{}`), "2026-11-25T10:00:00Z")
	f.Add([]byte(`{"id":"x","event_type":"PAYMENT.CAPTURE.COMPLETED","resource":{"status":"COMPLETED","amount":{"currency_code":"USD","value":"1.00"},"custom_id":"T"}}`), "https://evil.example/cert.pem")
	f.Add([]byte(`{"id":"x","event_type":"CHECKOUT.ORDER.APPROVED","resource":{"id":"O","status":"APPROVED","purchase_units":[{"custom_id":"T","amount":{"currency_code":"JPY","value":"1"}}]}}`), "SHA256withRSA")
	f.Add([]byte("\xff\xfe"), "99999999999999999999")
	before := e.cnt.n.Load()
	f.Fuzz(func(t *testing.T, body []byte, hv string) {
		cb := psptest.Clone(good)
		cb.Body, cb.ReceivedAt = body, psptest.Epoch
		got, err := e.ch.ParseCallback(cb)
		switch {
		case bytes.Equal(body, good.Body):
			if err != nil {
				t.Fatalf("the signed body itself: %v", err)
			}
		case crc32.ChecksumIEEE(body) == crc32.ChecksumIEEE(good.Body):
			// A CRC-32 collision: PayPal signs only the checksum.
		case !errors.Is(err, psp.ErrBadSignature) || !psptest.SameNotification(got, domain.Notification{}):
			t.Fatalf("a changed body under the original signature: %+v, %v", got, err)
		}

		// An arbitrary value in each signed header.
		for _, k := range []string{headerTransmissionID, headerTransmissionTime, headerCertURL, headerAuthAlgo} {
			cb := psptest.Clone(good)
			cb.ReceivedAt = psptest.Epoch
			if hv == cb.Headers.Get(k) {
				continue
			}
			cb.Headers.Set(k, hv)
			if _, err := e.ch.ParseCallback(cb); err == nil {
				t.Fatalf("%s %q verified under another's signature", k, hv)
			}
		}

		// The fuzzed body, correctly signed.
		h := http.Header{}
		signHeaders(h, signKey, e.certURL, testWebhookIDs[0], "tx", psptest.Epoch, body)
		got, err = e.ch.ParseCallback(domain.Callback{Kind: domain.CallbackAsync, Headers: h, Body: body, ReceivedAt: psptest.Epoch})
		if err != nil {
			if !errors.Is(err, psp.ErrMalformed) || !psptest.SameNotification(got, domain.Notification{}) {
				t.Fatalf("signed body refused with %v, want ErrMalformed", err)
			}
		} else if got.TransactionCode == "" || got.EventID == "" || got.Amount.IsZero() || got.OccurredAt.IsZero() {
			t.Fatalf("accepted an insane notification %+v", got)
		}
		if e.cnt.n.Load() != before {
			t.Fatalf("ParseCallback made a request")
		}
	})
}
