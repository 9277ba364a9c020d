package e2e

import (
	"net/url"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/schemas"
)

// TestTwoHundredPaymentsEachPaidOnce: every callback arrives twice and in
// both kinds (sync and async), a third of them with the webhook before
// the browser's return; the order center reads exactly one paid event per
// order, the database says paid, and the simulator's ledger agrees.
func TestTwoHundredPaymentsEachPaidOnce(t *testing.T) {
	t.Parallel()
	const n = 200
	e := start(t, app.All)
	oc := e.consume(schemas.TopicPayments, "order-center-test")

	attempts := make([]schemas.Attempt, n)
	parallel(n, 16, func(i int) { attempts[i] = e.requestPayment(orderID("E2E", i), int64(1000+i)) })
	if t.Failed() {
		t.FailNow()
	}
	landed := make([]string, n)
	parallel(n, 16, func(i int) {
		form := url.Values{"result": {"success"}, "callbacks": {"twice"}}
		if i%3 == 0 {
			form.Set("order", "reverse")
		}
		landed[i] = e.pay(attempts[i].PayURL, form)
	})
	if t.Failed() {
		t.FailNow()
	}
	for i, l := range landed {
		// The browser lands on success, or on the pending page if its
		// return outran the processing of the payment.
		if l != "https://shop.example/ok" && l != "https://shop.example/wait" {
			t.Fatalf("order %d: buyer sent to %q", i, l)
		}
	}

	oc.waitFor(t, 90*time.Second, "200 paid events", func(evs []event) bool { return countType(evs, "paid") >= n })
	// Every callback has been delivered four times: give duplicates time
	// to show up before counting.
	e.eventually(60*time.Second, "4 callbacks stored per payment", func() bool { return e.scalar(`SELECT count(*) FROM callbacks`) >= 4*n })
	if got := e.scalar(`SELECT count(*) FROM callbacks`); got != 4*n {
		t.Errorf("callbacks stored = %d, want %d (2 async + 2 sync per payment)", got, 4*n)
	}
	e.quiet(30 * time.Second) // anything a duplicate caused is published and read
	evs := oc.snapshot()

	seen := map[string]int{}
	for _, ev := range evs {
		if ev.Payment.Type != "paid" {
			t.Errorf("unexpected event %s for %s", ev.Payment.Type, ev.Key)
			continue
		}
		seen[ev.Payment.OrderID]++
		if ev.Key != ev.Payment.OrderID || ev.ID == "" || ev.Type != schemas.TypePaymentPaid || ev.Headers[schemas.HeaderSpecVersion] != "1.0" {
			t.Errorf("event envelope: key %q id %q type %q headers %v", ev.Key, ev.ID, ev.Type, ev.Headers)
		}
		if err := schemas.Validate(schemas.PaymentEventSchema, ev.Value); err != nil {
			t.Errorf("paid event for %s does not match its schema: %v", ev.Key, err)
		}
	}
	if len(seen) != n {
		t.Errorf("paid events for %d distinct orders, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("order %s: %d paid events", id, c)
		}
	}
	if got := e.scalar(`SELECT count(*) FROM orders WHERE status = 'paid'`); got != n {
		t.Errorf("paid orders = %d, want %d", got, n)
	}
	if got := e.scalar(`SELECT count(*) FROM callbacks WHERE outcome = 'paid'`); got != n {
		t.Errorf("callbacks that paid = %d, want %d", got, n)
	}

	// The simulator's ledger and ours agree: same payments, amounts, references.
	ours := map[string]struct {
		ref    string
		amount int64
	}{}
	rows, err := e.db.Query(`SELECT transaction_code, psp_reference, amount FROM attempts WHERE status = 'paid'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var code, ref string
		var amount int64
		if err := rows.Scan(&code, &ref, &amount); err != nil {
			t.Fatal(err)
		}
		ours[code] = struct {
			ref    string
			amount int64
		}{ref, amount}
	}
	rows.Close()
	led := e.app.Sim.Ledger()
	succeeded := 0
	for _, p := range led.Payments {
		if p.Status != "succeeded" {
			continue
		}
		succeeded++
		o, ok := ours[p.MerchantRef]
		if !ok || o.ref != p.ID || o.amount != p.PaidAmount.Minor() || p.PaidAmount.Currency().Code() != "USD" {
			t.Errorf("ledger payment %s (%s, %s) vs gateway %+v (found %v)", p.ID, p.MerchantRef, p.PaidAmount, o, ok)
		}
	}
	if succeeded != n || len(ours) != n {
		t.Errorf("simulator has %d succeeded payments, gateway %d paid attempts; want %d each", succeeded, len(ours), n)
	}
}
