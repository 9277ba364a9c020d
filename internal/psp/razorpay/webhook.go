package razorpay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// HeaderSignature carries a webhook's signature: hex HMAC-SHA256 of the
// raw body under the webhook secret
// (https://razorpay.com/docs/webhooks/validate-test/).
const HeaderSignature = "X-Razorpay-Signature"

// Signature errors; check with errors.Is.
var (
	ErrNotSigned        = errors.New("signature missing")
	ErrNoValidSignature = errors.New("signature does not match")
)

// hexMAC reports whether sig is the hex HMAC-SHA256 of msg under one of
// secrets, comparing in constant time.
func hexMAC(msg []byte, sig string, secrets [][]byte) error {
	if sig == "" {
		return ErrNotSigned
	}
	given, err := hex.DecodeString(sig)
	if err != nil || len(given) != sha256.Size {
		return fmt.Errorf("%w: not 64 hex digits", ErrNoValidSignature)
	}
	ok := false
	for _, s := range secrets {
		m := hmac.New(sha256.New, s)
		m.Write(msg)
		ok = hmac.Equal(m.Sum(nil), given) || ok
	}
	if !ok {
		return ErrNoValidSignature
	}
	return nil
}

// VerifyWebhookSignature checks X-Razorpay-Signature against the
// untouched body with every secret.
func VerifyWebhookSignature(body []byte, signature string, secrets [][]byte) error {
	return hexMAC(body, signature, secrets)
}

// VerifyPaymentSignature checks the checkout's razorpay_signature: hex
// HMAC-SHA256 of "<razorpay_order_id>|<razorpay_payment_id>" under the
// key secret (https://razorpay.com/docs/payments/server-integration/go/payment-gateway/build-integration/#verify-payment-signature).
// It proves the payment belongs to the order, nothing about its amount.
func VerifyPaymentSignature(orderID, paymentID, signature string, keySecrets [][]byte) error {
	return hexMAC([]byte(orderID+"|"+paymentID), signature, keySecrets)
}

// ParseCallback verifies and reads a webhook (Async) or the buyer's
// return from checkout (Sync). It does no I/O. Errors wrap
// psp.ErrBadSignature or psp.ErrMalformed (also for an event paygate does
// not act on); on error the Notification is the zero value.
//
// Webhooks sign the whole body but no time, so there is no replay window
// to enforce; a replayed event states a fact already confirmed by Query.
// Events read: order.paid (succeeded; the transaction code is the order's
// receipt, set by us), payment.captured (succeeded), payment.authorized
// (pending) and payment.failed (failed) — for these three the code is in
// the payment's notes, which the checkout form set. The event id is
// derived from signed content ("<event>:<payment id>:<created_at>"):
// Razorpay's x-razorpay-event-id header is not signed.
//
// A return is the checkout's POST to our callback URL: our MAC in the URL
// binds the transaction code to the Razorpay order; razorpay_signature
// binds the payment to that order. It reads as succeeded with the payment
// id and no amount — the signature does not cover the amount, so the
// confirming Query (ConfirmByQuery) supplies amount and currency before
// anything is paid. A return without razorpay_signature (a failure, a
// cancel) reads as pending: Razorpay signs nothing in it.
func (c *Channel) ParseCallback(cb domain.Callback) (domain.Notification, error) {
	switch cb.Kind {
	case domain.CallbackAsync:
		return c.parseWebhook(cb)
	case domain.CallbackSync:
		return c.parseReturn(cb)
	}
	return domain.Notification{}, fmt.Errorf("razorpay callback: kind %q: %w", cb.Kind, psp.ErrMalformed)
}

func (c *Channel) parseWebhook(cb domain.Callback) (domain.Notification, error) {
	sigs := cb.Headers.Values(HeaderSignature)
	if len(sigs) != 1 {
		return domain.Notification{}, fmt.Errorf("razorpay webhook: %w: %d %s headers", psp.ErrBadSignature, len(sigs), HeaderSignature)
	}
	if err := VerifyWebhookSignature(cb.Body, sigs[0], c.webhookSecrets); err != nil {
		return domain.Notification{}, fmt.Errorf("razorpay webhook: %w: %w", psp.ErrBadSignature, err)
	}
	n, err := c.readEvent(cb.Body)
	if err != nil {
		return domain.Notification{}, psp.Verified(fmt.Errorf("razorpay webhook: %w: %v", psp.ErrMalformed, err))
	}
	return n, nil
}

func (c *Channel) readEvent(body []byte) (domain.Notification, error) {
	var ev eventJSON
	if err := decodeJSON(body, &ev); err != nil {
		return domain.Notification{}, err
	}
	if ev.Entity != "event" || ev.Event == "" || ev.CreatedAt <= 0 || ev.Payload.Payment == nil {
		return domain.Notification{}, errors.New("not an event with a payment and created_at")
	}
	if c.cfg.AccountID != "" && ev.AccountID != c.cfg.AccountID {
		return domain.Notification{}, fmt.Errorf("event for account %q, the channel's is %q", ev.AccountID, c.cfg.AccountID)
	}
	p := ev.Payload.Payment.Entity
	if p.Entity != "payment" || p.ID == "" {
		return domain.Notification{}, errors.New("payload.payment.entity is not a payment with an id")
	}
	n := domain.Notification{PSPReference: p.ID, TransactionCode: p.Notes["transaction_code"]}
	var want []string
	switch ev.Event {
	case "order.paid":
		if ev.Payload.Order == nil {
			return domain.Notification{}, errors.New("order.paid without payload.order")
		}
		o := ev.Payload.Order.Entity
		if o.Entity != "order" || o.ID == "" || o.ID != p.OrderID || o.Receipt == "" {
			return domain.Notification{}, fmt.Errorf("order %q (receipt %q) does not hold payment %s of order %q", o.ID, o.Receipt, p.ID, p.OrderID)
		}
		if n.TransactionCode != "" && n.TransactionCode != o.Receipt {
			return domain.Notification{}, fmt.Errorf("payment notes name %q, the order's receipt is %q", n.TransactionCode, o.Receipt)
		}
		n.TransactionCode, n.Status, want = o.Receipt, domain.PSPSucceeded, []string{"captured"}
	case "payment.captured":
		n.Status, want = domain.PSPSucceeded, []string{"captured"}
	case "payment.authorized":
		n.Status, want = domain.PSPPending, []string{"authorized", "captured"}
	case "payment.failed":
		n.Status, want = domain.PSPFailed, []string{"failed"}
	default:
		return domain.Notification{}, fmt.Errorf("event %q is not one paygate acts on", ev.Event)
	}
	ok := false
	for _, s := range want {
		ok = ok || p.Status == s
	}
	if !ok {
		return domain.Notification{}, fmt.Errorf("%s with payment %s in status %q", ev.Event, p.ID, p.Status)
	}
	if n.TransactionCode == "" {
		return domain.Notification{}, fmt.Errorf("payment %s carries no transaction code", p.ID)
	}
	m, err := money(p.Amount, p.Currency)
	if err != nil {
		return domain.Notification{}, fmt.Errorf("payment %s: %w", p.ID, err)
	}
	n.Amount = m
	n.EventID = ev.Event + ":" + p.ID + ":" + strconv.FormatInt(ev.CreatedAt, 10)
	n.OccurredAt = time.Unix(ev.CreatedAt, 0).UTC()
	return n, nil
}

// Return URL parameters: paygate's own, beside what the checkout posts.
const (
	qCode  = "paygate_tc"
	qOrder = "paygate_order"
	qMAC   = "paygate_sig"
)

func (c *Channel) returnMAC(code, orderID string) []byte {
	m := hmac.New(sha256.New, c.returnKey)
	m.Write([]byte(code))
	m.Write([]byte{0})
	m.Write([]byte(orderID))
	return m.Sum(nil)
}

// returnURL is base with the transaction code, the Razorpay order and
// their MAC appended.
func (c *Channel) returnURL(base, code, orderID string) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + url.Values{qCode: {code}, qOrder: {orderID},
		qMAC: {hex.EncodeToString(c.returnMAC(code, orderID))}}.Encode()
}

func (c *Channel) parseReturn(cb domain.Callback) (domain.Notification, error) {
	var v [3]string
	for i, k := range []string{qCode, qOrder, qMAC} {
		if len(cb.Query[k]) != 1 {
			return domain.Notification{}, fmt.Errorf("razorpay return: %w: %s given %d times", psp.ErrBadSignature, k, len(cb.Query[k]))
		}
		v[i] = cb.Query[k][0]
	}
	code, orderID := v[0], v[1]
	given, err := hex.DecodeString(v[2])
	if err != nil || !hmac.Equal(given, c.returnMAC(code, orderID)) {
		return domain.Notification{}, fmt.Errorf("razorpay return: %w: %s does not match", psp.ErrBadSignature, qMAC)
	}
	if code == "" || orderID == "" {
		return domain.Notification{}, fmt.Errorf("razorpay return: %w: empty transaction code or order", psp.ErrMalformed)
	}
	form, err := url.ParseQuery(string(cb.Body))
	if err != nil {
		return domain.Notification{}, fmt.Errorf("razorpay return: %w: body: %v", psp.ErrMalformed, err)
	}
	if len(form["razorpay_signature"]) == 0 {
		// A failure or cancel: nothing Razorpay signed, nothing final.
		return domain.Notification{TransactionCode: code, Status: domain.PSPPending}, nil
	}
	var f [3]string
	for i, k := range []string{"razorpay_order_id", "razorpay_payment_id", "razorpay_signature"} {
		if len(form[k]) != 1 || form[k][0] == "" {
			return domain.Notification{}, fmt.Errorf("razorpay return: %w: %s given %d times", psp.ErrBadSignature, k, len(form[k]))
		}
		f[i] = form[k][0]
	}
	if f[0] != orderID {
		return domain.Notification{}, fmt.Errorf("razorpay return: %w: signed for order %q, the attempt's is %q", psp.ErrBadSignature, f[0], orderID)
	}
	if err := VerifyPaymentSignature(f[0], f[1], f[2], c.keySecrets); err != nil {
		return domain.Notification{}, fmt.Errorf("razorpay return: %w: %w", psp.ErrBadSignature, err)
	}
	return domain.Notification{TransactionCode: code, PSPReference: f[1], Status: domain.PSPSucceeded}, nil
}
