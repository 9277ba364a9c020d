package sim

import (
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/signature"
)

// The protocol's header names, routes and limits: the server and the
// adapter share them so that they cannot drift apart.
const (
	headerMerchant  = "X-Sim-Merchant"
	headerTimestamp = "X-Sim-Timestamp"
	headerSignature = "X-Sim-Signature"

	pathPayments    = "/api/v1/payments"
	pathRefunds     = "/api/v1/refunds"
	pathSettlements = "/api/v1/settlements"
	pathPay         = "/pay/"
	pathControl     = "/control/merchants/"

	// maxBody bounds every request body the simulator reads (API calls
	// and pay forms) and every answer the adapter reads.
	maxBody = 64 << 10

	defaultPageSize = 1000
	maxPageSize     = 5000
)

// Payment statuses as the simulator states them.
const (
	statusCreated   = "created"
	statusSucceeded = "succeeded"
	statusFailed    = "failed"
	statusExpired   = "expired"
	statusPending   = "pending" // refunds only
)

// Webhook event types.
const (
	eventSucceeded = "payment.succeeded"
	eventFailed    = "payment.failed"
)

// Query parameters of the signed sync return.
const (
	qPaymentID   = "payment_id"
	qMerchantRef = "merchant_ref"
	qStatus      = "status"
	qAmount      = "amount"
	qCurrency    = "currency"
	qTimestamp   = "ts"
	qSignature   = "sig"
)

// apiMessage is what an API request's signature covers: the method, the
// request URI exactly as sent (path and raw query) and the raw body.
func apiMessage(method, requestURI string, body []byte) []byte {
	b := make([]byte, 0, len(method)+len(requestURI)+len(body)+2)
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, requestURI...)
	b = append(b, '\n')
	return append(b, body...)
}

// canonicalQuery is what a sync return's signature covers: every query
// parameter but sig, sorted by key and URL-encoded (url.Values.Encode).
// Parameters the merchant put into its own return_url are covered too.
func canonicalQuery(q url.Values) []byte {
	c := make(url.Values, len(q))
	for k, v := range q {
		if k != qSignature {
			c[k] = v
		}
	}
	return []byte(c.Encode())
}

// signQuery is the sig parameter of a sync return whose ts parameter is
// ts.
func signQuery(secret []byte, ts int64, q url.Values) string {
	return signature.Header(secret, ts, canonicalQuery(q))
}

// paymentRequest is the body of POST /api/v1/payments. After
// normalize, two requests are the same request exactly when they are ==.
type paymentRequest struct {
	MerchantRef      string `json:"merchant_ref"`
	Amount           int64  `json:"amount"`
	Currency         string `json:"currency"`
	Description      string `json:"description,omitempty"`
	NotifyURL        string `json:"notify_url,omitempty"`
	ReturnURL        string `json:"return_url,omitempty"`
	ExpiresInSeconds int64  `json:"expires_in_seconds,omitempty"`
}

// paymentJSON is a payment as the API answers it, on creation and on
// query.
type paymentJSON struct {
	ID          string     `json:"id"`
	MerchantRef string     `json:"merchant_ref"`
	Status      string     `json:"status"`
	Amount      int64      `json:"amount"`
	Currency    string     `json:"currency"`
	PaidAmount  int64      `json:"paid_amount"`
	PaidAt      *time.Time `json:"paid_at,omitempty"`
	PayURL      string     `json:"pay_url"`
	Token       string     `json:"token"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
}

// refundRequest is the body of POST /api/v1/refunds. Currency is
// optional; when given it must be the payment's.
type refundRequest struct {
	RefundRef   string `json:"refund_ref"`
	MerchantRef string `json:"merchant_ref"`
	Amount      int64  `json:"amount"`
	Currency    string `json:"currency,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// refundJSON is a refund as the API answers it.
type refundJSON struct {
	ID          string    `json:"id"`
	RefundRef   string    `json:"refund_ref"`
	MerchantRef string    `json:"merchant_ref"`
	PaymentID   string    `json:"payment_id"`
	Status      string    `json:"status"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	CreatedAt   time.Time `json:"created_at"`
}

// settlementJSON is one page of GET /api/v1/settlements.
type settlementJSON struct {
	Rows     []settlementRowJSON `json:"rows"`
	NextPage string              `json:"next_page,omitempty"`
}

type settlementRowJSON struct {
	MerchantRef string    `json:"merchant_ref"`
	PaymentID   string    `json:"payment_id"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	Status      string    `json:"status"`
	SettledAt   time.Time `json:"settled_at"`
}

// webhookJSON is the body of an async webhook. Its bytes are signed as
// they are sent; the same event is sent with the same bytes on every
// retry and duplicate.
type webhookJSON struct {
	EventID     string    `json:"event_id"`
	Type        string    `json:"type"`
	PaymentID   string    `json:"payment_id"`
	MerchantRef string    `json:"merchant_ref"`
	Status      string    `json:"status"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	OccurredAt  time.Time `json:"occurred_at"`
}

// errorJSON is every error answer of the API.
type errorJSON struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
}

// decodeJSON reads exactly one JSON value into v; trailing data is an
// error. Numbers that are not integers fail to decode into int64 fields,
// so an amount such as 19.99 or 1e3 is refused rather than rounded.
func decodeJSON(b []byte, v any) error {
	// json.Unmarshal checks the whole input first, trailing data included,
	// and unlike a Decoder copies nothing: it is on the path of every
	// webhook and status query.
	return json.Unmarshal(b, v)
}

// pageCursor is the opaque settlement page token: the sort key of the
// last row of the previous page, so that paging is stable while rows are
// added.
type pageCursor struct {
	paidAt time.Time
	id     string
}

func (c pageCursor) encode() string {
	return strconv.FormatInt(c.paidAt.UnixNano(), 36) + "." + c.id
}

func decodePageCursor(s string) (pageCursor, error) {
	ns, id, ok := strings.Cut(s, ".")
	if !ok || id == "" {
		return pageCursor{}, errors.New("invalid page token")
	}
	n, err := strconv.ParseInt(ns, 36, 64)
	if err != nil {
		return pageCursor{}, errors.New("invalid page token")
	}
	return pageCursor{paidAt: time.Unix(0, n), id: id}, nil
}

// after reports whether the row (paidAt, id) sorts after c.
func (c pageCursor) after(paidAt time.Time, id string) bool {
	if !paidAt.Equal(c.paidAt) {
		return paidAt.After(c.paidAt)
	}
	return id > c.id
}
