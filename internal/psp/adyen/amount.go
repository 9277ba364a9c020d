package adyen

import (
	"errors"
	"fmt"
	"math"

	"github.com/paygate/paygate/domain"
)

// adyenExp lists the currencies whose number of decimals at Adyen differs
// from ISO 4217 (and so from domain.Currency). Source: Adyen, "Currency
// codes and minor units", https://docs.adyen.com/development-resources/currency-codes/
// ("For CLP, CVE, IDR, and ISK the standard has a different number of
// decimals than shown in our currency codes table … the decimals in the
// table on this page are leading"): CLP 2, CVE 0, IDR 0, ISK 2. Every
// other currency uses its ISO 4217 exponent.
var adyenExp = map[string]int{"CLP": 2, "CVE": 0, "IDR": 0, "ISK": 2}

// errAmount is the cause of an amount Adyen's minor units cannot carry
// exactly.
var errAmount = errors.New("amount not representable")

// exponent is the number of decimals Adyen uses for c.
func exponent(c domain.Currency) int {
	if e, ok := adyenExp[c.Code()]; ok {
		return e
	}
	return c.Exponent()
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// toAdyen converts an amount to Adyen's minor units. Where Adyen uses
// more decimals (CLP, ISK) it multiplies, refusing overflow; where it uses
// fewer (CVE, IDR) the amount must be a whole number of Adyen's units,
// never rounded.
func toAdyen(m domain.Money) (int64, error) {
	c := m.Currency()
	d := exponent(c) - c.Exponent()
	switch {
	case d > 0:
		p := pow10(d)
		if m.Minor() > math.MaxInt64/p {
			return 0, fmt.Errorf("%s: %w: overflows Adyen's minor units", m, errAmount)
		}
		return m.Minor() * p, nil
	case d < 0:
		p := pow10(-d)
		if m.Minor()%p != 0 {
			return 0, fmt.Errorf("%s: %w: Adyen takes %s with %d decimals", m, errAmount, c.Code(), exponent(c))
		}
		return m.Minor() / p, nil
	}
	return m.Minor(), nil
}

// fromAdyen reads an amount in Adyen's minor units of the currency with
// ISO code code. A value with digits domain.Money cannot hold (CLP or ISK
// with a non-zero fraction) is an error, never a rounding.
func fromAdyen(value int64, code string) (domain.Money, error) {
	c, err := domain.ParseCurrency(code)
	if err != nil {
		return domain.Money{}, err
	}
	if value < 0 {
		return domain.Money{}, fmt.Errorf("%d %s: %w: negative", value, code, errAmount)
	}
	d := exponent(c) - c.Exponent()
	switch {
	case d > 0:
		p := pow10(d)
		if value%p != 0 {
			return domain.Money{}, fmt.Errorf("%d %s: %w: %s has %d decimals", value, code, errAmount, code, c.Exponent())
		}
		value /= p
	case d < 0:
		p := pow10(-d)
		if value > math.MaxInt64/p {
			return domain.Money{}, fmt.Errorf("%d %s: %w: overflows", value, code, errAmount)
		}
		value *= p
	}
	return domain.NewMoney(value, code)
}
