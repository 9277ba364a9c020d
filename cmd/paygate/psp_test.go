package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const verifyChannels = `{"channels": [
  {"name": "stripe_us", "kind": "stripe", "enabled": true, "weight": 0,
   "settings": {"secret_key": "sk_test_verify", "webhook_secrets": ["whsec_new", "whsec_verify"]}},
  {"name": "razorpay_in", "kind": "razorpay", "enabled": true, "weight": 0,
   "settings": {"key_id": "rzp_test_verify", "key_secret": "ks", "webhook_secrets": ["key_secret"]}}
]}`

// stripeEvent is a payment_intent.succeeded webhook body
// (https://docs.stripe.com/api/events/object).
const stripeEvent = `{
  "id": "evt_3MtwBwLkdIwHu7ix0Yt2Hqxs",
  "object": "event",
  "api_version": "2024-06-20",
  "created": 1764064800,
  "data": {"object": {"id": "pi_3MtwBwLkdIwHu7ix28a3tqPa", "object": "payment_intent", "amount": 2000,
    "amount_received": 2000, "currency": "usd", "status": "succeeded", "livemode": false,
    "metadata": {"transaction_code": "T261125095957123ABCDEFGH"}}},
  "livemode": false,
  "pending_webhooks": 1,
  "request": {"id": null, "idempotency_key": null},
  "type": "payment_intent.succeeded"
}
`

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func stripeSig(ts int64, body, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(ts, 10) + "." + body))
	return "t=" + strconv.FormatInt(ts, 10) + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// TestPSPVerify: `paygate psp verify` accepts a correctly signed capture
// (exit 0, the notification printed) and rejects a tampered, stale or
// unsigned one (exit 1, the reason printed), offline.
func TestPSPVerify(t *testing.T) {
	dir := t.TempDir()
	config := writeFile(t, dir, "channels.json", verifyChannels)
	const ts = 1764064800
	headers := writeFile(t, dir, "headers.txt", "POST /v1/callbacks/stripe_us HTTP/1.1\r\nHost: pay.example\r\n"+
		"Content-Type: application/json; charset=utf-8\r\nStripe-Signature: "+stripeSig(ts, stripeEvent, "whsec_verify")+"\r\n")
	body := writeFile(t, dir, "body.json", stripeEvent)
	tampered := writeFile(t, dir, "tampered.json", strings.Replace(stripeEvent, `"amount_received": 2000`, `"amount_received": 20000`, 1))
	unsigned := writeFile(t, dir, "unsigned.txt", "Content-Type: application/json\n")
	jsonHeaders := writeFile(t, dir, "headers.json", `{"Stripe-Signature": ["`+stripeSig(ts, stripeEvent, "whsec_verify")+`"]}`)
	rzpBody := writeFile(t, dir, "rzp.json", `{"entity":"event","event":"payment.captured","created_at":1,"payload":{}}`)
	rzpHeaders := writeFile(t, dir, "rzp.txt", "X-Razorpay-Signature: "+hex.EncodeToString(func() []byte {
		m := hmac.New(sha256.New, []byte("key_secret"))
		m.Write([]byte(`{"entity":"event","event":"payment.captured","created_at":1,"payload":{}}`))
		return m.Sum(nil)
	}()))

	refundEvent := strings.Replace(stripeEvent, `"type": "payment_intent.succeeded"`, `"type": "charge.refunded"`, 1)
	refundBody := writeFile(t, dir, "refund.json", refundEvent)
	refundHeaders := writeFile(t, dir, "refund.txt", "Stripe-Signature: "+stripeSig(ts, refundEvent, "whsec_verify")+"\n")

	args := func(channel, h, b string, extra ...string) []string {
		return append([]string{"verify", "--channel", channel, "--config", config, "--headers", h, "--body", b}, extra...)
	}
	cases := []struct {
		name   string
		args   []string
		ok     bool
		output []string
	}{
		{"accepted", args("stripe_us", headers, body, "--at", strconv.Itoa(ts+10)), true,
			[]string{"ACCEPTED by channel stripe_us", "transaction_code: T261125095957123ABCDEFGH", "psp_reference:    pi_3MtwBwLkdIwHu7ix28a3tqPa",
				"status:           succeeded", "2000 minor units (20.00 USD)", "event_id:         evt_3MtwBwLkdIwHu7ix0Yt2Hqxs"}},
		{"accepted, JSON headers", args("stripe_us", jsonHeaders, body, "--at", strconv.Itoa(ts)), true, []string{"ACCEPTED"}},
		{"tampered body", args("stripe_us", headers, tampered, "--at", strconv.Itoa(ts)), false,
			[]string{"REJECTED by channel stripe_us", "class:  bad signature", "no v1 signature matches"}},
		{"too old", args("stripe_us", headers, body, "--at", strconv.Itoa(ts+301)), false,
			[]string{"class:  stale", "signed 301s before receipt"}},
		{"too far in the future", args("stripe_us", headers, body, "--at", strconv.Itoa(ts-301)), false,
			[]string{"class:  stale", "signed 301s after receipt"}},
		{"unsigned", args("stripe_us", unsigned, body, "--at", strconv.Itoa(ts)), false,
			[]string{"class:  bad signature", "no Stripe-Signature header"}},
		{"razorpay, signed but not paygate's", args("razorpay_in", rzpHeaders, rzpBody), false,
			[]string{"REJECTED by channel razorpay_in", "signature: ok", "class:  malformed", "signature ok; razorpay webhook", "not an event with a payment"}},
		{"stripe, signed, an event type paygate does not act on", args("stripe_us", refundHeaders, refundBody, "--at", strconv.Itoa(ts)), false,
			[]string{"signature: ok", `signature ok; stripe webhook: malformed PSP message: event evt_3MtwBwLkdIwHu7ix0Yt2Hqxs: type "charge.refunded" is not one paygate acts on`}},
		{"tampered body: the signature is said to be bad", args("stripe_us", headers, tampered, "--at", strconv.Itoa(ts)), false,
			[]string{"signature: BAD"}},
		{"--at as RFC 3339", args("stripe_us", headers, body, "--at", time.Unix(ts+10, 0).UTC().Format(time.RFC3339)), true, []string{"ACCEPTED"}},
	}
	for _, c := range cases {
		var out bytes.Buffer
		err := runPSP(c.args, &out)
		if c.ok != (err == nil) || (!c.ok && !errors.Is(err, errRejected)) {
			t.Errorf("%s: %v\n%s", c.name, err, out.String())
			continue
		}
		for _, want := range c.output {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: output lacks %q:\n%s", c.name, want, out.String())
			}
		}
	}

	// Through realMain and main's exit code: 0 accepted, 1 rejected, 2
	// usage or configuration error. psp verify reads nothing from the
	// environment: a broken setting there does not stop it.
	t.Setenv("PAYGATE_PARTITIONS", "many")
	code := func(a ...string) int {
		err := realMain(context.Background(), append([]string{"psp"}, a...))
		if err == nil {
			return 0
		}
		return exitCode(err)
	}
	if c := code(args("stripe_us", headers, body, "--at", strconv.Itoa(ts))...); c != 0 {
		t.Errorf("accepted: exit %d", c)
	}
	if c := code(args("stripe_us", headers, tampered, "--at", strconv.Itoa(ts))...); c != 1 {
		t.Errorf("rejected: exit %d", c)
	}
	if c := code(args("stripe_us", refundHeaders, refundBody, "--at", strconv.Itoa(ts))...); c != 1 {
		t.Errorf("signed, not acted on: exit %d", c)
	}
	for name, bad := range map[string][]string{
		"no subcommand":        {},
		"no flags":             {"verify"},
		"--at not a time":      args("stripe_us", headers, body, "--at", "soon"),
		"--at in milliseconds": args("stripe_us", headers, body, "--at", strconv.Itoa(ts*1000)),
		"unknown flag":         args("stripe_us", headers, body, "--secret", "x"),
		"unknown channel":      args("nope", headers, body),
		"no channels file":     {"verify", "--channel", "stripe_us", "--config", filepath.Join(dir, "missing.json"), "--headers", headers, "--body", body},
		"no headers file":      args("stripe_us", filepath.Join(dir, "missing.txt"), body),
		"no body file":         args("stripe_us", headers, filepath.Join(dir, "missing.json")),
	} {
		if c := code(bad...); c != 2 {
			t.Errorf("%s: exit %d, want 2", name, c)
		}
	}
	var out0 bytes.Buffer
	if err := runPSP(args("stripe_us", headers, body, "--at", strconv.Itoa(ts*1000)), &out0); err == nil ||
		!strings.Contains(err.Error(), "in milliseconds") || !strings.Contains(err.Error(), "--at "+strconv.Itoa(ts)) {
		t.Errorf("--at in milliseconds: %v; want it named and the seconds suggested", err)
	}
	if err := runPSP(args("nope", headers, body), &out0); err == nil || !strings.Contains(err.Error(), `no such channel "nope"; it has: stripe_us (stripe), razorpay_in (razorpay)`) {
		t.Errorf("unknown channel: %v; want the file's channels listed", err)
	}
	out0.Reset()
	if err := runPSP([]string{"verify", "-h"}, &out0); err != nil {
		t.Errorf("-h: %v", err)
	}
	for _, want := range []string{"-channel", "-config", "-headers", "-body", "-at", "-kind", "-query", "-certs", "Exit status: 0 accepted",
		"Channel kinds: adyen, alipay, paypal, payu, razorpay, sim, stripe, wechatpay"} {
		if !strings.Contains(out0.String(), want) {
			t.Errorf("psp verify -h lacks %q:\n%s", want, out0.String())
		}
	}
	// The receipt time defaults to now: the capture above is long stale.
	var out bytes.Buffer
	if err := runPSPVerify(args("stripe_us", headers, body)[1:], &out, func() time.Time { return time.Unix(ts+5, 0) }); err != nil {
		t.Errorf("now = ts+5: %v", err)
	}
	if err := runPSPVerify(args("stripe_us", headers, body)[1:], &out, time.Now); !errors.Is(err, errRejected) {
		t.Errorf("now = wall clock: %v, want rejected as stale", err)
	}
}

// TestPSPVerifyRefundWebhook: psp verify judges a capture as the gateway
// does (psp.Verify): an Adyen REFUND webhook, signed, is accepted as the
// refund it reports; forged, it is rejected as a bad signature.
func TestPSPVerifyRefundWebhook(t *testing.T) {
	dir := t.TempDir()
	const hmacKey = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
	config := writeFile(t, dir, "channels.json", `{"channels": [{"name": "adyen_eu", "kind": "adyen", "enabled": true, "weight": 0,
   "settings": {"environment": "test", "api_key": "AQE-verify", "merchant_account": "PaygateECOM", "hmac_keys": ["`+hmacKey+`"]}}]}`)
	webhook := func(hexKey string) string {
		data := "psp_refund_1:psp_payment_1:PaygateECOM:R261125100000123ABCDEFGH:500:EUR:REFUND:true"
		key, _ := hex.DecodeString(hexKey)
		m := hmac.New(sha256.New, key)
		m.Write([]byte(data))
		sig := base64.StdEncoding.EncodeToString(m.Sum(nil))
		return `{"live":"false","notificationItems":[{"NotificationRequestItem":{"amount":{"currency":"EUR","value":500},` +
			`"eventCode":"REFUND","eventDate":"2026-11-25T10:00:00+01:00","merchantAccountCode":"PaygateECOM",` +
			`"merchantReference":"R261125100000123ABCDEFGH","originalReference":"psp_payment_1","pspReference":"psp_refund_1",` +
			`"reason":"","success":"true","additionalData":{"hmacSignature":"` + sig + `"}}}]}`
	}
	headers := writeFile(t, dir, "headers.txt", "POST /v1/callbacks/adyen_eu HTTP/1.1\r\nContent-Type: application/json\r\n")
	signed := writeFile(t, dir, "signed.json", webhook(hmacKey))
	forged := writeFile(t, dir, "forged.json", webhook("0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"))
	args := func(body string) []string {
		return []string{"verify", "--channel", "adyen_eu", "--config", config, "--headers", headers, "--body", body, "--at", "1764064800"}
	}
	var out bytes.Buffer
	if err := runPSP(args(signed), &out); err != nil {
		t.Fatalf("signed refund webhook: %v\n%s", err, out.String())
	}
	for _, want := range []string{"ACCEPTED by channel adyen_eu", "refund_ref:       R261125100000123ABCDEFGH",
		"psp_reference:    psp_refund_1", "status:           succeeded"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("signed refund webhook: output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := runPSP(args(forged), &out); !errors.Is(err, errRejected) || !strings.Contains(out.String(), "class:  bad signature") {
		t.Errorf("forged refund webhook: %v\n%s", err, out.String())
	}
}
