package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/wire"
	"github.com/paygate/paygate/schemas"
)

func TestRefundIntentHashTellsRetriesFromConflicts(t *testing.T) {
	t.Parallel()
	req := schemas.RefundRequest{RefundID: "f1", OrderID: "A1", Amount: 500, Currency: "USD", Reason: "r"}
	a, err := wire.RefundIntent(req, "m1", []byte(`{"refund_id":"f1"}`))
	if err != nil {
		t.Fatal(err)
	}
	// The same content under another message id (a retry, a redelivery)
	// hashes alike; any field changed does not.
	b, _ := wire.RefundIntent(req, "m2", []byte(`{ "refund_id" : "f1" }`))
	if !bytes.Equal(a.BodyHash, b.BodyHash) {
		t.Error("same request, different hash")
	}
	for _, other := range []schemas.RefundRequest{
		{RefundID: "f1", OrderID: "A2", Amount: 500, Currency: "USD", Reason: "r"},
		{RefundID: "f1", OrderID: "A1", TransactionCode: "T1", Amount: 500, Currency: "USD", Reason: "r"},
		{RefundID: "f1", OrderID: "A1", Amount: 501, Currency: "USD", Reason: "r"},
		{RefundID: "f1", OrderID: "A1", Amount: 500, Currency: "EUR", Reason: "r"},
		{RefundID: "f1", OrderID: "A1", Amount: 500, Currency: "USD", Reason: "other"},
	} {
		c, err := wire.RefundIntent(other, "m3", nil)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a.BodyHash, c.BodyHash) {
			t.Errorf("%+v hashes like %+v", other, req)
		}
	}
	if _, err := wire.RefundIntent(schemas.RefundRequest{RefundID: "f1", OrderID: "A1", Amount: 5, Currency: "XXQ"}, "m", nil); !errors.Is(err, domain.ErrUnknownCurrency) {
		t.Errorf("unknown currency: %v", err)
	}
	if _, err := wire.RefundIntent(schemas.RefundRequest{RefundID: "f 1", OrderID: "A1", Amount: 5, Currency: "USD"}, "m", nil); !errors.Is(err, domain.ErrInvalidRefundID) {
		t.Errorf("bad refund id: %v", err)
	}
}
