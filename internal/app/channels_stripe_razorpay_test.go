package app

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestStripeAndRazorpaySettings: the kinds are registered, their settings
// decoders are strict, and errors never echo a secret.
func TestStripeAndRazorpaySettings(t *testing.T) {
	cases := []struct {
		kind, settings string
		ok             bool
	}{
		{"stripe", `{"secret_key":"sk_test_k","webhook_secrets":["whsec_a","whsec_b"],"timeout":"5s","tolerance":"2m"}`, true},
		{"stripe", `{"secret_key":"sk_test_k","webhook_secrets":["whsec_a"],"webhook_secret":"typo"}`, false},
		{"stripe", `{"secret_key":"sk_test_k","webhook_secrets":["whsec_a"],"tolerance":"soon"}`, false},
		{"stripe", `{"secret_key":"pk_test_k","webhook_secrets":["whsec_a"]}`, false},
		{"razorpay", `{"key_id":"rzp_test_k","key_secret":"s3cr3t","webhook_secrets":["w"],"account_id":"acc_1","timeout":"5s"}`, true},
		{"razorpay", `{"key_id":"rzp_test_k","key_secret":"s3cr3t","webhook_secrets":["w"],"keysecret":"typo"}`, false},
		{"razorpay", `{"key_id":"rzp_test_k","key_secret":"s3cr3t"}`, false},
	}
	for _, c := range cases {
		mk, ok := channelKinds[c.kind]
		if !ok {
			t.Fatalf("kind %q not registered", c.kind)
		}
		ch, err := mk("ch_"+c.kind, json.RawMessage(c.settings))
		if c.ok != (err == nil) {
			t.Errorf("%s %s: %v", c.kind, c.settings, err)
			continue
		}
		if err == nil && ch.Name() != "ch_"+c.kind {
			t.Errorf("%s: Name() = %q", c.kind, ch.Name())
		}
		if err != nil && (strings.Contains(err.Error(), "sk_test_k") || strings.Contains(err.Error(), "s3cr3t")) {
			t.Errorf("%s: error shows a secret: %v", c.kind, err)
		}
	}
}
