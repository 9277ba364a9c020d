package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/paygate/paygate/domain"
)

func TestHostAllowListAllows(t *testing.T) {
	allow := domain.HostAllowList{"shop.example", ".pay.example", "Mixed.Example"}
	tests := []struct {
		url  string
		want bool
	}{
		// exact entry
		{"https://shop.example/ok", true},
		{"http://shop.example/ok", true},
		{"https://shop.example", true},
		{"https://shop.example:8443/ok?x=1#top", true},
		{"https://SHOP.Example/ok", true},
		{"HTTPS://shop.example/ok", true},
		{"https://mixed.example/ok", true},
		{"https://www.shop.example/ok", false}, // exact entry: no sub-domains
		{"https://evilshop.example/ok", false},
		{"https://shop.example.evil.example/ok", false},
		{"https://evil.example/shop.example", false},
		{"https://evil.example/?r=https://shop.example", false},
		{"https://evil.example#@shop.example", false},
		{"https://evil.example?.shop.example", false},
		{"https://shop.example./ok", false}, // trailing dot: another name to a browser's cookie jar
		// ".sub" entry: the domain and its sub-domains
		{"https://pay.example/ok", true},
		{"https://www.pay.example/ok", true},
		{"https://a.b.pay.example/ok", true},
		{"https://WWW.PAY.EXAMPLE/ok", true},
		{"https://evilpay.example/ok", false},
		{"https://evil-pay.example/ok", false},
		{"https://pay.example.evil.example/ok", false},
		{"https://xpay.example/ok", false},
		// userinfo
		{"https://user@shop.example/ok", false},
		{"https://user:pw@shop.example/ok", false},
		{"https://shop.example@evil.example/ok", false},
		{"https://shop.example:443@evil.example/ok", false},
		{"https://@shop.example/ok", false},
		// other schemes and forms
		{"javascript:alert(1)//shop.example", false},
		{"data:text/html,shop.example", false},
		{"ftp://shop.example/ok", false},
		{"file://shop.example/etc/passwd", false},
		{"ws://shop.example/ok", false},
		{"https:shop.example/ok", false},
		{"https:/shop.example/ok", false},
		{"https:///shop.example/ok", false},
		{"https:/\\evil.example/ok", false},
		{"https://shop.example\\@evil.example/ok", false},
		{"//shop.example/ok", false},
		{"/ok", false},
		{"ok", false},
		{"", false},
		{"https://", false},
		{" https://shop.example/ok", false},
		{"https://shop.example\n.evil.example/ok", false},
		{"https://shop%2Eexample/ok", false},
		{"https://[::1]/ok", false},
		{"https://127.0.0.1/ok", false},
	}
	for _, tt := range tests {
		err := allow.Allows(tt.url)
		if got := err == nil; got != tt.want {
			t.Errorf("Allows(%q) = %v, want allowed = %v", tt.url, err, tt.want)
		}
	}
}

func TestHostAllowListEmpty(t *testing.T) {
	for _, l := range []domain.HostAllowList{nil, {}, {""}} {
		if err := l.Allows("https://shop.example/ok"); err == nil {
			t.Errorf("%q.Allows: nil, want refused", l)
		}
	}
	// An entry of a bare dot must not allow every host.
	if err := (domain.HostAllowList{"."}).Allows("https://evil.example/"); err == nil {
		t.Errorf(`{"."}.Allows(evil.example) = nil, want refused`)
	}
}

// TestHostAllowListDegenerate: a URL without a host name is never on an
// allowed host, and a degenerate entry ("" or ".") allows nothing, whatever
// the caller put in the list.
func TestHostAllowListDegenerate(t *testing.T) {
	tests := []struct {
		list domain.HostAllowList
		url  string
	}{
		{domain.HostAllowList{"shop.example", ""}, "https://:443/ok"},
		{domain.HostAllowList{"shop.example", ""}, "http://:80/ok"},
		{domain.HostAllowList{"shop.example", "."}, "https://:443/ok"},
		{domain.HostAllowList{"shop.example", "."}, "https://evil.example./ok"},
	}
	for _, tt := range tests {
		if err := tt.list.Allows(tt.url); err == nil {
			t.Errorf("%q.Allows(%q) = nil, want refused", tt.list, tt.url)
		}
	}
}

func validIntent() domain.PayIntent {
	return domain.PayIntent{
		MessageID: "m-1", OrderID: "A1001", Amount: domain.MustMoney(1999, "USD"), Country: "US", Method: "card",
		Description: "Phone case",
		Buyer:       domain.Buyer{ID: "u42", Email: "a@example.com", IP: "203.0.113.7"},
		Returns: domain.ReturnURLs{
			Success: "https://shop.example/ok", Failure: "https://shop.example/fail", Pending: "https://shop.example/wait",
		},
	}
}

func TestPayIntentValidate(t *testing.T) {
	allow := domain.HostAllowList{"shop.example"}
	tests := []struct {
		name     string
		edit     func(*domain.PayIntent)
		wantOK   bool
		sentinel error
	}{
		{"valid", func(*domain.PayIntent) {}, true, nil},
		{"no method", func(p *domain.PayIntent) { p.Method = "" }, true, nil},
		{"method of 32", func(p *domain.PayIntent) { p.Method = strings.Repeat("a", 32) }, true, nil},
		{"method of 33", func(p *domain.PayIntent) { p.Method = strings.Repeat("a", 33) }, false, nil},
		{"method upper case", func(p *domain.PayIntent) { p.Method = "Card" }, false, nil},
		{"method with dash", func(p *domain.PayIntent) { p.Method = "bank-transfer" }, false, nil},
		{"method with snake case", func(p *domain.PayIntent) { p.Method = "bank_transfer" }, true, nil},
		{"bad order id", func(p *domain.PayIntent) { p.OrderID = "-A" }, false, domain.ErrInvalidOrderID},
		{"empty order id", func(p *domain.PayIntent) { p.OrderID = "" }, false, domain.ErrInvalidOrderID},
		{"zero amount", func(p *domain.PayIntent) { p.Amount = domain.MustMoney(0, "USD") }, false, domain.ErrNonPositive},
		{"no amount", func(p *domain.PayIntent) { p.Amount = domain.Money{} }, false, domain.ErrNonPositive},
		{"country lower case", func(p *domain.PayIntent) { p.Country = "us" }, false, nil},
		{"country of 3", func(p *domain.PayIntent) { p.Country = "USA" }, false, nil},
		{"no country", func(p *domain.PayIntent) { p.Country = "" }, false, nil},
		{"country with newline", func(p *domain.PayIntent) { p.Country = "US\n" }, false, nil},
		{"success url off-list", func(p *domain.PayIntent) { p.Returns.Success = "https://evil.example/ok" }, false, nil},
		{"failure url off-list", func(p *domain.PayIntent) { p.Returns.Failure = "https://evil.example/fail" }, false, nil},
		{"pending url off-list", func(p *domain.PayIntent) { p.Returns.Pending = "https://evil.example/wait" }, false, nil},
		{"pending url relative", func(p *domain.PayIntent) { p.Returns.Pending = "/wait" }, false, nil},
		{"success url javascript", func(p *domain.PayIntent) { p.Returns.Success = "javascript:alert(1)" }, false, nil},
	}
	for _, tt := range tests {
		p := validIntent()
		tt.edit(&p)
		err := p.Validate(allow)
		if tt.wantOK {
			if err != nil {
				t.Errorf("%s: Validate = %v, want nil", tt.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: Validate = nil, want an error", tt.name)
			continue
		}
		if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
			t.Errorf("%s: Validate = %v, want %v", tt.name, err, tt.sentinel)
		}
	}
	if err := validIntent().Validate(nil); err == nil {
		t.Errorf("Validate with an empty allow-list = nil, want refused return URLs")
	}
}

func TestPayIntentRetries(t *testing.T) {
	in := domain.PayIntent{MessageID: "pay_request/mall/k1", OrderID: "A2", Digest: []byte{1, 2, 3}}
	if err := in.Retries([]byte{1, 2, 3}, "A2"); err != nil {
		t.Errorf("same digest: %v", err)
	}
	if err := in.Retries(nil, "A1"); err != nil {
		t.Errorf("a first request stored without a digest: %v", err)
	}
	err := in.Retries([]byte{1, 2, 4}, "A1")
	if !errors.Is(err, domain.ErrIdempotencyKeyReused) || !strings.HasPrefix(err.Error(), "idempotency_key_reused: message id pay_request/mall/k1 was first used for another request (order A1, another body)") {
		t.Errorf("other digest: %v", err)
	}
}
