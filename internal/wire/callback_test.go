package wire_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/wire"
	"github.com/paygate/paygate/schemas"
)

var cbAt = time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)

// sameCallback compares domain callbacks: the kind by its value, an
// absent and an empty header map or body alike.
var sameCallback = cmp.Options{cmp.AllowUnexported(domain.CallbackKind{}), cmpopts.EquateEmpty()}

// TestCallbackRoundTrip: a raw callback of every kind becomes a domain
// callback and back, unchanged (the query as received, not as parsed);
// what the adapters read is parsed once, here.
func TestCallbackRoundTrip(t *testing.T) {
	t.Parallel()
	for _, raw := range []schemas.RawCallback{
		{ID: "psp_callback/1", Channel: "stripe_us", Kind: "async", Method: "POST", Path: "/v1/callbacks/stripe_us",
			Headers:    map[string][]string{"Stripe-Signature": {"t=1,v1=ab"}, "X-Many": {"a", "b"}},
			Body:       []byte(`{"id":"evt_1"}`),
			ReceivedAt: cbAt},
		{ID: "psp_callback/2", Channel: "alipay", Kind: "sync", Method: "GET", Path: "/v1/return/alipay",
			Query: "out_trade_no=T1&sign=a%2Bb&sign_type=RSA2&z=1&a=2", ReceivedAt: cbAt},
		{ID: "probe/T1/3", Channel: "sim", Kind: "status_probe", ReceivedAt: cbAt, TransactionCode: "T1", ExpireIfUnpaid: true},
	} {
		cb, err := wire.Callback(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw.ID, err)
		}
		if cb.MessageID != raw.ID || cb.Kind.String() != raw.Kind || cb.Channel != raw.Channel || cb.QueryErr != nil {
			t.Errorf("%s: read as %+v", raw.ID, cb)
		}
		if back := wire.RawCallback(cb); !cmp.Equal(back, raw) {
			t.Errorf("%s: round trip (-want +got):\n%s", raw.ID, cmp.Diff(raw, back))
		}
		b, err := wire.EncodeCallback(cb)
		if err != nil {
			t.Fatalf("%s: encode: %v", raw.ID, err)
		}
		again, err := wire.DecodeCallback(b)
		if err != nil {
			t.Fatalf("%s: decode: %v", raw.ID, err)
		}
		if diff := cmp.Diff(cb, again, sameCallback); diff != "" {
			t.Errorf("%s: through the topic (-want +got):\n%s", raw.ID, diff)
		}
	}
	cb, _ := wire.Callback(schemas.RawCallback{ID: "x", Channel: "alipay", Kind: "sync", Method: "GET", Path: "/", Query: "sign=a%2Bb&z=1&z=2"})
	if want := (url.Values{"sign": {"a+b"}, "z": {"1", "2"}}); !cmp.Equal(cb.Query, want) {
		t.Errorf("query read as %v, want %v", cb.Query, want)
	}
	if cb.Kind != domain.CallbackSync {
		t.Errorf("kind %v, want sync", cb.Kind)
	}
}

// TestCallbackProbe: the probe a writer builds is the raw callback the
// schema wants, and reads back as the same probe.
func TestCallbackProbe(t *testing.T) {
	t.Parallel()
	p := domain.ProbeCallback("probe/T1/1", "sim", "T1", cbAt, true)
	b, err := wire.EncodeCallback(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := schemas.Validate(schemas.PSPCallbackSchema, b); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	got, err := wire.DecodeCallback(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got, sameCallback); diff != "" {
		t.Errorf("probe (-want +got):\n%s", diff)
	}
}

// TestCallbackRefusesAnUnknownKind: a kind outside the enum is an error
// (the schema refuses it before, on the topic), not a callback.
func TestCallbackRefusesAnUnknownKind(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"", "ASYNC", "webhook", "probe"} {
		if cb, err := wire.Callback(schemas.RawCallback{ID: "x", Channel: "sim", Kind: kind, Method: "POST", Path: "/"}); err == nil {
			t.Errorf("kind %q read as %+v", kind, cb)
		}
	}
	if _, err := wire.DecodeCallback([]byte(`{"id":"x","channel":"sim","kind":"webhook","method":"POST","path":"/","received_at":"2026-11-25T10:00:00Z"}`)); err == nil {
		t.Error("a value the schema refuses decoded")
	}
}

// TestCallbackMalformedQuery: a query url.ParseQuery cannot read is kept
// as received and its error carried with the callback, for verification
// to refuse: the conversion does not fail, so the callback is stored as
// evidence.
func TestCallbackMalformedQuery(t *testing.T) {
	t.Parallel()
	raw := schemas.RawCallback{ID: "psp_callback/3", Channel: "payu", Kind: "sync", Method: "GET", Path: "/v1/return/payu",
		Query: "txnid=T1&hash=%zz&status=success", ReceivedAt: cbAt}
	cb, err := wire.Callback(raw)
	if err != nil {
		t.Fatal(err)
	}
	if cb.QueryErr == nil || cb.RawQuery != raw.Query {
		t.Fatalf("malformed query read as %v (error %v)", cb.Query, cb.QueryErr)
	}
	if cb.Query.Get("txnid") != "T1" {
		t.Errorf("what could be read is not kept: %v", cb.Query)
	}
	if back := wire.RawCallback(cb); !cmp.Equal(back, raw) {
		t.Errorf("round trip (-want +got):\n%s", cmp.Diff(raw, back))
	}
}
