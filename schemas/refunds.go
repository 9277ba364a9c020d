package schemas

import "time"

// Refund is a refund as GET /v1/refunds/{refund_id} shows it, and as the
// refunds of GET /v1/payments/{order_id} list it.
type Refund struct {
	RefundID string `json:"refund_id"`
	OrderID  string `json:"order_id"`
	// TransactionCode is the refunded attempt ("" for a request refused
	// before one was found).
	TransactionCode string `json:"transaction_code,omitempty"`
	Channel         string `json:"channel,omitempty"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
	Reason          string `json:"reason,omitempty"`
	// Status is the coarse view finance waits on: "pending" until the
	// refund is final, then "succeeded" or "failed" (as in RefundResult).
	Status string `json:"status"`
	// RefundStatus is where the refund is: queued (waiting for an
	// earlier refund of the order), calling, pending_at_psp, succeeded,
	// failed. It says whether the money is back.
	RefundStatus string `json:"refund_status"`
	// CallStatus says whether the PSP accepted the call: ok, failed,
	// unknown (timeout: to be resolved by a query), "" before any call.
	CallStatus string `json:"call_status,omitempty"`
	// RefundRef is paygate's reference of the refund at the PSP.
	RefundRef string `json:"refund_ref,omitempty"`
	// PSPReference is the PSP's id of the refund.
	PSPReference string `json:"psp_reference,omitempty"`
	// Error says why a refund failed, or the last problem of one in progress.
	Error      string     `json:"error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// RejectedRequests are the requests refused for reusing this refund
	// id with other content (reason idempotency_key_reused), oldest first;
	// absent if none. Only GET /v1/refunds/{refund_id} lists them.
	RejectedRequests []RejectedRequest `json:"rejected_requests,omitempty"`
}

// Refund.Status and RefundResult.Status values.
const (
	RefundInProgress = "pending"
	RefundSucceeded  = "succeeded"
	RefundFailed     = "failed"
)

// RefundAccepted is the 202 answer to POST /v1/refunds.
type RefundAccepted struct {
	RefundID  string `json:"refund_id"`
	StatusURL string `json:"status_url"`
}
