package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/sim"
)

// channelKinds is the PSP registry: adapter kind → constructor from the
// channel's settings. Adding a PSP adds one line here (docs/adding-a-psp.md).
var channelKinds = map[string]func(name string, settings json.RawMessage) (psp.Channel, error){
	"alipay":    newAlipayChannel,
	"wechatpay": newWechatpayChannel,
	"paypal":    newPaypalChannel,
	"adyen":     newAdyenChannel,
	"payu":      newPayUChannel,
	"razorpay":  newRazorpayChannel,
	"stripe":    newStripeChannel,
	"sim":       newSimChannel,
}

func newSimChannel(name string, raw json.RawMessage) (psp.Channel, error) {
	var s struct {
		BaseURL    string   `json:"base_url"`
		MerchantID string   `json:"merchant_id"`
		Secrets    []string `json:"secrets"`
		Timeout    string   `json:"timeout"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("sim settings: %w", err)
	}
	cfg := sim.ChannelConfig{Name: name, BaseURL: s.BaseURL, MerchantID: s.MerchantID, Secrets: s.Secrets, Transport: pspTransport()}
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil {
			return nil, fmt.Errorf("sim settings: timeout: %w", err)
		}
		cfg.Timeout = d
	}
	return sim.NewChannel(cfg)
}

// pspTransport is a connection pool for one PSP's API. http.DefaultTransport
// keeps 2 idle connections per host, so the callbacks group's concurrent
// status queries (16 per batch) opened and closed a connection for most
// of them: under load a dial, and a TIME_WAIT socket, per callback.
func pspTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return t
}

// buildChannels makes the channel registry and the routing rules.
func buildChannels(f ChannelsFile, m *psp.Metrics) (psp.Registry, []domain.ChannelRule, error) {
	reg := psp.Registry{}
	var rules []domain.ChannelRule
	for _, e := range f.Channels {
		mk, ok := channelKinds[e.Kind]
		if !ok {
			return nil, nil, fmt.Errorf("channel %s: unknown kind %q", e.Name, e.Kind)
		}
		ch, err := mk(e.Name, e.Settings)
		if err != nil {
			return nil, nil, fmt.Errorf("channel %s: %w", e.Name, err)
		}
		reg[e.Name] = psp.Instrument(ch, m)
		rules = append(rules, domain.ChannelRule{Name: e.Name, Countries: e.Countries, Currencies: e.Currencies,
			Methods: e.Methods, Weight: e.Weight, Enabled: e.Enabled})
	}
	return reg, rules, nil
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
