package adyen

import (
	"errors"
	"testing"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// Published test vectors of Adyen's own Go library,
// github.com/Adyen/adyen-go-api-library, src/hmacvalidator/hmacvalidator_test.go:
// the key, the notification item and the signatures below are copied from
// there.
const (
	vectorKey = testKey
	// vectorItemSig is that file's expectedSign for notificationRequestItem.
	vectorItemSig = "ipnxGCaUZ4l8TUW75a71/ghd2Fe5ffvX0pV4TLTntIc="
)

// vectorItem is that file's notificationRequestItem (eventDate 1970-01-01,
// paymentMethod "VISA" and reason "reason" are not signed).
var vectorItem = map[string]any{
	"additionalData":      map[string]any{"hmacSignature": vectorItemSig},
	"amount":              map[string]any{"currency": "EUR", "value": 1000},
	"eventCode":           "EVENT",
	"eventDate":           "1970-01-01T00:00:00Z",
	"merchantAccountCode": "merchantAccount",
	"merchantReference":   "reference",
	"originalReference":   "originalReference",
	"paymentMethod":       "VISA",
	"pspReference":        "pspReference",
	"reason":              "reason",
	"success":             "true",
}

func TestSignPublishedVectors(t *testing.T) {
	it := requestItemOf(vectorItem)
	// "Get correct data to sign"
	if got, want := it.signedData(), "pspReference:originalReference:merchantAccount:reference:1000:EUR:EVENT:true"; got != want {
		t.Errorf("signed data %q, want %q", got, want)
	}
	// "Get Valid HMAC"
	if got := Sign(mustHex(vectorKey), it.signedData()); got != vectorItemSig {
		t.Errorf("Sign = %q, want %q", got, vectorItemSig)
	}
	// "Encrypt correctly": the library's CalculateHmac over a fixed string.
	const data = "countryCode:currencyCode:merchantAccount:merchantReference:paymentAmount:sessionValidity:skinCode:NL:EUR:MagentoMerchantTest2:TEST-PAYMENT-2017-02-01-14\\:02\\:05:199:2017-02-02T14\\:02\\:05+01\\:00:PKz2KML1"
	if got, want := Sign(mustHex(vectorKey), data), "34oR8T1whkQWTv9P+SzKyp8zhusf9n0dpqrm9nsqSJs="; got != want {
		t.Errorf("Sign(fixed string) = %q, want %q", got, want)
	}
}

// TestParsePublishedVector runs the published item through ParseCallback,
// as a webhook body: its signature verifies (the event "EVENT" is then
// refused as not a payment outcome, not as a bad signature), and the
// library's "Get Invalid HMAC" case is refused.
func TestParsePublishedVector(t *testing.T) {
	ch := newTestChannel(t, func(c *ChannelConfig) { c.MerchantAccount = "merchantAccount" })
	cb := asyncCallback(webhook("", "false", vectorItem))
	if _, err := ch.ParseCallback(cb); !errors.Is(err, psp.ErrUnsupported) {
		t.Errorf("published item: %v, want ErrUnsupported (verified, not a payment event)", err)
	}
	bad := cloneMap(vectorItem)
	bad["additionalData"] = map[string]any{"hmacSignature": "InvalidSignature"}
	if _, err := ch.ParseCallback(asyncCallback(webhook("", "false", bad))); !errors.Is(err, psp.ErrBadSignature) {
		t.Errorf("invalid signature: %v, want ErrBadSignature", err)
	}
	// The same item as an AUTHORISATION, signed with the published key, reads.
	auth := cloneMap(vectorItem)
	auth["eventCode"] = EventAuthorisation
	delete(auth, "additionalData")
	n, err := ch.ParseCallback(asyncCallback(webhook(vectorKey, "false", auth)))
	if err != nil {
		t.Fatalf("AUTHORISATION: %v", err)
	}
	want := domain.Notification{TransactionCode: "reference", PSPReference: "pspReference", EventID: "AUTHORISATION:pspReference:true",
		Status: domain.PSPSucceeded, Amount: domain.MustMoney(1000, "EUR")}
	want.OccurredAt = n.OccurredAt
	if !psptest.SameNotification(n, want) || !n.OccurredAt.IsZero() && n.OccurredAt.Unix() != 0 {
		t.Errorf("read %+v, want %+v", n, want)
	}
}

// TestRealWebhookShape: a webhook as Adyen sends it (the shape of
// adyen-java-api-library src/test/resources/mocks/notification/authorisation-true.json:
// additionalData with card details, eventDate, operations, paymentMethod,
// reason), re-signed with our test key since that fixture's key is not
// published. The unsigned fields do not stop it, and do not change what
// is read, except eventDate, which is the time of the event.
func TestRealWebhookShape(t *testing.T) {
	it := map[string]any{
		"additionalData": map[string]any{"expiryDate": "12/2012", " NAME1 ": "VALUE1", "authCode": "1234", "cardSummary": "7777",
			"totalFraudScore": "10", "NAME2": "  VALUE2  ", "fraudCheck-6-ShopperIpUsage": "10"},
		"amount":              map[string]any{"currency": "EUR", "value": 10100},
		"eventCode":           "AUTHORISATION",
		"eventDate":           "2017-01-19T16:42:03+01:00",
		"merchantAccountCode": "MagentoMerchantTest2",
		"merchantReference":   "8313842560770001",
		"operations":          []any{"CANCEL", "CAPTURE", "REFUND"},
		"paymentMethod":       "visa",
		"pspReference":        "123456789",
		"reason":              "1234:7777:12/2012",
		"success":             "true",
	}
	ch := newTestChannel(t, func(c *ChannelConfig) { c.MerchantAccount = "MagentoMerchantTest2" })
	n, err := ch.ParseCallback(asyncCallback(webhook(testKey, "false", it)))
	if err != nil {
		t.Fatalf("ParseCallback: %v", err)
	}
	if n.TransactionCode != "8313842560770001" || n.PSPReference != "123456789" || n.Status != domain.PSPSucceeded ||
		!n.Amount.Equal(domain.MustMoney(10100, "EUR")) || n.OccurredAt.Format("2006-01-02T15:04:05Z07:00") != "2017-01-19T15:42:03Z" {
		t.Errorf("read %+v", n)
	}
}

// TestParseRefusals: what a verified signature does not make acceptable.
func TestParseRefusals(t *testing.T) {
	n := psptest.Notifications()[0]
	ch := newTestChannel(t)
	other := item(n)
	other["merchantAccountCode"] = "SomeoneElseECOM"
	refund := item(n)
	refund["eventCode"], refund["originalReference"] = "REFUND", "psp_original"
	closed := item(n)
	closed["eventCode"] = EventOfferClosed
	clp := item(n)
	clp["amount"] = map[string]any{"currency": "CLP", "value": 1999} // CLP has 2 decimals at Adyen, 0 in ISO
	noRef := item(n)
	noRef["merchantReference"] = ""
	cases := []struct {
		name string
		body []byte
		want error
		say  string
	}{
		{"another merchant account", webhook(testKey, "false", other), psp.ErrBadSignature, "merchant account"},
		{"live flag on a test channel", webhook(testKey, "true", item(n)), psp.ErrBadSignature, "live flag"},
		{"batch of two", webhook(testKey, "false", item(n), item(psptest.Notifications()[1])), psp.ErrMalformed, "batch of 2"},
		{"no items", webhook(testKey, "false"), psp.ErrBadSignature, "no notification item"},
		{"unsigned", webhook("", "false", item(n)), psp.ErrBadSignature, "no hmacSignature"},
		{"refund event", webhook(testKey, "false", refund), psp.ErrUnsupported, "REFUND"},
		{"CLP with a fraction of a peso", webhook(testKey, "false", clp), psp.ErrMalformed, "CLP"},
		{"no merchant reference", webhook(testKey, "false", noRef), psp.ErrMalformed, "merchantReference"},
		{"trailing bytes", append(webhook(testKey, "false", item(n)), '\n'), psp.ErrBadSignature, "after the JSON value"},
		{"not JSON", []byte("eventCode=AUTHORISATION"), psp.ErrBadSignature, "invalid"},
	}
	for _, c := range cases {
		got, err := ch.ParseCallback(asyncCallback(c.body))
		if !errors.Is(err, c.want) || got != (domain.Notification{}) {
			t.Errorf("%s: (%+v, %v), want %v and the zero notification", c.name, got, err, c.want)
			continue
		}
		mustContain(t, err, c.say)
	}
	if got, err := ch.ParseCallback(asyncCallback(webhook(testKey, "false", closed))); err != nil || got.Status != domain.PSPFailed {
		t.Errorf("OFFER_CLOSED: (%+v, %v), want failed", got, err)
	}
	live := newTestChannel(t, func(c *ChannelConfig) {
		c.Environment, c.LivePrefix, c.BaseURL = EnvLive, "1797a841fbb37ca7-AdyenDemo", ""
	})
	if _, err := live.ParseCallback(asyncCallback(webhook(testKey, "true", item(n)))); err != nil {
		t.Errorf("live webhook on a live channel: %v", err)
	}
	if live.base != "https://1797a841fbb37ca7-AdyenDemo-checkout-live.adyenpayments.com/checkout/v71" {
		t.Errorf("live base %q", live.base)
	}
	sync := asyncCallback(nil)
	sync.Kind = domain.CallbackSync
	if _, err := ch.ParseCallback(sync); !errors.Is(err, psp.ErrUnsupported) {
		t.Errorf("sync return: %v, want ErrUnsupported", err)
	}
}
