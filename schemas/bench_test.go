package schemas

import (
	"encoding/json"
	"testing"
	"time"
)

func benchRawCallback(b *testing.B) []byte {
	body := []byte(`{"event_id":"evt_0123456789abcdef","type":"payment.succeeded","payment_id":"sp_0123456789abcdef","merchant_ref":"tc_0123456789abcdef0123","status":"succeeded","amount":1999,"currency":"USD","occurred_at":"2026-11-25T10:00:00.123456Z"}`)
	v, err := json.Marshal(RawCallback{ID: "psp_callback/0123456789abcdef0123456789abcdef", Channel: "sim", Kind: "async", Method: "POST",
		Path: "/v1/callbacks/sim", Headers: map[string][]string{"Content-Type": {"application/json"}, "X-Sim-Merchant": {"m_sim"},
			"X-Sim-Timestamp": {"1795600000"}, "X-Sim-Signature": {"v1=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
			"User-Agent": {"paygate-bench/1"}, "Content-Length": {"230"}},
		Body: body, ReceivedAt: time.Now().UTC()})
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkValidateRawCallback is the generic schema check of a raw
// callback: what the callbacks group made of every message before it
// decoded it, and what it still makes of one not in paygate's own form.
func BenchmarkValidateRawCallback(b *testing.B) {
	v := benchRawCallback(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(PSPCallbackSchema, v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshalRawCallback is the decode that followed it.
func BenchmarkUnmarshalRawCallback(b *testing.B) {
	v := benchRawCallback(b)
	b.ReportAllocs()
	for b.Loop() {
		var raw RawCallback
		if err := json.Unmarshal(v, &raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRawCallback is the callbacks group's check and decode of
// a raw callback as the ingress writes it, in place of the two above.
func BenchmarkDecodeRawCallback(b *testing.B) {
	v := benchRawCallback(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeRawCallback(v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeRawCallback is the ingress's encoding of a callback.
func BenchmarkEncodeRawCallback(b *testing.B) {
	var raw RawCallback
	if err := json.Unmarshal(benchRawCallback(b), &raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeRawCallback(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarshalRawCallback is the same through json.Marshal, as the
// ingress encoded until EncodeRawCallback.
func BenchmarkMarshalRawCallback(b *testing.B) {
	var raw RawCallback
	if err := json.Unmarshal(benchRawCallback(b), &raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodePaidEvent is the encoding of a paid event for the outbox.
func BenchmarkEncodePaidEvent(b *testing.B) {
	at := time.Now().UTC()
	ev := PaymentEvent{Type: EventPaid, OrderID: "A1001", Amount: 1999, Currency: "USD", Channel: "sim",
		TransactionCode: "tc_0123456789abcdef0123", PSPReference: "sp_0123456789abcdef", PaidAt: &at}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(ev); err != nil {
			b.Fatal(err)
		}
	}
}
