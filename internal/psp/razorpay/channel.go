// Package razorpay is the psp.Channel adapter for Razorpay
// (https://razorpay.com/docs/api/): an Order per attempt (receipt = our
// transaction code) paid through Razorpay's hosted checkout; the checkout
// signature and webhooks verified; the Payments API as the authority on
// what was paid; refunds, full or partial; the day's payments for
// reconciliation. Amounts are integers in the currency's smallest
// sub-unit (paise for INR), which are ISO 4217's minor units.
package razorpay

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// ChannelConfig configures the adapter for one Razorpay account.
type ChannelConfig struct {
	// Name is the channel's name (the path segment of its callback URLs).
	// Default "razorpay".
	Name string
	// BaseURL is Razorpay's API. Default "https://api.razorpay.com".
	BaseURL string
	// CheckoutURL is where the buyer's browser posts the checkout form.
	// Default "https://api.razorpay.com/v1/checkout/embedded" (hosted
	// checkout).
	CheckoutURL string
	// KeyID is the API key id (rzp_live_… or rzp_test_…). Required.
	KeyID string
	// KeySecret is the key's secret: it authenticates API calls (HTTP
	// basic auth, header only) and is the HMAC key of the checkout
	// signature. Required.
	KeySecret string
	// PreviousKeySecrets also verify checkout signatures, so that a
	// checkout opened before a key was regenerated still verifies.
	PreviousKeySecrets []string
	// WebhookSecrets verify X-Razorpay-Signature; every one is tried, for
	// rotation. At least one is required.
	WebhookSecrets []string
	// AccountID, if set (acc_…), must be the account_id of every webhook.
	AccountID string
	// MerchantName is shown on the checkout page. Default: none.
	MerchantName string
	// Timeout bounds one API call, answer included. Default 10 s.
	Timeout time.Duration
	// RefundScanPages bounds how many pages of 100 recent refunds
	// QueryRefund reads looking for a refund reference. Default 10.
	RefundScanPages int
	// Transport is the round tripper under the evidence-recording
	// psp.Transport. Default http.DefaultTransport.
	Transport http.RoundTripper
}

// Defaults of ChannelConfig.
const (
	DefaultChannelName     = "razorpay"
	DefaultBaseURL         = "https://api.razorpay.com"
	DefaultCheckoutURL     = "https://api.razorpay.com/v1/checkout/embedded"
	DefaultTimeout         = 10 * time.Second
	DefaultRefundScanPages = 10
)

func (c ChannelConfig) withDefaults() ChannelConfig {
	if c.Name == "" {
		c.Name = DefaultChannelName
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.CheckoutURL == "" {
		c.CheckoutURL = DefaultCheckoutURL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RefundScanPages == 0 {
		c.RefundScanPages = DefaultRefundScanPages
	}
	return c
}

func absoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil
}

// Validate reports the first invalid field. Defaults count as set. Error
// texts never contain a secret.
func (c ChannelConfig) Validate() error {
	c = c.withDefaults()
	if !absoluteURL(c.BaseURL) || !absoluteURL(c.CheckoutURL) {
		return fmt.Errorf("razorpay channel %s: BaseURL and CheckoutURL must be absolute http(s) URLs without query or user info", c.Name)
	}
	if !strings.HasPrefix(c.KeyID, "rzp_") || c.KeySecret == "" {
		return fmt.Errorf("razorpay channel %s: KeyID (rzp_…) and KeySecret are required", c.Name)
	}
	if len(c.WebhookSecrets) == 0 {
		return fmt.Errorf("razorpay channel %s: at least one webhook secret is required", c.Name)
	}
	for i, s := range append(append([]string{}, c.WebhookSecrets...), c.PreviousKeySecrets...) {
		if s == "" {
			return fmt.Errorf("razorpay channel %s: secret %d is empty", c.Name, i)
		}
	}
	if c.AccountID != "" && !strings.HasPrefix(c.AccountID, "acc_") {
		return fmt.Errorf("razorpay channel %s: AccountID must look like acc_…", c.Name)
	}
	if c.Timeout < 0 || c.RefundScanPages < 0 {
		return fmt.Errorf("razorpay channel %s: negative Timeout or RefundScanPages", c.Name)
	}
	return nil
}

// Channel is the psp.Channel adapter for one Razorpay account. It is
// safe for concurrent use.
type Channel struct {
	cfg            ChannelConfig
	base           string
	keySecrets     [][]byte
	webhookSecrets [][]byte
	returnKey      []byte
	client         *http.Client
}

var _ psp.Channel = (*Channel)(nil)

// NewChannel returns an adapter configured by cfg, or the Validate error.
func NewChannel(cfg ChannelConfig) (*Channel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Channel{
		cfg:    cfg,
		base:   strings.TrimRight(cfg.BaseURL, "/"),
		client: psp.NewClient(cfg.Name, cfg.Transport, cfg.Timeout),
	}
	for _, s := range append([]string{cfg.KeySecret}, cfg.PreviousKeySecrets...) {
		c.keySecrets = append(c.keySecrets, []byte(s))
	}
	for _, s := range cfg.WebhookSecrets {
		c.webhookSecrets = append(c.webhookSecrets, []byte(s))
	}
	m := hmac.New(sha256.New, []byte(cfg.KeySecret))
	m.Write([]byte("paygate razorpay return url v1"))
	c.returnKey = m.Sum(nil)
	return c, nil
}

// Name is the configured channel name.
func (c *Channel) Name() string { return c.cfg.Name }

// Capabilities: partial refunds, the day's payments by list API; refund
// webhooks are not parsed (refunds are followed with QueryRefund); every
// callback is confirmed by Query — the checkout signature does not cover
// the amount.
func (c *Channel) Capabilities() psp.Capabilities {
	return psp.Capabilities{PartialRefund: true, Settlement: true, RefundCallbacks: false, ConfirmByQuery: true}
}

// Ack is what Razorpay expects to a webhook: a 2xx within its timeout
// (https://razorpay.com/docs/webhooks/#delivery).
func (c *Channel) Ack() psp.Ack {
	return psp.Ack{Status: http.StatusOK, ContentType: "text/plain; charset=utf-8", Body: "OK"}
}

// APIError is an error answer of Razorpay's API
// (https://razorpay.com/docs/errors/), wrapped in the error an operation
// returns beside the psp sentinel that classifies it.
type APIError struct {
	Status      int
	Code        string
	Description string
	Reason      string
	Field       string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.Status)
	for _, p := range []string{e.Code, e.Reason} {
		if p != "" {
			s += " " + p
		}
	}
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

const maxBody = 4 << 20

// call makes one API request with a JSON body (nil: none). Network errors
// and timeouts are temporary.
func (c *Channel) call(ctx context.Context, op, method, pathQuery string, in any) (int, []byte, error) {
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, fmt.Errorf("razorpay %s: encode request: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+pathQuery, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("razorpay %s: %w", op, err)
	}
	req.SetBasicAuth(c.cfg.KeyID, c.cfg.KeySecret)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, &psp.TemporaryError{Op: "razorpay " + op, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, nil, &psp.TemporaryError{Op: "razorpay " + op, Err: fmt.Errorf("read answer: %w", err)}
	}
	if len(b) > maxBody {
		return 0, nil, fmt.Errorf("razorpay %s: answer over %d bytes: %w", op, maxBody, psp.ErrMalformed)
	}
	return resp.StatusCode, b, nil
}

// classify turns a non-2xx answer into the port's error: 5xx, 429 and
// 408 are temporary; 404 is psp.ErrNotFound; other 4xx
// (BAD_REQUEST_ERROR, 401 authentication) are psp.ErrDeclined.
func classify(op string, status int, body []byte) error {
	ae := &APIError{Status: status}
	var ej errorJSON
	if json.Unmarshal(body, &ej) == nil && ej.Error != nil {
		ae.Code, ae.Description, ae.Reason, ae.Field = ej.Error.Code, ej.Error.Description, ej.Error.Reason, ej.Error.Field
	} else {
		ae.Description = strings.TrimSpace(string(body[:min(len(body), 200)]))
	}
	switch {
	case status >= 500, status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
		return &psp.TemporaryError{Op: "razorpay " + op, Err: ae}
	case status == http.StatusNotFound:
		return fmt.Errorf("razorpay %s: %w: %w", op, psp.ErrNotFound, ae)
	case status >= 400:
		return fmt.Errorf("razorpay %s: %w: %w", op, psp.ErrDeclined, ae)
	}
	return fmt.Errorf("razorpay %s: unexpected answer: %w: %w", op, psp.ErrMalformed, ae)
}

func malformed(op string, err error) error {
	return fmt.Errorf("razorpay %s: %w: %v", op, psp.ErrMalformed, err)
}

// get makes a GET and decodes a 200 answer into v.
func (c *Channel) get(ctx context.Context, op, pathQuery string, v any) error {
	status, body, err := c.call(ctx, op, http.MethodGet, pathQuery, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return classify(op, status, body)
	}
	if err := decodeJSON(body, v); err != nil {
		return malformed(op, err)
	}
	return nil
}

// money reads a Razorpay amount and currency.
func money(amount int64, currency string) (domain.Money, error) {
	if currency != strings.ToUpper(currency) {
		return domain.Money{}, fmt.Errorf("currency %q is not upper case", currency)
	}
	return domain.NewMoney(amount, currency)
}

// ordersByReceipt lists the orders whose receipt is the transaction code.
func (c *Channel) ordersByReceipt(ctx context.Context, op, code string) ([]orderJSON, error) {
	var l collectionJSON[orderJSON]
	if err := c.get(ctx, op, "/v1/orders?"+url.Values{"receipt": {code}}.Encode(), &l); err != nil {
		return nil, err
	}
	if l.Entity != "collection" {
		return nil, malformed(op, fmt.Errorf("entity %q, want collection", l.Entity))
	}
	for _, o := range l.Items {
		if o.ID == "" || o.Receipt != code {
			return nil, malformed(op, fmt.Errorf("orders for receipt %q answered with order %q of receipt %q", code, o.ID, o.Receipt))
		}
	}
	return l.Items, nil
}

// Initiate creates the Razorpay Order for the attempt (receipt = the
// transaction code) and returns the hosted checkout form. Razorpay's
// Orders API takes no idempotency key, so an order already made for the
// code (a retry after a timeout) is looked up by receipt and reused; one
// for another amount is refused.
func (c *Channel) Initiate(ctx context.Context, req psp.InitiateRequest) (psp.Session, error) {
	const op = "initiate"
	code := req.TransactionCode
	if code == "" || len(code) > 40 || req.Amount.IsZero() || req.Amount.Minor() <= 0 || req.ReturnURL == "" {
		return psp.Session{}, fmt.Errorf("razorpay %s: a transaction code of at most 40 bytes, a positive amount and a return URL are required: %w", op, psp.ErrDeclined)
	}
	amount, currency := req.Amount.Minor(), req.Amount.Currency().Code()
	existing, err := c.ordersByReceipt(ctx, op, code)
	if err != nil {
		return psp.Session{}, err
	}
	var order orderJSON
	for _, o := range existing {
		if o.Amount != amount || o.Currency != currency {
			return psp.Session{}, fmt.Errorf("razorpay %s: order %s for %s is for %d %s, not %s: %w", op, o.ID, code, o.Amount, o.Currency, req.Amount, psp.ErrDeclined)
		}
		order = o
	}
	if order.ID == "" {
		in := map[string]any{"amount": amount, "currency": currency, "receipt": code,
			"notes": map[string]string{"transaction_code": code, "order_id": req.OrderID}}
		status, body, err := c.call(ctx, op, http.MethodPost, "/v1/orders", in)
		if err != nil {
			return psp.Session{}, err
		}
		if status != http.StatusOK {
			return psp.Session{}, classify(op, status, body)
		}
		if err := decodeJSON(body, &order); err != nil {
			return psp.Session{}, malformed(op, err)
		}
		if order.Entity != "order" || order.ID == "" || order.Receipt != code || order.Amount != amount || order.Currency != currency {
			return psp.Session{}, malformed(op, fmt.Errorf("order %q for %q of %d %s does not match the request", order.ID, order.Receipt, order.Amount, order.Currency))
		}
	}
	form := map[string]string{
		"key_id":                   c.cfg.KeyID,
		"order_id":                 order.ID,
		"amount":                   strconv.FormatInt(amount, 10),
		"currency":                 currency,
		"callback_url":             c.returnURL(req.ReturnURL, code, order.ID),
		"cancel_url":               c.returnURL(req.ReturnURL, code, order.ID),
		"notes[transaction_code]":  code,
		"notes[paygate_order_ref]": req.OrderID,
	}
	if c.cfg.MerchantName != "" {
		form["name"] = c.cfg.MerchantName
	}
	if req.Description != "" {
		form["description"] = req.Description
	}
	if req.BuyerEmail != "" {
		form["prefill[email]"] = req.BuyerEmail
	}
	return psp.Session{PSPReference: order.ID, PayURL: c.cfg.CheckoutURL, Form: form}, nil
}

// Query asks the Orders and Payments APIs what the attempt's order
// collected: a captured (or since refunded) payment of the order is
// succeeded, with that payment's amount and currency — the authority the
// checkout signature lacks; an authorized or created one, or none yet,
// is pending; only failed payments is failed. No order is PSPUnknown.
func (c *Channel) Query(ctx context.Context, transactionCode string) (domain.Notification, error) {
	const op = "query"
	orders, err := c.ordersByReceipt(ctx, op, transactionCode)
	if err != nil {
		return domain.Notification{}, err
	}
	if len(orders) == 0 {
		return domain.Notification{TransactionCode: transactionCode, Status: domain.PSPUnknown}, nil
	}
	var (
		best     *paymentJSON
		pending  bool
		failed   *paymentJSON
		payments int
	)
	for _, o := range orders {
		var l collectionJSON[paymentJSON]
		if err := c.get(ctx, op, "/v1/orders/"+url.PathEscape(o.ID)+"/payments", &l); err != nil {
			return domain.Notification{}, err
		}
		for i := range l.Items {
			p := &l.Items[i]
			if p.ID == "" || p.OrderID != o.ID {
				return domain.Notification{}, malformed(op, fmt.Errorf("payments of order %s answered with payment %q of order %q", o.ID, p.ID, p.OrderID))
			}
			payments++
			switch p.Status {
			case "captured", "refunded":
				if best == nil || p.CreatedAt < best.CreatedAt {
					best = p
				}
			case "created", "authorized":
				pending = true
			case "failed":
				failed = p
			default:
				return domain.Notification{}, malformed(op, fmt.Errorf("payment %s: unknown status %q", p.ID, p.Status))
			}
		}
	}
	n := domain.Notification{TransactionCode: transactionCode}
	var p *paymentJSON
	switch {
	case best != nil:
		n.Status, p = domain.PSPSucceeded, best
	case pending || payments == 0:
		n.Status = domain.PSPPending
	default:
		n.Status, p = domain.PSPFailed, failed
	}
	if p == nil {
		n.PSPReference = orders[0].ID
		m, err := money(orders[0].Amount, orders[0].Currency)
		if err != nil {
			return domain.Notification{}, malformed(op, err)
		}
		n.Amount = m
		return n, nil
	}
	m, err := money(p.Amount, p.Currency)
	if err != nil {
		return domain.Notification{}, malformed(op, fmt.Errorf("payment %s: %v", p.ID, err))
	}
	n.PSPReference, n.Amount = p.ID, m
	return n, nil
}

func refundResult(op string, r refundJSON, refundRef string) (psp.RefundResult, error) {
	if r.Entity != "refund" || r.ID == "" || r.Receipt != refundRef {
		return psp.RefundResult{}, malformed(op, fmt.Errorf("refund %q with receipt %q, asked for %q", r.ID, r.Receipt, refundRef))
	}
	out := psp.RefundResult{RefundRef: refundRef, PSPReference: r.ID}
	switch r.Status {
	case "processed":
		out.Status = psp.RefundSucceeded
	case "failed":
		out.Status = psp.RefundFailed
	case "pending":
		out.Status = psp.RefundPending
	default:
		return psp.RefundResult{}, malformed(op, fmt.Errorf("refund %s: unknown status %q", r.ID, r.Status))
	}
	m, err := money(r.Amount, r.Currency)
	if err != nil {
		return psp.RefundResult{}, malformed(op, err)
	}
	out.Amount = m
	return out, nil
}

// Refund refunds req.Amount of the attempt's captured payment, with
// receipt = the refund reference. Razorpay's refunds take no idempotency
// key: the payment's refunds are read first, and one with this receipt is
// the answer to a retry. If req.PSPReference is not a payment (pay_…), the
// captured payment is found by Query.
func (c *Channel) Refund(ctx context.Context, req psp.RefundRequest) (psp.RefundResult, error) {
	const op = "refund"
	if req.RefundRef == "" || len(req.RefundRef) > 40 || req.TransactionCode == "" || req.Amount.IsZero() || req.Amount.Minor() <= 0 {
		return psp.RefundResult{}, fmt.Errorf("razorpay %s: a refund ref of at most 40 bytes, transaction code and positive amount are required: %w", op, psp.ErrDeclined)
	}
	pay := req.PSPReference
	if !strings.HasPrefix(pay, "pay_") {
		n, err := c.Query(ctx, req.TransactionCode)
		if err != nil {
			return psp.RefundResult{}, err
		}
		if n.Status != domain.PSPSucceeded {
			return psp.RefundResult{}, fmt.Errorf("razorpay %s: attempt %s has no captured payment (%s): %w", op, req.TransactionCode, n.Status, psp.ErrDeclined)
		}
		pay = n.PSPReference
	}
	var prior collectionJSON[refundJSON]
	if err := c.get(ctx, op, "/v1/payments/"+url.PathEscape(pay)+"/refunds", &prior); err != nil {
		return psp.RefundResult{}, err
	}
	for _, r := range prior.Items {
		if r.Receipt == req.RefundRef {
			return refundResult(op, r, req.RefundRef)
		}
	}
	in := map[string]any{"amount": req.Amount.Minor(), "receipt": req.RefundRef,
		"notes": map[string]string{"refund_ref": req.RefundRef, "transaction_code": req.TransactionCode, "reason": req.Reason}}
	status, body, err := c.call(ctx, op, http.MethodPost, "/v1/payments/"+url.PathEscape(pay)+"/refund", in)
	if err != nil {
		return psp.RefundResult{}, err
	}
	if status != http.StatusOK {
		return psp.RefundResult{}, classify(op, status, body)
	}
	var r refundJSON
	if err := decodeJSON(body, &r); err != nil {
		return psp.RefundResult{}, malformed(op, err)
	}
	if r.PaymentID != pay || r.Amount != req.Amount.Minor() || r.Currency != req.Amount.Currency().Code() {
		return psp.RefundResult{}, malformed(op, fmt.Errorf("refund %s of %d %s on %s does not match the request", r.ID, r.Amount, r.Currency, r.PaymentID))
	}
	return refundResult(op, r, req.RefundRef)
}

// QueryRefund finds a refund by receipt among the account's most recent
// refunds (RefundScanPages pages of 100); one not found is RefundUnknown.
func (c *Channel) QueryRefund(ctx context.Context, refundRef string) (psp.RefundResult, error) {
	const op = "query_refund"
	for page := range c.cfg.RefundScanPages {
		var l collectionJSON[refundJSON]
		q := url.Values{"count": {"100"}, "skip": {strconv.Itoa(page * 100)}}
		if err := c.get(ctx, op, "/v1/refunds?"+q.Encode(), &l); err != nil {
			return psp.RefundResult{}, err
		}
		for _, r := range l.Items {
			if r.Receipt == refundRef {
				return refundResult(op, r, refundRef)
			}
		}
		if len(l.Items) < 100 {
			break
		}
	}
	return psp.RefundResult{RefundRef: refundRef, Status: psp.RefundUnknown}, nil
}

// SettledPayments lists one page (up to 100) of the payments created on
// day's calendar date in day's location (pass Asia/Kolkata for
// Razorpay's business day) that were captured (or since refunded) and
// carry a transaction code in their notes. page is the number of
// payments to skip.
func (c *Channel) SettledPayments(ctx context.Context, day time.Time, page string) (psp.SettlementPage, error) {
	const op = "settlements"
	skip := 0
	if page != "" {
		n, err := strconv.Atoi(page)
		if err != nil || n < 0 {
			return psp.SettlementPage{}, fmt.Errorf("razorpay %s: page %q: %w", op, page, psp.ErrMalformed)
		}
		skip = n
	}
	y, m, d := day.Date()
	from := time.Date(y, m, d, 0, 0, 0, 0, day.Location())
	to := from.AddDate(0, 0, 1)
	q := url.Values{"from": {strconv.FormatInt(from.Unix(), 10)}, "to": {strconv.FormatInt(to.Unix()-1, 10)},
		"count": {"100"}, "skip": {strconv.Itoa(skip)}}
	var l collectionJSON[paymentJSON]
	if err := c.get(ctx, op, "/v1/payments?"+q.Encode(), &l); err != nil {
		return psp.SettlementPage{}, err
	}
	out := psp.SettlementPage{Rows: []psp.SettlementRow{}}
	for _, p := range l.Items {
		code := p.Notes["transaction_code"]
		if (p.Status != "captured" && p.Status != "refunded") || code == "" {
			continue
		}
		amount, err := money(p.Amount, p.Currency)
		if err != nil {
			return psp.SettlementPage{}, malformed(op, fmt.Errorf("payment %s: %v", p.ID, err))
		}
		out.Rows = append(out.Rows, psp.SettlementRow{TransactionCode: code, PSPReference: p.ID, Amount: amount,
			Status: domain.PSPSucceeded, SettledAt: time.Unix(p.CreatedAt, 0).UTC()})
	}
	if len(l.Items) == 100 {
		out.NextPage = strconv.Itoa(skip + 100)
	}
	return out, nil
}
