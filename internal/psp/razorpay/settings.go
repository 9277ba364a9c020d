package razorpay

import (
	"encoding/json"

	"github.com/paygate/paygate/internal/psp"
)

// FromSettings builds a Razorpay channel from its settings
// (docs/psp/razorpay.md). Unknown keys are an error.
func FromSettings(name string, raw json.RawMessage) (psp.Channel, error) {
	var s struct {
		BaseURL            string       `json:"base_url"`
		CheckoutURL        string       `json:"checkout_url"`
		KeyID              string       `json:"key_id"`
		KeySecret          string       `json:"key_secret"`
		PreviousKeySecrets []string     `json:"previous_key_secrets"`
		WebhookSecrets     []string     `json:"webhook_secrets"`
		AccountID          string       `json:"account_id"`
		MerchantName       string       `json:"merchant_name"`
		Timeout            psp.Duration `json:"timeout"`
		RefundScanPages    int          `json:"refund_scan_pages"`
	}
	if err := psp.DecodeSettings("razorpay", raw, &s); err != nil {
		return nil, err
	}
	return NewChannel(ChannelConfig{Name: name, BaseURL: s.BaseURL, CheckoutURL: s.CheckoutURL, KeyID: s.KeyID,
		KeySecret: s.KeySecret, PreviousKeySecrets: s.PreviousKeySecrets, WebhookSecrets: s.WebhookSecrets,
		AccountID: s.AccountID, MerchantName: s.MerchantName, RefundScanPages: s.RefundScanPages, Timeout: s.Timeout.D()})
}
