package adyen

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// Event codes the port turns into payment notifications.
const (
	// EventAuthorisation reports the outcome of a payment: success "true"
	// is authorised (paid: the merchant account captures automatically),
	// "false" refused.
	EventAuthorisation = "AUTHORISATION"
	// EventOfferClosed reports that a payment was not completed in time
	// (success "true"): the attempt failed.
	EventOfferClosed = "OFFER_CLOSED"
)

// Event codes the port turns into refund results (ParseRefundCallback).
const (
	// EventRefund reports the outcome of a refund request: success
	// "true" is refunded, "false" refused.
	EventRefund = "REFUND"
	// EventRefundFailed reports that a refund Adyen had accepted failed
	// later, at the card scheme or the bank.
	EventRefundFailed = "REFUND_FAILED"
)

// maxNotification bounds a webhook body the parser reads.
const maxNotification = 1 << 20

// notificationJSON is Adyen's standard webhook (JSON, one request).
type notificationJSON struct {
	Live              *string             `json:"live"`
	NotificationItems []notificationEntry `json:"notificationItems"`
}

type notificationEntry struct {
	Item *requestItem `json:"NotificationRequestItem"`
}

// requestItem holds the fields the adapter reads. The eight the HMAC
// covers are pspReference, originalReference, merchantAccountCode,
// merchantReference, amount.value, amount.currency, eventCode and
// success; eventDate is the only other one read, and only as the time of
// the event, never as a decision input.
type requestItem struct {
	AdditionalData struct {
		HMACSignature *string `json:"hmacSignature"`
	} `json:"additionalData"`
	Amount              *amountJSON `json:"amount"`
	EventCode           string      `json:"eventCode"`
	EventDate           string      `json:"eventDate"`
	MerchantAccountCode string      `json:"merchantAccountCode"`
	MerchantReference   string      `json:"merchantReference"`
	OriginalReference   string      `json:"originalReference"`
	PSPReference        string      `json:"pspReference"`
	Success             string      `json:"success"`
}

// signedData is the string Adyen signs for a notification item: the eight
// fields joined with ':' as they are, without escaping (Adyen,
// "Verify HMAC signatures"; adyen-go-api-library hmacvalidator.GetDataToSign).
func (it *requestItem) signedData() string {
	var value, currency string
	if it.Amount != nil {
		value, currency = strconv.FormatInt(it.Amount.Value, 10), it.Amount.Currency
	} else {
		value = "0" // what Adyen's own libraries sign for an item without amount
	}
	return strings.Join([]string{it.PSPReference, it.OriginalReference, it.MerchantAccountCode, it.MerchantReference,
		value, currency, it.EventCode, it.Success}, ":")
}

// Sign returns the base64 HMAC-SHA256 of data under the binary key, as
// Adyen computes hmacSignature.
func Sign(key []byte, data string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// verify checks sig against every configured key, in constant time per
// key. The base64 strings are compared as given: a signature written any
// other way than Adyen writes it is not Adyen's.
func (c *Channel) verify(sig, data string) bool {
	ok := false
	for _, k := range c.keys {
		if hmac.Equal([]byte(Sign(k, data)), []byte(sig)) {
			ok = true
		}
	}
	return ok
}

func badSignature(format string, a ...any) error {
	return fmt.Errorf("adyen webhook: %w: %s", psp.ErrBadSignature, fmt.Sprintf(format, a...))
}

func malformedNotification(format string, a ...any) error {
	return fmt.Errorf("adyen webhook: %w: %s", psp.ErrMalformed, fmt.Sprintf(format, a...))
}

// ParseCallback verifies and reads a standard webhook (Async: a JSON body
// with one NotificationRequestItem whose additionalData.hmacSignature is
// verified with any configured HMAC key before a field is interpreted).
//
// What it refuses, with errors wrapping:
//   - psp.ErrBadSignature: no readable item or signature (an unreadable
//     body carries no signature we could check; it wraps psp.ErrMalformed
//     too), a signature no key reproduces, a "live" flag other than the
//     channel's environment, a merchant account other than the channel's;
//   - psp.ErrMalformed: a batch of several items (the port carries one
//     notification: configure the webhook to send one item per request, as
//     Adyen's JSON webhooks do by default; the raw batch stays stored as
//     evidence), a signed item without reference, with an amount the
//     currency cannot hold or an unreadable eventDate;
//   - psp.ErrUnsupported: an event that is not a payment's outcome
//     (CAPTURE, CHARGEBACK, REPORT_AVAILABLE, …; REFUND and REFUND_FAILED
//     are ParseRefundCallback's), and a browser
//     return (Sync): its sessionResult is not signed and can only be read
//     through the API, which ParseCallback does not call.
//
// Adyen signs no timestamp: replay protection is the decision table's
// idempotency (one pspReference pays an attempt once) and the EventID,
// "<eventCode>:<pspReference>:<success>", which Adyen documents as the
// identity of a webhook. On error the Notification is the zero value. It
// does no I/O.
func (c *Channel) ParseCallback(cb domain.Callback) (domain.Notification, error) {
	switch cb.Kind {
	case domain.CallbackAsync:
	case domain.CallbackSync:
		return domain.Notification{}, fmt.Errorf("adyen return: unsigned; the webhook tells the outcome: %w", psp.ErrUnsupported)
	default:
		return domain.Notification{}, fmt.Errorf("adyen callback: kind %q: %w", cb.Kind, psp.ErrMalformed)
	}
	if len(cb.Body) > maxNotification {
		return domain.Notification{}, malformedNotification("body over %d bytes", maxNotification)
	}
	var v notificationJSON
	if err := decodeStrict(cb.Body, &v); err != nil {
		return domain.Notification{}, fmt.Errorf("adyen webhook: %w (%w): %v", psp.ErrBadSignature, psp.ErrMalformed, err)
	}
	switch n := len(v.NotificationItems); {
	case n == 0:
		return domain.Notification{}, badSignature("no notification item")
	case n > 1:
		return domain.Notification{}, malformedNotification("a batch of %d items; the channel takes one item per request", n)
	}
	it := v.NotificationItems[0].Item
	if err := c.verifyItem(v.Live, it); err != nil {
		return domain.Notification{}, err
	}
	n, err := readItem(it)
	return n, psp.Verified(err)
}

// readItem reads an item whose signature verified.
func readItem(it *requestItem) (domain.Notification, error) {
	n := domain.Notification{TransactionCode: it.MerchantReference, PSPReference: it.PSPReference,
		EventID: it.EventCode + ":" + it.PSPReference + ":" + it.Success}
	switch {
	case it.Success != "true" && it.Success != "false":
		return domain.Notification{}, malformedNotification("success %q", it.Success)
	case it.EventCode == EventAuthorisation && it.Success == "true":
		n.Status = domain.PSPSucceeded
	case it.EventCode == EventAuthorisation:
		n.Status = domain.PSPFailed
	case it.EventCode == EventOfferClosed && it.Success == "true":
		n.Status = domain.PSPFailed
	default:
		return domain.Notification{}, fmt.Errorf("adyen webhook: event %s (success %s) is not a payment outcome: %w", it.EventCode, it.Success, psp.ErrUnsupported)
	}
	if n.TransactionCode == "" || n.PSPReference == "" {
		return domain.Notification{}, malformedNotification("merchantReference and pspReference are required")
	}
	if it.Amount == nil {
		return domain.Notification{}, malformedNotification("no amount")
	}
	m, err := fromAdyen(it.Amount.Value, it.Amount.Currency)
	if err != nil {
		return domain.Notification{}, malformedNotification("%v", err)
	}
	n.Amount = m
	if it.EventDate != "" {
		t, err := time.Parse(time.RFC3339, it.EventDate)
		if err != nil {
			return domain.Notification{}, malformedNotification("eventDate %q", it.EventDate)
		}
		n.OccurredAt = t.UTC()
	}
	return n, nil
}

// verifyItem checks a webhook's one item: its hmacSignature under any
// configured key, the live flag and the merchant account.
func (c *Channel) verifyItem(live *string, it *requestItem) error {
	if it == nil || it.AdditionalData.HMACSignature == nil || *it.AdditionalData.HMACSignature == "" {
		return badSignature("no hmacSignature")
	}
	if !c.verify(*it.AdditionalData.HMACSignature, it.signedData()) {
		return badSignature("%v", errNoKey)
	}
	// Signed by Adyen with our key. The live flag is not signed, but our
	// test and live keys differ; a flag that disagrees is a message for
	// another environment or a tampered one.
	if want := strconv.FormatBool(c.cfg.Environment == EnvLive); live == nil || *live != want {
		return badSignature("live flag is not %q", want)
	}
	if it.MerchantAccountCode != c.cfg.MerchantAccount {
		return badSignature("merchant account %q is not the channel's", it.MerchantAccountCode)
	}
	return nil
}

// ParseRefundCallback implements psp.RefundCallbackParser for Adyen's
// standard webhook, which carries refund outcomes on the endpoint that
// carries AUTHORISATION. It claims a webhook of one item whose eventCode
// is REFUND or REFUND_FAILED, and answers psp.ErrNotRefundCallback for
// anything else (a browser return, a body it cannot read, a batch, other
// events) before any verification, so that ParseCallback judges those.
// The eventCode is read unverified only to route the webhook; the claimed
// item is then verified exactly as ParseCallback verifies AUTHORISATION
// (HMAC under any configured key, live flag, merchant account:
// psp.ErrBadSignature otherwise).
//
// The item's merchantReference is the reference Refund sent (paygate's
// refund ref), pspReference Adyen's id of the refund (the one Refund's
// "received" answer gave) and originalReference the payment's. REFUND
// with success "true" is succeeded, "false" failed; REFUND_FAILED (Adyen
// sends it with success "true": the failure happened) is failed either
// way. A refund item without merchantReference or pspReference, with
// another success value, or an amount the currency cannot hold is
// psp.ErrMalformed. It does no I/O.
func (c *Channel) ParseRefundCallback(cb domain.Callback) (psp.RefundResult, error) {
	if cb.Kind != domain.CallbackAsync || len(cb.Body) > maxNotification {
		return psp.RefundResult{}, psp.ErrNotRefundCallback
	}
	var v notificationJSON
	if err := decodeStrict(cb.Body, &v); err != nil || len(v.NotificationItems) != 1 || v.NotificationItems[0].Item == nil {
		return psp.RefundResult{}, psp.ErrNotRefundCallback
	}
	it := v.NotificationItems[0].Item
	if it.EventCode != EventRefund && it.EventCode != EventRefundFailed {
		return psp.RefundResult{}, psp.ErrNotRefundCallback
	}
	if err := c.verifyItem(v.Live, it); err != nil {
		return psp.RefundResult{}, err
	}
	res := psp.RefundResult{RefundRef: it.MerchantReference, PSPReference: it.PSPReference}
	switch {
	case it.Success != "true" && it.Success != "false":
		return psp.RefundResult{}, malformedNotification("success %q", it.Success)
	case it.EventCode == EventRefund && it.Success == "true":
		res.Status = psp.RefundSucceeded
	default:
		res.Status = psp.RefundFailed
	}
	if res.RefundRef == "" || res.PSPReference == "" {
		return psp.RefundResult{}, malformedNotification("merchantReference and pspReference are required")
	}
	if it.Amount != nil {
		m, err := fromAdyen(it.Amount.Value, it.Amount.Currency)
		if err != nil {
			return psp.RefundResult{}, malformedNotification("%v", err)
		}
		res.Amount = m
	}
	return res, nil
}

// decodeStrict reads exactly one JSON value: nothing, not even
// whitespace, may follow it. Adyen sends one compact JSON object; bytes
// after it are not Adyen's.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.InputOffset() != int64(len(b)) {
		return fmt.Errorf("%d bytes after the JSON value", int64(len(b))-dec.InputOffset())
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("more than one JSON value")
	}
	return nil
}
