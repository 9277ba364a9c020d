package domain_test

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/paygate/paygate/domain"
)

func TestParseCurrency(t *testing.T) {
	tests := []struct {
		code    string
		wantExp int
	}{
		// exponent 0
		{"JPY", 0}, {"KRW", 0}, {"CLP", 0}, {"ISK", 0}, {"VND", 0}, {"XAF", 0}, {"UYI", 0},
		// exponent 2
		{"USD", 2}, {"EUR", 2}, {"GBP", 2}, {"CHF", 2}, {"CNY", 2}, {"INR", 2}, {"BRL", 2},
		{"XCG", 2}, {"ZWG", 2}, {"SLE", 2}, {"VES", 2},
		// Active ISO 4217 codes of exponent 2 that a payment gateway must know:
		// the Uruguayan peso and the digital bolívar.
		{"UYU", 2}, {"VED", 2},
		// exponent 3
		{"KWD", 3}, {"BHD", 3}, {"JOD", 3}, {"OMR", 3}, {"TND", 3}, {"IQD", 3}, {"LYD", 3},
		// exponent 4
		{"CLF", 4}, {"UYW", 4},
	}
	for _, tt := range tests {
		c, err := domain.ParseCurrency(tt.code)
		if err != nil {
			t.Errorf("ParseCurrency(%q): unexpected error %v", tt.code, err)
			continue
		}
		if got := c.Code(); got != tt.code {
			t.Errorf("ParseCurrency(%q).Code() = %q, want %q", tt.code, got, tt.code)
		}
		if got := c.Exponent(); got != tt.wantExp {
			t.Errorf("ParseCurrency(%q).Exponent() = %d, want %d", tt.code, got, tt.wantExp)
		}
		if c.IsZero() {
			t.Errorf("ParseCurrency(%q).IsZero() = true, want false", tt.code)
		}
	}
}

func TestParseCurrencyRefused(t *testing.T) {
	for _, code := range []string{
		"", "usd", "Usd", "jpy", "US", "USDD", " USD", "USD ", "XXX", "ABC",
		"XAU", "XDR", // precious metals and SDRs are not money paygate takes
		"HRK", "ZWL", "SLL", "CUC", // withdrawn
		"ＵＳＤ", // full-width
	} {
		c, err := domain.ParseCurrency(code)
		if !errors.Is(err, domain.ErrUnknownCurrency) {
			t.Errorf("ParseCurrency(%q) error = %v, want ErrUnknownCurrency", code, err)
		}
		if !c.IsZero() {
			t.Errorf("ParseCurrency(%q) = %q, want the zero Currency", code, c.Code())
		}
	}
}

func TestCurrencyZero(t *testing.T) {
	var c domain.Currency
	if !c.IsZero() {
		t.Errorf("zero Currency IsZero() = false, want true")
	}
	if got := c.Code(); got != "" {
		t.Errorf("zero Currency Code() = %q, want \"\"", got)
	}
}

func TestMustCurrencyPanicsOnUnknown(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("MustCurrency(\"usd\") did not panic")
		}
	}()
	domain.MustCurrency("usd")
}

func TestNewMoney(t *testing.T) {
	tests := []struct {
		minor   int64
		code    string
		wantErr error
	}{
		{0, "USD", nil},
		{1, "USD", nil},
		{1999, "USD", nil},
		{math.MaxInt64, "JPY", nil},
		{-1, "USD", domain.ErrNegativeAmount},
		{math.MinInt64, "USD", domain.ErrNegativeAmount},
		{100, "usd", domain.ErrUnknownCurrency},
		{100, "", domain.ErrUnknownCurrency},
	}
	for _, tt := range tests {
		m, err := domain.NewMoney(tt.minor, tt.code)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("NewMoney(%d, %q) error = %v, want %v", tt.minor, tt.code, err, tt.wantErr)
			}
			if !m.IsZero() {
				t.Errorf("NewMoney(%d, %q) = %v on error, want the zero Money", tt.minor, tt.code, m)
			}
			continue
		}
		if err != nil {
			t.Errorf("NewMoney(%d, %q): unexpected error %v", tt.minor, tt.code, err)
			continue
		}
		if got := m.Minor(); got != tt.minor {
			t.Errorf("NewMoney(%d, %q).Minor() = %d", tt.minor, tt.code, got)
		}
		if got := m.Currency().Code(); got != tt.code {
			t.Errorf("NewMoney(%d, %q).Currency() = %q", tt.minor, tt.code, got)
		}
		if m.IsZero() {
			t.Errorf("NewMoney(%d, %q).IsZero() = true", tt.minor, tt.code)
		}
	}
}

func TestMoneyEqual(t *testing.T) {
	tests := []struct {
		a, b domain.Money
		want bool
	}{
		{domain.MustMoney(100, "USD"), domain.MustMoney(100, "USD"), true},
		{domain.MustMoney(100, "USD"), domain.MustMoney(101, "USD"), false},
		{domain.MustMoney(100, "USD"), domain.MustMoney(100, "EUR"), false},
		{domain.MustMoney(0, "USD"), domain.Money{}, false},
		{domain.Money{}, domain.Money{}, true},
	}
	for _, tt := range tests {
		if got := tt.a.Equal(tt.b); got != tt.want {
			t.Errorf("%v.Equal(%v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := tt.b.Equal(tt.a); got != tt.want {
			t.Errorf("%v.Equal(%v) = %v, want %v (symmetry)", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestMoneyAdd(t *testing.T) {
	usd := func(n int64) domain.Money { return domain.MustMoney(n, "USD") }
	tests := []struct {
		name    string
		a, b    domain.Money
		want    domain.Money
		wantErr error
	}{
		{"zero plus zero", usd(0), usd(0), usd(0), nil},
		{"plain", usd(1999), usd(1), usd(2000), nil},
		{"to the max", usd(math.MaxInt64 - 1), usd(1), usd(math.MaxInt64), nil},
		{"max plus zero", usd(math.MaxInt64), usd(0), usd(math.MaxInt64), nil},
		{"overflow by one", usd(math.MaxInt64), usd(1), domain.Money{}, domain.ErrAmountOverflow},
		{"overflow by one, other order", usd(1), usd(math.MaxInt64), domain.Money{}, domain.ErrAmountOverflow},
		{"overflow max plus max", usd(math.MaxInt64), usd(math.MaxInt64), domain.Money{}, domain.ErrAmountOverflow},
		{"overflow halves", usd(math.MaxInt64/2 + 1), usd(math.MaxInt64/2 + 1), domain.Money{}, domain.ErrAmountOverflow},
		{"currency mismatch", usd(1), domain.MustMoney(1, "EUR"), domain.Money{}, domain.ErrCurrencyMismatch},
		{"same digits other exponent", domain.MustMoney(1, "JPY"), domain.MustMoney(1, "KRW"), domain.Money{}, domain.ErrCurrencyMismatch},
		{"no currency", usd(1), domain.Money{}, domain.Money{}, domain.ErrCurrencyMismatch},
	}
	for _, tt := range tests {
		got, err := tt.a.Add(tt.b)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: %v.Add(%v) error = %v, want %v", tt.name, tt.a, tt.b, err, tt.wantErr)
		}
		if got != tt.want {
			t.Errorf("%s: %v.Add(%v) = %v, want %v", tt.name, tt.a, tt.b, got, tt.want)
		}
	}
}

func TestMoneySub(t *testing.T) {
	usd := func(n int64) domain.Money { return domain.MustMoney(n, "USD") }
	tests := []struct {
		name    string
		a, b    domain.Money
		want    domain.Money
		wantErr error
	}{
		{"to zero", usd(1999), usd(1999), usd(0), nil},
		{"plain", usd(2000), usd(1), usd(1999), nil},
		{"max minus max", usd(math.MaxInt64), usd(math.MaxInt64), usd(0), nil},
		{"max minus zero", usd(math.MaxInt64), usd(0), usd(math.MaxInt64), nil},
		{"negative by one", usd(1999), usd(2000), domain.Money{}, domain.ErrNegativeAmount},
		{"zero minus max", usd(0), usd(math.MaxInt64), domain.Money{}, domain.ErrNegativeAmount},
		{"currency mismatch", usd(5), domain.MustMoney(1, "EUR"), domain.Money{}, domain.ErrCurrencyMismatch},
		{"currency mismatch wins over negative", usd(1), domain.MustMoney(5, "EUR"), domain.Money{}, domain.ErrCurrencyMismatch},
	}
	for _, tt := range tests {
		got, err := tt.a.Sub(tt.b)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: %v.Sub(%v) error = %v, want %v", tt.name, tt.a, tt.b, err, tt.wantErr)
		}
		if got != tt.want {
			t.Errorf("%s: %v.Sub(%v) = %v, want %v", tt.name, tt.a, tt.b, got, tt.want)
		}
	}
}

func TestMoneyCmp(t *testing.T) {
	usd := func(n int64) domain.Money { return domain.MustMoney(n, "USD") }
	tests := []struct {
		a, b    domain.Money
		want    int
		wantErr error
	}{
		{usd(1), usd(2), -1, nil},
		{usd(2), usd(1), 1, nil},
		{usd(2), usd(2), 0, nil},
		{usd(0), usd(math.MaxInt64), -1, nil},
		{usd(math.MaxInt64), usd(0), 1, nil},
		{usd(1), domain.MustMoney(1, "EUR"), 0, domain.ErrCurrencyMismatch},
		{domain.MustMoney(5, "KWD"), domain.MustMoney(1, "BHD"), 0, domain.ErrCurrencyMismatch},
	}
	for _, tt := range tests {
		got, err := tt.a.Cmp(tt.b)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%v.Cmp(%v) error = %v, want %v", tt.a, tt.b, err, tt.wantErr)
		}
		if got != tt.want {
			t.Errorf("%v.Cmp(%v) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestMoneyDecimal(t *testing.T) {
	tests := []struct {
		minor int64
		code  string
		want  string
	}{
		{0, "JPY", "0"},
		{1, "JPY", "1"},
		{5, "JPY", "5"},
		{10, "JPY", "10"},
		{100, "JPY", "100"},
		{1999, "JPY", "1999"},
		{math.MaxInt64, "JPY", "9223372036854775807"},

		{0, "USD", "0.00"},
		{1, "USD", "0.01"},
		{5, "USD", "0.05"},
		{10, "USD", "0.10"},
		{100, "USD", "1.00"},
		{1999, "USD", "19.99"},
		{100000, "USD", "1000.00"},
		{math.MaxInt64, "USD", "92233720368547758.07"},

		{0, "KWD", "0.000"},
		{1, "KWD", "0.001"},
		{5, "KWD", "0.005"},
		{10, "KWD", "0.010"},
		{100, "KWD", "0.100"},
		{1000, "KWD", "1.000"},
		{1999, "KWD", "1.999"},
		{math.MaxInt64, "KWD", "9223372036854775.807"},

		{0, "CLF", "0.0000"},
		{1, "CLF", "0.0001"},
		{5, "CLF", "0.0005"},
		{10, "CLF", "0.0010"},
		{100, "CLF", "0.0100"},
		{10000, "CLF", "1.0000"},
		{123456789, "CLF", "12345.6789"},
		{math.MaxInt64, "CLF", "922337203685477.5807"},
	}
	for _, tt := range tests {
		m := domain.MustMoney(tt.minor, tt.code)
		if got := m.Decimal(); got != tt.want {
			t.Errorf("MustMoney(%d, %q).Decimal() = %q, want %q", tt.minor, tt.code, got, tt.want)
		}
		if got, want := m.String(), tt.want+" "+tt.code; got != want {
			t.Errorf("MustMoney(%d, %q).String() = %q, want %q", tt.minor, tt.code, got, want)
		}
	}
	if got, want := (domain.Money{}).String(), "<no money>"; got != want {
		t.Errorf("zero Money String() = %q, want %q", got, want)
	}
}

func TestParseDecimalRoundTrip(t *testing.T) {
	// Canonical renderings: Decimal(ParseDecimal(x)) must give x back, and
	// the minor units must be exact.
	tests := []struct {
		s, code string
		minor   int64
	}{
		{"0", "JPY", 0},
		{"1", "JPY", 1},
		{"1999", "JPY", 1999},
		{"9223372036854775807", "JPY", math.MaxInt64},
		{"0.00", "USD", 0},
		{"0.01", "USD", 1},
		{"0.05", "USD", 5},
		{"0.10", "USD", 10},
		{"1.00", "USD", 100},
		{"19.99", "USD", 1999},
		{"92233720368547758.07", "USD", math.MaxInt64},
		{"0.000", "KWD", 0},
		{"0.001", "KWD", 1},
		{"1.999", "KWD", 1999},
		{"9223372036854775.807", "KWD", math.MaxInt64},
		{"0.0000", "CLF", 0},
		{"0.0001", "CLF", 1},
		{"12345.6789", "CLF", 123456789},
		{"922337203685477.5807", "CLF", math.MaxInt64},
	}
	for _, tt := range tests {
		m, err := domain.ParseDecimal(tt.s, tt.code)
		if err != nil {
			t.Errorf("ParseDecimal(%q, %q): unexpected error %v", tt.s, tt.code, err)
			continue
		}
		if got := m.Minor(); got != tt.minor {
			t.Errorf("ParseDecimal(%q, %q).Minor() = %d, want %d", tt.s, tt.code, got, tt.minor)
		}
		if got := m.Currency().Code(); got != tt.code {
			t.Errorf("ParseDecimal(%q, %q).Currency() = %q", tt.s, tt.code, got)
		}
		if got := m.Decimal(); got != tt.s {
			t.Errorf("Decimal(ParseDecimal(%q, %q)) = %q, want %q", tt.s, tt.code, got, tt.s)
		}
	}
}

func TestParseDecimalNonCanonical(t *testing.T) {
	// Accepted, but not in canonical form: fewer decimals than the currency
	// has, or leading zeros.
	tests := []struct {
		s, code string
		minor   int64
	}{
		{"19", "USD", 1900},
		{"19.9", "USD", 1990},
		{"019.99", "USD", 1999},
		{"000", "JPY", 0},
		{"1.5", "KWD", 1500},
		{"1.05", "CLF", 10500},
	}
	for _, tt := range tests {
		m, err := domain.ParseDecimal(tt.s, tt.code)
		if err != nil {
			t.Errorf("ParseDecimal(%q, %q): unexpected error %v", tt.s, tt.code, err)
			continue
		}
		if got := m.Minor(); got != tt.minor {
			t.Errorf("ParseDecimal(%q, %q).Minor() = %d, want %d", tt.s, tt.code, got, tt.minor)
		}
	}
}

func TestParseDecimalRefused(t *testing.T) {
	tests := []struct {
		s, code string
		wantErr error // nil: any error will do (ParseDecimal has no sentinel for syntax)
	}{
		{"19.999", "USD", nil},
		{"1.5", "JPY", nil},
		{"1.0", "JPY", nil},
		{"1.0000", "KWD", nil},
		{"1.00000", "CLF", nil},
		{"-1", "USD", nil},
		{"-0.01", "USD", nil},
		{"+1", "USD", nil},
		{"+1.00", "USD", nil},
		{"1e2", "USD", nil},
		{"1E2", "JPY", nil},
		{"1.5e1", "USD", nil},
		{" 1.00", "USD", nil},
		{"1.00 ", "USD", nil},
		{"1 000", "JPY", nil},
		{"1,00", "USD", nil},
		{"1,000.00", "USD", nil},
		{"1_000", "JPY", nil},
		{"", "USD", nil},
		{".", "USD", nil},
		{".5", "USD", nil},
		{"5.", "USD", nil},
		{"5.", "JPY", nil},
		{"1.2.3", "USD", nil},
		{"0x10", "JPY", nil},
		{"NaN", "USD", nil},
		{"Inf", "USD", nil},
		{"١٢", "JPY", nil}, // Arabic-Indic digits
		{"１", "JPY", nil},  // full-width digit
		{"1\n", "JPY", nil},
		{"1:00", "USD", nil}, // ':' and '/' sit just after and before the digits
		{"19.9:", "USD", nil},
		{"1/2", "JPY", nil},
		{"/", "JPY", nil},
		{"9223372036854775808", "JPY", domain.ErrAmountOverflow},
		{"92233720368547758.08", "USD", domain.ErrAmountOverflow},
		{"92233720368547759", "USD", domain.ErrAmountOverflow},
		{"99999999999999999999999999", "KWD", domain.ErrAmountOverflow},
		{"1.00", "usd", domain.ErrUnknownCurrency},
		{"1.00", "", domain.ErrUnknownCurrency},
	}
	for _, tt := range tests {
		m, err := domain.ParseDecimal(tt.s, tt.code)
		if err == nil {
			t.Errorf("ParseDecimal(%q, %q) = %v, want an error", tt.s, tt.code, m)
			continue
		}
		if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("ParseDecimal(%q, %q) error = %v, want %v", tt.s, tt.code, err, tt.wantErr)
		}
		if tt.wantErr == nil && (errors.Is(err, domain.ErrAmountOverflow) || errors.Is(err, domain.ErrUnknownCurrency)) {
			t.Errorf("ParseDecimal(%q, %q) error = %v, want a syntax error", tt.s, tt.code, err)
		}
		if !m.IsZero() {
			t.Errorf("ParseDecimal(%q, %q) = %v on error, want the zero Money", tt.s, tt.code, m)
		}
	}
}

// TestParseDecimalAllSmallAmounts renders and re-parses every amount up to
// 100 000 minor units in currencies of each exponent.
func TestParseDecimalAllSmallAmounts(t *testing.T) {
	for _, code := range []string{"JPY", "USD", "KWD", "CLF"} {
		for minor := int64(0); minor <= 100000; minor++ {
			m := domain.MustMoney(minor, code)
			back, err := domain.ParseDecimal(m.Decimal(), code)
			if err != nil || back != m {
				t.Fatalf("ParseDecimal(%q, %q) = %v, %v; want %v", m.Decimal(), code, back, err, m)
			}
		}
	}
}

func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{
		"0", "1", "19.99", "19.999", "0.01", ".5", "5.", "", "-1", "+1", "1e3",
		" 1", "1 ", "9223372036854775807", "92233720368547758.07", "92233720368547758.08",
		"00012.3", "1.2.3", "１",
	} {
		for _, code := range []string{"JPY", "USD", "KWD", "CLF"} {
			f.Add(s, code)
		}
	}
	f.Fuzz(func(t *testing.T, s, code string) {
		m, err := domain.ParseDecimal(s, code)
		if err != nil {
			if !m.IsZero() {
				t.Fatalf("ParseDecimal(%q, %q) = %v with error %v, want the zero Money", s, code, m, err)
			}
			return
		}
		if m.Minor() < 0 {
			t.Fatalf("ParseDecimal(%q, %q) = %d, a negative amount", s, code, m.Minor())
		}
		if got := m.Currency().Code(); got != code {
			t.Fatalf("ParseDecimal(%q, %q) currency = %q", s, code, got)
		}
		// Only plain digits with at most one dot may be accepted.
		if strings.Trim(s, "0123456789.") != "" || strings.Count(s, ".") > 1 {
			t.Fatalf("ParseDecimal(%q, %q) accepted a non-decimal", s, code)
		}
		// The value must be exact: digits without the dot, padded to the
		// exponent, equal the minor units.
		ip, frac, _ := strings.Cut(s, ".")
		if len(frac) > m.Currency().Exponent() {
			t.Fatalf("ParseDecimal(%q, %q) accepted %d decimals", s, code, len(frac))
		}
		want, perr := strconv.ParseInt(ip+frac+strings.Repeat("0", m.Currency().Exponent()-len(frac)), 10, 64)
		if perr != nil || want != m.Minor() {
			t.Fatalf("ParseDecimal(%q, %q).Minor() = %d, want %d (%v)", s, code, m.Minor(), want, perr)
		}
		r := m.Decimal()
		back, err := domain.ParseDecimal(r, code)
		if err != nil {
			t.Fatalf("ParseDecimal(%q, %q) = %v renders as %q, which does not parse: %v", s, code, m, r, err)
		}
		if back != m {
			t.Fatalf("ParseDecimal(%q) = %v, want %v (from %q)", r, back, m, s)
		}
		if back.Decimal() != r {
			t.Fatalf("Decimal is not stable: %q then %q", r, back.Decimal())
		}
	})
}
