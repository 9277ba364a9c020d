package domain_test

import (
	"testing"

	"github.com/paygate/paygate/domain"
)

func routeIntent(country, code, method, channel string) domain.PayIntent {
	return domain.PayIntent{
		OrderID: "A1001", Amount: domain.MustMoney(1999, code), Country: country, Method: method, Channel: channel,
	}
}

func TestChannelRuleEligible(t *testing.T) {
	rule := domain.ChannelRule{
		Name: "eu-cards", Countries: []string{"DE", "FR"}, Currencies: []string{"EUR"}, Methods: []string{"card", "sepa"},
		Weight: 1, Enabled: true,
	}
	any := domain.ChannelRule{Name: "any", Weight: 1, Enabled: true}
	off := domain.ChannelRule{Name: "off", Weight: 1, Enabled: false}
	tests := []struct {
		name string
		r    domain.ChannelRule
		in   domain.PayIntent
		want bool
	}{
		{"all match", rule, routeIntent("DE", "EUR", "card", ""), true},
		{"second country, second method", rule, routeIntent("FR", "EUR", "sepa", ""), true},
		{"country not listed", rule, routeIntent("US", "EUR", "card", ""), false},
		{"country case differs", rule, routeIntent("de", "EUR", "card", ""), false},
		{"currency not listed", rule, routeIntent("DE", "USD", "card", ""), false},
		{"method not listed", rule, routeIntent("DE", "EUR", "wallet", ""), false},
		{"no method: the router chooses", rule, routeIntent("DE", "EUR", "", ""), true},
		{"empty lists take anything", any, routeIntent("JP", "JPY", "konbini", ""), true},
		{"disabled", off, routeIntent("DE", "EUR", "card", ""), false},
		{"weight 0 is still eligible", domain.ChannelRule{Name: "z", Enabled: true}, routeIntent("DE", "EUR", "card", ""), true},
	}
	for _, tt := range tests {
		if got := tt.r.Eligible(tt.in); got != tt.want {
			t.Errorf("%s: Eligible = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestUsableBy(t *testing.T) {
	rules := []domain.ChannelRule{
		{Name: "eu", Currencies: []string{"EUR"}, Enabled: true, Weight: 1},
		{Name: "off", Enabled: false, Weight: 1},
		{Name: "any", Enabled: true},
	}
	usable := domain.UsableBy(rules, routeIntent("DE", "USD", "card", ""))
	for ch, want := range map[string]string{"any": "", "eu": "does not take card USD in DE", "off": "disabled", "nope": "not configured"} {
		err := usable(ch)
		if (want == "" && err != nil) || (want != "" && (err == nil || err.Error() != want)) {
			t.Errorf("%s: %v, want %q", ch, err, want)
		}
	}
}
