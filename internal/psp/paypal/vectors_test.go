package paypal

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// The published verification vector: a real sandbox webhook, its
// headers and webhook id, as the PayPal REST SDK for Java checks them
// offline in its tests (github.com/paypal/PayPal-Java-SDK,
// rest-api-sdk/src/test/java/com/paypal/base/ValidateCertTest.java,
// testValidEndpoint expects true; the same vector is in PayPal-NET-SDK's
// WebhookEventTest). The certificate the headers name
// (CERT-360caa42-fca2a594-a5cafa77, messageverificationcerts.sandbox.paypal.com,
// valid 2015-03-18 to 2017-03-22) is PayPal's answer to GET on that URL,
// recorded in the PayPal REST SDK for Node's nock test mocks (served with
// content-type application/x-pem-file). It expired long ago and its
// chain is not included, so the test trusts it without chain
// verification (InsecureSkipChainVerify); everything else is checked.
const (
	sdkCertURL          = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77"
	sdkWebhookID        = "3RN13029J36659323"
	sdkTransmissionID   = "b2384410-f8d2-11e4-8bf3-77339302725b"
	sdkTransmissionTime = "2015-05-12T18:14:14Z"
	sdkTransmissionSig  = "vSOIQFIZQHv8G2vpbOpD/4fSC4/MYhdHyv+AmgJyeJQq6q5avWyHIe/zL6qO5hle192HSqKbYveLoFXGJun2od2zXN3Q45VBXwdX3woXYGaNq532flAtiYin+tQ/0pNwRDsVIufCxa3a8HskaXy+YEfXNnwCSL287esD3HgOHmuAs0mYKQdbR4e8Evk8XOOQaZzGeV7GNXXz19gzzvyHbsbHmDz5VoRl9so5OoHqvnc5RtgjZfG8KA9lXh2MTPSbtdTLQb9ikKYnOGM+FasFMxk5stJisgmxaefpO9Q1qm3rCjaJ29aAOyDNr3Q7WkeN3w4bSXtFMwyRBOF28pJg9g=="
	sdkBody             = `{"id":"WH-2W7266712B616591M-36507203HX6402335","create_time":"2015-05-12T18:14:14Z","resource_type":"sale","event_type":"PAYMENT.SALE.COMPLETED","summary":"Payment completed for $ 20.0 USD","resource":{"id":"7DW85331GX749735N","create_time":"2015-05-12T18:13:18Z","update_time":"2015-05-12T18:13:36Z","amount":{"total":"20.00","currency":"USD"},"payment_mode":"INSTANT_TRANSFER","state":"completed","protection_eligibility":"ELIGIBLE","protection_eligibility_type":"ITEM_NOT_RECEIVED_ELIGIBLE,UNAUTHORIZED_PAYMENT_ELIGIBLE","parent_payment":"PAY-1A142943SV880364LKVJEFPQ","transaction_fee":{"value":"0.88","currency":"USD"},"links":[{"href":"https://api.sandbox.paypal.com/v1/payments/sale/7DW85331GX749735N","rel":"self","method":"GET"},{"href":"https://api.sandbox.paypal.com/v1/payments/sale/7DW85331GX749735N/refund","rel":"refund","method":"POST"},{"href":"https://api.sandbox.paypal.com/v1/payments/payment/PAY-1A142943SV880364LKVJEFPQ","rel":"parent_payment","method":"GET"}]},"links":[{"href":"https://api.sandbox.paypal.com/v1/notifications/webhooks-events/WH-2W7266712B616591M-36507203HX6402335","rel":"self","method":"GET"},{"href":"https://api.sandbox.paypal.com/v1/notifications/webhooks-events/WH-2W7266712B616591M-36507203HX6402335/resend","rel":"resend","method":"POST"}]}`
	sdkCertPEM          = `-----BEGIN CERTIFICATE-----
MIIHqDCCBpCgAwIBAgIQCSVMkxB1Kw9SPZtpAr3lTDANBgkqhkiG9w0BAQsFADB1
MQswCQYDVQQGEwJVUzEVMBMGA1UEChMMRGlnaUNlcnQgSW5jMRkwFwYDVQQLExB3
d3cuZGlnaWNlcnQuY29tMTQwMgYDVQQDEytEaWdpQ2VydCBTSEEyIEV4dGVuZGVk
IFZhbGlkYXRpb24gU2VydmVyIENBMB4XDTE1MDMxODAwMDAwMFoXDTE3MDMyMjEy
MDAwMFowggElMR0wGwYDVQQPDBRQcml2YXRlIE9yZ2FuaXphdGlvbjETMBEGCysG
AQQBgjc8AgEDEwJVUzEZMBcGCysGAQQBgjc8AgECEwhEZWxhd2FyZTEQMA4GA1UE
BRMHMzAxNDI2NzEWMBQGA1UECRMNMjIxMSBOIDFzdCBTdDEOMAwGA1UEERMFOTUx
MzExCzAJBgNVBAYTAlVTMRMwEQYDVQQIEwpDYWxpZm9ybmlhMREwDwYDVQQHEwhT
YW4gSm9zZTEVMBMGA1UEChMMUGF5UGFsLCBJbmMuMRgwFgYDVQQLEw9QYXJ0bmVy
IFN1cHBvcnQxNDAyBgNVBAMTK21lc3NhZ2V2ZXJpZmljYXRpb25jZXJ0cy5zYW5k
Ym94LnBheXBhbC5jb20wggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDI
XgwJj1E+vPOLNA7e3nFsRpQq7G1CFcoCNeRgFIGRfd4itt2jBRPfHXf1eeXODQ6V
wTMP6rVYrI3HBQu5SZRZKO3gALPiBWTcz5FhVovYDz/d/DtasA5L7l1xmRM+GGPE
e/D3ETPeyym6GTAuIzR1ju1BuSQlVnIrcILDHrFZo0RyqFH1eNL3oYfgz+ZCv+WH
65rhS60VowiLAb2lsARckJ2P8wKIps3YUxAqVG5SJ9H49ueBDI01wEzE/+59J8s9
GThmbMTqP6x4MneAcGN1TPimGd9wZlbwwrCYDtCoqFDcxMVgvD83uPrIinFwTIOX
w63QSv8/+ANuawBcNJDrAgMBAAGjggOAMIIDfDAfBgNVHSMEGDAWgBQ901Cl1qCt
7vNKYApl0yHU+PjWDzAdBgNVHQ4EFgQUt5yLggZOjjfzULzZCgX2KZO3R/gwNgYD
VR0RBC8wLYIrbWVzc2FnZXZlcmlmaWNhdGlvbmNlcnRzLnNhbmRib3gucGF5cGFs
LmNvbTAOBgNVHQ8BAf8EBAMCBaAwHQYDVR0lBBYwFAYIKwYBBQUHAwEGCCsGAQUF
BwMCMHUGA1UdHwRuMGwwNKAyoDCGLmh0dHA6Ly9jcmwzLmRpZ2ljZXJ0LmNvbS9z
aGEyLWV2LXNlcnZlci1nMS5jcmwwNKAyoDCGLmh0dHA6Ly9jcmw0LmRpZ2ljZXJ0
LmNvbS9zaGEyLWV2LXNlcnZlci1nMS5jcmwwQgYDVR0gBDswOTA3BglghkgBhv1s
AgEwKjAoBggrBgEFBQcCARYcaHR0cHM6Ly93d3cuZGlnaWNlcnQuY29tL0NQUzCB
iAYIKwYBBQUHAQEEfDB6MCQGCCsGAQUFBzABhhhodHRwOi8vb2NzcC5kaWdpY2Vy
dC5jb20wUgYIKwYBBQUHMAKGRmh0dHA6Ly9jYWNlcnRzLmRpZ2ljZXJ0LmNvbS9E
aWdpQ2VydFNIQTJFeHRlbmRlZFZhbGlkYXRpb25TZXJ2ZXJDQS5jcnQwDAYDVR0T
AQH/BAIwADCCAX0GCisGAQQB1nkCBAIEggFtBIIBaQFnAHUApLkJkLQYWBSHuxOi
zGdwCjw1mAT5G9+443fNDsgN3BAAAAFMLovtNgAABAMARjBEAiBTR7r3p76qUJzF
23lsbD/cLsA0KlxoJRSIvIK0OIYWiQIgVQWja8tWBlpcoFP30Iym7IuczitSazpH
fhKAVroTgXgAdgBo9pj4H2SCvjqM7rkoHUz8cVFdZ5PURNEKZ6y7T0/7xAAAAUwu
i+z4AAAEAwBHMEUCIEP3VYyLQB7lOgFo4WstyOurmRe3xa0OVaeFL/bDohHOAiEA
+xQrRVAfaeT4qBdBJzLyVLU4V9bh/qBMXJdjvYujhAcAdgBWFAaaL9fC7NP14b1E
sj7HRna5vJkRXMDvlJhV1onQ3QAAAUwui+6EAAAEAwBHMEUCIQC/YUc5X6xyb3ho
o4VMSJqSoNg9KKkvLh9nUQCdwHi3/QIgNwcBc9ZZCR/aWXQ7hKH6d39kpkDX2Z43
XPy/Kl5sKI4wDQYJKoZIhvcNAQELBQADggEBAHixEZNpb0M1MsvsfNI6lLKxrs9s
JkcBcmxrFyhTC8KP+Qp+Z1fnMRQwpTLIMr1+uAMqCPAnIShGHeFNJpUFSMyW4o0l
+pZGz/L/YJBs7XP3ChSGC17ZKeGSQFfMqMQXfY/L6+n/1HkAwqmewqUMEuUmWN3F
kXJqVngIYGZtxXRyiv2azLOhrNP8BgNZK6d2gVxntQfGr4hnd8Juq8SJy/S4xpPY
YPD8vW7/wSOdAe1/kU38QwDVBQ5PJePS2WFwz8YA/eKcyg9lfsianfw35SjehJbn
wGwzUbjtibyJnv3eAeYDGxaI6vbuoE99pSmYGIwSBLJwZamJHjci6HL6wLg=
-----END CERTIFICATE-----`
)

// sampleCaptureCompleted is PayPal's sample PAYMENT.CAPTURE.COMPLETED
// event (Payments v2 capture resource), verbatim from
// developer.paypal.com/api/rest/webhooks/event-names/ (Payments V2,
// "Payment capture completed" sample). It carries no custom_id or
// invoice_id (the sample's capture was made without them).
const sampleCaptureCompleted = `{
  "id": "WH-58D329510W468432D-8HN650336L201105X",
  "create_time": "2019-02-14T21:50:07.940Z",
  "resource_type": "capture",
  "event_type": "PAYMENT.CAPTURE.COMPLETED",
  "summary": "Payment completed for $ 2.51 USD",
  "resource": {
    "amount": {
      "currency_code": "USD",
      "value": "2.51"
    },
    "seller_protection": {
      "status": "ELIGIBLE",
      "dispute_categories": [
        "ITEM_NOT_RECEIVED",
        "UNAUTHORIZED_TRANSACTION"
      ]
    },
    "update_time": "2019-02-14T21:49:58Z",
    "create_time": "2019-02-14T21:49:58Z",
    "final_capture": true,
    "seller_receivable_breakdown": {
      "gross_amount": {
        "currency_code": "USD",
        "value": "2.51"
      },
      "paypal_fee": {
        "currency_code": "USD",
        "value": "0.37"
      },
      "net_amount": {
        "currency_code": "USD",
        "value": "2.14"
      }
    },
    "links": [
      {
        "href": "https://api.paypal.com/v2/payments/captures/27M47624FP291604U",
        "rel": "self",
        "method": "GET"
      },
      {
        "href": "https://api.paypal.com/v2/payments/captures/27M47624FP291604U/refund",
        "rel": "refund",
        "method": "POST"
      },
      {
        "href": "https://api.paypal.com/v2/payments/authorizations/7W5147081L658180V",
        "rel": "up",
        "method": "GET"
      }
    ],
    "id": "27M47624FP291604U",
    "status": "COMPLETED"
  },
  "links": [
    {
      "href": "https://api.paypal.com/v1/notifications/webhooks-events/WH-58D329510W468432D-8HN650336L201105X",
      "rel": "self",
      "method": "GET",
      "encType": "application/json"
    },
    {
      "href": "https://api.paypal.com/v1/notifications/webhooks-events/WH-58D329510W468432D-8HN650336L201105X/resend",
      "rel": "resend",
      "method": "POST",
      "encType": "application/json"
    }
  ],
  "event_version": "1.0",
  "resource_version": "2.0"
}`

func sdkChannel(t *testing.T, edit ...func(*ChannelConfig)) (*Channel, *counting) {
	t.Helper()
	cnt := &counting{}
	cfg := ChannelConfig{ClientID: "id", ClientSecret: "secret", WebhookIDs: []string{"OTHER-ID", sdkWebhookID},
		Certificates: []Certificate{{URL: sdkCertURL, PEM: []byte(sdkCertPEM)}}, InsecureSkipChainVerify: true,
		Transport: cnt, Now: func() time.Time { return time.Date(2015, 5, 12, 18, 14, 15, 0, time.UTC) }}
	for _, f := range edit {
		f(&cfg)
	}
	ch, err := NewChannel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ch, cnt
}

func sdkCallback() domain.Callback {
	h := http.Header{}
	h.Set("PAYPAL-CERT-URL", sdkCertURL)
	h.Set("PAYPAL-TRANSMISSION-ID", sdkTransmissionID)
	h.Set("PAYPAL-TRANSMISSION-TIME", sdkTransmissionTime)
	h.Set("PAYPAL-AUTH-ALGO", "SHA256withRSA")
	h.Set("PAYPAL-TRANSMISSION-SIG", sdkTransmissionSig)
	return domain.Callback{Kind: domain.CallbackAsync, Method: http.MethodPost, Headers: h, Body: []byte(sdkBody),
		ReceivedAt: time.Date(2015, 5, 12, 18, 14, 16, 0, time.UTC)}
}

// TestSDKVector: PayPal's signature verifies under our algorithm (so the
// message layout, CRC-32 in decimal and SHA256withRSA are PayPal's), with
// the webhook id second in the rotation list; the event, a v1
// PAYMENT.SALE.COMPLETED, is then not one paygate reads (malformed, not a
// bad signature). No request is made.
func TestSDKVector(t *testing.T) {
	ch, cnt := sdkChannel(t)
	cb := sdkCallback()
	if err := ch.verify(cb.Headers, cb.Body, cb.ReceivedAt); err != nil {
		t.Fatalf("PayPal's published signature does not verify: %v", err)
	}
	if _, err := ch.ParseCallback(cb); !errors.Is(err, psp.ErrMalformed) {
		t.Fatalf("ParseCallback = %v, want ErrMalformed for a v1 sale event", err)
	}
	if cnt.n.Load() != 0 {
		t.Fatal("requests were made")
	}
	// The Java SDK's negative cases, and ours.
	for name, edit := range map[string]func(*domain.Callback){
		"invalid webhook id": nil,
		"body changed":       func(c *domain.Callback) { c.Body = []byte(strings.Replace(sdkBody, "20.00", "21.00", 1)) },
		"empty body":         func(c *domain.Callback) { c.Body = nil },
		"no cert url":        func(c *domain.Callback) { c.Headers.Del("PAYPAL-CERT-URL") },
		"algo not found":     func(c *domain.Callback) { c.Headers.Set("PAYPAL-AUTH-ALGO", "NotToBeFound") },
		"other transmission": func(c *domain.Callback) {
			c.Headers.Set("PAYPAL-TRANSMISSION-ID", "b2384410-f8d2-11e4-8bf3-77339302725c")
		},
		"no headers": func(c *domain.Callback) { c.Headers = http.Header{} },
	} {
		ch := ch
		if edit == nil {
			ch, _ = sdkChannel(t, func(c *ChannelConfig) { c.WebhookIDs = []string{"NotToBeFound"} })
			edit = func(*domain.Callback) {}
		}
		c := psptest.Clone(sdkCallback())
		edit(&c)
		if _, err := ch.ParseCallback(c); !errors.Is(err, psp.ErrBadSignature) {
			t.Errorf("%s: %v, want a bad signature", name, err)
		}
	}
	// Received a day later: stale.
	c := sdkCallback()
	c.ReceivedAt = c.ReceivedAt.Add(24 * time.Hour)
	if _, err := ch.ParseCallback(c); !errors.Is(err, psp.ErrStale) {
		t.Errorf("a day later: %v, want stale", err)
	}
}

// TestSDKCertChecks: PayPal's certificate passes the name check, and is
// refused when its chain is verified against roots it does not chain to,
// or when the channel expects other names.
func TestSDKCertChecks(t *testing.T) {
	if _, err := NewChannel(ChannelConfig{ClientID: "id", ClientSecret: "s", WebhookIDs: []string{sdkWebhookID},
		Certificates: []Certificate{{URL: sdkCertURL, PEM: []byte(sdkCertPEM)}}}); err == nil {
		t.Error("an expired certificate without its chain passed chain verification")
	}
	if _, err := NewChannel(ChannelConfig{ClientID: "id", ClientSecret: "s", WebhookIDs: []string{sdkWebhookID},
		CertNames: []string{"messageverificationcerts.paypal.com"}, InsecureSkipChainVerify: true,
		Certificates: []Certificate{{URL: sdkCertURL, PEM: []byte(sdkCertPEM)}}}); err == nil {
		t.Error("a sandbox certificate passed for the live name only")
	}
}

// TestSampleCaptureCompleted: PayPal's sample event, signed with the
// tests' key: verbatim it carries no transaction code, so it is
// malformed; with the custom_id an Orders v2 capture of paygate's
// carries, it reads as the succeeded payment of 2.51 USD at its
// update_time.
func TestSampleCaptureCompleted(t *testing.T) {
	e := newEnv(t, "", true)
	at := time.Date(2019, 2, 14, 21, 50, 8, 0, time.UTC)
	parse := func(body string) (domain.Notification, error) {
		h := http.Header{}
		signHeaders(h, signKey, e.certURL, testWebhookIDs[0], "8ee9c450-30a8-11e9-8f4b-d1a0a1a5fd3a", at, []byte(body))
		return e.ch.ParseCallback(domain.Callback{Kind: domain.CallbackAsync, Headers: h, Body: []byte(body), ReceivedAt: at.Add(time.Second)})
	}
	if _, err := parse(sampleCaptureCompleted); !errors.Is(err, psp.ErrMalformed) {
		t.Fatalf("sample without custom_id: %v, want malformed", err)
	}
	body := strings.Replace(sampleCaptureCompleted, `"final_capture": true,`,
		`"final_capture": true, "custom_id": "T190214214958000ABCDEFGH", "supplementary_data": {"related_ids": {"order_id": "5O190127TN364715T"}},`, 1)
	got, err := parse(body)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Notification{TransactionCode: "T190214214958000ABCDEFGH", PSPReference: "5O190127TN364715T",
		EventID: "WH-58D329510W468432D-8HN650336L201105X", Status: domain.PSPSucceeded, Amount: domain.MustMoney(251, "USD"),
		OccurredAt: time.Date(2019, 2, 14, 21, 49, 58, 0, time.UTC)}
	if !psptest.SameNotification(got, want) {
		t.Fatalf("read %+v\nwant %+v", got, want)
	}
}

// TestSignedMessage: the signed string's layout, with the CRC-32 (IEEE)
// of the body in unsigned decimal, as PayPal's webhook docs describe it
// (developer.paypal.com/api/rest/webhooks/rest/, "Verify the signature").
func TestSignedMessage(t *testing.T) {
	for body, crc := range map[string]string{"": "0", "123456789": "3421780262", "{}": "2745614147"} {
		got := string(signedMessage("tid", "2015-05-12T18:14:14Z", "WID", []byte(body)))
		if want := "tid|2015-05-12T18:14:14Z|WID|" + crc; got != want {
			t.Errorf("%q: %q, want %q", body, got, want)
		}
	}
}
