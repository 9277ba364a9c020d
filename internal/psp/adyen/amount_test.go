package adyen

import (
	"errors"
	"math"
	"testing"

	"github.com/paygate/paygate/domain"
)

// TestAmounts: ISO minor units to Adyen's and back, exactly, for 2-, 0-
// and 3-decimal currencies and Adyen's four exceptions (CLP, ISK: two
// decimals at Adyen, none in ISO; IDR, CVE: none at Adyen, two in ISO).
func TestAmounts(t *testing.T) {
	cases := []struct {
		money domain.Money
		adyen int64
		err   bool // toAdyen refuses
	}{
		{domain.MustMoney(1999, "USD"), 1999, false},
		{domain.MustMoney(0, "EUR"), 0, false},
		{domain.MustMoney(1<<53+1, "USD"), 1<<53 + 1, false},
		{domain.MustMoney(120000, "JPY"), 120000, false},
		{domain.MustMoney(1999, "KWD"), 1999, false}, // 1.999 KWD
		{domain.MustMoney(1000, "BHD"), 1000, false},
		{domain.MustMoney(5000, "CLP"), 500000, false}, // 5000 pesos
		{domain.MustMoney(279, "ISK"), 27900, false},
		{domain.MustMoney(1500000, "IDR"), 15000, false}, // 15000.00 rupiah
		{domain.MustMoney(1500050, "IDR"), 0, true},      // 15000.50 rupiah: Adyen has no sen
		{domain.MustMoney(12300, "CVE"), 123, false},
		{domain.MustMoney(12301, "CVE"), 0, true},
		{domain.MustMoney(math.MaxInt64/10, "CLP"), 0, true}, // ×100 overflows
	}
	for _, c := range cases {
		got, err := toAdyen(c.money)
		if c.err {
			if !errors.Is(err, errAmount) {
				t.Errorf("toAdyen(%s) = %d, %v; want errAmount", c.money, got, err)
			}
			continue
		}
		if err != nil || got != c.adyen {
			t.Errorf("toAdyen(%s) = %d, %v; want %d", c.money, got, err, c.adyen)
			continue
		}
		back, err := fromAdyen(c.adyen, c.money.Currency().Code())
		if err != nil || !back.Equal(c.money) {
			t.Errorf("fromAdyen(%d %s) = %s, %v; want %s", c.adyen, c.money.Currency().Code(), back, err, c.money)
		}
	}
	refused := []struct {
		value int64
		code  string
	}{
		{199, "CLP"},           // 1.99 pesos: not an ISO CLP amount
		{-1, "USD"},            // negative
		{100, "XXX"},           // unknown currency
		{math.MaxInt64, "IDR"}, // ×100 overflows
		{100, "usd"},           // lower case is not ISO
	}
	for _, r := range refused {
		if m, err := fromAdyen(r.value, r.code); err == nil {
			t.Errorf("fromAdyen(%d, %s) = %s, want an error", r.value, r.code, m)
		}
	}
}
