package razorpay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The parts of Razorpay's entities the adapter reads
// (https://razorpay.com/docs/api/). Amounts are int64 in the currency's
// smallest sub-unit (paise for INR): a JSON number with a fraction or an
// exponent fails to decode rather than round.

type errorJSON struct {
	Error *struct {
		Code        string `json:"code"`
		Description string `json:"description"`
		Source      string `json:"source"`
		Step        string `json:"step"`
		Reason      string `json:"reason"`
		Field       string `json:"field"`
	} `json:"error"`
}

type collectionJSON[T any] struct {
	Entity string `json:"entity"`
	Count  int    `json:"count"`
	Items  []T    `json:"items"`
}

type orderJSON struct {
	ID        string `json:"id"`
	Entity    string `json:"entity"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	Receipt   string `json:"receipt"`
	Status    string `json:"status"`
	Notes     notes  `json:"notes"`
	CreatedAt int64  `json:"created_at"`
}

type paymentJSON struct {
	ID        string `json:"id"`
	Entity    string `json:"entity"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	Status    string `json:"status"`
	OrderID   string `json:"order_id"`
	Captured  bool   `json:"captured"`
	Notes     notes  `json:"notes"`
	CreatedAt int64  `json:"created_at"`
}

type refundJSON struct {
	ID        string `json:"id"`
	Entity    string `json:"entity"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	PaymentID string `json:"payment_id"`
	Receipt   string `json:"receipt"`
	Notes     notes  `json:"notes"`
	Status    string `json:"status"`
}

// eventJSON is a webhook's payload
// (https://razorpay.com/docs/webhooks/payloads/payments/).
type eventJSON struct {
	Entity    string   `json:"entity"`
	AccountID string   `json:"account_id"`
	Event     string   `json:"event"`
	Contains  []string `json:"contains"`
	Payload   struct {
		Payment *struct {
			Entity paymentJSON `json:"entity"`
		} `json:"payment"`
		Order *struct {
			Entity orderJSON `json:"entity"`
		} `json:"order"`
	} `json:"payload"`
	CreatedAt int64 `json:"created_at"`
}

// notes are Razorpay's key-value notes. Razorpay renders empty notes as
// an empty array ([]) and others as an object; string values are read as
// they are, other scalars as their JSON text.
type notes map[string]string

func (n *notes) UnmarshalJSON(b []byte) error {
	t := bytes.TrimSpace(b)
	if bytes.Equal(t, []byte("null")) {
		*n = nil
		return nil
	}
	if len(t) > 0 && t[0] == '[' {
		var a []json.RawMessage
		if err := json.Unmarshal(t, &a); err != nil {
			return err
		}
		if len(a) != 0 {
			return errors.New("notes: a non-empty array")
		}
		*n = notes{}
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(t, &m); err != nil {
		return err
	}
	out := make(notes, len(m))
	for k, v := range m {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = s
			continue
		}
		vt := bytes.TrimSpace(v)
		if len(vt) == 0 || vt[0] == '{' || vt[0] == '[' {
			return fmt.Errorf("notes: %s is not a scalar", k)
		}
		out[k] = string(vt)
	}
	*n = out
	return nil
}

// decodeJSON reads exactly one JSON value into v.
func decodeJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after JSON value")
	}
	return nil
}
