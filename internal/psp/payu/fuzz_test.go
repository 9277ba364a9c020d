package payu

import (
	"bytes"
	"errors"
	"net/url"
	"testing"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// FuzzParseCallback feeds arbitrary form bodies to ParseCallback: it
// never panics; a refusal carries the zero notification; and whatever
// verifies states the signed facts of a response we hashed (PayU hashes
// fields, not bytes: unsigned parameters may differ, signed ones never).
func FuzzParseCallback(f *testing.F) {
	ch := newTestChannel(f)
	n := inrNotifications()[0]
	signed := responseParams(n, testSalt, nil)
	want, err := ch.ParseCallback(formCallback(domain.CallbackSync, signed))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(signed.Encode()))
	f.Add([]byte(responseParams(n, testSalt, url.Values{"additionalCharges": {"1.00"}, "mihpayid": {"1"}}).Encode()))
	f.Add([]byte("hash=00&hash=11&amount=1e9"))
	f.Add([]byte("%zz"))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, body []byte) {
		// The body as PayU's POST, and the same parameters as a GET query.
		got, err := ch.ParseCallback(domain.Callback{Kind: domain.CallbackSync, Body: body})
		if q, qerr := url.ParseQuery(string(body)); qerr == nil {
			qgot, qe := ch.ParseCallback(domain.Callback{Kind: domain.CallbackAsync, Query: q})
			if qe == nil && (qgot.TransactionCode != want.TransactionCode || qgot.Status != want.Status || !qgot.Amount.Equal(want.Amount)) {
				t.Fatalf("a query we never hashed verified: %q → %+v", body, qgot)
			}
		}
		if err != nil {
			if got != (domain.Notification{}) || (!errors.Is(err, psp.ErrBadSignature) && !errors.Is(err, psp.ErrMalformed)) {
				t.Fatalf("refused with %v, read %+v", err, got)
			}
			return
		}
		if !bytes.Equal(body, []byte(signed.Encode())) && (got.TransactionCode != want.TransactionCode ||
			got.Status != want.Status || !got.Amount.Equal(want.Amount)) {
			t.Fatalf("a response we never hashed verified: %q → %+v", body, got)
		}
	})
}
