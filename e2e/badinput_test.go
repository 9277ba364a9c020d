package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/schemas"
)

// topicSize is how many records a topic holds (sum of end offsets).
func (e *env) topicSize(topic string) int64 {
	e.t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(e.app.Brokers...), Timeout: 5 * time.Second}
	md, err := c.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 {
		e.t.Fatalf("metadata %s: %v", topic, err)
	}
	var req []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		req = append(req, kafka.LastOffsetOf(p.ID))
	}
	res, err := c.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		e.t.Fatalf("list offsets %s: %v", topic, err)
	}
	var n int64
	for _, p := range res.Topics[topic] {
		n += p.LastOffset
	}
	return n
}

func TestBadPayRequestsAreRefusedAndLeaveNothing(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	good := payBody("BAD-1", 1999)
	now := time.Now()
	big := append([]byte(`{"order_id":"BAD-1","description":"`), bytes.Repeat([]byte("x"), 70<<10)...)
	big = append(big, `"}`...)
	withField := func(k string, v any) []byte {
		var m map[string]any
		_ = json.Unmarshal(good, &m)
		m[k] = v
		b, _ := json.Marshal(m)
		return b
	}
	returns := func(success string) []byte {
		return withField("return_urls", map[string]string{"success": success, "failure": "https://shop.example/f", "pending": "https://shop.example/p"})
	}
	repeated := bytes.Replace(good, []byte(`"amount":1999`), []byte(`"amount":1999,"amount":1`), 1)
	deepRepeat := bytes.Replace(good, []byte(`"success":"https://shop.example/ok"`), []byte(`"success":"https://shop.example/ok","success":"https://evil.example/"`), 1)
	folded := bytes.Replace(good, []byte(`"amount":1999`), []byte(`"amount":1999,"AMOUNT":1`), 1)
	latin1 := bytes.Replace(good, []byte(`"Phone case"`), []byte("\"Phone caf\xe9\""), 1)
	surrogate := bytes.Replace(good, []byte(`"Phone case"`), []byte(`"Phone \udc00case"`), 1)
	withType := func(ct string) http.Header {
		h := signed(good, now, app.DevMallSecret)
		h.Del("Content-Type")
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		return h
	}
	for _, b := range [][]byte{repeated, deepRepeat, folded, latin1, surrogate} {
		if bytes.Equal(b, good) {
			t.Fatalf("a bad body is the good one: %s", good)
		}
	}
	cases := []struct {
		name    string
		body    []byte
		headers http.Header
		status  int
		detail  string
	}{
		{"unsigned", good, http.Header{"Content-Type": {"application/json"}}, 401, "X-Paygate-Key-Id"},
		{"unknown key", good, func() http.Header {
			h := signed(good, now, app.DevMallSecret)
			h.Set("X-Paygate-Key-Id", "someone")
			return h
		}(), 401, "X-Paygate-Key-Id"},
		{"wrong secret", good, signed(good, now, "not-the-secret"), 401, "no valid signature"},
		{"tampered after signing", withField("amount", 1), signed(good, now, app.DevMallSecret), 401, "no valid signature"},
		{"stale", good, signed(good, now.Add(-301*time.Second), app.DevMallSecret), 401, "too old"},
		// Well past the 300 s tolerance: the timestamp is whole seconds and
		// the server reads its clock later, so one second past would be flaky.
		{"from the future", good, signed(good, now.Add(330*time.Second), app.DevMallSecret), 401, "future"},
		{"oversized", big, signed(big, now, app.DevMallSecret), 413, "exceeds"},
		{"malformed JSON", []byte(`{"order_id":`), signed([]byte(`{"order_id":`), now, app.DevMallSecret), 400, "invalid JSON"},
		{"float amount", withField("amount", 19.99), signed(withField("amount", 19.99), now, app.DevMallSecret), 400, "/amount"},
		{"unknown field", withField("amout", 5), signed(withField("amout", 5), now, app.DevMallSecret), 400, "amout"},
		{"unknown currency", withField("currency", "XXY"), signed(withField("currency", "XXY"), now, app.DevMallSecret), 400, "unknown currency"},
		{"zero amount", withField("amount", 0), signed(withField("amount", 0), now, app.DevMallSecret), 400, "/amount"},
		{"bad order id", withField("order_id", "-x"), signed(withField("order_id", "-x"), now, app.DevMallSecret), 400, "order_id"},
		{"return url off the allow-list", returns("https://evil.example/ok"), signed(returns("https://evil.example/ok"), now, app.DevMallSecret), 400, "allow-list"},
		{"return url not http", returns("javascript:alert(1)"), signed(returns("javascript:alert(1)"), now, app.DevMallSecret), 400, "success"},
		// Bytes a decoder would rewrite or choose among, signed all the
		// same: refused with where they are, never stored rewritten.
		{"repeated amount", repeated, signed(repeated, now, app.DevMallSecret), 400,
			`invalid pay-request: /amount: key "amount" repeated at byte`},
		{"repeated key deep down", deepRepeat, signed(deepRepeat, now, app.DevMallSecret), 400,
			`invalid pay-request: /return_urls/success: key "success" repeated at byte`},
		{"amount again in capitals", folded, signed(folded, now, app.DevMallSecret), 400,
			`/AMOUNT: key "AMOUNT" at byte`},
		{"not UTF-8", latin1, signed(latin1, now, app.DevMallSecret), 400,
			`invalid pay-request: /description: not valid UTF-8: byte 0xe9 at byte`},
		{"unpaired surrogate", surrogate, signed(surrogate, now, app.DevMallSecret), 400,
			`/description: \udc00 at byte`},
		{"form content type", good, withType("application/x-www-form-urlencoded"), 415,
			"Content-Type application/x-www-form-urlencoded is not accepted here; send application/json"},
		{"text content type", good, withType("text/plain; charset=utf-8"), 415, "Content-Type text/plain is not accepted here"},
		{"no content type", good, withType(""), 415, "Content-Type is missing"},
		{"a charset other than UTF-8", good, withType("application/json; charset=iso-8859-1"), 415, `charset "iso-8859-1" is not accepted`},
		{"unparsable content type", good, withType("application/json; charset"), 415, "cannot be parsed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, b := e.do("POST", "/v1/payments", c.body, c.headers)
			var er schemas.Error
			_ = json.Unmarshal(b, &er)
			if code != c.status || !strings.Contains(er.Detail, c.detail) {
				t.Errorf("got %d %s, want %d with detail containing %q", code, b, c.status, c.detail)
			}
		})
	}
	// POST /v1/refunds reads its body the same way.
	refund := refundBody("BAD-R1", "BAD-1", "", 500, "goodwill")
	refundRepeat := bytes.Replace(refund, []byte(`"refund_id":"BAD-R1"`), []byte(`"refund_id":"BAD-R1","refund_id":"BAD-R2"`), 1)
	form := signed(refund, now, app.DevMallSecret)
	form.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range []struct {
		name   string
		body   []byte
		h      http.Header
		status int
		detail string
	}{
		{"refund with a repeated key", refundRepeat, signed(refundRepeat, now, app.DevMallSecret), 400, `invalid refund-request: /refund_id: key "refund_id" repeated at byte`},
		{"refund as a form", refund, form, 415, "Content-Type application/x-www-form-urlencoded is not accepted here"},
	} {
		code, b := e.do("POST", "/v1/refunds", c.body, c.h)
		var er schemas.Error
		_ = json.Unmarshal(b, &er)
		if code != c.status || !strings.Contains(er.Detail, c.detail) {
			t.Errorf("%s: got %d %s, want %d with detail containing %q", c.name, code, b, c.status, c.detail)
		}
	}
	// Nothing got in: no message, no order, no request.
	if n := e.topicSize(schemas.TopicPayRequests) + e.topicSize(schemas.TopicRefundRequests); n != 0 {
		t.Errorf("%d pay or refund requests on the topics", n)
	}
	if n := e.scalar(`SELECT count(*) FROM orders`) + e.scalar(`SELECT count(*) FROM pay_requests`); n != 0 {
		t.Errorf("%d order or request rows", n)
	}
	// The same good request then works.
	if code, b := e.do("POST", "/v1/payments", good, signed(good, time.Now(), app.DevMallSecret)); code != 202 {
		t.Fatalf("good request: %d %s", code, b)
	}
}

func TestIdempotencyKeyMakesRetriesOneRequest(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	sessions := e.consume(schemas.TopicPaySessions, "mall-idem")
	body := payBody("IDEM-1", 700)
	for i := 0; i < 3; i++ {
		h := signed(body, time.Now(), app.DevMallSecret)
		h.Set("Idempotency-Key", "retry-me-1")
		if code, b := e.do("POST", "/v1/payments", body, h); code != 202 {
			t.Fatalf("try %d: %d %s", i, code, b)
		}
	}
	e.waitSession("IDEM-1", 0)
	// Once payinit has it, a retry is still taken into Kafka (the
	// ingress reads no database) and changes nothing; the key reused for
	// another request is accepted too, then refused downstream against
	// the first body stored under it.
	h := signed(body, time.Now(), app.DevMallSecret)
	h.Set("Idempotency-Key", "retry-me-1")
	if code, b := e.do("POST", "/v1/payments", body, h); code != 202 {
		t.Errorf("retry after processing: %d %s", code, b)
	}
	other := payBody("IDEM-2", 700)
	h = signed(other, time.Now(), app.DevMallSecret)
	h.Set("Idempotency-Key", "retry-me-1")
	if code, b := e.do("POST", "/v1/payments", other, h); code != 202 {
		t.Errorf("reused key with another body: %d %s, want 202", code, b)
	}
	evs := sessions.waitFor(t, 20*time.Second, "the reused key's rejection", func(evs []event) bool {
		for _, ev := range evs {
			if ev.Key == "IDEM-2" {
				return true
			}
		}
		return false
	})
	var s schemas.PaySession
	for _, ev := range evs {
		if ev.Key == "IDEM-2" {
			_ = json.Unmarshal(ev.Value, &s)
			if !strings.HasPrefix(ev.ID, "pay_session/rejected/pay_request/dev-mall/retry-me-1/reused/") {
				t.Errorf("rejection event id %q", ev.ID)
			}
		}
	}
	if s.Type != schemas.SessionRejected || !strings.HasPrefix(s.Reason, "idempotency_key_reused: message id pay_request/dev-mall/retry-me-1 was first used for another request (order IDEM-1") {
		t.Errorf("session of the reused key: %+v", s)
	}
	code, b := e.do("GET", "/v1/payments/IDEM-2", nil, nil)
	var er schemas.Error
	if code != 409 || json.Unmarshal(b, &er) != nil || er.Error != "rejected" || !strings.HasPrefix(er.Detail, "idempotency_key_reused:") {
		t.Errorf("GET IDEM-2: %d %s, want 409 rejected idempotency_key_reused", code, b)
	}
	// The same body under the same key, sent after the refusal: nothing
	// more (one refusal recorded, one event).
	if code, b := e.do("POST", "/v1/payments", other, h); code != 202 {
		t.Errorf("the refused request again: %d %s", code, b)
	}
	e.quiet(30 * time.Second)
	if n := e.scalar(`SELECT count(*) FROM attempts WHERE order_id = 'IDEM-1'`); n != 1 {
		t.Errorf("attempts = %d, want 1", n)
	}
	if n := e.scalar(`SELECT count(*) FROM pay_requests WHERE outcome = 'rejected'`); n != 1 {
		t.Errorf("refused requests recorded = %d, want 1", n)
	}
	if n := e.scalar(`SELECT count(*) FROM outbox WHERE event_id LIKE 'pay_session/rejected/%'`); n != 1 {
		t.Errorf("rejection events = %d, want 1", n)
	}
	// Without the key, a repeat request is a new attempt (a buyer's retry).
	if code, _ := e.do("POST", "/v1/payments", body, signed(body, time.Now(), app.DevMallSecret)); code != 202 {
		t.Fatal(code)
	}
	e.waitSession("IDEM-1", 1)
}

func TestConflictingAndPaidRepeatRequestsAreRejected(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	sessions := e.consume(schemas.TopicPaySessions, "mall-test")
	a := e.requestPayment("REP-1", 1000)
	e.pay(a.PayURL, url.Values{"result": {"success"}})
	e.eventually(20*time.Second, "REP-1 paid", func() bool { return e.scalar(`SELECT count(*) FROM orders WHERE status = 'paid'`) >= 1 })
	for _, b := range [][]byte{payBody("REP-1", 1001), payBody("REP-1", 1000)} {
		if code, body := e.do("POST", "/v1/payments", b, signed(b, time.Now(), app.DevMallSecret)); code != 202 {
			t.Fatalf("%d %s", code, body)
		}
	}
	evs := sessions.waitFor(t, 20*time.Second, "two rejections", func(evs []event) bool {
		n := 0
		for _, ev := range evs {
			var s schemas.PaySession
			_ = json.Unmarshal(ev.Value, &s)
			if s.Type == schemas.SessionRejected {
				n++
			}
		}
		return n == 2
	})
	var reasons []string
	for _, ev := range evs {
		var s schemas.PaySession
		_ = json.Unmarshal(ev.Value, &s)
		if err := schemas.Validate(schemas.PaySessionSchema, ev.Value); err != nil {
			t.Errorf("pay session event: %v", err)
		}
		if s.Type == schemas.SessionRejected {
			reasons = append(reasons, s.Reason)
		}
	}
	if !strings.Contains(reasons[0], "another amount") || !strings.Contains(reasons[1], "already paid") {
		t.Errorf("rejection reasons = %q", reasons)
	}
	if n := e.scalar(`SELECT count(*) FROM attempts WHERE order_id = 'REP-1'`); n != 1 {
		t.Errorf("attempts = %d, want 1", n)
	}
}

func TestBadCallbacks(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	a := e.requestPayment("CB-1", 2500)

	// Unknown channel, oversized body.
	if code, _ := e.do("POST", "/v1/callbacks/nope", []byte(`{}`), nil); code != 404 {
		t.Errorf("unknown channel: %d", code)
	}
	if code, _ := e.do("POST", "/v1/callbacks/sim", bytes.Repeat([]byte("a"), 1<<20+1), nil); code != 413 {
		t.Errorf("oversized callback: %d", code)
	}
	// The largest callback accepted still fits in one Kafka record
	// (base64 in JSON grows it by a third): stored, then rejected as
	// unreadable by the callbacks group.
	if code, b := e.do("POST", "/v1/callbacks/sim", bytes.Repeat([]byte("a"), 1<<20), nil); code != 200 {
		t.Errorf("a 1 MiB callback: %d %s", code, b)
	}
	// A forged webhook for the real attempt: stored as evidence and
	// acknowledged, but it changes nothing.
	forged := []byte(`{"event_id":"evt_forged","type":"payment.succeeded","payment_id":"` + a.PSPReference + `","merchant_ref":"` +
		a.TransactionCode + `","status":"succeeded","amount":2500,"currency":"USD","occurred_at":"2026-11-25T10:00:00Z"}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h := http.Header{"X-Sim-Timestamp": {ts}, "X-Sim-Signature": {"v1=" + strings.Repeat("ab", 32)}, "Content-Type": {"application/json"}}
	if code, _ := e.do("POST", "/v1/callbacks/sim", forged, h); code != 200 {
		t.Errorf("forged webhook answered %d; the PSP's ack is given to anything stored", code)
	}
	// A forged browser return: refused, nobody is redirected.
	q := url.Values{"merchant_ref": {a.TransactionCode}, "payment_id": {a.PSPReference}, "status": {"succeeded"},
		"amount": {"2500"}, "currency": {"USD"}, "ts": {ts}, "sig": {"v1=" + strings.Repeat("00", 32)}}
	if code, _ := e.do("GET", "/v1/return/sim?"+q.Encode(), nil, nil); code != 400 {
		t.Errorf("forged return: %d", code)
	}
	e.eventually(20*time.Second, "3 callbacks stored", func() bool { return e.scalar(`SELECT count(*) FROM callbacks`) >= 3 })
	if n := e.scalar(`SELECT count(*) FROM callbacks WHERE rejected LIKE '%bad signature%' AND outcome IS NULL`); n != 3 {
		t.Errorf("rejected callbacks stored = %d, want 3 (forged webhook, forged return, unsigned 1 MiB)", n)
	}
	if n := e.scalar(`SELECT count(*) FROM orders WHERE status <> 'pending'`) + e.scalar(`SELECT count(*) FROM outbox WHERE topic = $1`, schemas.TopicPayments); n != 0 {
		t.Errorf("a forged callback changed something: %d rows", n)
	}

	// Amount tampering with a valid signature: never paid, flagged.
	e.pay(a.PayURL, url.Values{"result": {"success"}, "amount": {"1"}})
	e.eventually(20*time.Second, "the tampered attempt flagged", func() bool { return e.scalar(`SELECT count(*) FROM attempts WHERE review <> ''`) >= 1 })
	if n := e.scalar(`SELECT count(*) FROM attempts WHERE review LIKE '%0.01 USD%' AND status = 'pending'`); n != 1 {
		t.Errorf("tampered attempt not flagged: %d", n)
	}
	if n := e.scalar(`SELECT count(*) FROM orders WHERE status = 'paid'`); n != 0 {
		t.Errorf("tampered payment paid the order")
	}
	_, metrics := e.do("GET", "/metrics", nil, nil)
	if !strings.Contains(string(metrics), `paygate_payments_flagged_total{channel="sim"} `) ||
		!strings.Contains(string(metrics), `paygate_psp_callbacks_verified_total{channel="sim",result="bad_signature"}`) {
		t.Errorf("metrics lack the flagged payment or the forged callbacks")
	}
}

// Messages a producer writes straight to the topics that can never be
// processed go to the DLQ with the reason, and the groups go on: among
// them, on every topic a consumer reads JSON from, bytes that are not
// UTF-8 and objects with a repeated key, refused by the one checker
// (schemas.CheckJSON) with where the problem is.
func TestUnprocessableMessagesGoToTheDLQ(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	dlqPay := e.consume(schemas.DLQ(schemas.TopicPayRequests), "ops-pay")
	dlqCb := e.consume(schemas.DLQ(schemas.TopicPSPCallbacks), "ops-cb")
	dlqRefund := e.consume(schemas.DLQ(schemas.TopicRefundRequests), "ops-refund")
	dlqRecon := e.consume(schemas.DLQ(schemas.TopicReconciliation), "ops-recon")
	w := e.app.Writer
	ctx := context.Background()
	replace := func(b []byte, old, new string) []byte {
		out := bytes.Replace(b, []byte(old), []byte(new), 1)
		if bytes.Equal(out, b) {
			t.Fatalf("%q is not in %s", old, b)
		}
		return out
	}
	refund := refundBody("dlq-r1", "NO-SUCH-ORDER", "", 500, "goodwill")
	record := []byte(`{"type":"record","run_id":"rr-none","channel":"sim","day":"2026-03-10","side":"psp","seq":0,"item":"payment",` +
		`"reference":"T260310120000123ABCDEFGH","psp_reference":"sp_1","amount":1999,"currency":"USD","status":"succeeded",` +
		`"record_day":"2026-03-10","at":"2026-03-10T12:00:01Z"}`)
	callback := []byte(`{"id":"c-x","channel":"sim","kind":"async","method":"POST","path":"/v1/callbacks/sim","received_at":"2026-11-25T10:00:00Z"}`)
	// want is the start of each poisoned message's DLQ reason, by ce_id.
	want := map[string]string{
		"m-bad-json":        "permanent: invalid pay-request: (root): invalid JSON",
		"m-float":           "permanent: invalid pay-request: /amount: must be integer",
		"m-repeat":          `permanent: invalid pay-request: /amount: key "amount" repeated at byte`,
		"m-latin1":          "permanent: invalid pay-request: /description: not valid UTF-8: byte 0xe9 at byte",
		"c-garbage":         "permanent: invalid psp-callback: (root): invalid JSON",
		"c-unknown-channel": `permanent: raw callback x: unknown channel "nope"`,
		"c-repeat":          `permanent: invalid psp-callback: /channel: key "channel" repeated at byte`,
		"c-header-latin1":   "permanent: invalid psp-callback: /headers/X-A/0: not valid UTF-8: byte 0xff at byte",
		"r-repeat":          `permanent: invalid refund-request: /amount: key "amount" repeated at byte`,
		"r-surrogate":       `permanent: invalid refund-request: /reason: \ud800 at byte`,
		"rec-repeat":        `permanent: invalid recon-record: /amount: key "amount" repeated at byte`,
		"rec-latin1":        "permanent: invalid recon-record: /psp_reference: not valid UTF-8: byte 0xe9 at byte",
		"rec-unknown-run":   "permanent: ",
	}
	bad := []producers.Message{
		{Topic: schemas.TopicPayRequests, Key: "X", ID: "m-bad-json", Value: []byte(`{"order_id":`)},
		{Topic: schemas.TopicPayRequests, Key: "X", ID: "m-float", Value: replace(payBody("X", 1), `"amount":1`, `"amount":1.5`)},
		{Topic: schemas.TopicPayRequests, Key: "X", ID: "m-repeat", Value: replace(payBody("X", 1), `"amount":1`, `"amount":1,"amount":1000`)},
		{Topic: schemas.TopicPayRequests, Key: "X", ID: "m-latin1", Value: replace(payBody("X", 1), `"Phone case"`, "\"Phone caf\xe9\"")},
		{Topic: schemas.TopicPSPCallbacks, Key: "k", ID: "c-garbage", Value: []byte("\x00\x01garbage")},
		{Topic: schemas.TopicPSPCallbacks, Key: "k", ID: "c-repeat", Value: replace(callback, `"channel":"sim"`, `"channel":"sim","channel":"nope"`)},
		{Topic: schemas.TopicPSPCallbacks, Key: "k", ID: "c-header-latin1", Value: replace(callback, `"path":"/v1/callbacks/sim"`,
			"\"path\":\"/v1/callbacks/sim\",\"headers\":{\"X-A\":[\"\xff\"]}")},
		{Topic: schemas.TopicPSPCallbacks, Key: "k", ID: "c-unknown-channel", Value: []byte(`{"id":"x","channel":"nope","kind":"async","method":"POST","path":"/v1/callbacks/nope","received_at":"2026-11-25T10:00:00Z"}`)},
		{Topic: schemas.TopicRefundRequests, Key: "NO-SUCH-ORDER", ID: "r-repeat", Value: replace(refund, `"amount":500`, `"amount":500,"amount":5`)},
		{Topic: schemas.TopicRefundRequests, Key: "NO-SUCH-ORDER", ID: "r-surrogate", Value: replace(refund, `"goodwill"`, `"good\ud800will"`)},
		{Topic: schemas.TopicReconciliation, Key: "sim/2026-03-10", ID: "rec-repeat", Value: replace(record, `"amount":1999`, `"amount":1999,"amount":1`)},
		{Topic: schemas.TopicReconciliation, Key: "sim/2026-03-10", ID: "rec-latin1", Value: replace(record, `"sp_1"`, "\"sp_\xe9\"")},
		// After the poison, on each topic, messages the groups can read:
		// a record of a run nobody began (dead-lettered in its turn), a
		// refund of an order that does not exist (a failed refund).
		{Topic: schemas.TopicReconciliation, Key: "sim/2026-03-10", ID: "rec-unknown-run", Value: record},
		{Topic: schemas.TopicRefundRequests, Key: "NO-SUCH-ORDER", ID: "r-good", Value: refund},
	}
	if err := w.Write(ctx, bad...); err != nil {
		t.Fatal(err)
	}
	// A good request after the bad ones is still processed.
	if err := w.Write(ctx, producers.Message{Topic: schemas.TopicPayRequests, Key: "GOOD-1", ID: "m-good", Value: payBody("GOOD-1", 10)}); err != nil {
		t.Fatal(err)
	}
	e.waitSession("GOOD-1", 0)
	e.eventually(20*time.Second, "the good refund request recorded", func() bool {
		return e.scalar(`SELECT count(*) FROM refunds WHERE refund_id = 'dlq-r1' AND status = 'failed'`) == 1
	})
	var got []event
	got = append(got, dlqPay.waitFor(t, 20*time.Second, "4 pay DLQ entries", func(evs []event) bool { return len(evs) == 4 })...)
	got = append(got, dlqCb.waitFor(t, 20*time.Second, "4 callback DLQ entries", func(evs []event) bool { return len(evs) == 4 })...)
	got = append(got, dlqRefund.waitFor(t, 20*time.Second, "2 refund DLQ entries", func(evs []event) bool { return len(evs) == 2 })...)
	got = append(got, dlqRecon.waitFor(t, 20*time.Second, "3 recon DLQ entries", func(evs []event) bool { return len(evs) == 3 })...)
	for _, ev := range got {
		if !strings.HasPrefix(ev.Headers[schemas.HeaderDLQOrigin], "paygate.") {
			t.Errorf("DLQ entry %s lacks its origin: %v", ev.ID, ev.Headers)
		}
		w, ok := want[ev.ID]
		if r := ev.Headers[schemas.HeaderDLQReason]; !ok || !strings.HasPrefix(r, w) {
			t.Errorf("DLQ entry %s: reason %q, want it to start %q", ev.ID, r, w)
		}
		delete(want, ev.ID)
	}
	if len(want) != 0 {
		t.Errorf("not dead-lettered: %v", want)
	}
	if n := e.scalar(`SELECT count(*) FROM orders WHERE order_id = 'X'`); n != 0 {
		t.Errorf("a dead-lettered request made an order")
	}
	if n := e.scalar(`SELECT count(*) FROM refunds WHERE refund_id = 'dlq-r1' AND amount = 500`); n != 1 {
		t.Errorf("the dead-lettered refund requests changed the good one")
	}
}

// TestReusedKeyBeforeTheFirstIsStored: two bodies under one message id
// reach payinit before it stored either. Decided as when the first was
// stored long before: the first stored wins — the first in partition
// order when both are one order's (produced in one write, one batch),
// whichever transaction stores first when they are two orders' (two
// partitions) — and the other is refused, announced and shown.
func TestReusedKeyBeforeTheFirstIsStored(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	sessions := e.consume(schemas.TopicPaySessions, "mall-race")
	msgs := []producers.Message{
		{Topic: schemas.TopicPayRequests, Key: "RACE-1", ID: "mall/race/1", Type: schemas.TypePayRequest, Value: payBody("RACE-1", 100)},
		{Topic: schemas.TopicPayRequests, Key: "RACE-1", ID: "mall/race/1", Type: schemas.TypePayRequest, Value: payBody("RACE-1", 200)},
		{Topic: schemas.TopicPayRequests, Key: "RACE-2", ID: "mall/race/2", Type: schemas.TypePayRequest, Value: payBody("RACE-2", 300)},
		{Topic: schemas.TopicPayRequests, Key: "RACE-3", ID: "mall/race/2", Type: schemas.TypePayRequest, Value: payBody("RACE-3", 300)},
	}
	if err := e.app.Writer.Write(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	// And over HTTP: one key, two bodies, sent at once.
	var codes [2]int
	parallel(2, 2, func(i int) {
		b := payBody("RACE-4", int64(400+i))
		h := signed(b, time.Now(), app.DevMallSecret)
		h.Set("Idempotency-Key", "race-4")
		codes[i], _ = e.do("POST", "/v1/payments", b, h)
	})
	if codes != [2]int{202, 202} {
		t.Fatalf("the two POSTs under one key: %v, want both 202", codes)
	}
	rejected := func(evs []event) map[string]schemas.PaySession {
		out := map[string]schemas.PaySession{}
		for _, ev := range evs {
			var s schemas.PaySession
			if json.Unmarshal(ev.Value, &s) == nil && s.Type == schemas.SessionRejected {
				out[s.OrderID] = s
			}
		}
		return out
	}
	evs := sessions.waitFor(t, 30*time.Second, "three refusals", func(evs []event) bool { return len(rejected(evs)) == 3 })
	e.quiet(30 * time.Second)
	refused := rejected(evs)
	// One order, one partition: the first produced wins.
	if r, ok := refused["RACE-1"]; !ok || !strings.HasPrefix(r.Reason, "idempotency_key_reused: message id mall/race/1 was first used for another request (order RACE-1") {
		t.Errorf("RACE-1's second body: %+v", r)
	}
	if n := e.scalar(`SELECT count(*) FROM attempts WHERE order_id = 'RACE-1' AND amount = 100`); n != 1 || e.scalar(`SELECT count(*) FROM attempts WHERE order_id = 'RACE-1'`) != 1 {
		t.Errorf("RACE-1: want one attempt, of the first body's 1.00")
	}
	// Two orders, or two POSTs: one wins, the other is refused naming it.
	for _, pair := range [][2]string{{"RACE-2", "RACE-3"}, {"RACE-4", "RACE-4"}} {
		attempts := e.scalar(`SELECT count(*) FROM attempts WHERE order_id IN ($1, $2)`, pair[0], pair[1])
		if attempts != 1 {
			t.Errorf("%v: %d attempts, want 1", pair, attempts)
		}
	}
	loser := "RACE-3"
	if _, ok := refused["RACE-2"]; ok {
		loser = "RACE-2"
	}
	if r := refused[loser]; !strings.HasPrefix(r.Reason, "idempotency_key_reused: message id mall/race/2 was first used for another request") {
		t.Errorf("%s refused as %+v", loser, r)
	}
	code, b := e.do("GET", "/v1/payments/"+loser, nil, nil)
	if code != 409 || !strings.Contains(string(b), "idempotency_key_reused") {
		t.Errorf("GET %s: %d %s", loser, code, b)
	}
	code, b = e.do("GET", "/v1/payments/RACE-4", nil, nil)
	var p schemas.Payment
	if code != 200 || json.Unmarshal(b, &p) != nil || len(p.Attempts) != 1 || len(p.RejectedRequests) != 1 ||
		!strings.HasPrefix(p.RejectedRequests[0].Reason, "idempotency_key_reused: message id pay_request/dev-mall/race-4 was first used") ||
		(p.Amount != 400 && p.Amount != 401) {
		t.Errorf("GET RACE-4: %d %s", code, b)
	}
}
