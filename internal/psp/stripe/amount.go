package stripe

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/paygate/paygate/domain"
)

// Stripe's amounts are integers in what Stripe calls the currency's
// smallest unit, which is not always ISO 4217's minor unit
// (https://docs.stripe.com/currencies, "Zero-decimal currencies",
// "Three-decimal currencies" and "Special cases"). paygate's Money holds
// ISO minor units; the conversion below is exact both ways and refuses,
// never rounds, what cannot be expressed.
//
//   - Zero-decimal on Stripe: BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX
//     VND VUV XAF XOF XPF — the amount is in major units. For all of them
//     but MGA ISO's exponent is 0 too; MGA has ISO exponent 2, so 1 MGA is
//     100 paygate minor units and 1 Stripe unit.
//   - Three-decimal: BHD JOD KWD OMR TND — the amount is in thousandths,
//     as ISO's, but Stripe requires the last digit to be 0 on payments and
//     refunds ("round amounts to the nearest ten"): we refuse to send an
//     amount that is not a multiple of 10 rather than round it. Amounts
//     Stripe reports are read as they are.
//   - ISK: ISO exponent 0, but Stripe kept it a two-decimal currency for
//     backwards compatibility: 5 ISK is amount 500, and since April 2023
//     every ISK amount must be a multiple of 100
//     (https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds).
//     We send minor×100 and read only multiples of 100.
//   - HUF and TWD: two-decimal for charges and refunds, like ISO; Stripe
//     treats them as zero-decimal only for payouts, which paygate does not
//     make.
//   - Every other two-decimal ISO currency: the same number.
//
// Currencies whose ISO exponent Stripe has no rule for (UYI, CLF, UYW)
// are refused.

// stripeZeroDecimal is Stripe's list of zero-decimal currencies.
var stripeZeroDecimal = map[string]bool{
	"BIF": true, "CLP": true, "DJF": true, "GNF": true, "JPY": true, "KMF": true, "KRW": true, "MGA": true,
	"PYG": true, "RWF": true, "UGX": true, "VND": true, "VUV": true, "XAF": true, "XOF": true, "XPF": true,
}

// stripeThreeDecimal is Stripe's list of three-decimal currencies.
var stripeThreeDecimal = map[string]bool{"BHD": true, "JOD": true, "KWD": true, "OMR": true, "TND": true}

// errAmount is the cause of every conversion refusal.
var errAmount = errors.New("amount not expressible in Stripe's units")

// stripeExponent is how many decimals Stripe's amounts of code carry.
func stripeExponent(c domain.Currency) (int, error) {
	code := c.Code()
	switch {
	case stripeZeroDecimal[code]:
		return 0, nil
	case stripeThreeDecimal[code]:
		return 3, nil
	case code == "ISK":
		return 2, nil
	case c.Exponent() == 2:
		return 2, nil
	}
	return 0, fmt.Errorf("%w: Stripe has no rule for %s (ISO exponent %d)", errAmount, code, c.Exponent())
}

var pow10 = [...]int64{1, 10, 100, 1000, 10000}

// toStripe is m as Stripe's amount and lower-case currency, for a payment
// or refund.
func toStripe(m domain.Money) (int64, string, error) {
	if m.IsZero() {
		return 0, "", fmt.Errorf("%w: no amount", errAmount)
	}
	c := m.Currency()
	se, err := stripeExponent(c)
	if err != nil {
		return 0, "", err
	}
	v := m.Minor()
	switch d := se - c.Exponent(); {
	case d > 0:
		f := pow10[d]
		if v > math.MaxInt64/f {
			return 0, "", fmt.Errorf("%w: %s overflows", errAmount, m)
		}
		v *= f
	case d < 0:
		f := pow10[-d]
		if v%f != 0 {
			return 0, "", fmt.Errorf("%w: %s is zero-decimal at Stripe, %s has a fraction", errAmount, c.Code(), m)
		}
		v /= f
	}
	if stripeThreeDecimal[c.Code()] && v%10 != 0 {
		return 0, "", fmt.Errorf("%w: Stripe takes %s amounts only in multiples of 0.010, %s is not", errAmount, c.Code(), m)
	}
	return v, strings.ToLower(c.Code()), nil
}

// fromStripe reads an amount and currency as Stripe reports them.
func fromStripe(amount int64, currency string) (domain.Money, error) {
	code := strings.ToUpper(currency)
	if currency != strings.ToLower(currency) {
		return domain.Money{}, fmt.Errorf("%w: currency %q is not lower case", errAmount, currency)
	}
	c, err := domain.ParseCurrency(code)
	if err != nil {
		return domain.Money{}, err
	}
	se, err := stripeExponent(c)
	if err != nil {
		return domain.Money{}, err
	}
	if amount < 0 {
		return domain.Money{}, fmt.Errorf("%w: negative amount %d", errAmount, amount)
	}
	v := amount
	switch d := c.Exponent() - se; {
	case d > 0:
		f := pow10[d]
		if v > math.MaxInt64/f {
			return domain.Money{}, fmt.Errorf("%w: %d %s overflows", errAmount, amount, code)
		}
		v *= f
	case d < 0:
		f := pow10[-d]
		if v%f != 0 {
			return domain.Money{}, fmt.Errorf("%w: %d %s has a fraction of a unit paygate cannot hold", errAmount, amount, code)
		}
		v /= f
	}
	return domain.NewMoney(v, code)
}
