package domain

import (
	"bytes"
	"errors"
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
	// IPCountry is the country of IP as the mall places it, if it does
	// (risk control places it by its own table otherwise).
	IPCountry string
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
	// Bank is the bank or card issuer the buyer pays with, where the
	// mall knows it (an Indian netbanking bank code, a card issuer): a
	// routing policy may route by it.
	Bank string
	// Channel pins the intent to one channel; "" lets the router choose.
	Channel string
	// CardFingerprint and BankAccount identify the payment instrument
	// (the mall's or its PSP's stable token or hash, never a card or
	// account number); BillingCountry is the billing address's country.
	// Risk control counts and compares them where given.
	CardFingerprint string
	BankAccount     string
	BillingCountry  string
	// Raw is the request as received, kept as evidence.
	Raw []byte
	// Digest identifies the request's content (the SHA-256 of its
	// canonical JSON, schemas.Digest): the same MessageID with another
	// digest is another request, refused (Retries).
	Digest []byte
}

// ErrIdempotencyKeyReused refuses a pay request whose message id (the
// mall's Idempotency-Key, or the ce_id of a message produced straight to
// the topic) was first used for a request with another body. The first
// request stored under the id stands; this one is recorded as refused
// and never processed. Its text is the reason code the mall reads in the
// rejected pay session and the order's status.
var ErrIdempotencyKeyReused = errors.New("idempotency_key_reused")

// Retries decides what p is to the request first stored under its
// message id, whose digest was first and whose order was firstOrder: nil
// if p is that request again (a retry or a redelivery: the stored plan
// stands, nothing new is started), else ErrIdempotencyKeyReused, wrapped
// with what the first one was. A first request stored without a digest
// (nil) is taken for the same request.
func (p PayIntent) Retries(first []byte, firstOrder string) error {
	if first == nil || bytes.Equal(first, p.Digest) {
		return nil
	}
	return fmt.Errorf("%w: message id %s was first used for another request (order %s, another body); one key names one request, so this one was refused and not processed: send it with a key of its own",
		ErrIdempotencyKeyReused, p.MessageID, firstOrder)
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
