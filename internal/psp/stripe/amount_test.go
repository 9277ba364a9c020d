package stripe

import (
	"errors"
	"math"
	"testing"

	"github.com/paygate/paygate/domain"
)

// TestToStripe: paygate's ISO minor units to Stripe's amount, per
// https://docs.stripe.com/currencies (zero-decimal, three-decimal and
// special cases) and
// https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds.
func TestToStripe(t *testing.T) {
	tests := []struct {
		minor    int64
		code     string
		want     int64 // -1: refused
		currency string
	}{
		{1999, "USD", 1999, "usd"},     // 19.99 USD is 1999 cents
		{1000, "EUR", 1000, "eur"},     //
		{500, "JPY", 500, "jpy"},       // "to charge ¥500, provide an amount value of 500"
		{120000, "JPY", 120000, "jpy"}, //
		{50000, "KRW", 50000, "krw"},   // zero-decimal
		{1000, "CLP", 1000, "clp"},     // zero-decimal
		{5000, "UGX", 5000, "ugx"},     // zero-decimal at Stripe and in ISO
		{1000, "VND", 1000, "vnd"},     // zero-decimal
		{5, "ISK", 500, "isk"},         // "to charge 5 ISK, provide an amount value of 500"
		{4010, "ISK", 401000, "isk"},   // whole krónur only: always a multiple of 100
		{5000, "MGA", 50, "mga"},       // zero-decimal at Stripe, ISO exponent 2: 50.00 MGA → 50
		{5050, "MGA", -1, ""},          // 50.50 MGA cannot be charged: refused, not rounded
		{5120, "KWD", 5120, "kwd"},     // "5.124 KWD must be rounded to 5120 or 5130": we send multiples of 10
		{5124, "KWD", -1, ""},          // … and refuse the rest rather than round
		{1990, "BHD", 1990, "bhd"},     //
		{1045, "HUF", 1045, "huf"},     // two-decimal for charges (zero-decimal only for payouts)
		{1045, "TWD", 1045, "twd"},     // likewise
		{1, "USD", 1, "usd"},           //
		{math.MaxInt64, "USD", math.MaxInt64, "usd"},
		{math.MaxInt64, "ISK", -1, ""}, // ×100 overflows
		{100, "UYI", -1, ""},           // no Stripe rule
		{100, "CLF", -1, ""},           // ISO exponent 4
	}
	for _, tt := range tests {
		got, cur, err := toStripe(domain.MustMoney(tt.minor, tt.code))
		if tt.want < 0 {
			if !errors.Is(err, errAmount) {
				t.Errorf("toStripe(%d %s) = %d %s, %v; want refused", tt.minor, tt.code, got, cur, err)
			}
			continue
		}
		if err != nil || got != tt.want || cur != tt.currency {
			t.Errorf("toStripe(%d %s) = %d %s, %v; want %d %s", tt.minor, tt.code, got, cur, err, tt.want, tt.currency)
		}
	}
}

// TestFromStripe: Stripe's amounts back to ISO minor units, exactly.
func TestFromStripe(t *testing.T) {
	tests := []struct {
		amount   int64
		currency string
		want     int64 // -1: refused
		code     string
	}{
		{1999, "usd", 1999, "USD"},
		{500, "jpy", 500, "JPY"},
		{500, "isk", 5, "ISK"},
		{4010, "isk", -1, ""}, // 40.10 ISK: a fraction ISO's ISK cannot hold
		{50, "mga", 5000, "MGA"},
		{1999, "kwd", 1999, "KWD"}, // reported amounts are read as they are
		{1045, "huf", 1045, "HUF"},
		{5000, "ugx", 5000, "UGX"},
		{1<<53 + 1, "usd", 1<<53 + 1, "USD"},
		{math.MaxInt64, "mga", -1, ""}, // ×100 overflows
		{-1, "usd", -1, ""},
		{100, "USD", -1, ""}, // Stripe's currencies are lower case
		{100, "xyz", -1, ""},
		{100, "", -1, ""},
	}
	for _, tt := range tests {
		got, err := fromStripe(tt.amount, tt.currency)
		if tt.want < 0 {
			if err == nil {
				t.Errorf("fromStripe(%d %s) = %s; want refused", tt.amount, tt.currency, got)
			}
			continue
		}
		if err != nil || !got.Equal(domain.MustMoney(tt.want, tt.code)) {
			t.Errorf("fromStripe(%d %s) = %s, %v; want %d %s", tt.amount, tt.currency, got, err, tt.want, tt.code)
		}
	}
}

// TestRoundTrip: every amount Stripe takes comes back as it went.
func TestRoundTrip(t *testing.T) {
	for _, code := range []string{"USD", "JPY", "ISK", "MGA", "KWD", "HUF", "TWD", "UGX", "BIF", "XOF", "TND"} {
		for _, v := range []int64{0, 10, 100, 1000, 123400, 1 << 40} {
			m := domain.MustMoney(v, code)
			a, cur, err := toStripe(m)
			if err != nil {
				continue // refused amounts are covered above
			}
			back, err := fromStripe(a, cur)
			if err != nil || !back.Equal(m) {
				t.Errorf("%s → %d %s → %s, %v", m, a, cur, back, err)
			}
		}
	}
}
