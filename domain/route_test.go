package domain_test

import (
	"errors"
	"testing"

	"github.com/paygate/paygate/domain"
)

func routeIntent(country, code, method, channel string) domain.PayIntent {
	return domain.PayIntent{
		OrderID: "A1001", Amount: domain.MustMoney(1999, code), Country: country, Method: method, Channel: channel,
	}
}

func firstPick(int) int { return 0 }

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

func TestRoute(t *testing.T) {
	rules := []domain.ChannelRule{
		{Name: "us-card", Countries: []string{"US"}, Currencies: []string{"USD"}, Methods: []string{"card"}, Weight: 10, Enabled: true},
		{Name: "eu-card", Countries: []string{"DE", "FR"}, Currencies: []string{"EUR"}, Methods: []string{"card"}, Weight: 10, Enabled: true},
		{Name: "jp-konbini", Countries: []string{"JP"}, Currencies: []string{"JPY"}, Methods: []string{"konbini"}, Weight: 5, Enabled: true},
		{Name: "dead", Countries: []string{"BR"}, Currencies: []string{"BRL"}, Weight: 10, Enabled: false},
		{Name: "manual", Countries: []string{"US"}, Currencies: []string{"USD"}, Weight: 0, Enabled: true},
		{Name: "in-upi", Countries: []string{"IN"}, Currencies: []string{"INR"}, Methods: []string{"upi"}, Weight: 0, Enabled: true},
		{Name: "mx-off", Countries: []string{"MX"}, Weight: 5, Enabled: false},
		{Name: "mx-on", Countries: []string{"MX"}, Weight: 5, Enabled: true},
	}
	tests := []struct {
		name    string
		in      domain.PayIntent
		want    string
		wantErr error
	}{
		{"by country, currency and method", routeIntent("US", "USD", "card", ""), "us-card", nil},
		{"eu", routeIntent("FR", "EUR", "card", ""), "eu-card", nil},
		{"jp", routeIntent("JP", "JPY", "konbini", ""), "jp-konbini", nil},
		{"wrong method", routeIntent("JP", "JPY", "card", ""), "", domain.ErrNoChannel},
		{"wrong currency for country", routeIntent("US", "EUR", "card", ""), "", domain.ErrNoChannel},
		{"unknown country", routeIntent("ZA", "ZAR", "card", ""), "", domain.ErrNoChannel},
		{"only a disabled channel", routeIntent("BR", "BRL", "card", ""), "", domain.ErrNoChannel},
		{"disabled skipped, enabled taken", routeIntent("MX", "MXN", "card", ""), "mx-on", nil},
		{"only a weight-0 channel, not pinned", routeIntent("IN", "INR", "upi", ""), "", domain.ErrNoChannel},
		{"pinned with weight 0", routeIntent("IN", "INR", "upi", "in-upi"), "in-upi", nil},
		{"pinned weight 0 beside a weighted one", routeIntent("US", "USD", "card", "manual"), "manual", nil},
		{"pinned weighted channel", routeIntent("US", "USD", "card", "us-card"), "us-card", nil},
		{"pinned but ineligible (country)", routeIntent("DE", "EUR", "card", "us-card"), "", domain.ErrNoChannel},
		{"pinned but ineligible (method)", routeIntent("IN", "INR", "card", "in-upi"), "", domain.ErrNoChannel},
		{"pinned but disabled", routeIntent("BR", "BRL", "card", "dead"), "", domain.ErrNoChannel},
		{"pinned to an unknown channel", routeIntent("US", "USD", "card", "nope"), "", domain.ErrNoChannel},
		{"pinned but disabled, an enabled twin exists", routeIntent("MX", "MXN", "card", "mx-off"), "", domain.ErrNoChannel},
	}
	for _, tt := range tests {
		got, err := domain.Route(rules, tt.in, firstPick)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Route error = %v, want %v", tt.name, err, tt.wantErr)
		}
		if got != tt.want {
			t.Errorf("%s: Route = %q, want %q", tt.name, got, tt.want)
		}
	}
	if _, err := domain.Route(nil, routeIntent("US", "USD", "card", ""), firstPick); !errors.Is(err, domain.ErrNoChannel) {
		t.Errorf("Route with no rules: error = %v, want ErrNoChannel", err)
	}
}

// TestRouteWeights drives pick over every index in [0, total) and checks
// each channel is chosen exactly weight times, and pick is asked for the
// sum of the eligible weights.
func TestRouteWeights(t *testing.T) {
	rules := []domain.ChannelRule{
		{Name: "a", Weight: 1, Enabled: true},
		{Name: "off", Weight: 100, Enabled: false},
		{Name: "b", Weight: 3, Enabled: true},
		{Name: "zero", Weight: 0, Enabled: true},
		{Name: "jpy-only", Currencies: []string{"JPY"}, Weight: 50, Enabled: true},
		{Name: "c", Weight: 6, Enabled: true},
	}
	want := map[string]int{"a": 1, "b": 3, "c": 6}
	const total = 10
	got := map[string]int{}
	var order []string
	for i := 0; i < total; i++ {
		asked := -1
		name, err := domain.Route(rules, routeIntent("US", "USD", "card", ""), func(n int) int { asked = n; return i })
		if err != nil {
			t.Fatalf("Route with pick %d: %v", i, err)
		}
		if asked != total {
			t.Fatalf("Route called pick(%d), want pick(%d)", asked, total)
		}
		got[name]++
		order = append(order, name)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("channel %q picked %d of %d times, want %d", name, got[name], total, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("channel %q picked, but it is not eligible by weight", name)
		}
	}
	// Indices map to channels in rule order: [0] a, [1,4) b, [4,10) c.
	wantOrder := []string{"a", "b", "b", "b", "c", "c", "c", "c", "c", "c"}
	for i := range wantOrder {
		if order[i] != wantOrder[i] {
			t.Errorf("pick %d chose %q, want %q", i, order[i], wantOrder[i])
		}
	}
}
