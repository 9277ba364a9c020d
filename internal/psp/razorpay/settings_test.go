package razorpay

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRazorpaySettings: the settings decoder is strict, and errors never
// echo a secret.
func TestRazorpaySettings(t *testing.T) {
	cases := []struct {
		settings string
		ok       bool
	}{
		{`{"key_id":"rzp_test_k","key_secret":"s3cr3t","webhook_secrets":["w"],"account_id":"acc_1","timeout":"5s"}`, true},
		{`{"key_id":"rzp_test_k","key_secret":"s3cr3t","webhook_secrets":["w"],"keysecret":"typo"}`, false},
		{`{"key_id":"rzp_test_k","key_secret":"s3cr3t"}`, false},
	}
	for _, c := range cases {
		ch, err := FromSettings("ch_razorpay", json.RawMessage(c.settings))
		if c.ok != (err == nil) {
			t.Errorf("%s: %v", c.settings, err)
			continue
		}
		if err == nil && ch.Name() != "ch_razorpay" {
			t.Errorf("Name() = %q", ch.Name())
		}
		if err != nil && (strings.Contains(err.Error(), "sk_test_k") || strings.Contains(err.Error(), "s3cr3t")) {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}
