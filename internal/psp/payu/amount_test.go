package payu

import (
	"testing"

	"github.com/paygate/paygate/domain"
)

// TestAmounts: PayU's decimal strings, exactly, both ways; currencies
// other than the channel's are refused, whatever their decimals.
func TestAmounts(t *testing.T) {
	ch := newTestChannel(t)
	for _, c := range []struct {
		minor int64
		text  string
	}{{1999, "19.99"}, {5, "0.05"}, {100, "1.00"}, {0, "0.00"}, {1<<53 + 1, "90071992547409.93"}} {
		m := domain.MustMoney(c.minor, "INR")
		got, err := ch.amountString(m)
		if err != nil || got != c.text {
			t.Errorf("amountString(%d) = %q, %v; want %q", c.minor, got, err, c.text)
		}
		back, err := domain.ParseDecimal(c.text, "INR")
		if err != nil || !back.Equal(m) {
			t.Errorf("ParseDecimal(%q) = %s, %v", c.text, back, err)
		}
	}
	// PayU answers "10" and "10.5" as well as "10.00": all exact.
	for text, minor := range map[string]int64{"10": 1000, "10.5": 1050} {
		if m, err := domain.ParseDecimal(text, "INR"); err != nil || m.Minor() != minor {
			t.Errorf("ParseDecimal(%q) = %s, %v", text, m, err)
		}
	}
	for _, text := range []string{"19.999", "-1.00", "1e3", "", "1,000.00", " 1.00"} {
		if m, err := domain.ParseDecimal(text, "INR"); err == nil {
			t.Errorf("ParseDecimal(%q) = %s, want an error", text, m)
		}
	}
	for _, m := range []domain.Money{domain.MustMoney(120000, "JPY"), domain.MustMoney(1999, "KWD"), domain.MustMoney(1999, "USD")} {
		if s, err := ch.amountString(m); err == nil {
			t.Errorf("amountString(%s) = %q, want refused", m, s)
		}
	}
	// A channel configured for a 3-decimal currency writes three.
	kwd := newTestChannel(t, func(c *ChannelConfig) { c.Currency = "KWD" })
	if s, err := kwd.amountString(domain.MustMoney(1999, "KWD")); err != nil || s != "1.999" {
		t.Errorf("KWD: %q, %v", s, err)
	}
}
