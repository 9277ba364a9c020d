// Package schemas holds paygate's public message contracts: topic names,
// the Go types of every message, and a JSON Schema per message (embedded,
// with examples) that the ingress and the consumers validate against.
// Within a major version (the topic's .vN) fields are only ever added, and
// only as optional.
package schemas

import "time"

// Topics (DESIGN.md §3). Every topic is keyed by the merchant order id,
// except psp-callbacks (keyed by channel and PSP reference where known).
const (
	TopicPayRequests    = "paygate.pay-requests.v1"
	TopicPaySessions    = "paygate.pay-sessions.v1"
	TopicPSPCallbacks   = "paygate.psp-callbacks.v1"
	TopicPayments       = "paygate.payments.v1"
	TopicRefundRequests = "paygate.refund-requests.v1"
	TopicRefundResults  = "paygate.refund-results.v1"
	TopicReconciliation = "paygate.reconciliation.v1"
	// TopicReconMismatches carries every reconciliation mismatch, once
	// per finding of a channel-day, keyed by "<channel>/<day>".
	TopicReconMismatches = "paygate.recon-mismatches.v1"
	// TopicRoutingFeedback carries each attempt's outcome for routing's
	// health (schema routing-feedback.json), keyed by "<channel>/<segment>"
	// so that every payinit member reads one arm's feedback in one order.
	// Internal: every payinit member reads all of it, outside any group.
	// internal/wire writes and reads it (domain/routing's Feedback);
	// RoutingFeedback is its shape.
	TopicRoutingFeedback = "paygate.routing-feedback.v1"
)

// DLQ is the dead-letter topic of a topic.
func DLQ(topic string) string { return topic + ".dlq" }

// Topics lists every topic paygate creates, dead-letter topics included.
func Topics() []string {
	base := []string{TopicPayRequests, TopicPaySessions, TopicPSPCallbacks, TopicPayments,
		TopicRefundRequests, TopicRefundResults, TopicReconciliation, TopicReconMismatches, TopicRoutingFeedback}
	out := append([]string(nil), base...)
	for _, t := range base {
		out = append(out, DLQ(t))
	}
	return out
}

// CloudEvents-style header names carried on every message.
const (
	HeaderID          = "ce_id"
	HeaderType        = "ce_type"
	HeaderSource      = "ce_source"
	HeaderTime        = "ce_time"
	HeaderSpecVersion = "ce_specversion"
	// HeaderDLQReason is set on dead-lettered messages: why they failed.
	HeaderDLQReason = "paygate_dlq_reason"
	// HeaderDLQOrigin is "<topic>/<partition>/<offset>" of the original.
	HeaderDLQOrigin = "paygate_dlq_origin"
	// HeaderReplayCount is how many times a message was sent back from
	// its DLQ (`paygate dlq replay`, the console): set on the replayed
	// message, and kept on its DLQ copy if it fails again. Absent: never
	// replayed.
	HeaderReplayCount = "paygate_replay_count"
)

// SpecVersion is the CloudEvents spec version paygate's headers follow.
const SpecVersion = "1.0"

// Event types (ce_type).
const (
	TypePayRequest        = "paygate.pay_request"
	TypePaySession        = "paygate.pay_session"
	TypePSPCallback       = "paygate.psp_callback"
	TypePaymentPaid       = "paygate.payment.paid"
	TypePaymentFailed     = "paygate.payment.failed"
	TypeDuplicateDetected = "paygate.payment.duplicate_detected"
	TypeRoutingFeedback   = "paygate.routing.feedback"
)

// Buyer is who pays. Every field is optional.
type Buyer struct {
	ID     string `json:"id,omitempty"`
	Email  string `json:"email,omitempty"`
	IP     string `json:"ip,omitempty"`
	Device string `json:"device,omitempty"`
	// IPCountry is the country of IP, where the mall places it.
	IPCountry string `json:"ip_country,omitempty"`
}

// ReturnURLs are the mall's pages the buyer's browser is sent to after
// paying. They must be on an allow-listed host.
type ReturnURLs struct {
	Success string `json:"success"`
	Failure string `json:"failure"`
	Pending string `json:"pending"`
}

// PayRequest is the mall's pay intent: the body of POST /v1/payments and
// the value on paygate.pay-requests.v1 (schema pay-request.json).
type PayRequest struct {
	OrderID     string     `json:"order_id"`
	Amount      int64      `json:"amount"`
	Currency    string     `json:"currency"`
	Country     string     `json:"country"`
	Method      string     `json:"method,omitempty"`
	Description string     `json:"description,omitempty"`
	Buyer       Buyer      `json:"buyer"`
	ReturnURLs  ReturnURLs `json:"return_urls"`
	// Bank is the bank or card issuer the buyer pays with, if the mall
	// knows it: routing policies may split traffic by it.
	Bank string `json:"bank,omitempty"`
	// Channel pins the request to one configured channel; empty lets the
	// router choose.
	Channel string `json:"channel,omitempty"`
	// BillingCountry, CardFingerprint and BankAccount are for risk
	// control (docs/risk.md): the billing address's country, and stable
	// tokens of the card and the bank account (never their numbers).
	BillingCountry  string `json:"billing_country,omitempty"`
	CardFingerprint string `json:"card_fingerprint,omitempty"`
	BankAccount     string `json:"bank_account,omitempty"`
}

// PayAccepted is the 202 answer to POST /v1/payments.
type PayAccepted struct {
	OrderID   string `json:"order_id"`
	StatusURL string `json:"status_url"`
}

// PaySession is the value on paygate.pay-sessions.v1: where the buyer goes
// to pay one attempt, or why the pay request was refused
// (schema pay-session.json).
type PaySession struct {
	// Type is "session" (pay there), "rejected" (the request was refused:
	// see Reason) or "failed" (the PSP would not start the attempt).
	Type            string            `json:"type"`
	OrderID         string            `json:"order_id"`
	TransactionCode string            `json:"transaction_code,omitempty"`
	Channel         string            `json:"channel,omitempty"`
	PayURL          string            `json:"pay_url,omitempty"`
	Token           string            `json:"token,omitempty"`
	Form            map[string]string `json:"form,omitempty"`
	ExpiresAt       *time.Time        `json:"expires_at,omitempty"`
	Reason          string            `json:"reason,omitempty"`
}

// PaySession types.
const (
	SessionCreated  = "session"
	SessionRejected = "rejected"
	SessionFailed   = "failed"
)

// RawCallback is a PSP's HTTP request exactly as the ingress received it,
// the value on paygate.psp-callbacks.v1 (schema psp-callback.json). Body is
// the exact bytes (base64 in JSON), since signatures are over them.
type RawCallback struct {
	ID         string              `json:"id"`
	Channel    string              `json:"channel"`
	Kind       string              `json:"kind"`
	Method     string              `json:"method"`
	Path       string              `json:"path"`
	Query      string              `json:"query,omitempty"`
	Headers    map[string][]string `json:"headers,omitempty"`
	Body       []byte              `json:"body,omitempty"`
	ReceivedAt time.Time           `json:"received_at"`
	// TransactionCode is set on status probes (kind status_probe) only.
	TransactionCode string `json:"transaction_code,omitempty"`
	// ExpireIfUnpaid is set on the sweeper's probe of an attempt past its
	// expiry: if the PSP still reports nothing final, the attempt expires.
	ExpireIfUnpaid bool `json:"expire_if_unpaid,omitempty"`
}

// PaymentEvent is the value on paygate.payments.v1, for the order center
// (schema payment-event.json).
type PaymentEvent struct {
	// Type is "paid", "failed" or "duplicate_detected".
	Type            string     `json:"type"`
	OrderID         string     `json:"order_id"`
	Amount          int64      `json:"amount"`
	Currency        string     `json:"currency"`
	Channel         string     `json:"channel"`
	TransactionCode string     `json:"transaction_code"`
	PSPReference    string     `json:"psp_reference,omitempty"`
	PaidAt          *time.Time `json:"paid_at,omitempty"`
	// Reason explains failed and duplicate_detected events.
	Reason string `json:"reason,omitempty"`
}

// PaymentEvent types.
const (
	EventPaid              = "paid"
	EventFailed            = "failed"
	EventDuplicateDetected = "duplicate_detected"
)

// Payment is the answer of GET /v1/payments/{order_id}.
type Payment struct {
	OrderID   string     `json:"order_id"`
	Status    string     `json:"status"`
	Amount    int64      `json:"amount"`
	Currency  string     `json:"currency"`
	CreatedAt time.Time  `json:"created_at"`
	PaidAt    *time.Time `json:"paid_at,omitempty"`
	Attempts  []Attempt  `json:"attempts"`
	// Refunds are the order's refunds, oldest first (any attempt's).
	Refunds []Refund `json:"refunds"`
	// RiskReview is the state of the order's newest risk review:
	// "pending" while a pay request waits for an operator, "approved" or
	// "denied" after; absent if risk control never held one.
	RiskReview string `json:"risk_review,omitempty"`
	// RejectedRequests are the order's pay requests that payinit refused
	// (another amount, already paid, no channel, a reused Idempotency-Key,
	// ...), oldest first, at most the newest 100; absent if none.
	RejectedRequests []RejectedRequest `json:"rejected_requests,omitempty"`
}

// RejectedRequest is a refused pay request in a Payment answer.
type RejectedRequest struct {
	// MessageID is the request's message id: pay_request/<key id>/<Idempotency-Key>
	// over HTTP (with /reused/<digest> appended when the key named another
	// request), or its ce_id.
	MessageID string `json:"message_id"`
	// Reason is why, as in the rejected pay session; it starts with
	// "idempotency_key_reused:" for a key used before with another body.
	Reason     string    `json:"reason"`
	ReceivedAt time.Time `json:"received_at"`
}

// Attempt is one attempt in a Payment answer.
type Attempt struct {
	TransactionCode string     `json:"transaction_code"`
	Channel         string     `json:"channel"`
	Status          string     `json:"status"`
	PayURL          string     `json:"pay_url,omitempty"`
	Token           string     `json:"token,omitempty"`
	PSPReference    string     `json:"psp_reference,omitempty"`
	Review          string     `json:"review,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	PaidAt          *time.Time `json:"paid_at,omitempty"`
}

// Error is every error answer of the HTTP API.
type Error struct {
	Error string `json:"error"`
	// Detail is a precise, human-readable explanation.
	Detail string `json:"detail,omitempty"`
}

// RefundRequest asks for money back: the body of POST /v1/refunds and the
// value on paygate.refund-requests.v1 (finance, or paygate itself for a
// duplicate payment). RefundID is the requester's idempotency key: the
// same id with the same body is the same refund; with another body it is
// a conflict.
type RefundRequest struct {
	RefundID string `json:"refund_id"`
	OrderID  string `json:"order_id"`
	// TransactionCode names the attempt to refund; empty means the
	// attempt that paid the order.
	TransactionCode string `json:"transaction_code,omitempty"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
	// Reason is free text from finance, or "duplicate_payment" /
	// "late_payment" when paygate refunds a payment it must not keep.
	Reason string `json:"reason"`
}

// RefundResult is the value on paygate.refund-results.v1: the final
// outcome of one refund, published exactly once.
type RefundResult struct {
	RefundID        string `json:"refund_id"`
	OrderID         string `json:"order_id"`
	TransactionCode string `json:"transaction_code"`
	Channel         string `json:"channel"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
	// Status is "succeeded" or "failed".
	Status       string    `json:"status"`
	PSPReference string    `json:"psp_reference,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Error        string    `json:"error,omitempty"`
	FinishedAt   time.Time `json:"finished_at"`
}

// Refund reasons paygate itself uses.
const (
	ReasonDuplicatePayment = "duplicate_payment"
	ReasonLatePayment      = "late_payment"
)

// Event types of refunds.
const (
	TypeRefundRequest = "paygate.refund_request"
	TypeRefundResult  = "paygate.refund.result"
)

// RoutingFeedback is the value on paygate.routing-feedback.v1 (schema
// routing-feedback.json): one attempt's outcome for routing's health.
// internal/wire writes and reads it as domain/routing's Feedback.
type RoutingFeedback struct {
	Outcome         string    `json:"outcome"`
	TransactionCode string    `json:"transaction_code"`
	Channel         string    `json:"channel"`
	Segment         string    `json:"segment"`
	PolicyVersion   int64     `json:"policy_version"`
	DecidedAt       time.Time `json:"decided_at"`
	At              time.Time `json:"at"`
	Explore         bool      `json:"explore,omitempty"`
	Hop             int       `json:"hop,omitempty"`
}

// RiskReviewDecision is an operator's decision on an order's pending risk
// review: the body of POST /v1/risk/reviews/{order_id} (schema
// risk-review.json).
type RiskReviewDecision struct {
	// Decision is "approve" or "deny".
	Decision string `json:"decision"`
	Note     string `json:"note,omitempty"`
	// By names the operator, for the audit log.
	By string `json:"by,omitempty"`
}

// RiskReview is a risk review as the API answers it.
type RiskReview struct {
	OrderID  string `json:"order_id"`
	ReviewID int64  `json:"review_id"`
	// Status is "pending", "approved" or "denied".
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	Default   string     `json:"default"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	DecidedBy string     `json:"decided_by,omitempty"`
	Note      string     `json:"note,omitempty"`
}
