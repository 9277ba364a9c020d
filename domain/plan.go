package domain

import (
	"errors"
	"strings"
	"time"

	"github.com/paygate/paygate/domain/risk"
)

// AttemptPlan is what payinit decided for one pay intent in its first
// transaction: the attempt to start, or why the intent was rejected.
type AttemptPlan struct {
	Intent  PayIntent
	Order   Order
	Attempt Attempt
	// Rejected is why the intent was refused ("" when an attempt was planned).
	Rejected string
	// Resumed is true when the intent's message had been planned before
	// (a redelivery): the stored plan is returned, nothing new was minted.
	Resumed bool
	// Held is true when risk control holds the intent for an operator's
	// review: no attempt until it is approved.
	Held bool
	// Risk is risk control's decision on the intent, made in this plan
	// (nil when resumed, or when risk control did not decide).
	Risk *risk.Assessment
}

// Planned is what payinit's decider makes of a new pay intent inside the
// planning transaction: the order (new, or as locked), and the attempt
// to create with risk control's assessment — or no attempt, when the
// assessment holds the intent for review.
type Planned struct {
	Order   Order
	Attempt Attempt
	// Risk is nil when risk control did not decide (off, or the intent
	// releases an approved review).
	Risk *risk.Assessment
}

// Held reports whether the intent waits for a review.
func (p Planned) Held() bool { return p.Risk != nil && p.Risk.Decision == risk.Review }

// Screen is risk control's part of a batch's planning transaction: the
// counts its decisions read (locked, so that decisions are exact however
// many payinit members run), and the time the batch is decided and
// counted at. The zero Screen counts nothing.
type Screen struct {
	// Probes are the counts an intent's decision reads (nil: none).
	Probes func(in PayIntent) []risk.Probe
	// At is the batch's time.
	At time.Time
}

// RiskSeen is what the planning transaction knows of an intent for risk
// control.
type RiskSeen struct {
	// Tally holds the counts of the batch's probes, with the requests the
	// batch let through before this one; nil when nothing is counted.
	Tally *risk.Tally
	// ReviewPending is true when the intent's order has a review waiting:
	// another request for it is refused (ErrReviewPending).
	ReviewPending bool
	// Approved is set when the intent releases an approved review: who
	// approved it. The rules do not decide again.
	Approved *ReviewRelease
}

// ReviewRelease is an approved review coming back to payinit as a pay
// request under the message id ReleaseID ("risk_review/<review id>").
type ReviewRelease struct {
	ReviewID int64
	By       string
}

// ReleasePrefix starts the message id of an approved review's release.
const ReleasePrefix = "risk_review/"

// IsRelease reports whether a message id is an approved review's release
// (its review is looked up before it is trusted as one).
func IsRelease(messageID string) bool { return strings.HasPrefix(messageID, ReleasePrefix) }

// Reasons risk control refuses a pay request with: the text of the
// rejected pay session (the matched rules are stored, never sent).
var (
	ErrRiskDenied    = errors.New("risk_denied")
	ErrReviewPending = errors.New("risk_review_pending")
)

// AttemptStart is the result of asking the PSP to start an attempt.
type AttemptStart struct {
	Attempt   Attempt
	PayURL    string
	Token     string
	Form      map[string]string
	ExpiresAt time.Time
	// InitiateError is why the PSP did not start the attempt ("" if it did).
	InitiateError string
}

// Failover moves a pay request from an attempt whose Initiate failed for a
// reason that may pass (an error, a timeout, a 5xx) to a new attempt at
// the next channel (DESIGN.md §8). The PSP may have started the failed
// attempt all the same, so it stays pending and is probed: if it turns out
// paid, the decision table refunds it as a duplicate payment.
type Failover struct {
	// MessageID is the pay request's message: its plan now points at To.
	MessageID string
	// From is the attempt that could not start, as it is to be stored.
	From Attempt
	// FromError is why its Initiate failed.
	FromError string
	// To is the new attempt (created), with its routing decision.
	To Attempt
}

// DueProbe is an open attempt whose PSP status the sweeper asks about now.
type DueProbe struct {
	Attempt Attempt
	// Probes is how many probes were sent before this one.
	Probes int
	// ExpiresAt is when the attempt expires: the PSP's expiry, or the
	// attempt's creation plus the configured lifetime.
	ExpiresAt time.Time
}

// RiskRequest is what risk control knows of the intent.
func (p PayIntent) RiskRequest() risk.Request {
	return risk.Request{OrderID: p.OrderID, Amount: p.Amount.Minor(), Currency: p.Amount.Currency().Code(), Country: p.Country,
		Method: p.Method, BuyerID: p.Buyer.ID, Email: p.Buyer.Email, IP: p.Buyer.IP, IPCountry: p.Buyer.IPCountry,
		Device: p.Buyer.Device, CardFingerprint: p.CardFingerprint, BankAccount: p.BankAccount, BillingCountry: p.BillingCountry}
}
