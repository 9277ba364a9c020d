package signature

import (
	"strconv"
	"testing"
	"time"
)

// A webhook-sized body (the simulator's are ~230 bytes).
var benchBody = []byte(`{"event_id":"evt_0123456789abcdef","type":"payment.succeeded","payment_id":"sp_0123456789abcdef","merchant_ref":"tc_0123456789abcdef0123","status":"succeeded","amount":1999,"currency":"USD","occurred_at":"2026-11-25T10:00:00.123456Z"}`)

func BenchmarkVerify(b *testing.B) {
	secrets := [][]byte{[]byte("old-secret"), []byte("sim-secret")}
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	h := Header(secrets[1], now.Unix(), benchBody)
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(h, ts, benchBody, secrets, now, DefaultTolerance); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyForged(b *testing.B) {
	secrets := [][]byte{[]byte("sim-secret")}
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	h := Header([]byte("forged"), now.Unix(), benchBody)
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(h, ts, benchBody, secrets, now, DefaultTolerance); err == nil {
			b.Fatal("forged verified")
		}
	}
}
