package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/adyen"
)

// newAdyenChannel decodes an "adyen" channel's settings
// (docs/psp/adyen.md). Unknown keys are an error.
func newAdyenChannel(name string, raw json.RawMessage) (psp.Channel, error) {
	var s struct {
		Environment     string   `json:"environment"`
		LivePrefix      string   `json:"live_prefix"`
		BaseURL         string   `json:"base_url"`
		APIVersion      string   `json:"api_version"`
		APIKey          string   `json:"api_key"`
		MerchantAccount string   `json:"merchant_account"`
		HMACKeys        []string `json:"hmac_keys"`
		Timeout         string   `json:"timeout"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("adyen settings: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("adyen settings: more than one JSON value")
	}
	cfg := adyen.ChannelConfig{Name: name, Environment: s.Environment, LivePrefix: s.LivePrefix, BaseURL: s.BaseURL,
		APIVersion: s.APIVersion, APIKey: s.APIKey, MerchantAccount: s.MerchantAccount, HMACKeys: s.HMACKeys}
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil {
			return nil, fmt.Errorf("adyen settings: timeout: %w", err)
		}
		cfg.Timeout = d
	}
	return adyen.NewChannel(cfg)
}
