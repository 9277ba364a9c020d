package sim

import (
	"encoding/json"

	"github.com/paygate/paygate/internal/psp"
)

// FromSettings builds a simulator channel from its settings
// (docs/configuration.md, "sim settings"). Unknown keys are an error. The channel gets its
// own psp.PooledTransport: load tests drive the simulator hard enough
// that http.DefaultTransport's 2 idle connections per host cost a dial
// per status query.
func FromSettings(name string, raw json.RawMessage) (psp.Channel, error) {
	var s struct {
		BaseURL    string       `json:"base_url"`
		MerchantID string       `json:"merchant_id"`
		Secrets    []string     `json:"secrets"`
		Timeout    psp.Duration `json:"timeout"`
	}
	if err := psp.DecodeSettings("sim", raw, &s); err != nil {
		return nil, err
	}
	return NewChannel(ChannelConfig{Name: name, BaseURL: s.BaseURL, MerchantID: s.MerchantID, Secrets: s.Secrets,
		Timeout: s.Timeout.D(), Transport: psp.PooledTransport()})
}
