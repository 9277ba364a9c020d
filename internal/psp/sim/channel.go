package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/signature"
)

// ChannelConfig configures the adapter for one simulator merchant account.
type ChannelConfig struct {
	// Name is the channel's name (the path segment of its callback URLs).
	// Default "sim".
	Name string
	// BaseURL is the simulator's address, such as "http://127.0.0.1:8090".
	// Required.
	BaseURL string
	// MerchantID is the merchant account at the simulator. Required.
	MerchantID string
	// Secrets are the merchant's shared secrets: the first signs API
	// requests; every one verifies callbacks, so that a secret can be
	// rotated without losing callbacks signed with the old one. At least
	// one is required.
	Secrets []string
	// Timeout bounds one API call, answer included. Default 10 s.
	Timeout time.Duration
	// Tolerance is how far a callback's signed timestamp may be from the
	// time it was received, either way. Default 300 s.
	Tolerance time.Duration
	// Transport is the round tripper under the evidence-recording
	// psp.Transport. Default http.DefaultTransport.
	Transport http.RoundTripper
	// Now is the clock that timestamps API requests. Default time.Now.
	// Callbacks are judged at their ReceivedAt, never by this clock.
	Now func() time.Time
}

// Defaults of ChannelConfig.
const (
	DefaultChannelName    = "sim"
	DefaultChannelTimeout = 10 * time.Second
)

func (c ChannelConfig) withDefaults() ChannelConfig {
	if c.Name == "" {
		c.Name = DefaultChannelName
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultChannelTimeout
	}
	if c.Tolerance == 0 {
		c.Tolerance = signature.DefaultTolerance
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first invalid field. Defaults count as set.
func (c ChannelConfig) Validate() error {
	c = c.withDefaults()
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("sim channel %s: BaseURL %q is not an absolute http(s) URL without query", c.Name, c.BaseURL)
	}
	if c.MerchantID == "" {
		return fmt.Errorf("sim channel %s: MerchantID is required", c.Name)
	}
	if len(c.Secrets) == 0 {
		return fmt.Errorf("sim channel %s: at least one secret is required", c.Name)
	}
	for i, s := range c.Secrets {
		if s == "" {
			return fmt.Errorf("sim channel %s: secret %d is empty", c.Name, i)
		}
	}
	if c.Timeout < 0 || c.Tolerance < 0 {
		return fmt.Errorf("sim channel %s: negative Timeout or Tolerance", c.Name)
	}
	return nil
}

// Channel is the psp.Channel adapter for the simulator. It is safe for
// concurrent use.
type Channel struct {
	cfg     ChannelConfig
	base    string // BaseURL without a trailing slash
	secrets [][]byte
	client  *http.Client
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
	for _, s := range cfg.Secrets {
		c.secrets = append(c.secrets, []byte(s))
	}
	return c, nil
}

// Name is the configured channel name.
func (c *Channel) Name() string { return c.cfg.Name }

// Capabilities: partial refunds and settlement lists, no refund
// callbacks (refunds are followed with QueryRefund), and callbacks are
// confirmed by Query.
func (c *Channel) Capabilities() psp.Capabilities {
	return psp.Capabilities{PartialRefund: true, Settlement: true, RefundCallbacks: false, ConfirmByQuery: true}
}

// Ack is the answer the simulator expects to a webhook: any 2xx; we say
// 200 "OK".
func (c *Channel) Ack() psp.Ack {
	return psp.Ack{Status: http.StatusOK, ContentType: "text/plain; charset=utf-8", Body: "OK"}
}

// APIError is an error answer of the simulator's API, wrapped in the
// error an operation returns (beside the psp error that classifies it).
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the simulator's error code ("conflict", "exceeds_refundable",
	// "not_found", …), "" if the answer had none.
	Code string
	// Message is the simulator's explanation.
	Message string
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// call makes one signed API request and returns the answer's status and
// body. Network errors and timeouts are temporary.
func (c *Channel) call(ctx context.Context, op, method, pathQuery string, in any) (int, []byte, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, nil, fmt.Errorf("sim %s: encode request: %w", op, err)
		}
	}
	var rd io.Reader
	if in != nil {
		rd = bytes.NewReader(body) // also gives the evidence recorder GetBody
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+pathQuery, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("sim %s: %w", op, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	ts := c.cfg.Now().Unix()
	req.Header.Set("Accept", "application/json")
	req.Header.Set(headerMerchant, c.cfg.MerchantID)
	req.Header.Set(headerTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(headerSignature, signature.Header(c.secrets[0], ts, apiMessage(method, req.URL.RequestURI(), body)))
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, &psp.TemporaryError{Op: "sim " + op, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, nil, &psp.TemporaryError{Op: "sim " + op, Err: fmt.Errorf("read answer: %w", err)}
	}
	if len(b) > maxBody {
		return 0, nil, fmt.Errorf("sim %s: answer over %d bytes: %w", op, maxBody, psp.ErrMalformed)
	}
	return resp.StatusCode, b, nil
}

// classify turns a non-2xx answer into the error the port expects: 5xx,
// 429 and 408 are temporary; 404 is psp.ErrNotFound; other 4xx are
// psp.ErrDeclined (permanent: the same request will fail the same way);
// anything else is psp.ErrMalformed.
func classify(op string, status int, body []byte) error {
	ae := &APIError{Status: status}
	var ej errorJSON
	if json.Unmarshal(body, &ej) == nil && ej.Error != "" {
		ae.Code, ae.Message = ej.Error, ej.Message
	} else {
		ae.Message = strings.TrimSpace(string(body[:min(len(body), 200)]))
	}
	switch {
	case status >= 500, status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
		return &psp.TemporaryError{Op: "sim " + op, Err: ae}
	case status == http.StatusNotFound:
		return fmt.Errorf("sim %s: %w: %w", op, psp.ErrNotFound, ae)
	case status >= 400:
		return fmt.Errorf("sim %s: %w: %w", op, psp.ErrDeclined, ae)
	}
	return fmt.Errorf("sim %s: unexpected answer: %w: %w", op, psp.ErrMalformed, ae)
}

// isNotFound reports whether a 404 is the API's "no such object" answer
// and not a wrong route or a stray server.
func isNotFound(status int, body []byte) bool {
	var ej errorJSON
	return status == http.StatusNotFound && json.Unmarshal(body, &ej) == nil && ej.Error == "not_found"
}

func malformed(op string, err error) error {
	return fmt.Errorf("sim %s: %w: %v", op, psp.ErrMalformed, err)
}

// Initiate creates the payment for req.TransactionCode (the merchant_ref).
// A retry with the same request is answered with the same payment.
func (c *Channel) Initiate(ctx context.Context, req psp.InitiateRequest) (psp.Session, error) {
	const op = "initiate"
	if req.TransactionCode == "" || req.Amount.IsZero() {
		return psp.Session{}, fmt.Errorf("sim %s: transaction code and amount are required: %w", op, psp.ErrDeclined)
	}
	in := paymentRequest{
		MerchantRef: req.TransactionCode, Amount: req.Amount.Minor(), Currency: req.Amount.Currency().Code(),
		Description: req.Description, NotifyURL: req.NotifyURL, ReturnURL: req.ReturnURL,
	}
	status, body, err := c.call(ctx, op, http.MethodPost, pathPayments, in)
	if err != nil {
		return psp.Session{}, err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return psp.Session{}, classify(op, status, body)
	}
	var v paymentJSON
	if err := decodeJSON(body, &v); err != nil {
		return psp.Session{}, malformed(op, err)
	}
	if v.ID == "" || v.PayURL == "" || v.MerchantRef != req.TransactionCode ||
		v.Amount != req.Amount.Minor() || v.Currency != req.Amount.Currency().Code() {
		return psp.Session{}, malformed(op, fmt.Errorf("answer for %q %d %s does not match the request", v.MerchantRef, v.Amount, v.Currency))
	}
	return psp.Session{PSPReference: v.ID, PayURL: v.PayURL, Token: v.Token, ExpiresAt: v.ExpiresAt.UTC()}, nil
}

// Query asks for the payment of a transaction code. A payment the
// simulator does not know is not an error: it is PSPUnknown. A succeeded
// payment reports what was collected, which may differ from what was
// asked; an expired one reports failed.
func (c *Channel) Query(ctx context.Context, transactionCode string) (domain.Notification, error) {
	const op = "query"
	status, body, err := c.call(ctx, op, http.MethodGet, pathPayments+"?merchant_ref="+url.QueryEscape(transactionCode), nil)
	if err != nil {
		return domain.Notification{}, err
	}
	if isNotFound(status, body) {
		return domain.Notification{TransactionCode: transactionCode, Status: domain.PSPUnknown}, nil
	}
	if status != http.StatusOK {
		return domain.Notification{}, classify(op, status, body)
	}
	var v paymentJSON
	if err := decodeJSON(body, &v); err != nil {
		return domain.Notification{}, malformed(op, err)
	}
	if v.MerchantRef != transactionCode || v.ID == "" {
		return domain.Notification{}, malformed(op, fmt.Errorf("answer for %q, asked for %q", v.MerchantRef, transactionCode))
	}
	n := domain.Notification{TransactionCode: v.MerchantRef, PSPReference: v.ID}
	amount := v.Amount
	switch v.Status {
	case statusCreated:
		n.Status = domain.PSPPending
	case statusSucceeded:
		if v.PaidAt == nil {
			return domain.Notification{}, malformed(op, errors.New("succeeded without paid_at"))
		}
		n.Status, amount, n.OccurredAt = domain.PSPSucceeded, v.PaidAmount, v.PaidAt.UTC()
	case statusFailed, statusExpired:
		n.Status = domain.PSPFailed
	default:
		return domain.Notification{}, malformed(op, fmt.Errorf("unknown status %q", v.Status))
	}
	if n.Amount, err = domain.NewMoney(amount, v.Currency); err != nil {
		return domain.Notification{}, malformed(op, err)
	}
	return n, nil
}

func refundResult(op string, v refundJSON, refundRef string) (psp.RefundResult, error) {
	if v.RefundRef != refundRef || v.ID == "" {
		return psp.RefundResult{}, malformed(op, fmt.Errorf("answer for refund %q, asked for %q", v.RefundRef, refundRef))
	}
	r := psp.RefundResult{RefundRef: v.RefundRef, PSPReference: v.ID}
	switch v.Status {
	case statusPending:
		r.Status = psp.RefundPending
	case statusSucceeded:
		r.Status = psp.RefundSucceeded
	case statusFailed:
		r.Status = psp.RefundFailed
	default:
		return psp.RefundResult{}, malformed(op, fmt.Errorf("unknown refund status %q", v.Status))
	}
	var err error
	if r.Amount, err = domain.NewMoney(v.Amount, v.Currency); err != nil {
		return psp.RefundResult{}, malformed(op, err)
	}
	return r, nil
}

// Refund asks for req.Amount back from the payment of
// req.TransactionCode; retrying with the same RefundRef and request is
// answered with the same refund. Refusals (nothing captured, more than
// is refundable, another currency, a reused RefundRef) are
// psp.ErrDeclined wrapping an *APIError; an unknown payment is
// psp.ErrNotFound.
func (c *Channel) Refund(ctx context.Context, req psp.RefundRequest) (psp.RefundResult, error) {
	const op = "refund"
	if req.RefundRef == "" || req.TransactionCode == "" || req.Amount.IsZero() {
		return psp.RefundResult{}, fmt.Errorf("sim %s: refund ref, transaction code and amount are required: %w", op, psp.ErrDeclined)
	}
	in := refundRequest{
		RefundRef: req.RefundRef, MerchantRef: req.TransactionCode, Amount: req.Amount.Minor(),
		Currency: req.Amount.Currency().Code(), Reason: req.Reason,
	}
	status, body, err := c.call(ctx, op, http.MethodPost, pathRefunds, in)
	if err != nil {
		return psp.RefundResult{}, err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return psp.RefundResult{}, classify(op, status, body)
	}
	var v refundJSON
	if err := decodeJSON(body, &v); err != nil {
		return psp.RefundResult{}, malformed(op, err)
	}
	return refundResult(op, v, req.RefundRef)
}

// QueryRefund asks for a refund by our reference; a refund the simulator
// does not know is RefundUnknown, not an error.
func (c *Channel) QueryRefund(ctx context.Context, refundRef string) (psp.RefundResult, error) {
	const op = "query_refund"
	status, body, err := c.call(ctx, op, http.MethodGet, pathRefunds+"?refund_ref="+url.QueryEscape(refundRef), nil)
	if err != nil {
		return psp.RefundResult{}, err
	}
	if isNotFound(status, body) {
		return psp.RefundResult{RefundRef: refundRef, Status: psp.RefundUnknown}, nil
	}
	if status != http.StatusOK {
		return psp.RefundResult{}, classify(op, status, body)
	}
	var v refundJSON
	if err := decodeJSON(body, &v); err != nil {
		return psp.RefundResult{}, malformed(op, err)
	}
	return refundResult(op, v, refundRef)
}

// SettledPayments lists one page of the payments that succeeded on the
// simulator's business day whose date is day's calendar date as it reads
// in day's own location (pass a time in the PSP's time zone).
func (c *Channel) SettledPayments(ctx context.Context, day time.Time, page string) (psp.SettlementPage, error) {
	const op = "settlements"
	// A page must fit the answer limit of call: 200 rows are ~40 KiB.
	q := url.Values{"date": {day.Format("2006-01-02")}, "page_size": {"200"}}
	if page != "" {
		q.Set("page", page)
	}
	status, body, err := c.call(ctx, op, http.MethodGet, pathSettlements+"?"+q.Encode(), nil)
	if err != nil {
		return psp.SettlementPage{}, err
	}
	if status != http.StatusOK {
		return psp.SettlementPage{}, classify(op, status, body)
	}
	var v settlementJSON
	if err := decodeJSON(body, &v); err != nil {
		return psp.SettlementPage{}, malformed(op, err)
	}
	out := psp.SettlementPage{NextPage: v.NextPage, Rows: make([]psp.SettlementRow, 0, len(v.Rows))}
	for i, r := range v.Rows {
		st, err := domain.ParsePSPStatus(r.Status)
		if err != nil || st == domain.PSPUnknown || r.MerchantRef == "" {
			return psp.SettlementPage{}, malformed(op, fmt.Errorf("row %d: status %q, merchant_ref %q", i, r.Status, r.MerchantRef))
		}
		amount, err := domain.NewMoney(r.Amount, r.Currency)
		if err != nil {
			return psp.SettlementPage{}, malformed(op, fmt.Errorf("row %d: %v", i, err))
		}
		out.Rows = append(out.Rows, psp.SettlementRow{
			TransactionCode: r.MerchantRef, PSPReference: r.PaymentID, Amount: amount,
			Status: st, SettledAt: r.SettledAt.UTC(),
		})
	}
	return out, nil
}

// ParseCallback verifies and reads a webhook (Async: the X-Sim-Signature
// over the untouched body, its X-Sim-Timestamp) or a sync return (Sync:
// the sig parameter over the other parameters, its ts), with any of the
// configured secrets, judging the timestamp at cb.ReceivedAt. The
// signature is checked before a byte is interpreted. Errors wrap
// psp.ErrBadSignature (missing, forged or tampered), psp.ErrStale or
// psp.ErrMalformed; on error the Notification is the zero value. It does
// no I/O.
func (c *Channel) ParseCallback(cb domain.Callback) (domain.Notification, error) {
	switch cb.Kind {
	case domain.CallbackAsync:
		return c.parseWebhook(cb)
	case domain.CallbackSync:
		return c.parseReturn(cb)
	}
	return domain.Notification{}, fmt.Errorf("sim callback: kind %q: %w", cb.Kind, psp.ErrMalformed)
}

// verify maps signature errors onto the port's.
func (c *Channel) verify(sig, ts string, signed []byte, at time.Time) error {
	err := signature.Verify(sig, ts, signed, c.secrets, at, c.cfg.Tolerance)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, signature.ErrTooOld), errors.Is(err, signature.ErrTooNew):
		return fmt.Errorf("sim callback: %w: %v", psp.ErrStale, err)
	}
	// Missing, unreadable or non-matching: not signed by the PSP.
	return fmt.Errorf("sim callback: %w: %v", psp.ErrBadSignature, err)
}

func (c *Channel) parseWebhook(cb domain.Callback) (domain.Notification, error) {
	if err := c.verify(cb.Headers.Get(headerSignature), cb.Headers.Get(headerTimestamp), cb.Body, cb.ReceivedAt); err != nil {
		return domain.Notification{}, err
	}
	n, err := readWebhook(cb.Body)
	return n, psp.Verified(err)
}

// readWebhook reads a webhook whose signature verified.
func readWebhook(body []byte) (domain.Notification, error) {
	var ev webhookJSON
	if err := decodeJSON(body, &ev); err != nil {
		return domain.Notification{}, fmt.Errorf("sim webhook: %w: %v", psp.ErrMalformed, err)
	}
	if ev.EventID == "" {
		return domain.Notification{}, fmt.Errorf("sim webhook: %w: no event_id", psp.ErrMalformed)
	}
	var want string
	switch ev.Status {
	case statusSucceeded:
		want = eventSucceeded
	case statusFailed:
		want = eventFailed
	}
	if want == "" || ev.Type != want {
		return domain.Notification{}, fmt.Errorf("sim webhook: %w: type %q with status %q", psp.ErrMalformed, ev.Type, ev.Status)
	}
	if ev.OccurredAt.IsZero() {
		return domain.Notification{}, fmt.Errorf("sim webhook: %w: no occurred_at", psp.ErrMalformed)
	}
	n, err := notification(ev.MerchantRef, ev.PaymentID, ev.Status, ev.Amount, ev.Currency)
	if err != nil {
		return domain.Notification{}, fmt.Errorf("sim webhook: %w", err)
	}
	n.EventID, n.OccurredAt = ev.EventID, ev.OccurredAt.UTC()
	return n, nil
}

func (c *Channel) parseReturn(cb domain.Callback) (domain.Notification, error) {
	q := cb.Query
	for _, k := range []string{qSignature, qTimestamp} {
		if len(q[k]) > 1 {
			return domain.Notification{}, fmt.Errorf("sim return: %w: %s given %d times", psp.ErrBadSignature, k, len(q[k]))
		}
	}
	if err := c.verify(q.Get(qSignature), q.Get(qTimestamp), canonicalQuery(q), cb.ReceivedAt); err != nil {
		return domain.Notification{}, err
	}
	n, err := readReturn(q)
	return n, psp.Verified(err)
}

// readReturn reads a return whose signature verified.
func readReturn(q url.Values) (domain.Notification, error) {
	one := func(k string) (string, error) {
		if len(q[k]) != 1 {
			return "", fmt.Errorf("sim return: %w: %s given %d times", psp.ErrMalformed, k, len(q[k]))
		}
		return q[k][0], nil
	}
	var vals [5]string
	for i, k := range []string{qMerchantRef, qPaymentID, qStatus, qAmount, qCurrency} {
		v, err := one(k)
		if err != nil {
			return domain.Notification{}, err
		}
		vals[i] = v
	}
	amount, err := strconv.ParseInt(vals[3], 10, 64)
	if err != nil {
		return domain.Notification{}, fmt.Errorf("sim return: %w: amount %q", psp.ErrMalformed, vals[3])
	}
	n, err := notification(vals[0], vals[1], vals[2], amount, vals[4])
	if err != nil {
		return domain.Notification{}, fmt.Errorf("sim return: %w", err)
	}
	return n, nil
}

// notification builds the common part of a callback's notification.
func notification(merchantRef, paymentID, status string, amount int64, currency string) (domain.Notification, error) {
	if merchantRef == "" || paymentID == "" {
		return domain.Notification{}, fmt.Errorf("%w: merchant_ref and payment_id are required", psp.ErrMalformed)
	}
	n := domain.Notification{TransactionCode: merchantRef, PSPReference: paymentID}
	switch status {
	case statusSucceeded:
		n.Status = domain.PSPSucceeded
	case statusFailed:
		n.Status = domain.PSPFailed
	default:
		return domain.Notification{}, fmt.Errorf("%w: status %q", psp.ErrMalformed, status)
	}
	m, err := domain.NewMoney(amount, currency)
	if err != nil {
		return domain.Notification{}, fmt.Errorf("%w: %v", psp.ErrMalformed, err)
	}
	n.Amount = m
	return n, nil
}
