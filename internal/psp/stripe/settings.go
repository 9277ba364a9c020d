package stripe

import (
	"encoding/json"

	"github.com/paygate/paygate/internal/psp"
)

// FromSettings builds a Stripe channel from its settings
// (docs/psp/stripe.md). Unknown keys are an error.
func FromSettings(name string, raw json.RawMessage) (psp.Channel, error) {
	var s struct {
		BaseURL         string       `json:"base_url"`
		SecretKey       string       `json:"secret_key"`
		WebhookSecrets  []string     `json:"webhook_secrets"`
		APIVersion      string       `json:"api_version"`
		Timeout         psp.Duration `json:"timeout"`
		Tolerance       psp.Duration `json:"tolerance"`
		RefundScanPages int          `json:"refund_scan_pages"`
	}
	if err := psp.DecodeSettings("stripe", raw, &s); err != nil {
		return nil, err
	}
	return NewChannel(ChannelConfig{Name: name, BaseURL: s.BaseURL, SecretKey: s.SecretKey, WebhookSecrets: s.WebhookSecrets,
		APIVersion: s.APIVersion, RefundScanPages: s.RefundScanPages, Timeout: s.Timeout.D(), Tolerance: s.Tolerance.D()})
}
