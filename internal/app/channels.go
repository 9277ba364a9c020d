package app

import (
	"encoding/json"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/adyen"
	"github.com/paygate/paygate/internal/psp/alipay"
	"github.com/paygate/paygate/internal/psp/paypal"
	"github.com/paygate/paygate/internal/psp/payu"
	"github.com/paygate/paygate/internal/psp/razorpay"
	"github.com/paygate/paygate/internal/psp/sim"
	"github.com/paygate/paygate/internal/psp/stripe"
	"github.com/paygate/paygate/internal/psp/wechatpay"
)

// channelKinds is the PSP registry: adapter kind → constructor from the
// channel's settings. Each adapter package decodes its own settings, so
// adding a PSP adds its package and one line here (docs/adding-a-psp.md).
var channelKinds = map[string]func(name string, settings json.RawMessage) (psp.Channel, error){
	"alipay":    alipay.FromSettings,
	"wechatpay": wechatpay.FromSettings,
	"paypal":    paypal.FromSettings,
	"adyen":     adyen.FromSettings,
	"payu":      payu.FromSettings,
	"razorpay":  razorpay.FromSettings,
	"stripe":    stripe.FromSettings,
	"sim":       sim.FromSettings,
}

// offlineKinds build a channel for offline verification (psp.Offline)
// where the kind's verification needs material the gateway would fetch
// from the PSP; other kinds are built as the gateway builds them, since
// their constructors do no I/O.
var offlineKinds = map[string]func(name string, settings json.RawMessage, o psp.Offline) (psp.Channel, error){
	"paypal": paypal.FromSettingsOffline,
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
