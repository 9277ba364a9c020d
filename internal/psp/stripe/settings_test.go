package stripe

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestStripeSettings: the settings decoder is strict, and errors never
// echo a secret.
func TestStripeSettings(t *testing.T) {
	cases := []struct {
		settings string
		ok       bool
	}{
		{`{"secret_key":"sk_test_k","webhook_secrets":["whsec_a","whsec_b"],"timeout":"5s","tolerance":"2m"}`, true},
		{`{"secret_key":"sk_test_k","webhook_secrets":["whsec_a"],"webhook_secret":"typo"}`, false},
		{`{"secret_key":"sk_test_k","webhook_secrets":["whsec_a"],"tolerance":"soon"}`, false},
		{`{"secret_key":"pk_test_k","webhook_secrets":["whsec_a"]}`, false},
	}
	for _, c := range cases {
		ch, err := FromSettings("ch_stripe", json.RawMessage(c.settings))
		if c.ok != (err == nil) {
			t.Errorf("%s: %v", c.settings, err)
			continue
		}
		if err == nil && ch.Name() != "ch_stripe" {
			t.Errorf("Name() = %q", ch.Name())
		}
		if err != nil && (strings.Contains(err.Error(), "sk_test_k") || strings.Contains(err.Error(), "s3cr3t")) {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}
