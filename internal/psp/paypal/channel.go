// Package paypal is the psp.Channel adapter for PayPal Checkout, Orders
// v2 (developer.paypal.com/docs/api/orders/v2/): an order with intent
// CAPTURE is created for each attempt, the buyer approves it at PayPal,
// and paygate captures it when it next looks at the attempt
// (QueryByReference); refunds go to Payments v2
// (/v2/payments/captures/{id}/refund); the day's settled payments come
// from the Transaction Search API (/v1/reporting/transactions).
//
// Every call carries an OAuth2 bearer token obtained with the client
// credentials grant and cached until shortly before it expires; the
// client secret goes only into the Basic Authorization header of the
// token request, the token only into Authorization headers.
//
// Webhooks are verified offline: SHA256withRSA over
// "transmission_id|transmission_time|webhook_id|crc32(body)" with the key
// of the certificate PAYPAL-CERT-URL names. ParseCallback does no I/O, so
// certificates are fetched ahead of it and cached (cert.go): a callback
// naming a certificate that is not cached yet is refused with a
// psp.TemporaryError, and retried once the certificate is in.
package paypal

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/signature"
)

// Defaults of ChannelConfig.
const (
	DefaultChannelName = "paypal"
	// DefaultBaseURL is the live REST API; the sandbox is
	// https://api-m.sandbox.paypal.com.
	DefaultBaseURL = "https://api-m.paypal.com"
	DefaultTimeout = 10 * time.Second
)

// DefaultCertHosts are the hosts PayPal serves webhook signing
// certificates from; a PAYPAL-CERT-URL on any other host is never fetched.
var DefaultCertHosts = []string{"api.paypal.com", "api-m.paypal.com", "api.sandbox.paypal.com", "api-m.sandbox.paypal.com"}

// DefaultCertNames are the DNS names PayPal's webhook signing
// certificates are issued to (live and sandbox); a fetched certificate
// must be valid for one of them.
var DefaultCertNames = []string{"messageverificationcerts.paypal.com", "messageverificationcerts.sandbox.paypal.com"}

// CertPathPrefix is the path every signing certificate URL must start
// with (https://api.paypal.com/v1/notifications/certs/CERT-…).
const CertPathPrefix = "/v1/notifications/certs/"

// Certificate is a signing certificate given ahead of time, under the
// URL PayPal names it by.
type Certificate struct {
	URL string
	PEM []byte
}

// ChannelConfig configures the adapter for one PayPal REST app.
type ChannelConfig struct {
	// Name is the channel's name. Default "paypal".
	Name string
	// BaseURL is the REST API host. Default https://api-m.paypal.com.
	BaseURL string
	// ClientID and ClientSecret are the REST app's credentials. Required.
	ClientID     string
	ClientSecret string
	// WebhookIDs are the ids of the webhooks PayPal signs for (the id is
	// part of the signed message); give the old and the new one while a
	// webhook is replaced. At least one is required.
	WebhookIDs []string
	// BrandName is shown to the buyer at PayPal. Default: PayPal's (the
	// account's business name).
	BrandName string
	// CertHosts are the hosts ("host" or "host:port") a PAYPAL-CERT-URL
	// may name. Default DefaultCertHosts. Only https URLs whose path
	// starts with CertPathPrefix are ever fetched.
	CertHosts []string
	// CertNames are the DNS names a signing certificate must be valid
	// for. Default DefaultCertNames.
	CertNames []string
	// CertRoots verify the chain of a signing certificate, fetched or
	// pinned (Certificates, CertDir). Default nil: the system's roots.
	// Setting cert_roots_file: a private CA, or a test's.
	CertRoots *x509.CertPool
	// InsecureSkipChainVerify trusts a certificate without verifying its
	// chain (the name, validity period and key type are still checked).
	// For tests of expired published vectors only; not a setting.
	InsecureSkipChainVerify bool
	// Certificates are signing certificates given ahead of time (the
	// operator's pinned copies); they are checked like fetched ones.
	Certificates []Certificate
	// NoBackgroundFetch stops ParseCallback from starting a background
	// fetch of an allowed certificate it does not have; it then only
	// returns the temporary error, and FetchCert or Prefetch must be
	// called by someone else. Default false (fetch in the background).
	NoBackgroundFetch bool
	// Timeout bounds one API call or certificate fetch. Default 10 s.
	Timeout time.Duration
	// Tolerance is how far PAYPAL-TRANSMISSION-TIME may be from the time
	// a callback was received, either way. Default 300 s.
	Tolerance time.Duration
	// Transport is the round tripper under psp.Transport for API calls
	// and certificate fetches. Default http.DefaultTransport. Setting
	// tls_roots_file gives a clone of it that trusts only that file's
	// roots for TLS.
	Transport http.RoundTripper
	// Now is the clock for token expiry and certificate chain checks.
	// Default time.Now. Callbacks are judged at their ReceivedAt.
	Now func() time.Time
	// CertDir is a directory of pinned certificates, consulted for a
	// certificate URL not in Certificates: a PEM file named like the
	// URL's last path segment (CERT-…), with or without ".pem". It is
	// checked like a fetched certificate. Default: none. For offline
	// verification (`paygate psp verify --certs DIR`).
	CertDir string
}

func (c ChannelConfig) withDefaults() ChannelConfig {
	if c.Name == "" {
		c.Name = DefaultChannelName
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.CertHosts == nil {
		c.CertHosts = DefaultCertHosts
	}
	if c.CertNames == nil {
		c.CertNames = DefaultCertNames
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
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
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return fmt.Errorf("paypal channel %s: BaseURL %q is not an absolute http(s) URL", c.Name, c.BaseURL)
	}
	switch {
	case c.ClientID == "":
		return fmt.Errorf("paypal channel %s: ClientID is required", c.Name)
	case c.ClientSecret == "":
		return fmt.Errorf("paypal channel %s: ClientSecret is required", c.Name)
	case len(c.WebhookIDs) == 0:
		return fmt.Errorf("paypal channel %s: at least one webhook id is required", c.Name)
	case len(c.CertHosts) == 0 || len(c.CertNames) == 0:
		return fmt.Errorf("paypal channel %s: CertHosts and CertNames may not be empty", c.Name)
	case c.Timeout < 0 || c.Tolerance < 0:
		return fmt.Errorf("paypal channel %s: negative Timeout or Tolerance", c.Name)
	}
	for i, id := range c.WebhookIDs {
		if id == "" || strings.Contains(id, "|") {
			return fmt.Errorf("paypal channel %s: webhook id %d is empty or holds '|'", c.Name, i)
		}
	}
	for _, h := range c.CertHosts {
		if h == "" || strings.ContainsAny(h, "/@?#") {
			return fmt.Errorf("paypal channel %s: cert host %q is not a host", c.Name, h)
		}
	}
	return nil
}

// Channel is the psp.Channel adapter for one PayPal REST app. It is safe
// for concurrent use.
type Channel struct {
	cfg    ChannelConfig
	base   string
	client *http.Client
	certs  *certStore
	// offline: built by FromSettingsOffline; no request is ever made.
	offline bool

	tokenMu  sync.Mutex
	token    string
	tokenExp time.Time
}

var (
	_ psp.Channel          = (*Channel)(nil)
	_ psp.ReferenceQuerier = (*Channel)(nil)
)

// NewChannel returns an adapter configured by cfg, or the Validate error
// (or the error of a given certificate).
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
	c.certs = newCertStore(c)
	for i, ct := range cfg.Certificates {
		if err := c.certs.add(ct.URL, ct.PEM); err != nil {
			return nil, fmt.Errorf("paypal channel %s: certificate %d: %w", cfg.Name, i, err)
		}
	}
	return c, nil
}

// Name is the configured channel name.
func (c *Channel) Name() string { return c.cfg.Name }

// Capabilities: partial refunds; the settlement list from Transaction
// Search; no refund callbacks (refund webhooks are not parsed); every
// callback is confirmed by QueryByReference, which also captures an
// approved order.
func (c *Channel) Capabilities() psp.Capabilities {
	return psp.Capabilities{PartialRefund: true, Settlement: true, RefundCallbacks: false, ConfirmByQuery: true}
}

// Ack is what PayPal expects of a webhook listener: any 2xx; anything
// else is redelivered.
func (c *Channel) Ack() psp.Ack {
	return psp.Ack{Status: http.StatusOK, ContentType: "text/plain", Body: ""}
}

// APIError is an error answer of the REST API
// ({"name","message","debug_id","details":[{"issue"}]}, or the OAuth
// server's {"error","error_description"}).
type APIError struct {
	Status  int
	Name    string
	Issue   string
	Message string
	DebugID string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.Status, e.Name)
	if e.Issue != "" {
		s += " (" + e.Issue + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.DebugID != "" {
		s += " [debug_id " + e.DebugID + "]"
	}
	return s
}

func apiError(status int, body []byte) *APIError {
	ae := &APIError{Status: status}
	var ej struct {
		Name    string `json:"name"`
		Message string `json:"message"`
		DebugID string `json:"debug_id"`
		Details []struct {
			Issue string `json:"issue"`
		} `json:"details"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(body, &ej) == nil && (ej.Name != "" || ej.Error != "") {
		ae.Name, ae.Message, ae.DebugID = ej.Name, ej.Message, ej.DebugID
		if ej.Error != "" {
			ae.Name, ae.Message = ej.Error, ej.ErrorDescription
		}
		if len(ej.Details) > 0 {
			ae.Issue = ej.Details[0].Issue
		}
	} else {
		ae.Message = strings.TrimSpace(string(body[:min(len(body), 200)]))
	}
	return ae
}

// classify turns a non-2xx answer into the port's errors: 5xx, 429 and
// 408 are temporary, 404 is psp.ErrNotFound, other 4xx psp.ErrDeclined.
func classify(op string, status int, body []byte) error {
	ae := apiError(status, body)
	switch {
	case status >= 500, status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
		return &psp.TemporaryError{Op: "paypal " + op, Err: ae}
	case status == http.StatusNotFound:
		return fmt.Errorf("paypal %s: %w: %w", op, psp.ErrNotFound, ae)
	case status >= 400:
		return fmt.Errorf("paypal %s: %w: %w", op, psp.ErrDeclined, ae)
	}
	return fmt.Errorf("paypal %s: unexpected answer: %w: %w", op, psp.ErrMalformed, ae)
}

func malformed(op string, err error) error {
	return fmt.Errorf("paypal %s: %w: %v", op, psp.ErrMalformed, err)
}

// maxBody bounds an answer read.
const maxBody = 4 << 20

// tokenMargin is how long before its stated expiry a token is replaced,
// so that it does not expire on its way.
const tokenMargin = 60 * time.Second

// accessToken returns the cached token, or gets a new one with the client
// credentials grant (POST /v1/oauth2/token).
func (c *Channel) accessToken(ctx context.Context) (string, error) {
	c.tokenMu.Lock()
	defer c.tokenMu.Unlock()
	if c.token != "" && c.cfg.Now().Before(c.tokenExp) {
		return c.token, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/oauth2/token",
		strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		return "", fmt.Errorf("paypal token: %w", err)
	}
	req.SetBasicAuth(c.cfg.ClientID, c.cfg.ClientSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	status, body, err := c.do(req, "token")
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", classify("token", status, body)
	}
	var v struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := decodeJSON(body, &v); err != nil {
		return "", malformed("token", err)
	}
	if v.AccessToken == "" || !strings.EqualFold(v.TokenType, "Bearer") || v.ExpiresIn <= 0 {
		return "", malformed("token", errors.New("answer has no bearer token with an expiry"))
	}
	c.token = v.AccessToken
	c.tokenExp = c.cfg.Now().Add(time.Duration(min(v.ExpiresIn, 1<<31)) * time.Second).Add(-tokenMargin)
	return c.token, nil
}

func (c *Channel) dropToken(tok string) {
	c.tokenMu.Lock()
	if c.token == tok {
		c.token = ""
	}
	c.tokenMu.Unlock()
}

// do sends req and reads the answer; transport failures are temporary.
func (c *Channel) do(req *http.Request, op string) (int, []byte, error) {
	req.Header.Set("User-Agent", "paygate")
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, &psp.TemporaryError{Op: "paypal " + op, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, nil, &psp.TemporaryError{Op: "paypal " + op, Err: fmt.Errorf("read answer: %w", err)}
	}
	if len(b) > maxBody {
		return 0, nil, fmt.Errorf("paypal %s: answer over %d bytes: %w", op, maxBody, psp.ErrMalformed)
	}
	return resp.StatusCode, b, nil
}

// call makes one authorized API request. requestID, if set, goes into
// PayPal-Request-Id, PayPal's idempotency key. A 401 (a token revoked
// before its time) is retried once with a new token.
func (c *Channel) call(ctx context.Context, op, method, pathQuery, requestID string, in any) (int, []byte, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, nil, fmt.Errorf("paypal %s: encode request: %w", op, err)
		}
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.accessToken(ctx)
		if err != nil {
			return 0, nil, err
		}
		var rd io.Reader
		if in != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.base+pathQuery, rd)
		if err != nil {
			return 0, nil, fmt.Errorf("paypal %s: %w", op, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/json")
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Prefer", "return=representation")
		}
		if requestID != "" {
			req.Header.Set("PayPal-Request-Id", requestID)
		}
		status, b, err := c.do(req, op)
		if err == nil && status == http.StatusUnauthorized && attempt == 0 {
			c.dropToken(tok)
			continue
		}
		return status, b, err
	}
}

// decodeJSON reads exactly one JSON value into v; amounts are strings
// and never pass through a float.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

// parseTime reads PayPal's times: RFC 3339 ("2018-04-01T21:20:49Z") in
// the Orders and Payments APIs, "2021-09-08T19:41:14+0000" in Transaction
// Search.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse("2006-01-02T15:04:05-0700", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is not RFC 3339", s)
	}
	return t.UTC(), nil
}
