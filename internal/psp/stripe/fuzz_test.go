package stripe

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

// FuzzParseCallback: never panics; a body or signature header that
// differs from what was signed never verifies; a correctly signed but
// arbitrary body is refused as malformed or read as a sane notification;
// arbitrary return queries never verify.
func FuzzParseCallback(f *testing.F) {
	ch, err := NewChannel(ChannelConfig{BaseURL: "http://127.0.0.1:1", SecretKey: testKey, WebhookSecrets: []string{testWhsec}})
	if err != nil {
		f.Fatal(err)
	}
	n := psptest.Notifications()[0]
	hook := signedWebhook(n, psptest.Epoch, testWhsec)
	hook.ReceivedAt = psptest.Epoch

	f.Add(hook.Body, hook.Headers.Get(HeaderSignature), "paygate_tc=T&paygate_res=success&paygate_sig=00")
	f.Add([]byte(`{}`), "t=1,v1=00", "")
	f.Add([]byte(`{"id":"evt_1","object":"event","type":"payment_intent.succeeded","created":1,"livemode":false,"data":{"object":{"id":"pi","object":"payment_intent","amount_received":-5,"currency":"usd","status":"succeeded","metadata":{"transaction_code":"T"}}}}`), "t=,v1=", "%zz")
	f.Add([]byte(`{"id":"evt_1","object":"event","type":"checkout.session.completed","created":1,"livemode":false,"data":{"object":{"id":"cs","object":"checkout.session","amount_total":1e400,"currency":"isk","client_reference_id":"T","payment_status":"paid","payment_intent":"pi"}}}`), "t=99999999999999999999,v1=zz", "paygate_tc=&paygate_tc=")
	f.Add([]byte("\xff\xfe"), "v1,t=1", "")

	f.Fuzz(func(t *testing.T, body []byte, header, rawQuery string) {
		// The fuzzed body under the real signature.
		cb := psptest.Clone(hook)
		cb.Body = body
		got, err := ch.ParseCallback(cb)
		if bytes.Equal(body, hook.Body) {
			if err != nil {
				t.Fatalf("the signed body itself: %v", err)
			}
		} else if !errors.Is(err, psp.ErrBadSignature) || got != (domain.Notification{}) {
			t.Fatalf("a changed body under the original signature: %+v, %v", got, err)
		}
		// The real body under a fuzzed header.
		cb = psptest.Clone(hook)
		cb.Headers.Set(HeaderSignature, header)
		got, err = ch.ParseCallback(cb)
		if header != hook.Headers.Get(HeaderSignature) && err == nil {
			// Only a header that still carries a valid v1 for the real
			// timestamp may pass (Stripe's format allows extra parts).
			if _, verr := VerifySignature(hook.Body, header, ch.secrets, hook.ReceivedAt, ch.cfg.Tolerance); verr != nil {
				t.Fatalf("header %q verified: %+v", header, got)
			}
		}
		// The fuzzed body, correctly signed.
		h := http.Header{HeaderSignature: {sign(psptest.Epoch.Unix(), body, testWhsec)}}
		got, err = ch.ParseCallback(domain.Callback{Kind: domain.CallbackAsync, Headers: h, Body: body, ReceivedAt: psptest.Epoch})
		switch {
		case err == nil:
			if got.TransactionCode == "" || got.EventID == "" || got.Amount.IsZero() || got.Amount.Minor() < 0 ||
				(got.Status != domain.PSPSucceeded && got.Status != domain.PSPFailed && got.Status != domain.PSPPending) {
				t.Fatalf("insane notification %+v from %q", got, body)
			}
		case !errors.Is(err, psp.ErrMalformed) || got != (domain.Notification{}):
			t.Fatalf("signed body refused with %v (%+v), want ErrMalformed", err, got)
		}
		// A fuzzed return query never verifies (no MAC can be guessed).
		q, _ := url.ParseQuery(rawQuery)
		if got, err := ch.ParseCallback(domain.Callback{Kind: domain.CallbackSync, Query: q, Headers: http.Header{}, ReceivedAt: psptest.Epoch}); err == nil {
			t.Fatalf("fuzzed return %q verified: %+v", rawQuery, got)
		}
	})
}
