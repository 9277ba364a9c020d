package paypal

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"path"
	"strconv"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// The headers PayPal signs webhooks with.
const (
	headerTransmissionID   = "Paypal-Transmission-Id"
	headerTransmissionTime = "Paypal-Transmission-Time"
	headerTransmissionSig  = "Paypal-Transmission-Sig"
	headerCertURL          = "Paypal-Cert-Url"
	headerAuthAlgo         = "Paypal-Auth-Algo"
)

// authAlgo is the only signature algorithm PayPal uses and we accept.
const authAlgo = "SHA256withRSA"

// signedMessage is what PayPal signs: transmission id, transmission time
// (as sent), webhook id and the CRC-32 (IEEE) of the raw body in decimal,
// joined by '|'.
func signedMessage(transmissionID, transmissionTime, webhookID string, body []byte) []byte {
	m := make([]byte, 0, len(transmissionID)+len(transmissionTime)+len(webhookID)+14)
	m = append(m, transmissionID...)
	m = append(m, '|')
	m = append(m, transmissionTime...)
	m = append(m, '|')
	m = append(m, webhookID...)
	m = append(m, '|')
	return strconv.AppendUint(m, uint64(crc32.ChecksumIEEE(body)), 10)
}

// verify checks the PayPal-* headers over body, judging time at at. The
// order matters for the errors: headers and certificate URL (bad
// signature), the certificate (temporary if not cached yet), the
// signature under every webhook id (bad signature), the time (stale),
// the certificate's validity at the transmission time (bad signature).
//
// The signature covers the body only through its CRC-32, which is not a
// cryptographic hash: a body forged to the same CRC-32 would verify under
// a captured signature, within the tolerance. That is PayPal's design;
// paygate does not act on a callback without confirming it with
// QueryByReference (ConfirmByQuery), which is what makes it safe.
func (c *Channel) verify(h http.Header, body []byte, at time.Time) error {
	get := func(k string) (string, bool) {
		v := h.Values(k)
		return firstOf(v), len(v) == 1 && v[0] != ""
	}
	id, ok1 := get(headerTransmissionID)
	ts, ok2 := get(headerTransmissionTime)
	sig, ok3 := get(headerTransmissionSig)
	certURL, ok4 := get(headerCertURL)
	algo, ok5 := get(headerAuthAlgo)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return fmt.Errorf("%w: PayPal-Transmission-Id, -Transmission-Time, -Transmission-Sig, -Cert-Url and -Auth-Algo must each be given once", psp.ErrBadSignature)
	}
	if algo != authAlgo {
		return fmt.Errorf("%w: PayPal-Auth-Algo %q, want %s", psp.ErrBadSignature, algo, authAlgo)
	}
	if err := c.checkCertURL(certURL); err != nil {
		return fmt.Errorf("%w: %v", psp.ErrBadSignature, err)
	}
	cc, ok, err := c.certs.lookup(certURL)
	if err != nil {
		return err
	}
	if !ok && c.cfg.CertDir != "" {
		if found, err := c.certs.fromDir(certURL); err != nil {
			return err
		} else if found {
			cc, ok, _ = c.certs.lookup(certURL)
		}
	}
	if !ok {
		if c.offline {
			where := "the channel's certificates"
			if c.cfg.CertDir != "" {
				name := path.Base(certURL)
				where += fmt.Sprintf(" nor %s (as %s or %s.pem)", c.cfg.CertDir, name, name)
			}
			return fmt.Errorf("%w: %s is in neither %s, and offline verification fetches nothing", ErrCertNotCached, certURL, where)
		}
		if !c.cfg.NoBackgroundFetch {
			c.certs.background(certURL)
		}
		return &psp.TemporaryError{Op: "paypal callback", Err: fmt.Errorf("%w: %s", ErrCertNotCached, certURL)}
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: PayPal-Transmission-Sig is not base64", psp.ErrBadSignature)
	}
	verified := false
	for _, wid := range c.cfg.WebhookIDs {
		d := sha256.Sum256(signedMessage(id, ts, wid, body))
		if rsa.VerifyPKCS1v15(cc.key, crypto.SHA256, d[:], raw) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return fmt.Errorf("%w: signature does not verify under any webhook id", psp.ErrBadSignature)
	}
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return fmt.Errorf("%w: PayPal-Transmission-Time %q is not RFC 3339", psp.ErrMalformed, ts)
	}
	// Whole seconds, without a Duration that could overflow.
	if d, tol := at.Unix()-t.Unix(), int64(c.cfg.Tolerance/time.Second); d > tol || d < -tol {
		return fmt.Errorf("%w: transmitted at %s, received at %s", psp.ErrStale, t.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	if t.Before(cc.leaf.NotBefore) || t.After(cc.leaf.NotAfter) {
		return fmt.Errorf("%w: certificate not valid at the transmission time %s", psp.ErrBadSignature, ts)
	}
	return nil
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// eventJSON is a webhook event's envelope.
type eventJSON struct {
	ID           string          `json:"id"`
	CreateTime   string          `json:"create_time"`
	ResourceType string          `json:"resource_type"`
	EventType    string          `json:"event_type"`
	Resource     json.RawMessage `json:"resource"`
}

// Event types ParseCallback reads. Subscribe the webhook to these.
const (
	eventCaptureCompleted = "PAYMENT.CAPTURE.COMPLETED"
	eventCapturePending   = "PAYMENT.CAPTURE.PENDING"
	eventCaptureDenied    = "PAYMENT.CAPTURE.DENIED"
	eventCaptureDeclined  = "PAYMENT.CAPTURE.DECLINED"
	eventOrderApproved    = "CHECKOUT.ORDER.APPROVED"
	eventOrderCompleted   = "CHECKOUT.ORDER.COMPLETED"
)

// ParseCallback verifies and reads a webhook (domain.CallbackAsync only; the
// buyer's return to ReturnURL carries nothing signed and is not parsed:
// the return handler queries). The signature is checked as verify says,
// with certificates already cached: an allowed certificate URL not cached
// yet gives a psp.TemporaryError and starts a background fetch (unless
// NoBackgroundFetch), so a retry passes; any other URL is a bad
// signature and is never fetched.
//
// PAYMENT.CAPTURE.* events state the capture: COMPLETED succeeded (the
// captured amount), PENDING pending, DENIED and DECLINED failed; the
// transaction code is its custom_id (else invoice_id), the PSP reference
// the order id from supplementary_data. CHECKOUT.ORDER.APPROVED and
// .COMPLETED state the order (approved is pending: the capture is made by
// QueryByReference when paygate confirms the callback). EventID is the
// event id; OccurredAt the resource's update_time, else its create_time,
// else the event's. Other event types are malformed. On error the
// notification is zero.
func (c *Channel) ParseCallback(cb domain.Callback) (domain.Notification, error) {
	if cb.Kind != domain.CallbackAsync {
		return domain.Notification{}, fmt.Errorf("paypal callback: kind %q: %w", cb.Kind, psp.ErrMalformed)
	}
	if err := c.verify(cb.Headers, cb.Body, cb.ReceivedAt); err != nil {
		if psp.IsTemporary(err) {
			return domain.Notification{}, err
		}
		return domain.Notification{}, fmt.Errorf("paypal callback: %w", err)
	}
	n, err := readEvent(cb.Body)
	if err != nil {
		return domain.Notification{}, psp.Verified(fmt.Errorf("paypal callback: %w: %v", psp.ErrMalformed, err))
	}
	return n, nil
}

func readEvent(body []byte) (domain.Notification, error) {
	var ev eventJSON
	if err := decodeJSON(body, &ev); err != nil {
		return domain.Notification{}, err
	}
	if ev.ID == "" {
		return domain.Notification{}, errors.New("event has no id")
	}
	var n domain.Notification
	var when string
	switch ev.EventType {
	case eventCaptureCompleted, eventCapturePending, eventCaptureDenied, eventCaptureDeclined:
		var cp captureJSON
		if err := decodeJSON(ev.Resource, &cp); err != nil {
			return domain.Notification{}, fmt.Errorf("resource: %v", err)
		}
		st, err := captureStatus(cp.Status)
		if err != nil {
			return domain.Notification{}, err
		}
		want := map[string]domain.PSPStatus{eventCaptureCompleted: domain.PSPSucceeded, eventCapturePending: domain.PSPPending,
			eventCaptureDenied: domain.PSPFailed, eventCaptureDeclined: domain.PSPFailed}[ev.EventType]
		if st != want && !(ev.EventType == eventCaptureCompleted && st == domain.PSPSucceeded) {
			return domain.Notification{}, fmt.Errorf("%s with capture status %q", ev.EventType, cp.Status)
		}
		n = domain.Notification{TransactionCode: cmpOr(cp.CustomID, cp.InvoiceID), PSPReference: cp.SupplementaryData.RelatedIDs.OrderID, Status: st}
		if n.Amount, err = cp.Amount.money(); err != nil {
			return domain.Notification{}, fmt.Errorf("capture %s: %v", cp.ID, err)
		}
		when = cmpOr(cp.UpdateTime, cp.CreateTime)
	case eventOrderApproved, eventOrderCompleted:
		var o orderJSON
		if err := decodeJSON(ev.Resource, &o); err != nil {
			return domain.Notification{}, fmt.Errorf("resource: %v", err)
		}
		if o.ID == "" {
			return domain.Notification{}, errors.New("order without id")
		}
		var err error
		if n, err = orderNotification(o); err != nil {
			return domain.Notification{}, err
		}
		if !n.OccurredAt.IsZero() {
			n.EventID = ev.ID
			return n, nil
		}
		when = cmpOr(o.UpdateTime, o.CreateTime)
	default:
		return domain.Notification{}, fmt.Errorf("event type %q is not a payment event paygate reads", ev.EventType)
	}
	if n.TransactionCode == "" {
		return domain.Notification{}, errors.New("resource carries no transaction code (custom_id, invoice_id)")
	}
	n.EventID = ev.ID
	t, err := parseTime(cmpOr(when, ev.CreateTime))
	if err != nil {
		return domain.Notification{}, err
	}
	n.OccurredAt = t
	return n, nil
}
