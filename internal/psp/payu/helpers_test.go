package payu

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/paygate/paygate/domain"
)

// testKey and testSalt are PayU's public test credentials, the ones the
// payu-india/payu-sdk-python test vector below is made with.
const (
	testKey  = "gtKFFx"
	testSalt = "eCwWELxi"
	oldSalt  = "old-salt-being-rotated-out"
)

func newTestChannel(t testing.TB, edit ...func(*ChannelConfig)) *Channel {
	t.Helper()
	cfg := ChannelConfig{Key: testKey, Salts: []string{testSalt, oldSalt}, APIURL: "http://127.0.0.1:1/merchant/postservice.php?form=2"}
	for _, f := range edit {
		f(&cfg)
	}
	ch, err := NewChannel(cfg)
	if err != nil {
		t.Fatalf("NewChannel: %v", err)
	}
	return ch
}

// responseParams are the parameters of PayU's response stating n, hashed
// with salt. Only signed fields are set, and only non-empty ones (see
// contract_test.go); extra adds unsigned ones.
func responseParams(n domain.Notification, salt string, extra url.Values) url.Values {
	status := "failure"
	switch n.Status {
	case domain.PSPSucceeded:
		status = "success"
	case domain.PSPPending:
		status = "pending"
	}
	amount := n.Amount.Decimal()
	udf := [5]string{n.Amount.Currency().Code()}
	q := url.Values{"key": {testKey}, "txnid": {n.TransactionCode}, "amount": {amount}, "productinfo": {"Phone case"},
		"firstname": {"Asha"}, "email": {"asha@example.com"}, "status": {status}, "udf1": {udf[0]}}
	for k, v := range extra {
		q[k] = v
	}
	q.Set("hash", ResponseHash(salt, status, udf, "asha@example.com", "Asha", "Phone case", amount, n.TransactionCode, testKey, q.Get("additionalCharges")))
	return q
}

// formCallback is the response as the buyer's browser POSTs it to surl.
func formCallback(kind domain.CallbackKind, q url.Values) domain.Callback {
	return domain.Callback{Kind: kind, Method: http.MethodPost, Path: "/v1/return/payu", Query: url.Values{},
		Headers: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, Body: []byte(q.Encode())}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
