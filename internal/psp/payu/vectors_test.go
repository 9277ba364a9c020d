package payu

import (
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"net/url"
	"testing"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// TestRequestHashPublishedVector: the payment hash of PayU's own Python
// SDK test, github.com/payu-india/payu-sdk-python payu_sdk/__test__.py
// (parameters and payment_hash copied from there), made with PayU's public
// test key gtKFFx and its salt eCwWELxi.
//
// That file's reverse_hash is not used: its SDK hashes the response
// without the status field (payu_sdk/resources/hasher.py,
// validate_hash), which is not PayU's documented response formula.
func TestRequestHashPublishedVector(t *testing.T) {
	const want = "672de0802e96766044e473db706bdb1f14dea0ad3b3a69fed02377233a8bb73c646a43520bf0d7217647945ac0f0602c49e3b4109c379df75d8dbb1d4702ae6b"
	if got := RequestHash("gtKFFx", "20200429103010", "10", "iPhone", "Ashish", "test@gmail.com", [5]string{}, "eCwWELxi"); got != want {
		t.Errorf("RequestHash = %s, want %s", got, want)
	}
}

// TestHashFormulas checks the three formulas against the strings PayU's
// documentation spells out (https://docs.payu.in/docs/hashing-request-and-response,
// https://docs.payu.in/docs/authentication-with-payu-apis), and
// payu-india/web-sdk-go utils/hasher.go for where additionalCharges goes.
func TestHashFormulas(t *testing.T) {
	h := func(s string) string { b := sha512.Sum512([]byte(s)); return hex.EncodeToString(b[:]) }
	udf := [5]string{"u1", "u2", "u3", "u4", "u5"}
	if got, want := RequestHash("K", "T", "10.00", "P", "F", "e@x", udf, "S"), h("K|T|10.00|P|F|e@x|u1|u2|u3|u4|u5||||||S"); got != want {
		t.Errorf("RequestHash %s, want %s", got, want)
	}
	if got, want := ResponseHash("S", "success", udf, "e@x", "F", "P", "10.00", "T", "K", ""), h("S|success||||||u5|u4|u3|u2|u1|e@x|F|P|10.00|T|K"); got != want {
		t.Errorf("ResponseHash %s, want %s", got, want)
	}
	if got, want := ResponseHash("S", "success", udf, "e@x", "F", "P", "10.00", "T", "K", "2.50"), h("2.50|S|success||||||u5|u4|u3|u2|u1|e@x|F|P|10.00|T|K"); got != want {
		t.Errorf("ResponseHash with additionalCharges %s, want %s", got, want)
	}
	if got, want := CommandHash("K", "verify_payment", "T", "S"), h("K|verify_payment|T|S"); got != want {
		t.Errorf("CommandHash %s, want %s", got, want)
	}
}

// TestAdditionalCharges: a response with additionalCharges verifies with
// the prepended variant only, and the amount read is the payment's.
func TestAdditionalCharges(t *testing.T) {
	ch := newTestChannel(t)
	n := domain.Notification{TransactionCode: "T1", Status: domain.PSPSucceeded, Amount: domain.MustMoney(100000, "INR")}
	q := responseParams(n, testSalt, url.Values{"additionalCharges": {"20.00"}})
	got, err := ch.ParseCallback(formCallback(domain.CallbackAsync, q))
	if err != nil || !got.Amount.Equal(n.Amount) {
		t.Fatalf("(%+v, %v)", got, err)
	}
	q.Del("additionalCharges")
	if _, err := ch.ParseCallback(formCallback(domain.CallbackAsync, q)); !errors.Is(err, psp.ErrBadSignature) {
		t.Errorf("additionalCharges dropped: %v, want ErrBadSignature", err)
	}
}
