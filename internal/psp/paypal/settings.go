package paypal

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/pemkey"
)

// FromSettings decodes a "paypal" channel's settings
// (docs/psp/paypal.md). Unknown keys are an error; the client secret and
// each pinned certificate are given inline or as a file, never both.
func FromSettings(name string, raw json.RawMessage) (psp.Channel, error) {
	var s struct {
		BaseURL          string   `json:"base_url"`
		ClientID         string   `json:"client_id"`
		ClientSecret     string   `json:"client_secret"`
		ClientSecretFile string   `json:"client_secret_file"`
		WebhookIDs       []string `json:"webhook_ids"`
		BrandName        string   `json:"brand_name"`
		CertHosts        []string `json:"cert_hosts"`
		Certificates     []struct {
			URL  string `json:"url"`
			PEM  string `json:"pem"`
			File string `json:"file"`
		} `json:"certificates"`
		NoBackgroundFetch bool         `json:"no_background_fetch"`
		Timeout           psp.Duration `json:"timeout"`
		Tolerance         psp.Duration `json:"tolerance"`
	}
	if err := psp.DecodeSettings("paypal", raw, &s); err != nil {
		return nil, err
	}
	cfg := ChannelConfig{Name: name, BaseURL: s.BaseURL, ClientID: s.ClientID, WebhookIDs: s.WebhookIDs,
		BrandName: s.BrandName, CertHosts: s.CertHosts, NoBackgroundFetch: s.NoBackgroundFetch,
		Timeout: s.Timeout.D(), Tolerance: s.Tolerance.D()}
	b, err := pemkey.Read("client_secret", s.ClientSecret, s.ClientSecretFile)
	if err != nil {
		return nil, fmt.Errorf("paypal settings: %w", err)
	}
	cfg.ClientSecret = string(bytes.TrimSpace(b))
	for i, c := range s.Certificates {
		b, err := pemkey.Read(fmt.Sprintf("certificates[%d]", i), c.PEM, c.File)
		if err != nil {
			return nil, fmt.Errorf("paypal settings: %w", err)
		}
		cfg.Certificates = append(cfg.Certificates, Certificate{URL: c.URL, PEM: b})
	}
	return NewChannel(cfg)
}
