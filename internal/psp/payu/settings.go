package payu

import (
	"encoding/json"

	"github.com/paygate/paygate/internal/psp"
)

// FromSettings decodes a "payu" channel's settings (docs/psp/payu.md).
// Unknown keys are an error.
func FromSettings(name string, raw json.RawMessage) (psp.Channel, error) {
	var s struct {
		Environment string       `json:"environment"`
		PaymentURL  string       `json:"payment_url"`
		APIURL      string       `json:"api_url"`
		Key         string       `json:"key"`
		Salts       []string     `json:"salts"`
		Currency    string       `json:"currency"`
		FirstName   string       `json:"first_name"`
		Timeout     psp.Duration `json:"timeout"`
	}
	if err := psp.DecodeSettings("payu", raw, &s); err != nil {
		return nil, err
	}
	return NewChannel(ChannelConfig{Name: name, Environment: s.Environment, PaymentURL: s.PaymentURL, APIURL: s.APIURL,
		Key: s.Key, Salts: s.Salts, Currency: s.Currency, FirstName: s.FirstName, Timeout: s.Timeout.D()})
}
