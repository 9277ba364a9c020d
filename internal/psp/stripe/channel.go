// Package stripe is the psp.Channel adapter for Stripe
// (https://docs.stripe.com/api): a hosted Checkout Session per attempt,
// whose PaymentIntent carries our transaction code in its metadata;
// webhooks signed with Stripe-Signature; refunds, full or partial; the
// day's succeeded PaymentIntents for reconciliation.
//
// Every amount crosses through amount.go, which knows where Stripe's units
// differ from ISO 4217's.
package stripe

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
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
)

// ChannelConfig configures the adapter for one Stripe account.
type ChannelConfig struct {
	// Name is the channel's name (the path segment of its callback URLs).
	// Default "stripe".
	Name string
	// BaseURL is Stripe's API. Default "https://api.stripe.com".
	BaseURL string
	// SecretKey is the account's secret (sk_…) or restricted (rk_…) API
	// key. It goes only into the Authorization header, never into a body
	// or URL. Its mode (live or test) must match the webhooks' livemode.
	// Required.
	SecretKey string
	// WebhookSecrets are the signing secrets (whsec_…) of the webhook
	// endpoint: every one verifies, so that a secret can be rolled while
	// events signed with the old one are in flight. At least one is
	// required.
	WebhookSecrets []string
	// APIVersion, if set, is sent as Stripe-Version on every request.
	// Default: the account's version. Webhook payloads follow the
	// endpoint's version, set at Stripe.
	APIVersion string
	// Timeout bounds one API call, answer included. Default 10 s.
	Timeout time.Duration
	// Tolerance is how far a webhook's signed timestamp may be from the
	// time it was received, either way, to the nanosecond as stripe-go
	// judges it (received 300 s after its signed second passes, 300.5 s
	// does not). Default 300 s (Stripe's SDKs' default).
	Tolerance time.Duration
	// RefundScanPages bounds how many pages of 100 recent refunds
	// QueryRefund reads looking for a refund reference (Stripe cannot
	// search refunds by metadata). Default 10.
	RefundScanPages int
	// Transport is the round tripper under the evidence-recording
	// psp.Transport. Default http.DefaultTransport.
	Transport http.RoundTripper
}

// Defaults of ChannelConfig.
const (
	DefaultChannelName     = "stripe"
	DefaultBaseURL         = "https://api.stripe.com"
	DefaultTimeout         = 10 * time.Second
	DefaultTolerance       = 300 * time.Second
	DefaultRefundScanPages = 10
)

func (c ChannelConfig) withDefaults() ChannelConfig {
	if c.Name == "" {
		c.Name = DefaultChannelName
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Tolerance == 0 {
		c.Tolerance = DefaultTolerance
	}
	if c.RefundScanPages == 0 {
		c.RefundScanPages = DefaultRefundScanPages
	}
	return c
}

// Validate reports the first invalid field. Defaults count as set. Error
// texts never contain a secret.
func (c ChannelConfig) Validate() error {
	c = c.withDefaults()
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("stripe channel %s: BaseURL is not an absolute http(s) URL without query or user info", c.Name)
	}
	if !strings.HasPrefix(c.SecretKey, "sk_") && !strings.HasPrefix(c.SecretKey, "rk_") {
		return fmt.Errorf("stripe channel %s: SecretKey must be a secret (sk_…) or restricted (rk_…) key", c.Name)
	}
	if len(c.WebhookSecrets) == 0 {
		return fmt.Errorf("stripe channel %s: at least one webhook secret is required", c.Name)
	}
	for i, s := range c.WebhookSecrets {
		if s == "" {
			return fmt.Errorf("stripe channel %s: webhook secret %d is empty", c.Name, i)
		}
	}
	if c.Timeout < 0 || c.Tolerance < 0 || c.RefundScanPages < 0 {
		return fmt.Errorf("stripe channel %s: negative Timeout, Tolerance or RefundScanPages", c.Name)
	}
	return nil
}

// Channel is the psp.Channel adapter for one Stripe account. It is safe
// for concurrent use.
type Channel struct {
	cfg       ChannelConfig
	base      string
	livemode  bool
	secrets   [][]byte
	returnKey []byte
	client    *http.Client
}

var _ psp.Channel = (*Channel)(nil)

// NewChannel returns an adapter configured by cfg, or the Validate error.
func NewChannel(cfg ChannelConfig) (*Channel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Channel{
		cfg:      cfg,
		base:     strings.TrimRight(cfg.BaseURL, "/"),
		livemode: strings.Contains(cfg.SecretKey, "_live_"),
		client:   psp.NewClient(cfg.Name, cfg.Transport, cfg.Timeout),
	}
	for _, s := range cfg.WebhookSecrets {
		c.secrets = append(c.secrets, []byte(s))
	}
	// The key that binds our return URLs to their transaction code is
	// derived from the API key: nothing more to configure, and useless to
	// anyone who does not hold the key.
	m := hmac.New(sha256.New, []byte(cfg.SecretKey))
	m.Write([]byte("paygate stripe return url v1"))
	c.returnKey = m.Sum(nil)
	return c, nil
}

// Name is the configured channel name.
func (c *Channel) Name() string { return c.cfg.Name }

// Capabilities: partial refunds, the day's payments by list API; refund
// events are not parsed (refunds are followed with QueryRefund); every
// callback is confirmed by Query.
func (c *Channel) Capabilities() psp.Capabilities {
	return psp.Capabilities{PartialRefund: true, Settlement: true, RefundCallbacks: false, ConfirmByQuery: true}
}

// Ack is what Stripe expects to a webhook: any 2xx, quickly
// (https://docs.stripe.com/webhooks#acknowledge-events-immediately).
func (c *Channel) Ack() psp.Ack {
	return psp.Ack{Status: http.StatusOK, ContentType: "application/json", Body: `{"received":true}`}
}

// APIError is an error answer of Stripe's API
// (https://docs.stripe.com/api/errors), wrapped in the error an operation
// returns beside the psp sentinel that classifies it.
type APIError struct {
	Status      int
	Type        string
	Code        string
	DeclineCode string
	Message     string
	RequestID   string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.Status)
	for _, p := range []string{e.Type, e.Code, e.DeclineCode} {
		if p != "" {
			s += " " + p
		}
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// maxBody bounds an answer we read.
const maxBody = 4 << 20

type answer struct {
	status int
	header http.Header
	body   []byte
}

// call makes one API request: form-encoded parameters in the body of a
// POST (with the idempotency key) or in the query of a GET. Network errors
// and timeouts are temporary.
func (c *Channel) call(ctx context.Context, op, method, path string, params url.Values, idempotencyKey string) (answer, error) {
	target := c.base + path
	var body io.Reader
	if method == http.MethodGet {
		if len(params) > 0 {
			target += "?" + params.Encode()
		}
	} else {
		body = strings.NewReader(params.Encode()) // gives the recorder GetBody
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return answer{}, fmt.Errorf("stripe %s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.SecretKey)
	req.Header.Set("Accept", "application/json")
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	if c.cfg.APIVersion != "" {
		req.Header.Set("Stripe-Version", c.cfg.APIVersion)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return answer{}, &psp.TemporaryError{Op: "stripe " + op, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return answer{}, &psp.TemporaryError{Op: "stripe " + op, Err: fmt.Errorf("read answer: %w", err)}
	}
	if len(b) > maxBody {
		return answer{}, fmt.Errorf("stripe %s: answer over %d bytes: %w", op, maxBody, psp.ErrMalformed)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// classify turns a non-2xx answer into the port's error. Stripe's own
// Stripe-Should-Retry header decides where present
// (https://docs.stripe.com/error-low-level#idempotency); otherwise 5xx,
// 429 (rate and lock limits), 424 and 408 are temporary, 404 is
// psp.ErrNotFound and other 4xx (402 declines, 400 invalid requests, 401
// and 403 key problems, 409 idempotency conflicts) are psp.ErrDeclined.
func classify(op string, a answer) error {
	ae := &APIError{Status: a.status, RequestID: a.header.Get("Request-Id")}
	var ej errorJSON
	if json.Unmarshal(a.body, &ej) == nil && ej.Error != nil {
		ae.Type, ae.Code, ae.DeclineCode, ae.Message = ej.Error.Type, ej.Error.Code, ej.Error.DeclineCode, ej.Error.Message
	} else {
		ae.Message = strings.TrimSpace(string(a.body[:min(len(a.body), 200)]))
	}
	retry := a.header.Get("Stripe-Should-Retry")
	switch {
	case retry == "true",
		retry == "" && (a.status >= 500 || a.status == http.StatusTooManyRequests ||
			a.status == http.StatusFailedDependency || a.status == http.StatusRequestTimeout):
		return &psp.TemporaryError{Op: "stripe " + op, Err: ae}
	case a.status == http.StatusNotFound:
		return fmt.Errorf("stripe %s: %w: %w", op, psp.ErrNotFound, ae)
	case a.status >= 400:
		return fmt.Errorf("stripe %s: %w: %w", op, psp.ErrDeclined, ae)
	}
	return fmt.Errorf("stripe %s: unexpected answer: %w: %w", op, psp.ErrMalformed, ae)
}

func malformed(op string, err error) error {
	return fmt.Errorf("stripe %s: %w: %v", op, psp.ErrMalformed, err)
}

// decodeJSON reads exactly one JSON value into v; numbers go into typed
// int64 fields, so that a fractional or exponent amount fails instead of
// rounding.
func decodeJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

// Initiate creates a Checkout Session for the attempt (Idempotency-Key: the
// transaction code, so that a retry within Stripe's 24 h key lifetime gets
// the same session) whose PaymentIntent carries the transaction code in
// its metadata. The buyer pays at Session.PayURL.
func (c *Channel) Initiate(ctx context.Context, req psp.InitiateRequest) (psp.Session, error) {
	const op = "initiate"
	if req.TransactionCode == "" || req.Amount.IsZero() || req.ReturnURL == "" {
		return psp.Session{}, fmt.Errorf("stripe %s: transaction code, amount and return URL are required: %w", op, psp.ErrDeclined)
	}
	amount, currency, err := toStripe(req.Amount)
	if err != nil {
		return psp.Session{}, fmt.Errorf("stripe %s: %w: %w", op, psp.ErrDeclined, err)
	}
	name := req.Description
	if name == "" {
		name = "Order " + req.OrderID
	}
	p := url.Values{}
	p.Set("mode", "payment")
	p.Set("client_reference_id", req.TransactionCode)
	p.Set("line_items[0][quantity]", "1")
	p.Set("line_items[0][price_data][currency]", currency)
	p.Set("line_items[0][price_data][unit_amount]", strconv.FormatInt(amount, 10))
	p.Set("line_items[0][price_data][product_data][name]", name)
	for _, prefix := range []string{"metadata", "payment_intent_data[metadata]"} {
		p.Set(prefix+"[transaction_code]", req.TransactionCode)
		if req.OrderID != "" {
			p.Set(prefix+"[order_id]", req.OrderID)
		}
	}
	p.Set("success_url", c.returnURL(req.ReturnURL, req.TransactionCode, resultSuccess)+"&session_id={CHECKOUT_SESSION_ID}")
	p.Set("cancel_url", c.returnURL(req.ReturnURL, req.TransactionCode, resultCancel))
	if req.BuyerEmail != "" {
		p.Set("customer_email", req.BuyerEmail)
	}
	a, err := c.call(ctx, op, http.MethodPost, "/v1/checkout/sessions", p, req.TransactionCode)
	if err != nil {
		return psp.Session{}, err
	}
	if a.status != http.StatusOK {
		return psp.Session{}, classify(op, a)
	}
	var s sessionJSON
	if err := decodeJSON(a.body, &s); err != nil {
		return psp.Session{}, malformed(op, err)
	}
	if s.Object != "checkout.session" || s.ID == "" || s.URL == "" || s.ClientReferenceID != req.TransactionCode ||
		s.AmountTotal == nil || *s.AmountTotal != amount || s.Currency != currency {
		return psp.Session{}, malformed(op, fmt.Errorf("session %q for %q does not match the request", s.ID, s.ClientReferenceID))
	}
	out := psp.Session{PSPReference: s.ID, PayURL: s.URL}
	if s.ExpiresAt > 0 {
		out.ExpiresAt = time.Unix(s.ExpiresAt, 0).UTC()
	}
	return out, nil
}

// searchQuote quotes a value for Stripe's search query language
// (https://docs.stripe.com/search#search-query-language).
func searchQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// intents returns the PaymentIntents whose metadata names the
// transaction code, through the Search API. Search is eventually
// consistent (Stripe: usually under a minute): an intent made seconds ago
// may not show yet, which reads as pending or unknown, never as paid.
func (c *Channel) intents(ctx context.Context, op, transactionCode string) ([]intentJSON, error) {
	p := url.Values{"query": {"metadata['transaction_code']:" + searchQuote(transactionCode)}, "limit": {"100"}}
	a, err := c.call(ctx, op, http.MethodGet, "/v1/payment_intents/search", p, "")
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		return nil, classify(op, a)
	}
	var l listJSON[intentJSON]
	if err := decodeJSON(a.body, &l); err != nil {
		return nil, malformed(op, err)
	}
	if l.Object != "search_result" {
		return nil, malformed(op, fmt.Errorf("object %q, want search_result", l.Object))
	}
	for _, pi := range l.Data {
		if pi.ID == "" || pi.Metadata["transaction_code"] != transactionCode {
			return nil, malformed(op, fmt.Errorf("search for %q answered with intent %q of %q", transactionCode, pi.ID, pi.Metadata["transaction_code"]))
		}
	}
	return l.Data, nil
}

// Query reports the attempt's PaymentIntent as Stripe has it: succeeded
// with the amount received; failed once canceled (a Checkout Session that
// expires cancels its intent); pending while the buyer may still pay
// (requires_payment_method after a decline included). No intent is
// PSPUnknown. If several intents carry the code, a succeeded one wins, so
// that money received is never reported as pending.
func (c *Channel) Query(ctx context.Context, transactionCode string) (domain.Notification, error) {
	const op = "query"
	list, err := c.intents(ctx, op, transactionCode)
	if err != nil {
		return domain.Notification{}, err
	}
	if len(list) == 0 {
		return domain.Notification{TransactionCode: transactionCode, Status: domain.PSPUnknown}, nil
	}
	var best *intentJSON
	rank := func(s string) int {
		switch s {
		case "succeeded":
			return 3
		case "canceled":
			return 1
		}
		return 2
	}
	for i := range list {
		pi := &list[i]
		if best == nil || rank(pi.Status) > rank(best.Status) ||
			(rank(pi.Status) == rank(best.Status) && pi.Created < best.Created) {
			best = pi
		}
	}
	// An open intent outranks a canceled one: failed only when all are.
	n, err := intentNotification(*best, transactionCode)
	if err != nil {
		return domain.Notification{}, malformed(op, err)
	}
	return n, nil
}

// intentNotification reads a PaymentIntent as the port's notification.
func intentNotification(pi intentJSON, transactionCode string) (domain.Notification, error) {
	n := domain.Notification{TransactionCode: transactionCode, PSPReference: pi.ID}
	amount := pi.Amount
	switch pi.Status {
	case "succeeded":
		n.Status, amount = domain.PSPSucceeded, pi.AmountReceived
	case "canceled":
		n.Status = domain.PSPFailed
	case "requires_payment_method", "requires_confirmation", "requires_action", "processing", "requires_capture":
		n.Status = domain.PSPPending
	default:
		return domain.Notification{}, fmt.Errorf("intent %s: unknown status %q", pi.ID, pi.Status)
	}
	m, err := fromStripe(amount, pi.Currency)
	if err != nil {
		return domain.Notification{}, fmt.Errorf("intent %s: %w", pi.ID, err)
	}
	n.Amount = m
	return n, nil
}

// refundResult reads a Refund object.
func refundResult(op string, r refundJSON, refundRef string) (psp.RefundResult, error) {
	if r.Object != "refund" || r.ID == "" || r.Metadata["refund_ref"] != refundRef {
		return psp.RefundResult{}, malformed(op, fmt.Errorf("refund %q for %q, asked for %q", r.ID, r.Metadata["refund_ref"], refundRef))
	}
	out := psp.RefundResult{RefundRef: refundRef, PSPReference: r.ID}
	switch r.Status {
	case "succeeded":
		out.Status = psp.RefundSucceeded
	case "failed", "canceled":
		out.Status = psp.RefundFailed
	case "pending", "requires_action":
		out.Status = psp.RefundPending
	default:
		return psp.RefundResult{}, malformed(op, fmt.Errorf("refund %s: unknown status %q", r.ID, r.Status))
	}
	m, err := fromStripe(r.Amount, r.Currency)
	if err != nil {
		return psp.RefundResult{}, malformed(op, err)
	}
	out.Amount = m
	return out, nil
}

// Refund refunds req.Amount of the attempt's PaymentIntent
// (Idempotency-Key: the refund reference, also kept in the refund's
// metadata for QueryRefund). If req.PSPReference is not a PaymentIntent
// (the attempt's Checkout Session, say), the succeeded intent is looked up
// by transaction code.
func (c *Channel) Refund(ctx context.Context, req psp.RefundRequest) (psp.RefundResult, error) {
	const op = "refund"
	if req.RefundRef == "" || req.TransactionCode == "" || req.Amount.IsZero() {
		return psp.RefundResult{}, fmt.Errorf("stripe %s: refund ref, transaction code and amount are required: %w", op, psp.ErrDeclined)
	}
	amount, currency, err := toStripe(req.Amount)
	if err != nil {
		return psp.RefundResult{}, fmt.Errorf("stripe %s: %w: %w", op, psp.ErrDeclined, err)
	}
	pi := req.PSPReference
	if !strings.HasPrefix(pi, "pi_") {
		n, err := c.Query(ctx, req.TransactionCode)
		if err != nil {
			return psp.RefundResult{}, err
		}
		if n.Status != domain.PSPSucceeded {
			return psp.RefundResult{}, fmt.Errorf("stripe %s: attempt %s has no succeeded payment (%s): %w", op, req.TransactionCode, n.Status, psp.ErrDeclined)
		}
		pi = n.PSPReference
	}
	p := url.Values{}
	p.Set("payment_intent", pi)
	p.Set("amount", strconv.FormatInt(amount, 10))
	p.Set("metadata[refund_ref]", req.RefundRef)
	p.Set("metadata[transaction_code]", req.TransactionCode)
	if req.Reason != "" {
		p.Set("metadata[reason]", req.Reason)
	}
	a, err := c.call(ctx, op, http.MethodPost, "/v1/refunds", p, req.RefundRef)
	if err != nil {
		return psp.RefundResult{}, err
	}
	if a.status != http.StatusOK {
		return psp.RefundResult{}, classify(op, a)
	}
	var r refundJSON
	if err := decodeJSON(a.body, &r); err != nil {
		return psp.RefundResult{}, malformed(op, err)
	}
	if r.Currency != currency || r.Amount != amount || (r.PaymentIntent != "" && r.PaymentIntent != pi) {
		return psp.RefundResult{}, malformed(op, fmt.Errorf("refund %s of %d %s on %s does not match the request", r.ID, r.Amount, r.Currency, r.PaymentIntent))
	}
	return refundResult(op, r, req.RefundRef)
}

// QueryRefund finds a refund by our reference among the account's most
// recent refunds (RefundScanPages pages of 100, newest first); one not
// found there is RefundUnknown.
func (c *Channel) QueryRefund(ctx context.Context, refundRef string) (psp.RefundResult, error) {
	const op = "query_refund"
	after := ""
	for range c.cfg.RefundScanPages {
		p := url.Values{"limit": {"100"}}
		if after != "" {
			p.Set("starting_after", after)
		}
		a, err := c.call(ctx, op, http.MethodGet, "/v1/refunds", p, "")
		if err != nil {
			return psp.RefundResult{}, err
		}
		if a.status != http.StatusOK {
			return psp.RefundResult{}, classify(op, a)
		}
		var l listJSON[refundJSON]
		if err := decodeJSON(a.body, &l); err != nil {
			return psp.RefundResult{}, malformed(op, err)
		}
		if l.Object != "list" {
			return psp.RefundResult{}, malformed(op, fmt.Errorf("object %q, want list", l.Object))
		}
		for _, r := range l.Data {
			if r.Metadata["refund_ref"] == refundRef {
				return refundResult(op, r, refundRef)
			}
		}
		if !l.HasMore || len(l.Data) == 0 {
			break
		}
		after = l.Data[len(l.Data)-1].ID
	}
	return psp.RefundResult{RefundRef: refundRef, Status: psp.RefundUnknown}, nil
}

// SettledPayments lists one page (up to 100) of the PaymentIntents created
// on day's calendar date in day's location that succeeded and carry a
// transaction code (intents of other integrations on the account are left
// out). Stripe has no per-day "paid at" filter: an intent created before
// midnight and paid after it is listed on its creation day, which the
// reconciliation's tolerance window absorbs. page is the last intent id of
// the previous page.
func (c *Channel) SettledPayments(ctx context.Context, day time.Time, page string) (psp.SettlementPage, error) {
	const op = "settlements"
	y, m, d := day.Date()
	from := time.Date(y, m, d, 0, 0, 0, 0, day.Location())
	to := from.AddDate(0, 0, 1)
	p := url.Values{
		"created[gte]": {strconv.FormatInt(from.Unix(), 10)},
		"created[lt]":  {strconv.FormatInt(to.Unix(), 10)},
		"limit":        {"100"},
	}
	if page != "" {
		p.Set("starting_after", page)
	}
	a, err := c.call(ctx, op, http.MethodGet, "/v1/payment_intents", p, "")
	if err != nil {
		return psp.SettlementPage{}, err
	}
	if a.status != http.StatusOK {
		return psp.SettlementPage{}, classify(op, a)
	}
	var l listJSON[intentJSON]
	if err := decodeJSON(a.body, &l); err != nil {
		return psp.SettlementPage{}, malformed(op, err)
	}
	if l.Object != "list" {
		return psp.SettlementPage{}, malformed(op, fmt.Errorf("object %q, want list", l.Object))
	}
	out := psp.SettlementPage{Rows: []psp.SettlementRow{}}
	for _, pi := range l.Data {
		code := pi.Metadata["transaction_code"]
		if pi.Status != "succeeded" || code == "" {
			continue
		}
		amount, err := fromStripe(pi.AmountReceived, pi.Currency)
		if err != nil {
			return psp.SettlementPage{}, malformed(op, fmt.Errorf("intent %s: %v", pi.ID, err))
		}
		out.Rows = append(out.Rows, psp.SettlementRow{TransactionCode: code, PSPReference: pi.ID, Amount: amount,
			Status: domain.PSPSucceeded, SettledAt: time.Unix(pi.Created, 0).UTC()})
	}
	if l.HasMore && len(l.Data) > 0 {
		out.NextPage = l.Data[len(l.Data)-1].ID
	}
	return out, nil
}
