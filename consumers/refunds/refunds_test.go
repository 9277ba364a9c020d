package refunds

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/schemas"
)

func TestIntentHashTellsRetriesFromConflicts(t *testing.T) {
	req := schemas.RefundRequest{RefundID: "f1", OrderID: "A1", Amount: 500, Currency: "USD", Reason: "r"}
	a, err := Intent(req, "m1", []byte(`{"refund_id":"f1"}`))
	if err != nil {
		t.Fatal(err)
	}
	// The same content under another message id (a retry, a redelivery)
	// hashes alike; any field changed does not.
	b, _ := Intent(req, "m2", []byte(`{ "refund_id" : "f1" }`))
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
		c, err := Intent(other, "m3", nil)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a.BodyHash, c.BodyHash) {
			t.Errorf("%+v hashes like %+v", other, req)
		}
	}
	if _, err := Intent(schemas.RefundRequest{RefundID: "f1", OrderID: "A1", Amount: 5, Currency: "XXQ"}, "m", nil); !errors.Is(err, domain.ErrUnknownCurrency) {
		t.Errorf("unknown currency: %v", err)
	}
	if _, err := Intent(schemas.RefundRequest{RefundID: "f 1", OrderID: "A1", Amount: 5, Currency: "USD"}, "m", nil); !errors.Is(err, domain.ErrInvalidRefundID) {
		t.Errorf("bad refund id: %v", err)
	}
}

func TestBackoffDoublesUpToTheMax(t *testing.T) {
	e := &executor{cfg: Config{MinBackoff: time.Second, MaxBackoff: 10 * time.Second}}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for polls, w := range want {
		if got := e.backoff(polls); got != w {
			t.Errorf("backoff(%d) = %s, want %s", polls, got, w)
		}
	}
	if got := e.backoff(1000); got != 10*time.Second {
		t.Errorf("backoff(1000) = %s", got)
	}
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	var c Config
	if err := c.defaults(); err != nil {
		t.Fatal(err)
	}
	if c.Lease != time.Minute || c.CallTimeout != 30*time.Second || c.MinBackoff != time.Second || c.MaxBackoff != 5*time.Minute ||
		c.PollInterval != time.Second || c.PollBatch != 100 || c.Concurrency != 16 {
		t.Errorf("defaults = %+v", c)
	}
	bad := Config{Lease: time.Second, CallTimeout: 2 * time.Second}
	if err := bad.defaults(); err == nil {
		t.Error("a lease shorter than a call was accepted")
	}
}
