package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/producers/sweeper"
	"github.com/paygate/paygate/schemas"
)

// TestDuplicatePaymentsAreDetectedAndRefundedOnce: one order paid twice on
// the same channel, one paid on two channels; both attempts of each paid
// at once, every callback delivered four times (two webhooks, two
// browser returns). Exactly one paid event per order, one
// duplicate_detected, one refund request for the extra payment's whole
// amount, one repeat_payments row.
func TestDuplicatePaymentsAreDetectedAndRefundedOnce(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	payments := e.consume(schemas.TopicPayments, "order-center-dup")
	refunds := e.consume(schemas.TopicRefundRequests, "finance-dup")

	cases := []struct{ order, second string }{{"DUP-SAME", ""}, {"DUP-OTHER", "sim2"}}
	pairs := make([][2]schemas.Attempt, len(cases))
	for i, c := range cases {
		pairs[i][0] = e.requestPayment(c.order, 4200)
		pairs[i][1] = e.requestAttempt(c.order, 4200, c.second, 1)
		if want := map[bool]string{true: "sim", false: c.second}[c.second == ""]; pairs[i][1].Channel != want {
			t.Fatalf("%s: second attempt on %s, want %s", c.order, pairs[i][1].Channel, want)
		}
	}
	parallel(4, 4, func(i int) {
		e.pay(pairs[i/2][i%2].PayURL, url.Values{"result": {"success"}, "callbacks": {"twice"}})
	})
	if t.Failed() {
		t.FailNow()
	}
	e.eventually(60*time.Second, "all 16 callbacks stored", func() bool { return e.scalar(`SELECT count(*) FROM callbacks`) >= 16 })
	payments.waitFor(t, 30*time.Second, "2 paid + 2 duplicate_detected", func(evs []event) bool {
		return countType(evs, "paid") >= 2 && countType(evs, "duplicate_detected") >= 2
	})
	refunds.waitFor(t, 30*time.Second, "2 refund requests", func(evs []event) bool { return len(evs) >= 2 })
	e.quiet(30 * time.Second) // a wrong second event would have shown
	evs, reqs := payments.snapshot(), refunds.snapshot()

	for i, c := range cases {
		var paid, dup []schemas.PaymentEvent
		for _, ev := range evs {
			if ev.Payment.OrderID != c.order {
				continue
			}
			switch ev.Payment.Type {
			case "paid":
				paid = append(paid, ev.Payment)
			case "duplicate_detected":
				dup = append(dup, ev.Payment)
			}
		}
		if len(paid) != 1 || len(dup) != 1 {
			t.Errorf("%s: %d paid and %d duplicate_detected events, want 1 and 1", c.order, len(paid), len(dup))
			continue
		}
		if paid[0].TransactionCode == dup[0].TransactionCode {
			t.Errorf("%s: the duplicate is the paying attempt", c.order)
		}
		codes := map[string]bool{pairs[i][0].TransactionCode: true, pairs[i][1].TransactionCode: true}
		if !codes[paid[0].TransactionCode] || !codes[dup[0].TransactionCode] {
			t.Errorf("%s: events name attempts %s and %s", c.order, paid[0].TransactionCode, dup[0].TransactionCode)
		}
		var rr []schemas.RefundRequest
		for _, ev := range reqs {
			var r schemas.RefundRequest
			if err := json.Unmarshal(ev.Value, &r); err != nil {
				t.Fatal(err)
			}
			if r.OrderID == c.order {
				rr = append(rr, r)
			}
		}
		if len(rr) != 1 || rr[0].TransactionCode != dup[0].TransactionCode || rr[0].Amount != 4200 || rr[0].Currency != "USD" ||
			rr[0].Reason != schemas.ReasonDuplicatePayment {
			t.Errorf("%s: refund requests %+v, want one for %s of 4200 USD", c.order, rr, dup[0].TransactionCode)
		}
		if n := e.scalar(`SELECT count(*) FROM repeat_payments WHERE order_id = $1 AND transaction_code = $2 AND kind = 'duplicate_payment' AND amount = 4200`,
			c.order, dup[0].TransactionCode); n != 1 {
			t.Errorf("%s: %d repeat_payments rows", c.order, n)
		}
		if n := e.scalar(`SELECT count(*) FROM orders WHERE order_id = $1 AND status = 'paid' AND paid_attempt = $2`, c.order, paid[0].TransactionCode); n != 1 {
			t.Errorf("%s: not paid by its first successful attempt", c.order)
		}
	}
	if n := e.scalar(`SELECT count(*) FROM attempts WHERE status = 'paid'`); n != 4 {
		t.Errorf("paid attempts = %d, want 4: every payment the PSP took is known", n)
	}
}

// TestRepeatPayRequestFindsTheEarlierSuccess: the buyer paid, both
// callbacks were lost, and the mall asks again: payinit asks the PSP
// about the open attempt, the order is paid and notified, and no second
// attempt (no second charge) is started.
func TestRepeatPayRequestFindsTheEarlierSuccess(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	payments := e.consume(schemas.TopicPayments, "order-center-repeat")
	sessions := e.consume(schemas.TopicPaySessions, "mall-repeat")
	a := e.requestPayment("REPEAT-1", 900)
	e.pay(a.PayURL, url.Values{"result": {"success"}, "callbacks": {"none"}})
	body := payBody("REPEAT-1", 900)
	if code, b := e.do("POST", "/v1/payments", body, signed(body, time.Now(), app.DevMallSecret)); code != 202 {
		t.Fatalf("%d %s", code, b)
	}
	payments.waitFor(t, 20*time.Second, "the paid event", func(evs []event) bool { return countType(evs, "paid") == 1 })
	sessions.waitFor(t, 20*time.Second, "the repeat request's rejection", func(evs []event) bool {
		for _, ev := range evs {
			var s schemas.PaySession
			if json.Unmarshal(ev.Value, &s) == nil && s.Type == schemas.SessionRejected {
				return true
			}
		}
		return false
	})
	if n := e.scalar(`SELECT count(*) FROM attempts WHERE order_id = 'REPEAT-1'`); n != 1 {
		t.Errorf("attempts = %d, want 1", n)
	}
	if n := e.scalar(`SELECT count(*) FROM callbacks WHERE kind = 'status_probe' AND outcome = 'paid'`); n != 1 {
		t.Errorf("status probes that paid = %d, want 1", n)
	}
}

func TestRepeatPayRequestWithTheCheckOffStartsANewAttempt(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Payinit.SkipEarlierCheck = true
	e := startWith(t, cfg, app.All)
	a := e.requestPayment("REPEAT-2", 900)
	e.pay(a.PayURL, url.Values{"result": {"success"}, "callbacks": {"none"}})
	e.requestAttempt("REPEAT-2", 900, "", 1)
	if n := e.scalar(`SELECT count(*) FROM callbacks`); n != 0 {
		t.Errorf("the PSP was asked although the check is off: %d probes", n)
	}
}

// TestSweeperFindsPaymentsWhoseCallbacksWereLost: the simulator drops
// every callback of 100 paid payments; the sweeper's status probes find
// all of them, and each order is paid and notified exactly once.
func TestSweeperFindsPaymentsWhoseCallbacksWereLost(t *testing.T) {
	t.Parallel()
	const n = 100
	cfg := testConfig(t)
	cfg.Sweeper = sweeper.Config{Interval: 100 * time.Millisecond, Schedule: []time.Duration{500 * time.Millisecond, 300 * time.Millisecond}}
	e := startWith(t, cfg, app.All)
	payments := e.consume(schemas.TopicPayments, "order-center-lost")
	attempts := make([]schemas.Attempt, n)
	parallel(n, 16, func(i int) { attempts[i] = e.requestPayment(orderID("LOST", i), 300) })
	parallel(n, 16, func(i int) { e.pay(attempts[i].PayURL, url.Values{"result": {"success"}, "callbacks": {"none"}}) })
	if t.Failed() {
		t.FailNow()
	}
	payments.waitFor(t, 60*time.Second, fmt.Sprintf("%d paid events", n), func(evs []event) bool { return countType(evs, "paid") >= n })
	e.quiet(30 * time.Second) // the probes still in flight ran: they must change nothing
	per := map[string]int{}
	for _, ev := range payments.snapshot() {
		per[ev.Payment.OrderID+"/"+ev.Payment.Type]++
	}
	for i := 0; i < n; i++ {
		if c := per[orderID("LOST", i)+"/paid"]; c != 1 {
			t.Errorf("%s: %d paid events", orderID("LOST", i), c)
		}
	}
	if len(per) != n {
		t.Errorf("events of %d kinds/orders, want %d paid only", len(per), n)
	}
	if got := e.scalar(`SELECT count(*) FROM callbacks WHERE kind <> 'status_probe'`); got != 0 {
		t.Errorf("%d callbacks arrived although all were dropped", got)
	}
}

// TestExpiredAttemptsAndOrders: an attempt the buyer never paid is given
// up after its expiry, its order is closed, and money that still arrives
// for it is a late payment, refunded.
func TestExpiredAttemptsAndOrders(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Sweeper = sweeper.Config{Interval: 100 * time.Millisecond, Schedule: []time.Duration{200 * time.Millisecond}, OrderTTL: time.Second}
	e := startWith(t, cfg, app.All)
	payments := e.consume(schemas.TopicPayments, "order-center-expiry")
	refunds := e.consume(schemas.TopicRefundRequests, "finance-expiry")
	a := e.requestPayment("EXP-1", 1500)
	// The attempt's expiry passes (the PSP said 30 minutes; we move it).
	if _, err := e.db.Exec(`UPDATE attempts SET expires_at = now() - interval '1 second' WHERE transaction_code = $1`, a.TransactionCode); err != nil {
		t.Fatal(err)
	}
	e.eventually(20*time.Second, "the attempt expired and the order closed", func() bool {
		return e.scalar(`SELECT count(*) FROM orders o JOIN attempts a USING (order_id) WHERE o.status = 'closed' AND a.status = 'expired'`) == 1
	})
	// The order center hears that the attempt will not be paid.
	failed := payments.waitFor(t, 20*time.Second, "the failed event", func(evs []event) bool { return countType(evs, "failed") == 1 })
	for _, ev := range failed {
		if p := ev.Payment; p.Type == "failed" && (p.TransactionCode != a.TransactionCode || p.Amount != 1500 || !strings.Contains(p.Reason, "expired")) {
			t.Errorf("failed event %+v", p)
		}
	}
	// The buyer pays anyway: late payment.
	e.pay(a.PayURL, url.Values{"result": {"success"}})
	payments.waitFor(t, 20*time.Second, "duplicate_detected", func(evs []event) bool { return countType(evs, "duplicate_detected") == 1 })
	reqs := refunds.waitFor(t, 20*time.Second, "the refund request", func(evs []event) bool { return len(evs) == 1 })
	var r schemas.RefundRequest
	_ = json.Unmarshal(reqs[0].Value, &r)
	if r.Reason != schemas.ReasonLatePayment || r.Amount != 1500 || r.TransactionCode != a.TransactionCode {
		t.Errorf("refund request %+v", r)
	}
	if countType(payments.snapshot(), "paid") != 0 {
		t.Errorf("a closed order was paid")
	}
	if n := countType(payments.snapshot(), "failed"); n != 1 {
		t.Errorf("%d failed events, want the expiry's one", n)
	}
	if n := e.scalar(`SELECT count(*) FROM orders WHERE status = 'closed'`); n != 1 {
		t.Errorf("the order did not stay closed")
	}
}
