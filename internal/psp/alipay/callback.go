package alipay

import (
	"fmt"
	"net/url"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// params are a callback's parameters: its URL query and its form body
// together, as Alipay's own SDK demos read them (getParameterMap). A
// name in both, or twice, is refused: the signature could not say which
// one it covered. Whatever arrives is in the signed content, so a
// parameter added on the way breaks the signature.
func params(cb domain.Callback) (url.Values, error) {
	p := url.Values{}
	for k, v := range cb.Query {
		p[k] = append(p[k], v...)
	}
	if len(cb.Body) > 0 {
		b, err := url.ParseQuery(string(cb.Body))
		if err != nil {
			return nil, fmt.Errorf("body is not a form: %v", err)
		}
		for k, v := range b {
			p[k] = append(p[k], v...)
		}
	}
	for k, v := range p {
		if len(v) != 1 {
			return nil, fmt.Errorf("parameter %s given %d times", k, len(v))
		}
	}
	return p, nil
}

// verify checks sign (RSA2 only) with the Alipay public keys over the
// parameters but sign and sign_type, as Alipay documents notifications;
// failing that, over the parameters but sign, sign_type included: Alipay
// has signed both ways ("for historical reasons"), and its SDKs try both
// (Java's rsaCheckV1 and rsaCheckV2; alipay-sdk-nodejs checkNotifySign
// tries one, then the other). Either content is what Alipay's key
// signed, so accepting both admits nothing forged. Errors wrap
// psp.ErrBadSignature.
func (c *Channel) verify(p url.Values) error {
	if p.Get("sign") == "" {
		return fmt.Errorf("%w: no sign", psp.ErrBadSignature)
	}
	if st := p.Get("sign_type"); st != "RSA2" {
		return fmt.Errorf("%w: sign_type %q, only RSA2 is accepted", psp.ErrBadSignature, st)
	}
	without, err := signContent(p, true)
	if err != nil {
		return fmt.Errorf("%w: %v", psp.ErrBadSignature, err)
	}
	err = rsa2Verify(c.cfg.AlipayPublicKeys, []byte(without), p.Get("sign"))
	if err == nil {
		return nil
	}
	with, werr := signContent(p, false)
	if werr == nil && rsa2Verify(c.cfg.AlipayPublicKeys, []byte(with), p.Get("sign")) == nil {
		return nil
	}
	return fmt.Errorf("%w: %v (over the parameters without sign_type, and with it)", psp.ErrBadSignature, err)
}

// ParseCallback verifies and reads an async notification (domain.CallbackAsync:
// the trade_status_sync POST to notify_url) or a sync return (domain.CallbackSync:
// the browser's GET to return_url), both signed RSA2 over their
// parameters. The signature is checked before anything is read; then
// app_id (and seller_id, if configured) must be this app's. A
// notification's notify_time must be within the tolerance of
// cb.ReceivedAt (psp.ErrStale); it reads as the trade's status, amount
// (total_amount, in trans_currency if given, else CNY), trade_no,
// notify_id and the time of payment (gmt_payment; gmt_close for a closed
// trade). A sync return states no status: it reads as PSPPending, and the
// gateway's Query decides. On error the notification is zero. No I/O.
func (c *Channel) ParseCallback(cb domain.Callback) (domain.Notification, error) {
	if cb.Kind != domain.CallbackAsync && cb.Kind != domain.CallbackSync {
		return domain.Notification{}, fmt.Errorf("alipay callback: kind %q: %w", cb.Kind, psp.ErrMalformed)
	}
	p, err := params(cb)
	if err != nil {
		return domain.Notification{}, fmt.Errorf("alipay callback: %w: %v", psp.ErrBadSignature, err)
	}
	if err := c.verify(p); err != nil {
		return domain.Notification{}, fmt.Errorf("alipay callback: %w", err)
	}
	n, err := c.read(cb.Kind, p, cb)
	if err != nil {
		return domain.Notification{}, psp.Verified(fmt.Errorf("alipay callback: %w", err))
	}
	return n, nil
}

func (c *Channel) read(kind domain.CallbackKind, p url.Values, cb domain.Callback) (domain.Notification, error) {
	bad := func(format string, a ...any) (domain.Notification, error) {
		return domain.Notification{}, fmt.Errorf("%w: %s", psp.ErrMalformed, fmt.Sprintf(format, a...))
	}
	if p.Get("app_id") != c.cfg.AppID {
		return bad("for app %q, this channel is app %q", p.Get("app_id"), c.cfg.AppID)
	}
	if c.cfg.SellerID != "" && p.Get("seller_id") != c.cfg.SellerID {
		return bad("for seller %q, this channel is seller %q", p.Get("seller_id"), c.cfg.SellerID)
	}
	code, tradeNo := p.Get("out_trade_no"), p.Get("trade_no")
	if code == "" || tradeNo == "" {
		return bad("out_trade_no and trade_no are required")
	}
	amount, err := money(p.Get("total_amount"), p.Get("trans_currency"))
	if err != nil {
		return bad("total_amount: %v", err)
	}
	n := domain.Notification{TransactionCode: code, PSPReference: tradeNo, Amount: amount}
	if kind == domain.CallbackSync {
		n.Status = domain.PSPPending
		return n, nil
	}
	sent, err := parseTime(p.Get("notify_time"))
	if err != nil {
		return bad("notify_time: %v", err)
	}
	if d, tol := cb.ReceivedAt.Unix()-sent.Unix(), int64(c.cfg.Tolerance.Seconds()); d > tol || d < -tol {
		return domain.Notification{}, fmt.Errorf("%w: notify_time %s, received at %s", psp.ErrStale, sent.Format("2006-01-02T15:04:05Z"),
			cb.ReceivedAt.UTC().Format("2006-01-02T15:04:05Z"))
	}
	if p.Get("notify_id") == "" {
		return bad("no notify_id")
	}
	n.EventID = p.Get("notify_id")
	if n.Status, err = tradeStatus(p.Get("trade_status")); err != nil {
		return bad("%v", err)
	}
	at := map[domain.PSPStatus]string{domain.PSPSucceeded: "gmt_payment", domain.PSPFailed: "gmt_close", domain.PSPPending: "gmt_create"}[n.Status]
	if v := p.Get(at); v != "" {
		if n.OccurredAt, err = parseTime(v); err != nil {
			return bad("%s: %v", at, err)
		}
	}
	return n, nil
}
