package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/schemas"
)

// pspFake is one PSP as an httptest server speaking that PSP's own wire
// format, written from its public API reference and not from paygate's
// adapter: sessions, payments and refunds held in memory, webhooks signed
// as that PSP signs them, settlement lists as it publishes them. The
// adapter's end-to-end test drives it.
type pspFake interface {
	// channel is the channel's entry in the channels file: its kind and
	// settings, pointing the adapter at the fake.
	channel(name string) string
	// pay makes the buyer pay the session the adapter created for the
	// transaction code (with form, the fields paygate's session told the
	// buyer's browser to post, for a PSP that starts with a form post),
	// in full, and returns the webhook the PSP then sends about it.
	pay(t *testing.T, code string, form map[string]string) webhook
	// refunded is how much of the payment of the transaction code the
	// PSP has refunded, in minor units.
	refunded(code string) int64
	// notices are the webhooks the PSP sent on its own since it was last
	// asked (a refund's outcome, where the PSP reports it so), for the
	// test to deliver.
	notices() []webhook
}

// webhook is a PSP's HTTP call to the gateway's callback URL.
type webhook struct {
	header http.Header
	body   []byte
}

// adapters is the table: one row per PSP adapter. A new adapter joins
// the end-to-end test by adding a row (and its fake).
var adapters = []struct {
	name     string
	fake     func(t *testing.T) pspFake
	currency string
	amount   int64
	// ack is the answer the PSP expects to its webhook.
	ack int
	// reportAfterDay is set for a PSP that publishes a day's settlement
	// list only once the day is over (Adyen's daily report): today's run
	// then holds our payments, inside the tolerance window, rather than
	// matching them.
	reportAfterDay bool
}{
	{name: "stripe", fake: newStripeFake, currency: "USD", amount: 2599, ack: http.StatusOK},
	{name: "razorpay", fake: newRazorpayFake, currency: "INR", amount: 49900, ack: http.StatusOK},
	{name: "adyen", fake: newAdyenFake, currency: "EUR", amount: 4500, ack: http.StatusOK, reportAfterDay: true},
	{name: "payu", fake: newPayUFake, currency: "INR", amount: 129900, ack: http.StatusOK},
	{name: "alipay", fake: newAlipayFake, currency: "CNY", amount: 8800, ack: http.StatusOK},
	{name: "wechatpay", fake: newWeChatFake, currency: "CNY", amount: 6600, ack: http.StatusOK, reportAfterDay: true},
	{name: "paypal", fake: newPayPalFake, currency: "USD", amount: 3450, ack: http.StatusOK},
}

// TestEveryAdapterEndToEnd runs each adapter through the real pipeline
// against its fake PSP: pay requests become sessions at the PSP
// (Initiate); the buyer pays, and the PSP's signed webhook, confirmed by
// the PSP's status API (Query), pays the order with one paid event; a
// second attempt paid too is a duplicate payment, refunded in whole
// through the PSP's refund API; finance's partial refund is followed to
// its result; and the day is reconciled from the PSP's settlement list,
// without a mismatch.
func TestEveryAdapterEndToEnd(t *testing.T) {
	t.Parallel()
	for _, row := range adapters {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			fake := row.fake(t)
			channel := "e2e_" + row.name
			cfg := testConfig(t)
			cfg.ChannelsFile = filepath.Join(t.TempDir(), "channels.json")
			if err := os.WriteFile(cfg.ChannelsFile, []byte(`{"channels":[`+fake.channel(channel)+`]}`), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg.ReconSchedulingOff = true
			e := startWith(t, cfg, app.All)
			payments := e.consume(schemas.TopicPayments, "order-center")
			finance := e.consume(schemas.TopicRefundResults, "finance")

			order := "AD-" + strings.ToUpper(row.name)
			body := payBody(order, row.amount)
			body = bytes.Replace(body, []byte(`"currency":"USD"`), []byte(`"currency":"`+row.currency+`"`), 1)
			body = bytes.Replace(body, []byte(`"description"`), []byte(`"channel":"`+channel+`","description"`), 1)
			send := func() {
				if code, b := e.do("POST", "/v1/payments", body, signed(body, time.Now(), app.DevMallSecret)); code != http.StatusAccepted {
					t.Fatalf("pay request: %d %s", code, b)
				}
			}
			send()
			first := e.waitSession(order, 0)
			send() // the buyer starts again before paying: a second attempt
			second := e.waitSession(order, 1)
			if first.Channel != channel || second.Channel != channel || first.TransactionCode == second.TransactionCode {
				t.Fatalf("attempts %+v and %+v", first, second)
			}

			// The buyer pays the first: the PSP's webhook pays the order.
			callback := func(w webhook) {
				t.Helper()
				code, b := e.do("POST", "/v1/callbacks/"+channel, w.body, w.header)
				if code != row.ack {
					t.Fatalf("webhook answered %d %s, want %d", code, b, row.ack)
				}
			}
			// deliver sends what the PSP sent on its own meanwhile.
			deliver := func() {
				for _, w := range fake.notices() {
					callback(w)
				}
			}
			callback(fake.pay(t, first.TransactionCode, e.attemptForm(first.TransactionCode)))
			paid := payments.waitFor(t, 30*time.Second, "the paid event", func(evs []event) bool { return countType(evs, schemas.EventPaid) == 1 })
			if ev := paid[0].Payment; ev.OrderID != order || ev.TransactionCode != first.TransactionCode || ev.Amount != row.amount ||
				ev.Currency != row.currency || ev.Channel != channel {
				t.Errorf("paid event %+v", ev)
			}

			// Then the second: a duplicate payment, refunded in whole at
			// the PSP, its result published.
			callback(fake.pay(t, second.TransactionCode, e.attemptForm(second.TransactionCode)))
			e.eventually(30*time.Second, "the duplicate payment refunded at the PSP", func() bool {
				deliver()
				return fake.refunded(second.TransactionCode) == row.amount
			})

			// Finance refunds a part of the first.
			part := row.amount / 4
			refund := refundBody("fin-"+row.name, order, first.TransactionCode, part, "one item returned")
			refund = bytes.Replace(refund, []byte(`"currency":"USD"`), []byte(`"currency":"`+row.currency+`"`), 1)
			if code, b := e.requestRefund(refund); code != http.StatusAccepted {
				t.Fatalf("refund request: %d %s", code, b)
			}
			var r schemas.Refund
			e.eventually(30*time.Second, "finance's refund final", func() bool {
				deliver()
				var ok bool
				r, ok = e.getRefund("fin-" + row.name)
				return ok && r.Status != schemas.RefundInProgress
			})
			if r.Status != schemas.RefundSucceeded || r.Amount != part || r.PSPReference == "" {
				t.Errorf("finance's refund: %+v", r)
			}
			if got := fake.refunded(first.TransactionCode); got != part {
				t.Errorf("the PSP refunded %d of the first attempt, want %d", got, part)
			}
			results := finance.waitFor(t, 30*time.Second, "two refund results", func(evs []event) bool { deliver(); return len(evs) >= 2 })

			// The day, from the PSP's settlement list: both payments
			// there, no mismatch.
			day := time.Now().In(e.app.Settlement.Zone(channel)).Format(time.DateOnly)
			runID, began, err := e.app.Settlement.Run(t.Context(), channel, day, "")
			if err != nil || !began {
				t.Fatalf("recon run: began %v, %v", began, err)
			}
			e.eventually(60*time.Second, "the run matched", func() bool {
				return e.scalar(`SELECT count(*) FROM recon_runs WHERE run_id = $1 AND status = 'done'`, runID) == 1
			})
			e.quiet(30 * time.Second)
			if n := countType(payments.snapshot(), schemas.EventPaid); n != 1 {
				t.Errorf("%d paid events, want 1", n)
			}
			if n := countType(payments.snapshot(), schemas.EventDuplicateDetected); n != 1 {
				t.Errorf("%d duplicate_detected events, want 1", n)
			}
			if got := results; len(finance.snapshot()) != 2 {
				t.Errorf("refund results %d, want 2 (the duplicate's, finance's): %v", len(finance.snapshot()), got)
			}
			if n := e.scalar(`SELECT count(*) FROM recon_mismatches WHERE last_run = $1`, runID); n != 0 {
				t.Errorf("%d reconciliation mismatches for %s", n, day)
			}
			matched, held := e.scalar(`SELECT matched FROM recon_runs WHERE run_id = $1`, runID), e.scalar(`SELECT held FROM recon_runs WHERE run_id = $1`, runID)
			switch {
			case row.reportAfterDay && (matched != 0 || held < 2):
				t.Errorf("today, before its report: %d payments matched, %d held; want both held", matched, held)
			case !row.reportAfterDay && matched < 2:
				t.Errorf("%d payments matched, want both attempts", matched)
			}
			if row.reportAfterDay {
				// Yesterday's report is out: read (empty), matched, clean.
				yesterday := time.Now().In(e.app.Settlement.Zone(channel)).AddDate(0, 0, -1).Format(time.DateOnly)
				runID, began, err := e.app.Settlement.Run(t.Context(), channel, yesterday, "")
				if err != nil || !began {
					t.Fatalf("recon run of %s: began %v, %v", yesterday, began, err)
				}
				e.eventually(60*time.Second, "yesterday's run matched", func() bool {
					return e.scalar(`SELECT count(*) FROM recon_runs WHERE run_id = $1 AND status = 'done'`, runID) == 1
				})
				if n := e.scalar(`SELECT count(*) FROM recon_mismatches WHERE last_run = $1`, runID); n != 0 {
					t.Errorf("%d mismatches for %s", n, yesterday)
				}
			}
		})
	}
}

// attemptForm is the form of an attempt's pay session ("" fields if none).
func (e *env) attemptForm(code string) map[string]string {
	e.t.Helper()
	var b []byte
	if err := e.db.QueryRow(`SELECT coalesce(form::text, '{}') FROM attempts WHERE transaction_code = $1`, code).Scan(&b); err != nil {
		e.t.Fatalf("form of %s: %v", code, err)
	}
	form := map[string]string{}
	if err := json.Unmarshal(b, &form); err != nil {
		e.t.Fatalf("form of %s: %v", code, err)
	}
	return form
}

func jsonError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"type":"invalid_request_error","message":%q}}`, fmt.Sprintf(format, args...))
}
