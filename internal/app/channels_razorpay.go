package app

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/razorpay"
)

// newRazorpayChannel builds a Razorpay channel from its settings
// (docs/psp/razorpay.md). Unknown keys are an error.
func newRazorpayChannel(name string, raw json.RawMessage) (psp.Channel, error) {
	var s struct {
		BaseURL            string   `json:"base_url"`
		CheckoutURL        string   `json:"checkout_url"`
		KeyID              string   `json:"key_id"`
		KeySecret          string   `json:"key_secret"`
		PreviousKeySecrets []string `json:"previous_key_secrets"`
		WebhookSecrets     []string `json:"webhook_secrets"`
		AccountID          string   `json:"account_id"`
		MerchantName       string   `json:"merchant_name"`
		Timeout            string   `json:"timeout"`
		RefundScanPages    int      `json:"refund_scan_pages"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("razorpay settings: %w", err)
	}
	cfg := razorpay.ChannelConfig{Name: name, BaseURL: s.BaseURL, CheckoutURL: s.CheckoutURL, KeyID: s.KeyID,
		KeySecret: s.KeySecret, PreviousKeySecrets: s.PreviousKeySecrets, WebhookSecrets: s.WebhookSecrets,
		AccountID: s.AccountID, MerchantName: s.MerchantName, RefundScanPages: s.RefundScanPages}
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil {
			return nil, fmt.Errorf("razorpay settings: timeout: %w", err)
		}
		cfg.Timeout = d
	}
	return razorpay.NewChannel(cfg)
}
