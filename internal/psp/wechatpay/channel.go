// Package wechatpay is the psp.Channel adapter for WeChat Pay API v3
// (pay.weixin.qq.com/doc/v3): Native or H5 payments created with
// POST /v3/pay/transactions/{native,h5}, queried by out_trade_no, refunded
// and queried by out_refund_no; payment callbacks verified with the
// platform certificate (or WeChat Pay public key) and their resource
// decrypted with the APIv3 key (AEAD_AES_256_GCM).
//
// Every request carries the WECHATPAY2-SHA256-RSA2048 Authorization
// header, signed with the merchant's private key over
// "METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n"; the key never leaves the
// process and is in no body or URL. Answers (2xx with a body) are
// verified with the platform key like callbacks, except the trade bill's
// download, which WeChat does not sign and which is checked against the
// SHA1 its signed bill answer gives. Amounts are integers in the
// currency's minor unit (fen for CNY); the bill's are yuan decimals.
package wechatpay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/signature"
)

// Defaults of ChannelConfig.
const (
	DefaultChannelName = "wechatpay"
	DefaultBaseURL     = "https://api.mch.weixin.qq.com"
	DefaultTimeout     = 10 * time.Second
)

// Modes: which v3 payment product Initiate uses.
const (
	// ModeNative returns a code_url for a QR code (desktop web).
	ModeNative = "native"
	// ModeH5 returns an h5_url to open in a mobile browser; it needs the
	// buyer's IP.
	ModeH5 = "h5"
)

// PlatformKey is one key WeChat Pay signs answers and callbacks with: a
// platform certificate's key under its serial number, or a WeChat Pay
// public key under its id ("PUB_KEY_ID_…"). WeChat names it in the
// Wechatpay-Serial header.
type PlatformKey struct {
	Serial string
	Key    *rsa.PublicKey
}

// ChannelConfig configures the adapter for one WeChat Pay merchant.
type ChannelConfig struct {
	// Name is the channel's name. Default "wechatpay".
	Name string
	// BaseURL is the API host. Default https://api.mch.weixin.qq.com.
	BaseURL string
	// MchID is the merchant id (mchid). Required.
	MchID string
	// AppID is the appid bound to the merchant. Required.
	AppID string
	// MerchantKey signs requests (apiclient_key.pem). Required.
	MerchantKey *rsa.PrivateKey
	// MerchantSerialNo is the serial number of the merchant certificate
	// that goes with MerchantKey. Required.
	MerchantSerialNo string
	// APIv3Key decrypts callback resources: 32 bytes. Required.
	APIv3Key string
	// PlatformKeys verify answers and callbacks; give the old and the new
	// one during a rotation. At least one is required.
	PlatformKeys []PlatformKey
	// Mode is ModeNative (default) or ModeH5.
	Mode string
	// Timeout bounds one API call. Default 10 s.
	Timeout time.Duration
	// Tolerance bounds how far Wechatpay-Timestamp may be from the time
	// a callback was received (or an answer read), either way: a
	// timestamp Tolerance or more away is stale, as WeChat Pay's SDKs
	// judge it (exactly 300 s is refused). Default 300 s, WeChat's own
	// figure being 5 minutes.
	Tolerance time.Duration
	// Transport is the round tripper under psp.Transport. Default
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Now is the clock that timestamps requests and judges answers.
	// Default time.Now. Callbacks are judged at their ReceivedAt.
	Now func() time.Time
}

func (c ChannelConfig) withDefaults() ChannelConfig {
	if c.Name == "" {
		c.Name = DefaultChannelName
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.Mode == "" {
		c.Mode = ModeNative
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
		return fmt.Errorf("wechatpay channel %s: BaseURL %q is not an absolute http(s) URL", c.Name, c.BaseURL)
	}
	switch {
	case c.MchID == "":
		return fmt.Errorf("wechatpay channel %s: MchID is required", c.Name)
	case c.AppID == "":
		return fmt.Errorf("wechatpay channel %s: AppID is required", c.Name)
	case c.MerchantKey == nil:
		return fmt.Errorf("wechatpay channel %s: MerchantKey is required", c.Name)
	case c.MerchantSerialNo == "":
		return fmt.Errorf("wechatpay channel %s: MerchantSerialNo is required", c.Name)
	case len(c.APIv3Key) != 32:
		return fmt.Errorf("wechatpay channel %s: APIv3Key must be 32 bytes, is %d", c.Name, len(c.APIv3Key))
	case len(c.PlatformKeys) == 0:
		return fmt.Errorf("wechatpay channel %s: at least one platform key is required", c.Name)
	case c.Mode != ModeNative && c.Mode != ModeH5:
		return fmt.Errorf("wechatpay channel %s: Mode %q is not %q or %q", c.Name, c.Mode, ModeNative, ModeH5)
	case c.Timeout < 0 || c.Tolerance < 0:
		return fmt.Errorf("wechatpay channel %s: negative Timeout or Tolerance", c.Name)
	}
	seen := map[string]bool{}
	for i, k := range c.PlatformKeys {
		if k.Serial == "" || k.Key == nil || seen[k.Serial] {
			return fmt.Errorf("wechatpay channel %s: platform key %d has no serial, no key, or a repeated serial", c.Name, i)
		}
		seen[k.Serial] = true
	}
	return nil
}

// Channel is the psp.Channel adapter for one WeChat Pay merchant. It is
// safe for concurrent use.
type Channel struct {
	cfg      ChannelConfig
	base     string
	platform map[string]*rsa.PublicKey
	client   *http.Client
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
		platform: make(map[string]*rsa.PublicKey, len(cfg.PlatformKeys)),
		client:   psp.NewClient(cfg.Name, cfg.Transport, cfg.Timeout),
	}
	for _, k := range cfg.PlatformKeys {
		c.platform[k.Serial] = k.Key
	}
	return c, nil
}

// Name is the configured channel name.
func (c *Channel) Name() string { return c.cfg.Name }

// Capabilities: partial refunds; the settlement list (the daily trade
// bill, see SettledPayments); refund callbacks exist at WeChat but are
// not parsed, refunds are followed with QueryRefund; every callback is
// confirmed by Query.
func (c *Channel) Capabilities() psp.Capabilities {
	return psp.Capabilities{PartialRefund: true, Settlement: true, RefundCallbacks: false, ConfirmByQuery: true}
}

// Ack is what WeChat Pay v3 expects once a callback is accepted: HTTP
// 200 (or 204); the body {"code":"SUCCESS","message":"成功"} is the one
// its documentation shows and is accepted either way.
func (c *Channel) Ack() psp.Ack {
	return psp.Ack{Status: http.StatusOK, ContentType: "application/json", Body: `{"code":"SUCCESS","message":"成功"}`}
}

// APIError is an error answer of the API ({"code","message"}), wrapped
// beside the psp sentinel that classifies it.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// maxBody bounds an answer read.
const maxBody = 1 << 20

// nonce is 32 random hex characters.
func nonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// call makes one signed request. pathQuery is the URL path and query as
// signed. It returns the status and body of the answer; a 2xx answer
// with a body has had its signature verified.
func (c *Channel) call(ctx context.Context, op, method, pathQuery string, in any) (int, []byte, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, nil, fmt.Errorf("wechatpay %s: encode request: %w", op, err)
		}
	}
	status, h, b, err := c.send(ctx, op, method, c.base+pathQuery, pathQuery, body, in != nil, "application/json", maxBody)
	if err != nil {
		return 0, nil, err
	}
	if status/100 == 2 && len(b) > 0 {
		if err := c.verify(h, b, c.cfg.Now()); err != nil {
			// An answer not signed by WeChat is not an answer to act on.
			return 0, nil, fmt.Errorf("wechatpay %s: answer: %w: %w", op, psp.ErrMalformed, err)
		}
	}
	return status, b, nil
}

// send makes one request to target, signed over pathQuery (target's
// path and query), and reads at most limit bytes of the answer. It does
// not verify the answer: that is the caller's part.
func (c *Channel) send(ctx context.Context, op, method, target, pathQuery string, body []byte, hasBody bool, accept string, limit int64) (int, http.Header, []byte, error) {
	var rd io.Reader
	if hasBody {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("wechatpay %s: %w", op, err)
	}
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	req.Header.Set("User-Agent", "paygate")
	auth, err := authorization(c.cfg.MerchantKey, c.cfg.MchID, c.cfg.MerchantSerialNo, method, pathQuery, c.cfg.Now().Unix(), nonce(), body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("wechatpay %s: sign: %w", op, err)
	}
	req.Header.Set("Authorization", auth)
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, nil, &psp.TemporaryError{Op: "wechatpay " + op, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return 0, nil, nil, &psp.TemporaryError{Op: "wechatpay " + op, Err: fmt.Errorf("read answer: %w", err)}
	}
	if int64(len(b)) > limit {
		return 0, nil, nil, fmt.Errorf("wechatpay %s: answer over %d bytes: %w", op, limit, psp.ErrMalformed)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// classify turns a non-2xx answer into the port's errors: 5xx and 429
// (FREQUENCY_LIMITED) and 408 are temporary, 404 is psp.ErrNotFound,
// other 4xx psp.ErrDeclined.
func classify(op string, status int, body []byte) error {
	ae := apiError(status, body)
	switch {
	case status >= 500, status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
		return &psp.TemporaryError{Op: "wechatpay " + op, Err: ae}
	case status == http.StatusNotFound:
		return fmt.Errorf("wechatpay %s: %w: %w", op, psp.ErrNotFound, ae)
	case status >= 400:
		return fmt.Errorf("wechatpay %s: %w: %w", op, psp.ErrDeclined, ae)
	}
	return fmt.Errorf("wechatpay %s: unexpected answer: %w: %w", op, psp.ErrMalformed, ae)
}

// apiError reads an error answer: its {"code","message"}, or the start
// of its body.
func apiError(status int, body []byte) *APIError {
	ae := &APIError{Status: status}
	var ej struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &ej) == nil && ej.Code != "" {
		ae.Code, ae.Message = ej.Code, ej.Message
	} else {
		ae.Message = strings.TrimSpace(string(body[:min(len(body), 200)]))
	}
	return ae
}

// notExist reports whether an answer is WeChat's "no such order/refund"
// (404 ORDER_NOT_EXIST or RESOURCE_NOT_EXISTS), not a wrong route.
func notExist(status int, body []byte) bool {
	var ej struct {
		Code string `json:"code"`
	}
	return status == http.StatusNotFound && json.Unmarshal(body, &ej) == nil &&
		(ej.Code == "ORDER_NOT_EXIST" || ej.Code == "RESOURCE_NOT_EXISTS")
}

func malformed(op string, err error) error {
	return fmt.Errorf("wechatpay %s: %w: %v", op, psp.ErrMalformed, err)
}

// decodeJSON reads exactly one JSON value into v; numbers go into typed
// fields (int64), never through a float.
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

// beijing is China Standard Time, in which WeChat writes times.
var beijing = time.FixedZone("CST", 8*3600)

func parseUnix(s string) (int64, bool) {
	if s == "" || len(s) > 12 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
