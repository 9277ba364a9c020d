package stripe

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
	"github.com/paygate/paygate/internal/signature"
)

// HeaderSignature is the header Stripe signs webhooks in
// (https://docs.stripe.com/webhooks#verify-manually):
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>",
// with one v1 per active secret while a secret is being rolled. Other
// schemes (v0, a test-mode legacy one) are never trusted.
const HeaderSignature = "Stripe-Signature"

// Signature verification errors; check with errors.Is.
var (
	ErrNotSigned        = errors.New("no Stripe-Signature header")
	ErrInvalidHeader    = errors.New("Stripe-Signature has no single t=<unix seconds> or no v1 signature")
	ErrNoValidSignature = errors.New("no v1 signature matches a webhook secret")
	ErrTooOld           = errors.New("signed timestamp too old")
	ErrTooNew           = errors.New("signed timestamp too far in the future")
)

// VerifySignature checks a Stripe-Signature header against the untouched
// payload with every secret, in constant time per comparison, and then
// the signed timestamp against at (the time the webhook was received),
// both ways within tolerance. It returns the signed time.
func VerifySignature(payload []byte, header string, secrets [][]byte, at time.Time, tolerance time.Duration) (time.Time, error) {
	if header == "" {
		return time.Time{}, ErrNotSigned
	}
	var (
		ts     int64
		haveTS bool
		given  [][]byte
	)
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			if haveTS || v == "" || strings.TrimLeft(v, "0123456789") != "" {
				return time.Time{}, ErrInvalidHeader
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return time.Time{}, ErrInvalidHeader
			}
			ts, haveTS = n, true
		case "v1":
			// An unreadable value is skipped, as Stripe's SDKs do: another
			// v1 may still match.
			if b, err := hex.DecodeString(v); err == nil && len(b) == sha256.Size {
				given = append(given, b)
			}
		}
	}
	if !haveTS || len(given) == 0 {
		return time.Time{}, ErrInvalidHeader
	}
	// Stripe's MAC is paygate's own construction, HMAC-SHA256 over
	// "<t>.<payload>"; only the header syntax differs.
	if !signature.Match(secrets, ts, payload, given) {
		return time.Time{}, ErrNoValidSignature
	}
	if err := checkAge(ts, at, tolerance); err != nil {
		return time.Time{}, err
	}
	return time.Unix(ts, 0).UTC(), nil
}

// checkAge judges the signed second ts at at, as stripe-go does: a
// webhook is too old when time.Since(time.Unix(t, 0)) > tolerance, to
// the nanosecond, so one signed 300 s before a receipt 300.5 s after it
// is refused, one received exactly 300 s after it is not. Stripe's SDKs
// do not bound the other side; paygate refuses a signed time more than
// tolerance after receipt in the same way, as it does for every signed
// time (a clock that far off is an incident, and Stripe retries). Whole
// seconds rule out the far cases first, so no Duration overflows.
func checkAge(ts int64, at time.Time, tolerance time.Duration) error {
	n, tol := at.Unix(), int64(tolerance/time.Second)
	switch {
	case ts < n-tol-1:
		return fmt.Errorf("%w: signed %ds before receipt, tolerance %s", ErrTooOld, n-ts, seconds(tolerance))
	case ts > n+tol+1:
		return fmt.Errorf("%w: signed %ds after receipt, tolerance %s", ErrTooNew, ts-n, seconds(tolerance))
	}
	switch age := at.Sub(time.Unix(ts, 0)); {
	case age > tolerance:
		return fmt.Errorf("%w: signed %s before receipt, tolerance %s", ErrTooOld, seconds(age), seconds(tolerance))
	case -age > tolerance:
		return fmt.Errorf("%w: signed %s after receipt, tolerance %s", ErrTooNew, seconds(-age), seconds(tolerance))
	}
	return nil
}

// seconds writes d in seconds, as "301s" or "300.5s".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// ParseCallback verifies and reads a webhook (Async: an Event signed in
// Stripe-Signature over the untouched body, judged at cb.ReceivedAt) or
// the buyer's return from Checkout (Sync). It does no I/O. Errors wrap
// psp.ErrBadSignature, psp.ErrStale or psp.ErrMalformed (also for an
// event type paygate does not act on: it is stored and changes nothing);
// on error the Notification is the zero value.
//
// Webhook events read: payment_intent.succeeded (succeeded, amount
// received), payment_intent.payment_failed and payment_intent.canceled
// (failed), checkout.session.completed and
// checkout.session.async_payment_succeeded (succeeded when paid, pending
// while an asynchronous payment is under way),
// checkout.session.async_payment_failed and checkout.session.expired
// (failed). A payment_failed event is not final at Stripe (the buyer may
// try another card); the confirming Query says pending then.
//
// A return is not signed by Stripe: its transaction code is bound by our
// own MAC in the return URL, and it states only that the buyer came back
// from the success page (succeeded, with no amount: the confirming Query
// supplies it) or the cancel page (pending).
func (c *Channel) ParseCallback(cb domain.Callback) (domain.Notification, error) {
	switch cb.Kind {
	case domain.CallbackAsync:
		return c.parseWebhook(cb)
	case domain.CallbackSync:
		return c.parseReturn(cb)
	}
	return domain.Notification{}, fmt.Errorf("stripe callback: kind %q: %w", cb.Kind, psp.ErrMalformed)
}

func (c *Channel) parseWebhook(cb domain.Callback) (domain.Notification, error) {
	sigs := cb.Headers.Values(HeaderSignature)
	if len(sigs) > 1 {
		return domain.Notification{}, fmt.Errorf("stripe webhook: %w: %d Stripe-Signature headers", psp.ErrBadSignature, len(sigs))
	}
	header := ""
	if len(sigs) == 1 {
		header = sigs[0]
	}
	if _, err := VerifySignature(cb.Body, header, c.secrets, cb.ReceivedAt, c.cfg.Tolerance); err != nil {
		if errors.Is(err, ErrTooOld) || errors.Is(err, ErrTooNew) {
			return domain.Notification{}, fmt.Errorf("stripe webhook: %w: %w", psp.ErrStale, err)
		}
		return domain.Notification{}, fmt.Errorf("stripe webhook: %w: %w", psp.ErrBadSignature, err)
	}
	n, err := c.readEvent(cb.Body)
	if err != nil {
		return domain.Notification{}, psp.Verified(fmt.Errorf("stripe webhook: %w: %v", psp.ErrMalformed, err))
	}
	return n, nil
}

// readEvent reads a verified Event.
func (c *Channel) readEvent(body []byte) (domain.Notification, error) {
	var ev eventJSON
	if err := decodeJSON(body, &ev); err != nil {
		return domain.Notification{}, err
	}
	if ev.Object != "event" || ev.ID == "" || ev.Type == "" || ev.Created <= 0 {
		return domain.Notification{}, errors.New("not an event with id, type and created")
	}
	if ev.Livemode != c.livemode {
		return domain.Notification{}, fmt.Errorf("event %s has livemode %t, the channel's key %t", ev.ID, ev.Livemode, c.livemode)
	}
	var (
		n   domain.Notification
		err error
	)
	switch ev.Type {
	case "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled":
		n, err = intentEvent(ev)
	case "checkout.session.completed", "checkout.session.async_payment_succeeded",
		"checkout.session.async_payment_failed", "checkout.session.expired":
		n, err = sessionEvent(ev)
	default:
		return domain.Notification{}, fmt.Errorf("event %s: type %q is not one paygate acts on", ev.ID, ev.Type)
	}
	if err != nil {
		return domain.Notification{}, fmt.Errorf("event %s (%s): %w", ev.ID, ev.Type, err)
	}
	n.EventID, n.OccurredAt = ev.ID, time.Unix(ev.Created, 0).UTC()
	return n, nil
}

func intentEvent(ev eventJSON) (domain.Notification, error) {
	var pi intentJSON
	if err := decodeJSON(ev.Data.Object, &pi); err != nil {
		return domain.Notification{}, err
	}
	code := pi.Metadata["transaction_code"]
	if pi.Object != "payment_intent" || pi.ID == "" || code == "" {
		return domain.Notification{}, errors.New("not a payment intent with id and metadata.transaction_code")
	}
	want := map[string][]string{
		"payment_intent.succeeded":      {"succeeded"},
		"payment_intent.payment_failed": {"requires_payment_method", "canceled"},
		"payment_intent.canceled":       {"canceled"},
	}[ev.Type]
	ok := false
	for _, s := range want {
		ok = ok || pi.Status == s
	}
	if !ok {
		return domain.Notification{}, fmt.Errorf("intent %s has status %q", pi.ID, pi.Status)
	}
	n := domain.Notification{TransactionCode: code, PSPReference: pi.ID, Status: domain.PSPFailed}
	amount := pi.Amount
	if ev.Type == "payment_intent.succeeded" {
		n.Status, amount = domain.PSPSucceeded, pi.AmountReceived
	}
	m, err := fromStripe(amount, pi.Currency)
	if err != nil {
		return domain.Notification{}, err
	}
	n.Amount = m
	return n, nil
}

func sessionEvent(ev eventJSON) (domain.Notification, error) {
	var s sessionJSON
	if err := decodeJSON(ev.Data.Object, &s); err != nil {
		return domain.Notification{}, err
	}
	code := s.ClientReferenceID
	if s.Object != "checkout.session" || s.ID == "" || code == "" || s.AmountTotal == nil {
		return domain.Notification{}, errors.New("not a checkout session with id, client_reference_id and amount_total")
	}
	if mc, ok := s.Metadata["transaction_code"]; ok && mc != code {
		return domain.Notification{}, fmt.Errorf("session %s: client_reference_id %q but metadata.transaction_code %q", s.ID, code, mc)
	}
	n := domain.Notification{TransactionCode: code}
	if s.PaymentIntent != nil {
		n.PSPReference = *s.PaymentIntent
	}
	switch ev.Type {
	case "checkout.session.completed", "checkout.session.async_payment_succeeded":
		switch s.PaymentStatus {
		case "paid":
			n.Status = domain.PSPSucceeded
		case "unpaid":
			n.Status = domain.PSPPending
		default:
			return domain.Notification{}, fmt.Errorf("session %s: payment_status %q", s.ID, s.PaymentStatus)
		}
	default:
		n.Status = domain.PSPFailed
	}
	if n.Status == domain.PSPSucceeded && n.PSPReference == "" {
		return domain.Notification{}, fmt.Errorf("session %s is paid without a payment intent", s.ID)
	}
	m, err := fromStripe(*s.AmountTotal, s.Currency)
	if err != nil {
		return domain.Notification{}, err
	}
	n.Amount = m
	return n, nil
}

// Return URL parameters. paygate's own, beside Stripe's session_id.
const (
	qCode   = "paygate_tc"
	qResult = "paygate_res"
	qMAC    = "paygate_sig"

	resultSuccess = "success"
	resultCancel  = "cancel"
)

func (c *Channel) returnMAC(code, result string) []byte {
	m := hmac.New(sha256.New, c.returnKey)
	m.Write([]byte(code))
	m.Write([]byte{0})
	m.Write([]byte(result))
	return m.Sum(nil)
}

// returnURL is base with the transaction code, the page (success or
// cancel) and their MAC appended.
func (c *Channel) returnURL(base, code, result string) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + qCode + "=" + url.QueryEscape(code) + "&" + qResult + "=" + result +
		"&" + qMAC + "=" + hex.EncodeToString(c.returnMAC(code, result))
}

func (c *Channel) parseReturn(cb domain.Callback) (domain.Notification, error) {
	q := cb.Query
	var v [3]string
	for i, k := range []string{qCode, qResult, qMAC} {
		if len(q[k]) != 1 {
			return domain.Notification{}, fmt.Errorf("stripe return: %w: %s given %d times", psp.ErrBadSignature, k, len(q[k]))
		}
		v[i] = q[k][0]
	}
	given, err := hex.DecodeString(v[2])
	if err != nil || !hmac.Equal(given, c.returnMAC(v[0], v[1])) {
		return domain.Notification{}, fmt.Errorf("stripe return: %w: %s does not match", psp.ErrBadSignature, qMAC)
	}
	n := domain.Notification{TransactionCode: v[0]}
	switch v[1] {
	case resultSuccess:
		n.Status = domain.PSPSucceeded
	case resultCancel:
		n.Status = domain.PSPPending
	default:
		return domain.Notification{}, fmt.Errorf("stripe return: %w: result %q", psp.ErrMalformed, v[1])
	}
	if v[0] == "" {
		return domain.Notification{}, fmt.Errorf("stripe return: %w: empty transaction code", psp.ErrMalformed)
	}
	return n, nil
}
