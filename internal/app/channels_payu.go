package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/payu"
)

// newPayUChannel decodes a "payu" channel's settings (docs/psp/payu.md).
// Unknown keys are an error.
func newPayUChannel(name string, raw json.RawMessage) (psp.Channel, error) {
	var s struct {
		Environment string   `json:"environment"`
		PaymentURL  string   `json:"payment_url"`
		APIURL      string   `json:"api_url"`
		Key         string   `json:"key"`
		Salts       []string `json:"salts"`
		Currency    string   `json:"currency"`
		FirstName   string   `json:"first_name"`
		Timeout     string   `json:"timeout"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("payu settings: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("payu settings: more than one JSON value")
	}
	cfg := payu.ChannelConfig{Name: name, Environment: s.Environment, PaymentURL: s.PaymentURL, APIURL: s.APIURL,
		Key: s.Key, Salts: s.Salts, Currency: s.Currency, FirstName: s.FirstName}
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil {
			return nil, fmt.Errorf("payu settings: timeout: %w", err)
		}
		cfg.Timeout = d
	}
	return payu.NewChannel(cfg)
}
