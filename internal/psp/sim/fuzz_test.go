package sim

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// FuzzParseCallback feeds arbitrary bodies and queries to ParseCallback:
// it never panics; a body or query that differs from what was signed
// never verifies; a correctly signed but arbitrary message is either
// refused as malformed or read as a sane notification.
func FuzzParseCallback(f *testing.F) {
	ch, err := NewChannel(ChannelConfig{BaseURL: "http://127.0.0.1:1", MerchantID: testMerchant, Secrets: []string{testSecret}})
	if err != nil {
		f.Fatal(err)
	}
	n := psptest.Notifications()[0]
	hook := signedCallback(domain.CallbackAsync, n, psptest.Epoch, testSecret)
	ret := signedCallback(domain.CallbackSync, n, psptest.Epoch, testSecret)

	f.Add(hook.Body, ret.Query.Encode())
	f.Add([]byte(`{}`), "")
	f.Add([]byte(`{"event_id":"e","type":"payment.succeeded","payment_id":"p","merchant_ref":"T","status":"succeeded","amount":-5,"currency":"USD","occurred_at":"2026-11-25T10:00:00Z"}`),
		"payment_id=p&merchant_ref=T&status=succeeded&amount=-5&currency=USD")
	f.Add([]byte(`{"amount":1e400,"currency":"USD"}`), "amount=99999999999999999999&currency=usd")
	f.Add([]byte(`{"amount":9007199254740993.0}`), "sig=v1%3D00&sig=v1%3D11&ts=1")
	f.Add([]byte("\xff\xfe"), "%zz")

	f.Fuzz(func(t *testing.T, body []byte, rawQuery string) {
		// The fuzzed body under the real webhook's headers.
		cb := psptest.Clone(hook)
		cb.Body, cb.ReceivedAt = body, psptest.Epoch
		got, err := ch.ParseCallback(cb)
		if bytes.Equal(body, hook.Body) {
			if err != nil {
				t.Fatalf("the signed body itself: %v", err)
			}
		} else if !errors.Is(err, psp.ErrBadSignature) || !psptest.SameNotification(got, domain.Notification{}) {
			t.Fatalf("a changed body under the original signature: %+v, %v", got, err)
		}

		// The fuzzed body, correctly signed.
		h := http.Header{}
		signWebhook(h, testMerchant, []byte(testSecret), psptest.Epoch.Unix(), body)
		got, err = ch.ParseCallback(domain.Callback{Kind: domain.CallbackAsync, Headers: h, Body: body, ReceivedAt: psptest.Epoch})
		checkSane(t, got, err, true)

		// The fuzzed query as received, then correctly signed.
		q, _ := url.ParseQuery(rawQuery) // keeps what it could parse
		got, err = ch.ParseCallback(domain.Callback{Kind: domain.CallbackSync, Query: q, ReceivedAt: psptest.Epoch})
		// Hex is read in either case: the same MAC, not a forgery.
		if err == nil && (!bytes.Equal(canonicalQuery(q), canonicalQuery(ret.Query)) || !strings.EqualFold(q.Get(qSignature), ret.Query.Get(qSignature))) {
			t.Fatalf("an unsigned query verified: %q → %+v", rawQuery, got)
		}
		if q == nil {
			q = url.Values{}
		}
		q.Set(qTimestamp, strconv.FormatInt(psptest.Epoch.Unix(), 10))
		q.Set(qSignature, signQuery([]byte(testSecret), psptest.Epoch.Unix(), q))
		got, err = ch.ParseCallback(domain.Callback{Kind: domain.CallbackSync, Query: q, ReceivedAt: psptest.Epoch})
		checkSane(t, got, err, false)
	})
}

// checkSane: a correctly signed message is either malformed (and then
// the notification is zero) or a notification with every field right.
func checkSane(t *testing.T, n domain.Notification, err error, async bool) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, psp.ErrMalformed) || !psptest.SameNotification(n, domain.Notification{}) {
			t.Fatalf("signed message refused with %v (notification %+v), want ErrMalformed", err, n)
		}
		return
	}
	if n.TransactionCode == "" || n.PSPReference == "" || n.Amount.IsZero() || n.Amount.Minor() < 0 ||
		(n.Status != domain.PSPSucceeded && n.Status != domain.PSPFailed) {
		t.Fatalf("accepted an insane notification %+v", n)
	}
	if async && (n.EventID == "" || n.OccurredAt.IsZero()) {
		t.Fatalf("webhook without event id or time accepted: %+v", n)
	}
}
