// Package alipay is the psp.Channel adapter for Alipay's open API gateway
// (opendocs.alipay.com): computer-website payment (alipay.trade.page.pay),
// alipay.trade.query, alipay.trade.refund,
// alipay.trade.fastpay.refund.query and the daily trade bill
// (alipay.data.dataservice.bill.downloadurl.query), with RSA2 (SHA256withRSA) signatures
// over the sorted "k=v&…" string of the non-empty parameters.
//
// Requests are signed with the app's private key; the key never leaves
// the process (the sign parameter is a signature, not a secret). Answers
// and notifications are verified with Alipay's public key(s). Amounts
// are decimal strings in major units (yuan), converted exactly through
// domain.Money.
package alipay

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
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
	DefaultChannelName = "alipay"
	DefaultGatewayURL  = "https://openapi.alipay.com/gateway.do"
	DefaultTimeout     = 10 * time.Second
	DefaultPayTimeout  = 30 * time.Minute
	DefaultProductCode = "FAST_INSTANT_TRADE_PAY"
)

// ChannelConfig configures the adapter for one Alipay app.
type ChannelConfig struct {
	// Name is the channel's name. Default "alipay".
	Name string
	// GatewayURL is the open API gateway. Default
	// https://openapi.alipay.com/gateway.do (the sandbox is
	// https://openapi-sandbox.dl.alipaydev.com/gateway.do).
	GatewayURL string
	// AppID is the app's id. Required.
	AppID string
	// PrivateKey is the app's private key; it signs requests. Required.
	PrivateKey *rsa.PrivateKey
	// AlipayPublicKeys verify answers and notifications; give the old and
	// the new one during a rotation. At least one is required.
	AlipayPublicKeys []*rsa.PublicKey
	// SellerID, if set, must be the seller_id of every notification.
	SellerID string
	// ProductCode of page payments. Default FAST_INSTANT_TRADE_PAY.
	ProductCode string
	// PayTimeout is how long the buyer has to pay (timeout_express, whole
	// minutes). Default 30 min.
	PayTimeout time.Duration
	// Timeout bounds one API call. Default 10 s.
	Timeout time.Duration
	// Tolerance is how far a notification's signed notify_time may be
	// from its receipt, either way. Default 300 s. Alipay writes a new
	// notify_time on each of its retries.
	Tolerance time.Duration
	// BillHosts are hosts ("host" or "host:port") besides Alipay's
	// (alipay.com, alipaydev.com and their subdomains) and the gateway's
	// on which a bill_download_url is followed. Default none.
	BillHosts []string
	// Transport is the round tripper under psp.Transport. Default
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Now is the clock for request timestamps. Default time.Now.
	// Callbacks are judged at their ReceivedAt.
	Now func() time.Time
}

func (c ChannelConfig) withDefaults() ChannelConfig {
	if c.Name == "" {
		c.Name = DefaultChannelName
	}
	if c.GatewayURL == "" {
		c.GatewayURL = DefaultGatewayURL
	}
	if c.ProductCode == "" {
		c.ProductCode = DefaultProductCode
	}
	if c.PayTimeout == 0 {
		c.PayTimeout = DefaultPayTimeout
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
	u, err := url.Parse(c.GatewayURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return fmt.Errorf("alipay channel %s: GatewayURL %q is not an absolute http(s) URL without query", c.Name, c.GatewayURL)
	}
	switch {
	case c.AppID == "":
		return fmt.Errorf("alipay channel %s: AppID is required", c.Name)
	case c.PrivateKey == nil:
		return fmt.Errorf("alipay channel %s: PrivateKey is required", c.Name)
	case len(c.AlipayPublicKeys) == 0:
		return fmt.Errorf("alipay channel %s: at least one Alipay public key is required", c.Name)
	case c.PayTimeout < time.Minute:
		return fmt.Errorf("alipay channel %s: PayTimeout under a minute", c.Name)
	case c.Timeout < 0 || c.Tolerance < 0:
		return fmt.Errorf("alipay channel %s: negative Timeout or Tolerance", c.Name)
	}
	for i, k := range c.AlipayPublicKeys {
		if k == nil {
			return fmt.Errorf("alipay channel %s: Alipay public key %d is nil", c.Name, i)
		}
	}
	return nil
}

// Channel is the psp.Channel adapter for one Alipay app. It is safe for
// concurrent use.
type Channel struct {
	cfg    ChannelConfig
	client *http.Client

	// refunds remembers the trade of each refund this process asked
	// for: alipay.trade.fastpay.refund.query needs it, the port's
	// QueryRefund gives only the refund ref. See QueryRefund.
	mu      sync.Mutex
	refunds map[string]string
}

var _ psp.Channel = (*Channel)(nil)

// NewChannel returns an adapter configured by cfg, or the Validate error.
func NewChannel(cfg ChannelConfig) (*Channel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Channel{
		cfg:     cfg,
		client:  psp.NewClient(cfg.Name, cfg.Transport, cfg.Timeout),
		refunds: map[string]string{},
	}, nil
}

// Name is the configured channel name.
func (c *Channel) Name() string { return c.cfg.Name }

// Capabilities: partial refunds; the settlement list (the daily trade
// bill, see SettledPayments); no refund callbacks; callbacks confirmed by
// Query.
func (c *Channel) Capabilities() psp.Capabilities {
	return psp.Capabilities{PartialRefund: true, Settlement: true, RefundCallbacks: false, ConfirmByQuery: true}
}

// Ack is the plain text "success" Alipay wants; anything else makes it
// send the notification again (up to 8 times over 25 hours).
func (c *Channel) Ack() psp.Ack {
	return psp.Ack{Status: http.StatusOK, ContentType: "text/plain; charset=utf-8", Body: "success"}
}

// beijing is China Standard Time, in which Alipay writes its times.
var beijing = time.FixedZone("CST", 8*3600)

const timeLayout = "2006-01-02 15:04:05"

func parseTime(s string) (time.Time, error) {
	t, err := time.ParseInLocation(timeLayout, s, beijing)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: %v", s, err)
	}
	return t.UTC(), nil
}

// APIError is a business error answer of the gateway (code other than
// 10000), wrapped beside the psp sentinel that classifies it.
type APIError struct {
	Code    string
	Msg     string
	SubCode string
	SubMsg  string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %s %s", e.Code, e.Msg, e.SubCode, e.SubMsg)
}

// classify maps a gateway error (HTTP 200 with code ≠ 10000): 20000
// (service unavailable) and the sub-codes Alipay documents as "retry"
// (ACQ.SYSTEM_ERROR) are temporary; ACQ.TRADE_NOT_EXIST is not-found;
// everything else is declined.
func classify(op string, ae *APIError) error {
	switch {
	case ae.Code == "20000", ae.SubCode == "ACQ.SYSTEM_ERROR", strings.HasPrefix(ae.SubCode, "isp.unknow-error"):
		return &psp.TemporaryError{Op: "alipay " + op, Err: ae}
	case ae.SubCode == "ACQ.TRADE_NOT_EXIST":
		return fmt.Errorf("alipay %s: %w: %w", op, psp.ErrNotFound, ae)
	}
	return fmt.Errorf("alipay %s: %w: %w", op, psp.ErrDeclined, ae)
}

func malformed(op string, err error) error {
	return fmt.Errorf("alipay %s: %w: %v", op, psp.ErrMalformed, err)
}

// bizJSON encodes biz_content without HTML escaping (Alipay signs and
// reads the characters as given).
func bizJSON(v any) (string, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimRight(b.String(), "\n"), nil
}
