// Package domain holds paygate's pure rules: money, the order, attempt and
// refund state machines and the callback decision table. It imports nothing
// of ours and does no I/O; every state change in paygate goes through it.
package domain

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Currency is an ISO 4217 currency with its exponent (the number of minor
// units digits: JPY 0, USD 2, KWD 3). The zero value is not a currency.
type Currency struct {
	code string
	exp  int
}

// ErrUnknownCurrency is returned for a code that is not an active ISO 4217
// currency paygate knows.
var ErrUnknownCurrency = errors.New("unknown currency")

// iso4217 lists active ISO 4217 codes whose exponent is not 2; every other
// code in knownCurrencies has exponent 2. Source: ISO 4217 amendment 176.
var iso4217Exp = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0,
	"KRW": 0, "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0,
	"XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"CLF": 4, "UYW": 4,
}

// knownCurrencies are the exponent-2 codes accepted (active ISO 4217).
var knownCurrencies = strings.Fields(`AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB
BRL BSD BTN BWP BYN BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD
FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT
LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK
NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP
STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG`)

var currencies = func() map[string]Currency {
	m := make(map[string]Currency, len(knownCurrencies)+len(iso4217Exp))
	for _, c := range knownCurrencies {
		m[c] = Currency{code: c, exp: 2}
	}
	for c, e := range iso4217Exp {
		m[c] = Currency{code: c, exp: e}
	}
	return m
}()

// ParseCurrency returns the currency for an upper-case ISO 4217 code.
func ParseCurrency(code string) (Currency, error) {
	c, ok := currencies[code]
	if !ok {
		return Currency{}, fmt.Errorf("%w: %q", ErrUnknownCurrency, code)
	}
	return c, nil
}

// MustCurrency is ParseCurrency for constants in tests and defaults; it
// panics on an unknown code.
func MustCurrency(code string) Currency {
	c, err := ParseCurrency(code)
	if err != nil {
		panic(err)
	}
	return c
}

// Code is the ISO 4217 code, "" for the zero value.
func (c Currency) Code() string { return c.code }

// Exponent is the number of minor unit digits.
func (c Currency) Exponent() int { return c.exp }

// IsZero reports whether c is the zero value (no currency).
func (c Currency) IsZero() bool { return c.code == "" }

// Money is an amount in integer minor units of one currency. It is never a
// float. The zero value has no currency and is invalid for payments.
type Money struct {
	minor int64
	cur   Currency
}

// Money errors.
var (
	ErrCurrencyMismatch = errors.New("currency mismatch")
	ErrAmountOverflow   = errors.New("amount overflows int64 minor units")
	ErrNegativeAmount   = errors.New("amount is negative")
	ErrNonPositive      = errors.New("amount must be greater than zero")
)

// NewMoney makes an amount of minor units of the currency with the given
// ISO code. Negative amounts are refused: paygate has no negative money.
func NewMoney(minor int64, code string) (Money, error) {
	c, err := ParseCurrency(code)
	if err != nil {
		return Money{}, err
	}
	if minor < 0 {
		return Money{}, fmt.Errorf("%w: %d", ErrNegativeAmount, minor)
	}
	return Money{minor: minor, cur: c}, nil
}

// MustMoney is NewMoney for tests and constants; it panics on error.
func MustMoney(minor int64, code string) Money {
	m, err := NewMoney(minor, code)
	if err != nil {
		panic(err)
	}
	return m
}

// Minor is the amount in minor units.
func (m Money) Minor() int64 { return m.minor }

// Currency is the amount's currency.
func (m Money) Currency() Currency { return m.cur }

// IsZero reports whether m is the zero value.
func (m Money) IsZero() bool { return m.cur.IsZero() }

// Equal reports whether both amount and currency are equal.
func (m Money) Equal(o Money) bool { return m.minor == o.minor && m.cur == o.cur }

// Add returns m+o; both must be of one currency and the sum must fit.
func (m Money) Add(o Money) (Money, error) {
	if m.cur != o.cur {
		return Money{}, fmt.Errorf("%w: %s + %s", ErrCurrencyMismatch, m.cur.code, o.cur.code)
	}
	if o.minor > math.MaxInt64-m.minor {
		return Money{}, ErrAmountOverflow
	}
	return Money{minor: m.minor + o.minor, cur: m.cur}, nil
}

// Sub returns m-o; both must be of one currency and the result must not be
// negative.
func (m Money) Sub(o Money) (Money, error) {
	if m.cur != o.cur {
		return Money{}, fmt.Errorf("%w: %s - %s", ErrCurrencyMismatch, m.cur.code, o.cur.code)
	}
	if o.minor > m.minor {
		return Money{}, fmt.Errorf("%w: %d - %d", ErrNegativeAmount, m.minor, o.minor)
	}
	return Money{minor: m.minor - o.minor, cur: m.cur}, nil
}

// Cmp compares two amounts of one currency: -1, 0 or +1.
func (m Money) Cmp(o Money) (int, error) {
	if m.cur != o.cur {
		return 0, fmt.Errorf("%w: %s vs %s", ErrCurrencyMismatch, m.cur.code, o.cur.code)
	}
	switch {
	case m.minor < o.minor:
		return -1, nil
	case m.minor > o.minor:
		return 1, nil
	}
	return 0, nil
}

// Decimal renders the amount in major units with exactly the currency's
// exponent digits ("19.99", "1999" for JPY, "1.999" for KWD), as many PSPs
// want it. It never goes through a float.
func (m Money) Decimal() string {
	s := strconv.FormatInt(m.minor, 10)
	e := m.cur.exp
	if e == 0 {
		return s
	}
	if len(s) <= e {
		s = strings.Repeat("0", e-len(s)+1) + s
	}
	return s[:len(s)-e] + "." + s[len(s)-e:]
}

// String is "19.99 USD".
func (m Money) String() string {
	if m.IsZero() {
		return "<no money>"
	}
	return m.Decimal() + " " + m.cur.code
}

// ParseDecimal reads an amount in major units ("19.99", "1999") of the given
// currency exactly. It refuses more fraction digits than the currency has,
// signs, exponents and anything that is not plain digits, so a PSP's
// "19.999" for USD is an error and never a rounding.
func ParseDecimal(s, code string) (Money, error) {
	c, err := ParseCurrency(code)
	if err != nil {
		return Money{}, err
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || (hasDot && frac == "") || !allDigits(intPart) || !allDigits(frac) {
		return Money{}, fmt.Errorf("parse amount %q: not a plain decimal", s)
	}
	if len(frac) > c.exp {
		return Money{}, fmt.Errorf("parse amount %q: %s has %d decimals", s, code, c.exp)
	}
	frac += strings.Repeat("0", c.exp-len(frac))
	minor, err := strconv.ParseInt(intPart+frac, 10, 64)
	if err != nil {
		return Money{}, fmt.Errorf("parse amount %q: %w", s, ErrAmountOverflow)
	}
	return Money{minor: minor, cur: c}, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
