package domain

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Buyer is who pays, as the mall describes them.
type Buyer struct {
	ID     string
	Email  string
	IP     string
	Device string
}

// ReturnURLs are the mall's pages for the buyer's browser after paying.
type ReturnURLs struct {
	Success string
	Failure string
	Pending string
}

// PayIntent is a validated pay request: the mall asks for one more attempt
// to pay an order. MessageID identifies the request message (its ce_id, or
// topic/partition/offset) so a redelivered message is recognised.
type PayIntent struct {
	MessageID   string
	OrderID     string
	Amount      Money
	Country     string
	Method      string
	Description string
	Buyer       Buyer
	Returns     ReturnURLs
	// Channel pins the intent to one channel; "" lets the router choose.
	Channel string
	// Raw is the request as received, kept as evidence.
	Raw []byte
}

var (
	countryPattern = regexp.MustCompile(`^[A-Z]{2}$`)
	methodPattern  = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
)

// HostAllowList says which hosts the mall's return URLs may point at.
// An entry "shop.example" allows that host exactly; ".shop.example" allows
// its sub-domains too. An empty list allows nothing.
type HostAllowList []string

// Allows reports whether raw is an absolute http(s) URL on an allowed host.
func (l HostAllowList) Allows(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || u.User != nil {
		return fmt.Errorf("return url %q: not an absolute http(s) URL", raw)
	}
	host := strings.ToLower(u.Hostname())
	for _, a := range l {
		a = strings.ToLower(a)
		if strings.TrimPrefix(a, ".") == "" {
			continue // an empty or "." entry allows nothing
		}
		if host == strings.TrimPrefix(a, ".") || (strings.HasPrefix(a, ".") && strings.HasSuffix(host, a)) {
			return nil
		}
	}
	return fmt.Errorf("return url %q: host %q is not on the allow-list", raw, host)
}

// Validate checks what JSON Schema cannot: the amount against the
// currency, the return URLs against the allow-list.
func (p PayIntent) Validate(allow HostAllowList) error {
	if err := ValidOrderID(p.OrderID); err != nil {
		return err
	}
	if p.Amount.IsZero() || p.Amount.Minor() <= 0 {
		return fmt.Errorf("amount: %w", ErrNonPositive)
	}
	if !countryPattern.MatchString(p.Country) {
		return fmt.Errorf("country %q: not an ISO 3166 alpha-2 code", p.Country)
	}
	if p.Method != "" && !methodPattern.MatchString(p.Method) {
		return fmt.Errorf("method %q: 1-32 of a-z 0-9 _", p.Method)
	}
	for _, u := range []string{p.Returns.Success, p.Returns.Failure, p.Returns.Pending} {
		if err := allow.Allows(u); err != nil {
			return err
		}
	}
	return nil
}

// Event is a message for Kafka written through the transactional outbox.
// ID is stable and deterministic for a fact ("paid/<order>"), so a retried
// transaction or a replayed message can never emit a fact twice.
type Event struct {
	ID      string
	Type    string
	Topic   string
	Key     string
	Payload []byte
	Time    time.Time
}
