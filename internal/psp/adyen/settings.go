package adyen

import (
	"encoding/json"

	"github.com/paygate/paygate/internal/psp"
)

// FromSettings decodes an "adyen" channel's settings
// (docs/psp/adyen.md). Unknown keys are an error.
func FromSettings(name string, raw json.RawMessage) (psp.Channel, error) {
	var s struct {
		Environment     string       `json:"environment"`
		LivePrefix      string       `json:"live_prefix"`
		BaseURL         string       `json:"base_url"`
		APIVersion      string       `json:"api_version"`
		APIKey          string       `json:"api_key"`
		MerchantAccount string       `json:"merchant_account"`
		HMACKeys        []string     `json:"hmac_keys"`
		Timeout         psp.Duration `json:"timeout"`
		ReportBaseURL   string       `json:"report_base_url"`
		ReportUsername  string       `json:"report_username"`
		ReportPassword  string       `json:"report_password"`
		ReportAPIKey    string       `json:"report_api_key"`
		ReportGrace     psp.Duration `json:"report_grace"`
	}
	if err := psp.DecodeSettings("adyen", raw, &s); err != nil {
		return nil, err
	}
	return NewChannel(ChannelConfig{Name: name, Environment: s.Environment, LivePrefix: s.LivePrefix, BaseURL: s.BaseURL,
		APIVersion: s.APIVersion, APIKey: s.APIKey, MerchantAccount: s.MerchantAccount, HMACKeys: s.HMACKeys,
		Timeout: s.Timeout.D(), ReportBaseURL: s.ReportBaseURL, ReportUsername: s.ReportUsername,
		ReportPassword: s.ReportPassword, ReportAPIKey: s.ReportAPIKey, ReportGrace: s.ReportGrace.D()})
}
