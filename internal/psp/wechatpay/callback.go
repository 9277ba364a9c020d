package wechatpay

import (
	"fmt"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// notifyJSON is a callback's envelope; the payment is in resource,
// encrypted.
type notifyJSON struct {
	ID           string `json:"id"`
	CreateTime   string `json:"create_time"`
	EventType    string `json:"event_type"`
	ResourceType string `json:"resource_type"`
	Resource     struct {
		Algorithm      string `json:"algorithm"`
		Ciphertext     string `json:"ciphertext"`
		AssociatedData string `json:"associated_data"`
		OriginalType   string `json:"original_type"`
		Nonce          string `json:"nonce"`
	} `json:"resource"`
}

// ParseCallback verifies and reads a payment callback (domain.CallbackAsync only;
// WeChat has no signed browser return): the Wechatpay-Signature over
// "timestamp\nnonce\nbody\n" with the platform key the Wechatpay-Serial
// names, the Wechatpay-Timestamp within the tolerance of cb.ReceivedAt,
// then the resource decrypted with the APIv3key. The payment must be of
// this merchant. The notification's EventID is the callback id;
// OccurredAt is success_time for a payment, else the callback's
// create_time. On error the notification is zero. No I/O.
func (c *Channel) ParseCallback(cb domain.Callback) (domain.Notification, error) {
	if cb.Kind != domain.CallbackAsync {
		return domain.Notification{}, fmt.Errorf("wechatpay callback: kind %q: %w", cb.Kind, psp.ErrMalformed)
	}
	if err := c.verify(cb.Headers, cb.Body, cb.ReceivedAt); err != nil {
		return domain.Notification{}, fmt.Errorf("wechatpay callback: %w", err)
	}
	n, err := c.readCallback(cb.Body)
	if err != nil {
		return domain.Notification{}, psp.Verified(fmt.Errorf("wechatpay callback: %w: %v", psp.ErrMalformed, err))
	}
	return n, nil
}

func (c *Channel) readCallback(body []byte) (domain.Notification, error) {
	var ev notifyJSON
	if err := decodeJSON(body, &ev); err != nil {
		return domain.Notification{}, err
	}
	if ev.ID == "" {
		return domain.Notification{}, fmt.Errorf("no id")
	}
	r := ev.Resource
	if r.Algorithm != "AEAD_AES_256_GCM" || r.OriginalType != "transaction" {
		return domain.Notification{}, fmt.Errorf("resource %q encrypted with %q, want a transaction with AEAD_AES_256_GCM", r.OriginalType, r.Algorithm)
	}
	pt, err := decryptResource([]byte(c.cfg.APIv3Key), r.Ciphertext, r.Nonce, r.AssociatedData)
	if err != nil {
		return domain.Notification{}, err
	}
	var v transactionJSON
	if err := decodeJSON(pt, &v); err != nil {
		return domain.Notification{}, fmt.Errorf("resource: %v", err)
	}
	n, err := c.transaction(v)
	if err != nil {
		return domain.Notification{}, err
	}
	n.EventID = ev.ID
	if n.OccurredAt.IsZero() {
		t, err := time.Parse(time.RFC3339, ev.CreateTime)
		if err != nil {
			return domain.Notification{}, fmt.Errorf("create_time %q: %v", ev.CreateTime, err)
		}
		n.OccurredAt = t.UTC()
	}
	return n, nil
}
