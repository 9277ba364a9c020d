// Package adyen is the psp.Channel adapter for Adyen's Checkout API
// (https://docs.adyen.com/api-explorer/Checkout/71/overview) and its
// standard webhooks with HMAC signatures
// (https://docs.adyen.com/development-resources/webhooks/verify-hmac-signatures/).
//
// What Adyen offers, and so what the adapter does:
//
//   - Initiate creates a hosted-checkout session (POST /sessions, mode
//     "hosted") whose url is the pay URL; the transaction code is the
//     session's reference, which every webhook echoes as
//     merchantReference.
//   - Adyen has no API that reports a payment's status by merchant
//     reference: the HMAC-signed webhook is the source of truth. Query
//     therefore never claims an outcome (it answers PSPPending), and
//     Capabilities.ConfirmByQuery is false, so that the verified webhook
//     decides. The webhook's signature covers pspReference,
//     originalReference, merchantAccountCode, merchantReference, the
//     amount's value and currency, eventCode and success; ParseCallback
//     reads nothing else that matters, refuses a merchant account other
//     than the channel's and a live flag other than its environment, and
//     the decision table compares amount and currency with the attempt.
//   - Refund is POST /payments/{pspReference}/refunds with an
//     Idempotency-Key and reference = paygate's refund ref; Adyen answers
//     "received" and reports the outcome only in a REFUND (or later
//     REFUND_FAILED) webhook, which echoes that reference as
//     merchantReference and which ParseRefundCallback reads
//     (psp.RefundCallbackParser): QueryRefund is psp.ErrUnsupported.
//   - SettledPayments reads the daily Payment accounting report
//     (payment_accounting_report_YYYY_MM_DD.csv), downloaded from the
//     Customer Area's report download URL with the report credentials
//     (report.go).
package adyen

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// Environments.
const (
	EnvTest = "test"
	EnvLive = "live"
)

// Defaults of ChannelConfig.
const (
	DefaultChannelName = "adyen"
	DefaultTimeout     = 10 * time.Second
	// DefaultAPIVersion is the Checkout API version the adapter speaks.
	DefaultAPIVersion = "v71"
	// TestBaseURL is the Checkout API of Adyen's test environment,
	// without the version.
	TestBaseURL = "https://checkout-test.adyen.com"
)

// maxBody bounds an API answer.
const maxBody = 1 << 20

// ChannelConfig configures the adapter for one Adyen merchant account.
type ChannelConfig struct {
	// Name is the channel's name (the path segment of its callback URLs).
	// Default "adyen".
	Name string
	// Environment is "test" (default) or "live". It picks the API host
	// and the value of the webhooks' "live" field the channel accepts.
	Environment string
	// LivePrefix is the merchant's live URL prefix (Customer Area,
	// Developers > API URLs); required in the live environment, where the
	// Checkout API is https://{LivePrefix}-checkout-live.adyenpayments.com/checkout.
	LivePrefix string
	// BaseURL overrides the Checkout API address, without the version
	// (tests point it at a fake). Default: from Environment and LivePrefix.
	BaseURL string
	// APIVersion is the Checkout API version. Default "v71".
	APIVersion string
	// APIKey is the web service user's API key, sent in the X-API-Key
	// header only (never in a URL or body, so evidence never holds it).
	// Required.
	APIKey string
	// MerchantAccount is the merchant account payments are made to; a
	// webhook for another account is refused. Required.
	MerchantAccount string
	// HMACKeys are the webhook's HMAC keys, hex as the Customer Area shows
	// them. Every one verifies webhooks, so that a key can be rotated
	// without losing webhooks signed with the old one. At least one.
	HMACKeys []string
	// Timeout bounds one API call, answer included. Default 10 s.
	Timeout time.Duration
	// ReportBaseURL is where the Customer Area serves a merchant
	// account's reports, without the merchant account: the report of a
	// day is ReportBaseURL/{MerchantAccount}/payment_accounting_report_
	// YYYY_MM_DD.csv. Default: from Environment (TestReportBaseURL,
	// LiveReportBaseURL). Reports are downloaded from this host only.
	ReportBaseURL string
	// ReportUsername and ReportPassword are the credentials of a report
	// user (ReportUsername as Adyen shows it, report@Company.YourCompany),
	// sent as HTTP basic authentication (an Authorization header). Both
	// or neither.
	ReportUsername string
	ReportPassword string
	// ReportAPIKey is the API key of a user with the Merchant Report role,
	// sent in the X-API-Key header, when no report user is set. Default:
	// APIKey.
	ReportAPIKey string
	// ReportGrace is how long after the end of a day its report may still
	// be missing (404) without the day being taken as having no report:
	// until then a missing report is a temporary error. Default 24 h.
	ReportGrace time.Duration
	// Now is the clock that judges whether a day's report is due.
	// Default time.Now.
	Now func() time.Time
	// Transport is the round tripper under the evidence-recording
	// psp.Transport. Default http.DefaultTransport.
	Transport http.RoundTripper
}

func (c ChannelConfig) withDefaults() ChannelConfig {
	if c.Name == "" {
		c.Name = DefaultChannelName
	}
	if c.Environment == "" {
		c.Environment = EnvTest
	}
	if c.APIVersion == "" {
		c.APIVersion = DefaultAPIVersion
	}
	if c.BaseURL == "" {
		if c.Environment == EnvLive {
			if c.LivePrefix != "" {
				c.BaseURL = "https://" + c.LivePrefix + "-checkout-live.adyenpayments.com/checkout"
			}
		} else {
			c.BaseURL = TestBaseURL
		}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ReportBaseURL == "" {
		c.ReportBaseURL = TestReportBaseURL
		if c.Environment == EnvLive {
			c.ReportBaseURL = LiveReportBaseURL
		}
	}
	if c.ReportAPIKey == "" && c.ReportUsername == "" {
		c.ReportAPIKey = c.APIKey
	}
	if c.ReportGrace == 0 {
		c.ReportGrace = DefaultReportGrace
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first invalid field. Defaults count as set.
func (c ChannelConfig) Validate() error {
	c = c.withDefaults()
	if c.Environment != EnvTest && c.Environment != EnvLive {
		return fmt.Errorf("adyen channel %s: Environment %q is neither %q nor %q", c.Name, c.Environment, EnvTest, EnvLive)
	}
	if c.Environment == EnvLive && c.BaseURL == "" {
		return fmt.Errorf("adyen channel %s: LivePrefix (or BaseURL) is required in the live environment", c.Name)
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("adyen channel %s: BaseURL %q is not an absolute http(s) URL without query", c.Name, c.BaseURL)
	}
	if c.APIKey == "" {
		return fmt.Errorf("adyen channel %s: APIKey is required", c.Name)
	}
	if c.MerchantAccount == "" {
		return fmt.Errorf("adyen channel %s: MerchantAccount is required", c.Name)
	}
	if len(c.HMACKeys) == 0 {
		return fmt.Errorf("adyen channel %s: at least one HMAC key is required", c.Name)
	}
	for i, k := range c.HMACKeys {
		if b, err := hex.DecodeString(k); err != nil || len(b) == 0 {
			return fmt.Errorf("adyen channel %s: HMAC key %d is not hex", c.Name, i)
		}
	}
	if c.Timeout < 0 {
		return fmt.Errorf("adyen channel %s: negative Timeout", c.Name)
	}
	return c.validateReport()
}

// Channel is the psp.Channel adapter for one Adyen merchant account. It
// is safe for concurrent use.
type Channel struct {
	cfg    ChannelConfig
	base   string // BaseURL + "/" + APIVersion
	keys   [][]byte
	client *http.Client
	// reports downloads reports: the same transport, a longer timeout.
	reports *http.Client
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
		base:   strings.TrimRight(cfg.BaseURL, "/") + "/" + cfg.APIVersion,
		client: psp.NewClient(cfg.Name, cfg.Transport, cfg.Timeout),
	}
	c.reports = psp.NewClient(cfg.Name, cfg.Transport, max(cfg.Timeout, reportTimeout))
	for _, k := range cfg.HMACKeys {
		b, _ := hex.DecodeString(k) // checked by Validate
		c.keys = append(c.keys, b)
	}
	return c, nil
}

// Name is the configured channel name.
func (c *Channel) Name() string { return c.cfg.Name }

// Capabilities: partial refunds; settlement lists (from the daily Payment
// accounting report, report.go); refund outcomes come only as REFUND
// webhooks, which ParseRefundCallback reads, so RefundCallbacks is true;
// and no status API, so ConfirmByQuery is false and the HMAC-verified
// webhook decides (see the package comment).
func (c *Channel) Capabilities() psp.Capabilities {
	return psp.Capabilities{PartialRefund: true, Settlement: true, RefundCallbacks: true, ConfirmByQuery: false}
}

// Ack is the answer Adyen expects to a webhook once it is stored: HTTP
// 200 with the body "[accepted]".
func (c *Channel) Ack() psp.Ack {
	return psp.Ack{Status: http.StatusOK, ContentType: "text/plain; charset=utf-8", Body: "[accepted]"}
}

// APIError is an error answer of Adyen's API (its ServiceError body),
// wrapped in the error an operation returns beside the psp error that
// classifies it.
type APIError struct {
	Status       int
	ErrorCode    string
	ErrorType    string
	Message      string
	PSPReference string
}

func (e *APIError) Error() string {
	if e.ErrorCode == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("HTTP %d %s (%s): %s", e.Status, e.ErrorCode, e.ErrorType, e.Message)
}

type serviceError struct {
	Status       int    `json:"status"`
	ErrorCode    string `json:"errorCode"`
	ErrorType    string `json:"errorType"`
	Message      string `json:"message"`
	PSPReference string `json:"pspReference"`
}

// codeInProgress is Adyen's "request already processed or in progress"
// answer to a request whose Idempotency-Key is still being worked on:
// worth retrying later with the same key.
const codeInProgress = "704"

// classify turns a non-2xx answer into the port's errors: 5xx, 429, 408
// and an idempotent request still in progress are temporary; 404 is
// psp.ErrNotFound; other 4xx (validation, authentication, permission) are
// psp.ErrDeclined: the same request fails the same way.
func classify(op string, status int, body []byte) error {
	ae := &APIError{Status: status}
	var se serviceError
	if json.Unmarshal(body, &se) == nil && (se.ErrorCode != "" || se.Message != "") {
		ae.ErrorCode, ae.ErrorType, ae.Message, ae.PSPReference = se.ErrorCode, se.ErrorType, se.Message, se.PSPReference
	} else {
		ae.Message = strings.TrimSpace(string(body[:min(len(body), 200)]))
	}
	switch {
	case status >= 500, status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, ae.ErrorCode == codeInProgress:
		return &psp.TemporaryError{Op: "adyen " + op, Err: ae}
	case status == http.StatusNotFound:
		return fmt.Errorf("adyen %s: %w: %w", op, psp.ErrNotFound, ae)
	case status >= 400:
		return fmt.Errorf("adyen %s: %w: %w", op, psp.ErrDeclined, ae)
	}
	return fmt.Errorf("adyen %s: unexpected answer: %w: %w", op, psp.ErrMalformed, ae)
}

func malformed(op string, err error) error {
	return fmt.Errorf("adyen %s: %w: %v", op, psp.ErrMalformed, err)
}

// call POSTs in as JSON to path with the API key and idempotency key in
// headers, and returns the answer's status and body. Network errors and
// timeouts are temporary: with the same idempotency key a retry is safe.
func (c *Channel) call(ctx context.Context, op, path, idempotencyKey string, in any) (int, []byte, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return 0, nil, fmt.Errorf("adyen %s: encode request: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("adyen %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-API-Key", c.cfg.APIKey)
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, &psp.TemporaryError{Op: "adyen " + op, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, nil, &psp.TemporaryError{Op: "adyen " + op, Err: fmt.Errorf("read answer: %w", err)}
	}
	if len(b) > maxBody {
		return 0, nil, fmt.Errorf("adyen %s: answer over %d bytes: %w", op, maxBody, psp.ErrMalformed)
	}
	return resp.StatusCode, b, nil
}

type amountJSON struct {
	Currency string `json:"currency"`
	Value    int64  `json:"value"`
}

func amountOf(m domain.Money) (amountJSON, error) {
	v, err := toAdyen(m)
	if err != nil {
		return amountJSON{}, err
	}
	return amountJSON{Currency: m.Currency().Code(), Value: v}, nil
}

type sessionRequest struct {
	MerchantAccount string     `json:"merchantAccount"`
	Amount          amountJSON `json:"amount"`
	Reference       string     `json:"reference"`
	ReturnURL       string     `json:"returnUrl"`
	Mode            string     `json:"mode"`
	CountryCode     string     `json:"countryCode,omitempty"`
	ShopperEmail    string     `json:"shopperEmail,omitempty"`
	ShopperIP       string     `json:"shopperIP,omitempty"`
	Metadata        any        `json:"metadata,omitempty"`
}

type sessionResponse struct {
	ID              string     `json:"id"`
	URL             string     `json:"url"`
	Reference       string     `json:"reference"`
	MerchantAccount string     `json:"merchantAccount"`
	Amount          amountJSON `json:"amount"`
	ExpiresAt       time.Time  `json:"expiresAt"`
}

// idempotencyKey is the Idempotency-Key for an operation on a reference.
// Adyen allows 64 characters; our references are shorter, and a longer one
// is refused rather than cut (two references must never share a key).
func idempotencyKey(op, ref string) (string, error) {
	k := "paygate-" + op + "-" + ref
	if len(k) > 64 {
		return "", fmt.Errorf("reference %q too long for an Adyen idempotency key", ref)
	}
	return k, nil
}

// Initiate creates a hosted-checkout session for the attempt: reference =
// transaction code, under an Idempotency-Key derived from it, so a retry
// after an unknown outcome is answered with the same session. The session
// id is the Token; the payment's pspReference only exists once the buyer
// pays, and arrives with the webhook.
func (c *Channel) Initiate(ctx context.Context, req psp.InitiateRequest) (psp.Session, error) {
	const op = "initiate"
	if req.TransactionCode == "" || req.Amount.IsZero() || req.Amount.Minor() <= 0 || req.ReturnURL == "" {
		return psp.Session{}, fmt.Errorf("adyen %s: transaction code, amount and return URL are required: %w", op, psp.ErrDeclined)
	}
	amount, err := amountOf(req.Amount)
	if err != nil {
		return psp.Session{}, fmt.Errorf("adyen %s: %w: %v", op, psp.ErrDeclined, err)
	}
	key, err := idempotencyKey("session", req.TransactionCode)
	if err != nil {
		return psp.Session{}, fmt.Errorf("adyen %s: %w: %v", op, psp.ErrDeclined, err)
	}
	in := sessionRequest{
		MerchantAccount: c.cfg.MerchantAccount, Amount: amount, Reference: req.TransactionCode, ReturnURL: req.ReturnURL,
		Mode: "hosted", CountryCode: req.Country, ShopperEmail: req.BuyerEmail, ShopperIP: req.BuyerIP,
	}
	if req.OrderID != "" {
		in.Metadata = map[string]string{"orderId": req.OrderID}
	}
	status, body, err := c.call(ctx, op, "/sessions", key, in)
	if err != nil {
		return psp.Session{}, err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return psp.Session{}, classify(op, status, body)
	}
	var v sessionResponse
	if err := json.Unmarshal(body, &v); err != nil {
		return psp.Session{}, malformed(op, err)
	}
	if v.ID == "" || v.URL == "" || v.Reference != req.TransactionCode || v.Amount != amount ||
		(v.MerchantAccount != "" && v.MerchantAccount != c.cfg.MerchantAccount) {
		return psp.Session{}, malformed(op, fmt.Errorf("session %q for %q %d %s does not match the request", v.ID, v.Reference, v.Amount.Value, v.Amount.Currency))
	}
	if u, err := url.Parse(v.URL); err != nil || u.Scheme != "https" && u.Scheme != "http" {
		return psp.Session{}, malformed(op, fmt.Errorf("session url %q", v.URL))
	}
	return psp.Session{PayURL: v.URL, Token: v.ID, ExpiresAt: v.ExpiresAt.UTC()}, nil
}

// Query cannot ask Adyen anything: Checkout has no payment status by
// merchant reference (GET /sessions/{id} needs the sessionResult only the
// buyer's browser holds). It answers PSPPending — "Adyen has told us
// nothing final through an API" — so that a status probe never decides
// and the outcome comes from the HMAC-signed webhook. It makes no request.
func (c *Channel) Query(_ context.Context, transactionCode string) (domain.Notification, error) {
	return domain.Notification{TransactionCode: transactionCode, Status: domain.PSPPending}, nil
}

type refundRequest struct {
	MerchantAccount string     `json:"merchantAccount"`
	Amount          amountJSON `json:"amount"`
	Reference       string     `json:"reference"`
}

type refundResponse struct {
	MerchantAccount     string     `json:"merchantAccount"`
	PaymentPSPReference string     `json:"paymentPspReference"`
	PSPReference        string     `json:"pspReference"`
	Reference           string     `json:"reference"`
	Status              string     `json:"status"`
	Amount              amountJSON `json:"amount"`
}

// Refund asks Adyen to refund req.Amount of the payment req.PSPReference
// (the pspReference of its AUTHORISATION webhook), with reference =
// RefundRef and an Idempotency-Key derived from it. Adyen only says
// "received": the result is RefundPending, and the outcome arrives in a
// REFUND webhook.
func (c *Channel) Refund(ctx context.Context, req psp.RefundRequest) (psp.RefundResult, error) {
	const op = "refund"
	if req.RefundRef == "" || req.PSPReference == "" || req.Amount.IsZero() || req.Amount.Minor() <= 0 {
		return psp.RefundResult{}, fmt.Errorf("adyen %s: refund ref, payment PSP reference and amount are required: %w", op, psp.ErrDeclined)
	}
	amount, err := amountOf(req.Amount)
	if err != nil {
		return psp.RefundResult{}, fmt.Errorf("adyen %s: %w: %v", op, psp.ErrDeclined, err)
	}
	key, err := idempotencyKey("refund", req.RefundRef)
	if err != nil {
		return psp.RefundResult{}, fmt.Errorf("adyen %s: %w: %v", op, psp.ErrDeclined, err)
	}
	in := refundRequest{MerchantAccount: c.cfg.MerchantAccount, Amount: amount, Reference: req.RefundRef}
	status, body, err := c.call(ctx, op, "/payments/"+url.PathEscape(req.PSPReference)+"/refunds", key, in)
	if err != nil {
		return psp.RefundResult{}, err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return psp.RefundResult{}, classify(op, status, body)
	}
	var v refundResponse
	if err := json.Unmarshal(body, &v); err != nil {
		return psp.RefundResult{}, malformed(op, err)
	}
	if v.Status != "received" || v.PSPReference == "" || v.Reference != req.RefundRef ||
		v.PaymentPSPReference != req.PSPReference || v.Amount != amount {
		return psp.RefundResult{}, malformed(op, fmt.Errorf("answer %q for refund %q of %q (%d %s) does not match the request",
			v.Status, v.Reference, v.PaymentPSPReference, v.Amount.Value, v.Amount.Currency))
	}
	return psp.RefundResult{RefundRef: req.RefundRef, PSPReference: v.PSPReference, Status: psp.RefundPending, Amount: req.Amount}, nil
}

// QueryRefund is not offered: Adyen reports a refund's outcome only in a
// REFUND webhook.
func (c *Channel) QueryRefund(context.Context, string) (psp.RefundResult, error) {
	return psp.RefundResult{}, fmt.Errorf("adyen query_refund: refund outcomes arrive only as REFUND webhooks: %w", psp.ErrUnsupported)
}

var errNoKey = errors.New("no HMAC key verifies the signature")
