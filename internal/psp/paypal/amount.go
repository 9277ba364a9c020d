package paypal

import (
	"fmt"
	"strconv"

	"github.com/paygate/paygate/domain"
)

// currencies are the currencies PayPal's REST APIs accept, with the
// number of decimals PayPal allows in an amount's value where it differs
// from ISO 4217: HUF, JPY and TWD take whole units only ("This currency
// does not support decimals. If you pass a decimal amount, an error
// occurs.", developer.paypal.com/api/rest/reference/currency-codes/).
// A value is an integer for them, a decimal with the ISO exponent's
// digits for every other currency.
var currencies = map[string]int{
	"AUD": 2, "BRL": 2, "CAD": 2, "CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2, "HKD": 2,
	"HUF": 0, "ILS": 2, "JPY": 0, "MYR": 2, "MXN": 2, "TWD": 0, "NZD": 2, "NOK": 2,
	"PHP": 2, "PLN": 2, "GBP": 2, "SGD": 2, "SEK": 2, "CHF": 2, "THB": 2, "USD": 2,
}

// formatAmount is m as PayPal's amount value. A currency PayPal does not
// list, or an amount with minor units PayPal cannot take (HUF 10.50), is
// an error: rounding would charge another amount.
func formatAmount(m domain.Money) (string, error) {
	code := m.Currency().Code()
	dec, ok := currencies[code]
	if !ok {
		return "", fmt.Errorf("currency %s is not accepted by PayPal", code)
	}
	if m.Minor() < 0 {
		return "", fmt.Errorf("negative amount %s", m)
	}
	exp := m.Currency().Exponent()
	if dec >= exp {
		return m.Decimal(), nil
	}
	// PayPal takes fewer decimals than ISO 4217 (HUF, TWD: 0 of 2).
	div := int64(1)
	for range exp - dec {
		div *= 10
	}
	if m.Minor()%div != 0 {
		return "", fmt.Errorf("%s: PayPal takes %s in whole units only", m, code)
	}
	// dec is 0 for every such currency PayPal lists.
	return strconv.FormatInt(m.Minor()/div, 10), nil
}

// parseAmount reads PayPal's {currency_code, value} exactly: "100" and
// "100.00" for HUF are both 10000 fillér; more decimals than the
// currency has, a sign or an exponent are errors.
func parseAmount(value, code string) (domain.Money, error) {
	if code == "" || value == "" {
		return domain.Money{}, fmt.Errorf("amount without value or currency_code")
	}
	return domain.ParseDecimal(value, code)
}

// amountJSON is PayPal's Money object.
type amountJSON struct {
	CurrencyCode string `json:"currency_code"`
	Value        string `json:"value"`
}

func (a *amountJSON) money() (domain.Money, error) {
	if a == nil {
		return domain.Money{}, fmt.Errorf("no amount")
	}
	return parseAmount(a.Value, a.CurrencyCode)
}
