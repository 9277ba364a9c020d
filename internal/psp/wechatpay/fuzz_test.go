package wechatpay

import (
	"bytes"
	"errors"
	"net/http"
	"testing"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// FuzzParseCallback: ParseCallback never panics; a body other than the
// one signed never verifies under the original headers; a correctly
// signed arbitrary body is either malformed or a sane notification.
func FuzzParseCallback(f *testing.F) {
	ch, _ := newChannel(f, "")
	n := psptest.Notifications()[0]
	good := callbackFor(n, psptest.Epoch, platformKey)
	f.Add(good.Body, "")
	f.Add([]byte(`{}`), "1")
	f.Add([]byte(`{"id":"x","resource":{"algorithm":"AEAD_AES_256_GCM","original_type":"transaction","ciphertext":"AAAA","nonce":"","associated_data":""}}`), "abc")
	f.Add([]byte("\xff\xfe"), "99999999999999999999")
	f.Fuzz(func(t *testing.T, body []byte, ts string) {
		cb := psptest.Clone(good)
		cb.Body, cb.ReceivedAt = body, psptest.Epoch
		got, err := ch.ParseCallback(cb)
		if bytes.Equal(body, good.Body) {
			if err != nil {
				t.Fatalf("the signed body itself: %v", err)
			}
		} else if !errors.Is(err, psp.ErrBadSignature) || !psptest.SameNotification(got, domain.Notification{}) {
			t.Fatalf("a changed body under the original signature: %+v, %v", got, err)
		}

		// An arbitrary timestamp header under the original signature.
		cb = psptest.Clone(good)
		cb.ReceivedAt = psptest.Epoch
		cb.Headers.Set(headerTimestamp, ts)
		if _, err := ch.ParseCallback(cb); err == nil && ts != good.Headers.Get(headerTimestamp) {
			t.Fatalf("timestamp %q verified under another's signature", ts)
		}

		// The fuzzed body, correctly signed.
		h := http.Header{}
		signHeaders(h, platformKey, sdkPubKeyID, psptest.Epoch.Unix(), "n", body)
		got, err = ch.ParseCallback(domain.Callback{Kind: domain.CallbackAsync, Headers: h, Body: body, ReceivedAt: psptest.Epoch})
		if err != nil {
			if !errors.Is(err, psp.ErrMalformed) || !psptest.SameNotification(got, domain.Notification{}) {
				t.Fatalf("signed body refused with %v, want ErrMalformed", err)
			}
			return
		}
		if got.TransactionCode == "" || got.EventID == "" || got.Amount.IsZero() || got.OccurredAt.IsZero() {
			t.Fatalf("accepted an insane notification %+v", got)
		}
	})
}
