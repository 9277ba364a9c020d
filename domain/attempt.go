package domain

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
	"time"
)

// AttemptStatus is the state of one payment attempt (one transaction code):
// created → pending (at the PSP) → (paid | failed | expired). A success that
// arrives after failed or expired (a late success) still makes it paid: the
// buyer's money moved, so paygate must know.
type AttemptStatus struct{ s string }

// The attempt states (DESIGN.md §6).
var (
	AttemptCreated = AttemptStatus{"created"}
	AttemptPending = AttemptStatus{"pending"}
	AttemptPaid    = AttemptStatus{"paid"}
	AttemptFailed  = AttemptStatus{"failed"}
	AttemptExpired = AttemptStatus{"expired"}
)

var attemptStatuses = []AttemptStatus{AttemptCreated, AttemptPending, AttemptPaid, AttemptFailed, AttemptExpired}

// ParseAttemptStatus reads a stored attempt status.
func ParseAttemptStatus(s string) (AttemptStatus, error) {
	for _, st := range attemptStatuses {
		if st.s == s {
			return st, nil
		}
	}
	return AttemptStatus{}, fmt.Errorf("unknown attempt status %q", s)
}

// String is the status as stored and published.
func (s AttemptStatus) String() string { return s.s }

// IsFinal reports whether the PSP will not move the attempt on by itself.
// A final attempt can still turn paid on a late success.
func (s AttemptStatus) IsFinal() bool {
	return s == AttemptPaid || s == AttemptFailed || s == AttemptExpired
}

// attemptTransitions is the whole attempt state machine.
var attemptTransitions = map[AttemptStatus][]AttemptStatus{
	AttemptCreated: {AttemptPending, AttemptPaid, AttemptFailed, AttemptExpired},
	AttemptPending: {AttemptPaid, AttemptFailed, AttemptExpired},
	AttemptFailed:  {AttemptPaid},
	AttemptExpired: {AttemptPaid},
	AttemptPaid:    nil,
}

// CanBecome reports whether the attempt state machine allows from → to.
func (s AttemptStatus) CanBecome(to AttemptStatus) bool {
	for _, t := range attemptTransitions[s] {
		if t == to {
			return true
		}
	}
	return false
}

// Attempt is one try to pay an order at one channel, identified by the
// transaction code paygate minted for it. The store rebuilds one with
// RestoreAttempt.
type Attempt struct {
	code    string
	orderID string
	channel string
	amount  Money
	status  AttemptStatus
	pspRef  string
	review  string
	route   Route
}

// Route is how routing chose an attempt's channel: what its outcome is
// attributed to (DESIGN.md §8).
type Route struct {
	// Segment and PolicyVersion are the routing policy's segment that
	// matched the pay request and the policy's version.
	Segment       string
	PolicyVersion int64
	// DecidedAt is when routing decided.
	DecidedAt time.Time
	// Explore is true when the exploration share chose the channel.
	Explore bool
	// Hop is 0 for a pay request's first channel, n for its n-th failover.
	Hop int
	// InitiateFailed is true when the attempt's Initiate failed: routing
	// counted that, and nothing the attempt does later counts again.
	InitiateFailed bool
	// Evidence is the whole decision (candidates, scores, reason) as
	// JSON, stored with the attempt; "" once restored from storage.
	Evidence string
}

// WithRoute is the attempt with its routing decision.
func (a Attempt) WithRoute(r Route) Attempt {
	a.route = r
	return a
}

// Route is how the attempt's channel was chosen (zero for an attempt
// made before routing recorded decisions).
func (a Attempt) Route() Route { return a.route }

// NewAttempt creates an attempt in state created.
func NewAttempt(code, orderID, channel string, amount Money) (Attempt, error) {
	if code == "" || channel == "" {
		return Attempt{}, fmt.Errorf("new attempt of %s: empty transaction code or channel", orderID)
	}
	if err := ValidOrderID(orderID); err != nil {
		return Attempt{}, err
	}
	if amount.IsZero() || amount.Minor() <= 0 {
		return Attempt{}, fmt.Errorf("new attempt %s: %w", code, ErrNonPositive)
	}
	return Attempt{code: code, orderID: orderID, channel: channel, amount: amount, status: AttemptCreated}, nil
}

// RestoreAttempt rebuilds an attempt from storage; it trusts its input.
func RestoreAttempt(code, orderID, channel string, amount Money, status AttemptStatus, pspRef, review string) Attempt {
	return Attempt{code: code, orderID: orderID, channel: channel, amount: amount, status: status, pspRef: pspRef, review: review}
}

// Code is the transaction code (our reference at the PSP).
func (a Attempt) Code() string { return a.code }

// OrderID is the order the attempt pays.
func (a Attempt) OrderID() string { return a.orderID }

// Channel is the channel (configured PSP account) of the attempt.
func (a Attempt) Channel() string { return a.channel }

// Amount is what the attempt asked the PSP to collect.
func (a Attempt) Amount() Money { return a.amount }

// Status is the attempt state.
func (a Attempt) Status() AttemptStatus { return a.status }

// PSPReference is the PSP's own id for the payment, once known.
func (a Attempt) PSPReference() string { return a.pspRef }

// Review is why the attempt is flagged for a person to look at, "" if not.
func (a Attempt) Review() string { return a.review }

func (a Attempt) become(to AttemptStatus) (Attempt, error) {
	if !a.status.CanBecome(to) {
		return a, fmt.Errorf("attempt %s %s → %s: %w", a.code, a.status, to, ErrBadTransition)
	}
	a.status = to
	return a, nil
}

// Started records that the PSP accepted the attempt: created → pending.
func (a Attempt) Started(pspRef string) (Attempt, error) {
	a, err := a.become(AttemptPending)
	if err != nil {
		return a, err
	}
	if pspRef != "" {
		a.pspRef = pspRef
	}
	return a, nil
}

// InitiateFailed records that the PSP refused to start the attempt.
func (a Attempt) InitiateFailed() (Attempt, error) { return a.become(AttemptFailed) }

// Expire ends an attempt the PSP never completed.
func (a Attempt) Expire() (Attempt, error) { return a.become(AttemptExpired) }

// NewTransactionCode mints a fresh transaction code for an attempt: "T",
// the UTC time to the millisecond and 8 random base32 characters, 24
// characters in all — short enough for every PSP's merchant reference,
// sortable by time, and never reused (some PSPs accept a reference once).
func NewTransactionCode(now time.Time) string {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // crypto/rand never fails on Linux
	}
	r := base32.StdEncoding.EncodeToString(b[:])
	return "T" + now.UTC().Format("060102150405.000")[:12] + now.UTC().Format(".000")[1:] + strings.ToUpper(r)
}
