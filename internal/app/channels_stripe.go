package app

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/stripe"
)

// newStripeChannel builds a Stripe channel from its settings
// (docs/psp/stripe.md). Unknown keys are an error.
func newStripeChannel(name string, raw json.RawMessage) (psp.Channel, error) {
	var s struct {
		BaseURL         string   `json:"base_url"`
		SecretKey       string   `json:"secret_key"`
		WebhookSecrets  []string `json:"webhook_secrets"`
		APIVersion      string   `json:"api_version"`
		Timeout         string   `json:"timeout"`
		Tolerance       string   `json:"tolerance"`
		RefundScanPages int      `json:"refund_scan_pages"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("stripe settings: %w", err)
	}
	cfg := stripe.ChannelConfig{Name: name, BaseURL: s.BaseURL, SecretKey: s.SecretKey, WebhookSecrets: s.WebhookSecrets,
		APIVersion: s.APIVersion, RefundScanPages: s.RefundScanPages}
	for _, d := range []struct {
		key string
		in  string
		out *time.Duration
	}{{"timeout", s.Timeout, &cfg.Timeout}, {"tolerance", s.Tolerance, &cfg.Tolerance}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil {
			return nil, fmt.Errorf("stripe settings: %s: %w", d.key, err)
		}
		*d.out = v
	}
	return stripe.NewChannel(cfg)
}
