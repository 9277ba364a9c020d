package paypal

import (
	"testing"

	"github.com/paygate/paygate/domain"
)

// TestAmountConversion: minor units ↔ PayPal's value string, per
// PayPal's currency rules (developer.paypal.com/api/rest/reference/currency-codes/:
// HUF, JPY and TWD take no decimals).
func TestAmountConversion(t *testing.T) {
	for _, c := range []struct {
		minor int64
		cur   string
		value string // "" = refused
	}{
		{1999, "USD", "19.99"},
		{1, "USD", "0.01"},
		{100, "EUR", "1.00"},
		{1<<53 + 1, "USD", "90071992547409.93"},
		{1200, "JPY", "1200"},
		{100000, "HUF", "1000"},
		{100050, "HUF", ""}, // 1000.50 HUF: PayPal takes whole forints only
		{10100, "TWD", "101"},
		{10101, "TWD", ""},
		{123456, "CHF", "1234.56"},
		{1999, "KWD", ""}, // not a PayPal currency
		{1999, "INR", ""},
	} {
		m := domain.MustMoney(c.minor, c.cur)
		got, err := formatAmount(m)
		if c.value == "" {
			if err == nil {
				t.Errorf("%s: formatted as %q, want refused", m, got)
			}
			continue
		}
		if err != nil || got != c.value {
			t.Errorf("%s: %q, %v; want %q", m, got, err, c.value)
			continue
		}
		back, err := parseAmount(got, c.cur)
		if err != nil || !back.Equal(m) {
			t.Errorf("%s: %q read back as %s, %v", m, got, back, err)
		}
	}
	for _, c := range []struct {
		value, cur string
		minor      int64
		ok         bool
	}{
		{"1000", "HUF", 100000, true},
		{"1000.00", "HUF", 100000, true},
		{"1200", "JPY", 1200, true},
		{"1200.5", "JPY", 0, false},
		{"19.999", "USD", 0, false},
		{"1.999", "KWD", 1999, true},
		{"-1.00", "USD", 0, false},
		{"1e3", "USD", 0, false},
		{" 1.00", "USD", 0, false},
		{"", "USD", 0, false},
		{"1.00", "", 0, false},
		{"99999999999999999999", "USD", 0, false},
	} {
		m, err := parseAmount(c.value, c.cur)
		if (err == nil) != c.ok || (c.ok && m.Minor() != c.minor) {
			t.Errorf("parse %q %s = %v, %v", c.value, c.cur, m, err)
		}
	}
}
