package razorpay

import (
	"testing"

	"github.com/paygate/paygate/domain"
)

// TestMoney: Razorpay's amounts are in the currency's smallest sub-unit
// ("amount in paise": https://razorpay.com/docs/api/orders/create/), which
// is ISO 4217's minor unit, read exactly; Razorpay's currency codes are
// upper case.
func TestMoney(t *testing.T) {
	tests := []struct {
		amount   int64
		currency string
		want     int64 // -1: refused
	}{
		{50000, "INR", 50000}, // ₹500.00 is 50000 paise
		{100, "INR", 100},     // ₹1.00, Razorpay's minimum
		{1, "INR", 1},         // one paisa
		{295, "JPY", 295},     // zero-decimal
		{295991, "KWD", 295991},
		{1<<53 + 1, "USD", 1<<53 + 1},
		{-1, "INR", -1},
		{100, "inr", -1},
		{100, "XYZ", -1},
	}
	for _, tt := range tests {
		got, err := money(tt.amount, tt.currency)
		if tt.want < 0 {
			if err == nil {
				t.Errorf("money(%d, %q) = %s, want refused", tt.amount, tt.currency, got)
			}
			continue
		}
		if err != nil || !got.Equal(domain.MustMoney(tt.want, tt.currency)) {
			t.Errorf("money(%d, %q) = %s, %v", tt.amount, tt.currency, got, err)
		}
	}
}
