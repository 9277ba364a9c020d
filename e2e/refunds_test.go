package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/consumers/refunds"
	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/sim"
	"github.com/paygate/paygate/producers/sweeper"
	"github.com/paygate/paygate/schemas"
)

// paidOrder makes an order paid by one attempt. Only the browser's return
// is sent (callbacks=sync), so that no late webhook makes the callbacks
// group query the PSP while a test scripts the simulator's API.
func (e *env) paidOrder(orderID string, amount int64) schemas.Attempt {
	e.t.Helper()
	a := e.requestPayment(orderID, amount)
	e.pay(a.PayURL, url.Values{"result": {"success"}, "callbacks": {"sync"}})
	e.eventually(20*time.Second, orderID+" paid", func() bool {
		return e.scalar(`SELECT count(*) FROM orders WHERE order_id = $1 AND status = 'paid'`, orderID) == 1
	})
	return a
}

func refundBody(id, orderID, code string, amount int64, reason string) []byte {
	b, _ := json.Marshal(schemas.RefundRequest{RefundID: id, OrderID: orderID, TransactionCode: code, Amount: amount, Currency: "USD", Reason: reason})
	return b
}

// requestRefund posts a signed refund request and returns the status.
func (e *env) requestRefund(body []byte) (int, []byte) {
	e.t.Helper()
	return e.do("POST", "/v1/refunds", body, signed(body, time.Now(), app.DevMallSecret))
}

func (e *env) getRefund(id string) (schemas.Refund, bool) {
	e.t.Helper()
	code, b := e.do("GET", "/v1/refunds/"+id, nil, nil)
	if code == http.StatusNotFound {
		return schemas.Refund{}, false
	}
	var r schemas.Refund
	if code != http.StatusOK || json.Unmarshal(b, &r) != nil {
		e.t.Fatalf("GET refund %s: %d %s", id, code, b)
	}
	return r, true
}

// waitRefund waits until refund id is final (status succeeded or failed).
func (e *env) waitRefund(id string, timeout time.Duration) schemas.Refund {
	e.t.Helper()
	var r schemas.Refund
	e.eventually(timeout, "refund "+id+" final", func() bool {
		var ok bool
		r, ok = e.getRefund(id)
		return ok && r.Status != schemas.RefundInProgress
	})
	return r
}

// results decodes finance's refund results.
func results(evs []event) map[string][]schemas.RefundResult {
	out := map[string][]schemas.RefundResult{}
	for _, ev := range evs {
		var r schemas.RefundResult
		if err := json.Unmarshal(ev.Value, &r); err == nil {
			out[r.RefundID] = append(out[r.RefundID], r)
		}
	}
	return out
}

// ledgerRefunds are the simulator's refunds of one attempt.
func (e *env) ledgerRefunds(code string) []sim.LedgerRefund {
	var out []sim.LedgerRefund
	for _, r := range e.app.Sim.Ledger().Refunds {
		if r.MerchantRef == code {
			out = append(out, r)
		}
	}
	return out
}

// TestRefundSameRequestFiveTimesConcurrently: finance sends one refund
// request five times at once (retries racing): one refund at the PSP, one
// result; the same id with another amount is accepted, then refused
// downstream (idempotency_key_reused) and shown with the refund, which
// stands; the order shows it.
func TestRefundSameRequestFiveTimesConcurrently(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	finance := e.consume(schemas.TopicRefundResults, "finance-five")
	a := e.paidOrder("RF-FIVE", 2500)
	body := refundBody("fin-five-1", "RF-FIVE", "", 2500, "customer cancelled")
	var accepted atomic.Int64
	parallel(5, 5, func(int) {
		if code, b := e.requestRefund(body); code == http.StatusAccepted {
			accepted.Add(1)
		} else {
			t.Errorf("refund request: %d %s", code, b)
		}
	})
	if accepted.Load() != 5 {
		t.Fatalf("%d of 5 accepted", accepted.Load())
	}
	r := e.waitRefund("fin-five-1", 20*time.Second)
	if r.Status != "succeeded" || r.RefundStatus != "succeeded" || r.CallStatus != "ok" || r.PSPReference == "" ||
		r.TransactionCode != a.TransactionCode || r.Amount != 2500 || r.FinishedAt == nil {
		t.Errorf("refund = %+v", r)
	}
	if code, b := e.requestRefund(body); code != http.StatusAccepted {
		t.Errorf("the same request once more: %d %s", code, b)
	}
	if code, b := e.requestRefund(refundBody("fin-five-1", "RF-FIVE", "", 2400, "customer cancelled")); code != http.StatusAccepted {
		t.Errorf("same refund id, other amount: %d %s, want 202", code, b)
	}
	var refused schemas.Refund
	e.eventually(10*time.Second, "the other amount refused", func() bool {
		refused, _ = e.getRefund("fin-five-1")
		return len(refused.RejectedRequests) == 1
	})
	if rr := refused.RejectedRequests[0]; !strings.HasPrefix(rr.Reason, "idempotency_key_reused: refund id fin-five-1 was first used for another request") ||
		refused.Amount != 2500 || refused.Status != "succeeded" {
		t.Errorf("refund after a reused id: %+v", refused)
	}
	finance.waitFor(t, 10*time.Second, "the result", func(evs []event) bool { return len(evs) >= 1 })
	e.quiet(30 * time.Second) // a second result would have shown
	res := results(finance.snapshot())
	if len(res) != 1 || len(res["fin-five-1"]) != 1 || res["fin-five-1"][0].Status != "succeeded" {
		t.Fatalf("finance got %+v, want one succeeded result", res)
	}
	if ev := finance.snapshot()[0]; ev.ID != "refund_result/fin-five-1" || ev.Key != "RF-FIVE" || ev.Type != schemas.TypeRefundResult {
		t.Errorf("result envelope: id %q key %q type %q", ev.ID, ev.Key, ev.Type)
	}
	if err := schemas.Validate(schemas.RefundResultSchema, finance.snapshot()[0].Value); err != nil {
		t.Error(err)
	}
	if led := e.ledgerRefunds(a.TransactionCode); len(led) != 1 || led[0].Amount.Minor() != 2500 || led[0].Status != "succeeded" {
		t.Errorf("simulator refunds of %s: %+v, want one of 2500", a.TransactionCode, led)
	}
	code, b := e.do("GET", "/v1/payments/RF-FIVE", nil, nil)
	var p schemas.Payment
	if code != http.StatusOK || json.Unmarshal(b, &p) != nil || p.Status != "refunded" || len(p.Refunds) != 1 || p.Refunds[0].RefundID != "fin-five-1" {
		t.Errorf("payment: %d %s", code, b)
	}
	if n := e.scalar(`SELECT count(*) FROM psp_exchanges WHERE operation = 'refund' AND transaction_code = $1`, a.TransactionCode); n != 1 {
		t.Errorf("%d refund exchanges stored, want 1", n)
	}
}

// TestRefundOverCaptureIsRejected: one minor unit too much, and partial
// refunds that together would pass the capture, are refused with a clear
// error and never reach the PSP; the partial refunds that fit go through.
func TestRefundOverCaptureIsRejected(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	finance := e.consume(schemas.TopicRefundResults, "finance-over")
	a := e.paidOrder("RF-OVER", 1000)
	steps := []struct {
		id     string
		amount int64
		want   string
	}{{"over-1", 1001, "failed"}, {"part-1", 600, "succeeded"}, {"part-2", 401, "failed"}, {"part-3", 400, "succeeded"}, {"part-4", 1, "failed"}}
	for _, s := range steps {
		if code, b := e.requestRefund(refundBody(s.id, "RF-OVER", "", s.amount, "goodwill")); code != http.StatusAccepted {
			t.Fatalf("%s: %d %s", s.id, code, b)
		}
		r := e.waitRefund(s.id, 20*time.Second)
		if r.Status != s.want {
			t.Fatalf("%s of %d: %s (%s), want %s", s.id, s.amount, r.Status, r.Error, s.want)
		}
		if s.want == "failed" && (!strings.Contains(r.Error, "exceeds what is refundable") || r.CallStatus != "" || r.RefundRef != "") {
			t.Errorf("%s: error %q, call status %q, ref %q: want a clear refusal, no call", s.id, r.Error, r.CallStatus, r.RefundRef)
		}
	}
	over, _ := e.getRefund("over-1")
	if !strings.Contains(over.Error, "captured 10.00 USD") || !strings.Contains(over.Error, "10.00 USD is left") {
		t.Errorf("over-refund error %q does not say what is left", over.Error)
	}
	led := e.ledgerRefunds(a.TransactionCode)
	if len(led) != 2 || led[0].Amount.Minor() != 600 || led[1].Amount.Minor() != 400 {
		t.Errorf("simulator refunds: %+v, want 600 and 400 only", led)
	}
	finance.waitFor(t, 10*time.Second, "5 results", func(evs []event) bool { return len(evs) >= 5 })
	e.quiet(30 * time.Second)
	res := results(finance.snapshot())
	for _, s := range steps {
		if len(res[s.id]) != 1 || res[s.id][0].Status != s.want {
			t.Errorf("finance result of %s: %+v", s.id, res[s.id])
		}
	}
	if n := e.scalar(`SELECT count(*) FROM orders WHERE order_id = 'RF-OVER' AND status = 'refunded'`); n != 1 {
		t.Errorf("order not refunded")
	}
}

// TestRefundsPendingAtThePSP: refunds the PSP keeps pending end as it
// decides (one succeeds, one fails), found by the poller; a second refund
// of an order waits for the first to be final, then starts.
func TestRefundsPendingAtThePSP(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	finance := e.consume(schemas.TopicRefundResults, "finance-pending")
	ok := e.paidOrder("RF-PEND-OK", 1000)
	bad := e.paidOrder("RF-PEND-FAIL", 1000)
	e.app.Sim.Script(ok.TransactionCode, sim.Script{RefundPending: true})
	e.app.Sim.Script(bad.TransactionCode, sim.Script{RefundPending: true, RefundFail: true})

	for _, b := range [][]byte{refundBody("pend-1", "RF-PEND-OK", "", 300, "a"), refundBody("pend-2", "RF-PEND-OK", "", 200, "b"),
		refundBody("pend-fail", "RF-PEND-FAIL", "", 1000, "c")} {
		if code, body := e.requestRefund(b); code != http.StatusAccepted {
			t.Fatalf("%d %s", code, body)
		}
	}
	e.eventually(10*time.Second, "pend-1 pending at the PSP", func() bool {
		r, found := e.getRefund("pend-1")
		return found && r.RefundStatus == "pending_at_psp"
	})
	e.eventually(10*time.Second, "pend-2 recorded", func() bool { _, found := e.getRefund("pend-2"); return found })
	if r, _ := e.getRefund("pend-2"); r.RefundStatus != "queued" || r.CallStatus != "" {
		t.Errorf("pend-2 while pend-1 is pending: %s/%s, want queued", r.RefundStatus, r.CallStatus)
	}
	r1, r2, rf := e.waitRefund("pend-1", 20*time.Second), e.waitRefund("pend-2", 20*time.Second), e.waitRefund("pend-fail", 20*time.Second)
	if r1.Status != "succeeded" || r2.Status != "succeeded" || rf.Status != "failed" || rf.CallStatus != "ok" || rf.Error == "" {
		t.Errorf("results: %s, %s, %s/%s %q", r1.Status, r2.Status, rf.Status, rf.CallStatus, rf.Error)
	}
	led := e.ledgerRefunds(ok.TransactionCode)
	if len(led) != 2 || led[0].RefundRef != r1.RefundRef || led[1].RefundRef != r2.RefundRef || led[1].CreatedAt.Before(led[0].FinishedAt) {
		t.Errorf("simulator refunds %+v: want pend-2 created after pend-1 finished", led)
	}
	if led := e.ledgerRefunds(bad.TransactionCode); len(led) != 1 || led[0].Status != "failed" {
		t.Errorf("simulator refunds of the failing one: %+v", led)
	}
	finance.waitFor(t, 10*time.Second, "3 results", func(evs []event) bool { return len(evs) >= 3 })
	e.quiet(30 * time.Second)
	res := results(finance.snapshot())
	if len(res) != 3 || res["pend-1"][0].Status != "succeeded" || res["pend-2"][0].Status != "succeeded" || res["pend-fail"][0].Status != "failed" ||
		len(res["pend-1"])+len(res["pend-2"])+len(res["pend-fail"]) != 3 {
		t.Errorf("finance results: %+v", res)
	}
	if n := e.scalar(`SELECT count(*) FROM orders WHERE order_id = 'RF-PEND-OK' AND status = 'partially_refunded'`); n != 1 {
		t.Errorf("RF-PEND-OK is not partially refunded")
	}
	if n := e.scalar(`SELECT count(*) FROM orders WHERE order_id = 'RF-PEND-FAIL' AND status = 'paid'`); n != 1 {
		t.Errorf("RF-PEND-FAIL is not paid any more after a failed refund")
	}
}

// refundsProcess is the refunds group and its poller as one process the
// test starts, kills and restarts.
type refundsProcess struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func (e *env) startRefunds(cfg refunds.Config, ch refunds.Channels) *refundsProcess {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &refundsProcess{cancel: cancel}
	h, err := refunds.New(cfg, e.app.Store, ch, logger(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	poller, err := refunds.NewPoller(cfg, e.app.Store, ch, logger(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := consumers.NewRunner(consumers.Config{Brokers: e.app.Brokers, Group: "refunds", Topic: schemas.TopicRefundRequests,
		BatchSize: 8, SessionTimeout: 6 * time.Second}, h.Handle, e.app.Writer, logger(), e.metrics)
	if err != nil {
		e.t.Fatal(err)
	}
	p.done.Add(2)
	go func() { defer p.done.Done(); _ = r.Run(ctx) }()
	go func() { defer p.done.Done(); _ = poller.Run(ctx) }()
	e.t.Cleanup(p.stop) // stopped, even if the test fails before it stops it
	return p
}

func (p *refundsProcess) stop() { p.cancel(); p.done.Wait() }

var fastRefunds = refunds.Config{Lease: 600 * time.Millisecond, CallTimeout: 300 * time.Millisecond, MinBackoff: 100 * time.Millisecond,
	MaxBackoff: time.Second, PollInterval: 50 * time.Millisecond}

// killRefunds leaves the lease room over the PSP call under CI load: a
// lease that ran out while its holder was still calling would let a
// second worker query (not found yet) and call too — harmless, the PSP
// deduplicates on the reference, but not what this test is about.
var killRefunds = func() refunds.Config { c := fastRefunds; c.Lease = 1500 * time.Millisecond; return c }()

// TestRefundTimeoutIsResolvedByQuery: the PSP takes the refund, then its
// answer is lost (a timeout). paygate does not call again: it queries,
// finds the refund done, and reports it once.
func TestRefundTimeoutIsResolvedByQuery(t *testing.T) {
	t.Parallel()
	roles := app.All
	roles.Refunds = false
	e := start(t, roles)
	finance := e.consume(schemas.TopicRefundResults, "finance-timeout")
	a := e.paidOrder("RF-TIMEOUT", 700)
	e.app.Sim.Script(a.TransactionCode, sim.Script{APITimeouts: 1})
	e.startRefunds(fastRefunds, e.app.Channels)
	if code, b := e.requestRefund(refundBody("timeout-1", "RF-TIMEOUT", "", 700, "x")); code != http.StatusAccepted {
		t.Fatalf("%d %s", code, b)
	}
	r := e.waitRefund("timeout-1", 20*time.Second)
	if r.Status != "succeeded" || r.CallStatus != "ok" {
		t.Errorf("refund = %+v", r)
	}
	if led := e.ledgerRefunds(a.TransactionCode); len(led) != 1 {
		t.Errorf("simulator refunds: %+v, want 1", led)
	}
	calls := e.scalar(`SELECT count(*) FROM psp_exchanges WHERE operation = 'refund' AND transaction_code = $1`, a.TransactionCode)
	queries := e.scalar(`SELECT count(*) FROM psp_exchanges WHERE operation = 'query_refund' AND transaction_code = $1`, a.TransactionCode)
	if calls != 1 || queries < 1 {
		t.Errorf("%d refund calls and %d queries stored; want one call (timed out), then queries", calls, queries)
	}
	finance.waitFor(t, 10*time.Second, "the result", func(evs []event) bool { return len(evs) >= 1 })
	e.quiet(30 * time.Second)
	if res := results(finance.snapshot()); len(res["timeout-1"]) != 1 || len(res) != 1 {
		t.Errorf("finance results %+v", res)
	}
}

// killer wraps the channels so that a refund call kills the refunds
// process that made it: half of the time just before the request leaves,
// half of the time after the PSP took it and before its answer is read.
type killer struct {
	refunds.Channels
	mu     sync.Mutex
	left   int
	kill   context.CancelFunc
	killed chan struct{}
	// blind counts, per refund reference, calls made while the PSP had
	// the refund already: paygate should have queried and found it.
	blind map[string]int
	// ledger tells whether the PSP has a refund reference.
	ledger func(ref string) bool
}

type killingChannel struct {
	psp.Channel
	k *killer
}

func (k *killer) Channel(name string) (psp.Channel, bool) {
	ch, ok := k.Channels.Channel(name)
	if !ok {
		return nil, false
	}
	return killingChannel{ch, k}, true
}

func (c killingChannel) Refund(ctx context.Context, req psp.RefundRequest) (psp.RefundResult, error) {
	c.k.mu.Lock()
	left, kill := c.k.left, c.k.kill
	if left > 0 {
		c.k.left--
	}
	c.k.mu.Unlock()
	if c.k.ledger(req.RefundRef) {
		c.k.mu.Lock()
		c.k.blind[req.RefundRef]++
		c.k.mu.Unlock()
	}
	if left == 0 {
		return c.Channel.Refund(ctx, req)
	}
	defer func() { c.k.killed <- struct{}{} }()
	if left%2 == 0 {
		kill()
		return psp.RefundResult{}, errors.New("killed before the request left")
	}
	// The request is on the wire: it reaches the PSP whatever happens to
	// this process (a sibling call's kill must not abort it halfway).
	res, err := c.Channel.Refund(context.WithoutCancel(ctx), req)
	kill()
	_ = res
	return psp.RefundResult{}, fmt.Errorf("killed before the answer was read (the call said %v)", err)
}

// TestRefundsConsumerKilledDuringThePSPCall: the refunds process (group
// member and poller) is killed 20 times in the middle of a refund call,
// before the request leaves or after the PSP took it; every restart is a
// new process. Each refund is made at the PSP exactly once and finance
// gets each result exactly once.
func TestRefundsConsumerKilledDuringThePSPCall(t *testing.T) {
	t.Parallel()
	const n, kills = 12, 20
	roles := app.All
	roles.Refunds = false
	e := start(t, roles)
	finance := e.consume(schemas.TopicRefundResults, "finance-kill")
	attempts := make([]schemas.Attempt, n)
	parallel(n, 6, func(i int) { attempts[i] = e.paidOrder(orderID("RF-KILL", i), int64(100+i)) })
	if t.Failed() {
		t.FailNow()
	}
	for i := range n {
		// Two refunds for every third order, so that queued refunds are
		// started across kills too.
		amount := int64(100 + i)
		if i%3 == 0 {
			amount = 50 // the rest comes in a second refund, below
		}
		if code, b := e.requestRefund(refundBody(fmt.Sprintf("kill-%d", i), orderID("RF-KILL", i), "", amount, "kill test")); code != http.StatusAccepted {
			t.Fatalf("%d %s", code, b)
		}
	}
	want := n + (n+2)/3
	k := &killer{Channels: e.app.Channels, left: kills, killed: make(chan struct{}, kills), blind: map[string]int{},
		ledger: func(ref string) bool {
			for _, r := range e.app.Sim.Ledger().Refunds {
				if r.RefundRef == ref {
					return true
				}
			}
			return false
		}}
	start := time.Now()
	sent := false
	for round := 0; ; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		k.mu.Lock()
		k.kill = cancel
		left := k.left
		k.mu.Unlock()
		p := e.startRefunds(killRefunds, k)
		go func() { <-ctx.Done(); p.cancel() }()
		if !sent && round == kills/2 {
			// The second refunds arrive while the process keeps dying.
			sent = true
			for i := 0; i < n; i += 3 {
				body := refundBody(fmt.Sprintf("kill-%d-b", i), orderID("RF-KILL", i), "", int64(100+i)-50, "rest")
				if code, b := e.requestRefund(body); code != http.StatusAccepted {
					t.Fatalf("%d %s", code, b)
				}
			}
		}
		if left == 0 {
			finance.waitFor(t, 60*time.Second, fmt.Sprintf("%d results", want), func(evs []event) bool { return len(results(evs)) >= want })
			e.quiet(30 * time.Second) // a second result or refund would have shown
			cancel()
			p.done.Wait()
			break
		}
		e.eventually(30*time.Second, fmt.Sprintf("round %d's refund call", round), func() bool { return received(k.killed) })
		cancel()
		p.done.Wait()
	}
	t.Logf("%d kills in %s", kills, time.Since(start).Round(time.Millisecond))
	res := results(finance.snapshot())
	if len(finance.snapshot()) != want || len(res) != want {
		t.Errorf("finance got %d results for %d refunds, want %d each", len(finance.snapshot()), len(res), want)
	}
	for id, rs := range res {
		if len(rs) != 1 || rs[0].Status != "succeeded" {
			t.Errorf("%s: results %+v", id, rs)
		}
	}
	led := e.app.Sim.Ledger().Refunds
	perRef := map[string]int{}
	for _, r := range led {
		perRef[r.RefundRef]++
	}
	if len(led) != want || len(perRef) != want {
		t.Errorf("simulator has %d refunds under %d references, want %d each", len(led), len(perRef), want)
	}
	for i, a := range attempts {
		var sum int64
		for _, r := range e.ledgerRefunds(a.TransactionCode) {
			sum += r.Amount.Minor()
		}
		if sum != int64(100+i) {
			t.Errorf("order %d: simulator refunded %d of %d", i, sum, 100+i)
		}
	}
	// Never called blindly again: after a call that may have reached the
	// PSP, paygate queried; it called only refunds the PSP did not have.
	for ref, c := range k.blind {
		t.Errorf("refund %s was sent %d more time(s) to a PSP that had it", ref, c)
	}
	if got := e.scalar(`SELECT count(*) FROM orders WHERE order_id LIKE 'RF-KILL-%' AND status = 'refunded'`); got != n {
		t.Errorf("%d orders refunded, want %d", got, n)
	}
}

// TestDuplicateAndLatePaymentsEndRefunded: the refund requests paygate
// makes for a duplicate payment and for a late payment are executed; the
// order paid by the first attempt stays paid, and the simulator's ledger
// agrees.
func TestDuplicateAndLatePaymentsEndRefunded(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Sweeper = sweeper.Config{Interval: 100 * time.Millisecond, Schedule: []time.Duration{200 * time.Millisecond}, OrderTTL: time.Second}
	e := startWith(t, cfg, app.All)
	finance := e.consume(schemas.TopicRefundResults, "finance-dup")
	first := e.requestPayment("RF-DUP", 4200)
	second := e.requestAttempt("RF-DUP", 4200, "sim2", 1)
	e.pay(first.PayURL, url.Values{"result": {"success"}, "callbacks": {"sync"}})
	e.eventually(20*time.Second, "RF-DUP paid", func() bool {
		return e.scalar(`SELECT count(*) FROM orders WHERE order_id = 'RF-DUP' AND status = 'paid'`) == 1
	})
	e.pay(second.PayURL, url.Values{"result": {"success"}, "callbacks": {"sync"}})

	late := e.requestPayment("RF-LATE", 1500)
	if _, err := e.db.Exec(`UPDATE attempts SET expires_at = now() - interval '1 second' WHERE transaction_code = $1`, late.TransactionCode); err != nil {
		t.Fatal(err)
	}
	e.eventually(20*time.Second, "RF-LATE closed", func() bool {
		return e.scalar(`SELECT count(*) FROM orders WHERE order_id = 'RF-LATE' AND status = 'closed'`) == 1
	})
	e.pay(late.PayURL, url.Values{"result": {"success"}, "callbacks": {"sync"}})

	finance.waitFor(t, 30*time.Second, "2 refund results", func(evs []event) bool { return len(evs) >= 2 })
	e.quiet(30 * time.Second)
	evs := finance.snapshot()
	res := results(evs)
	if len(evs) != 2 || len(res) != 2 {
		t.Fatalf("finance got %d results: %+v", len(evs), res)
	}
	for id, rs := range res {
		r := rs[0]
		wantCode, wantReason, wantAmount := second.TransactionCode, schemas.ReasonDuplicatePayment, int64(4200)
		if r.OrderID == "RF-LATE" {
			wantCode, wantReason, wantAmount = late.TransactionCode, schemas.ReasonLatePayment, 1500
		}
		if !strings.HasPrefix(id, "dup-"+wantCode+"-") || r.Status != "succeeded" || r.TransactionCode != wantCode || r.Reason != wantReason || r.Amount != wantAmount {
			t.Errorf("result %s: %+v", id, r)
		}
		if led := e.ledgerRefunds(wantCode); len(led) != 1 || led[0].Amount.Minor() != wantAmount || led[0].Status != "succeeded" {
			t.Errorf("simulator refunds of %s: %+v", wantCode, led)
		}
	}
	if led := e.ledgerRefunds(first.TransactionCode); len(led) != 0 {
		t.Errorf("the paying attempt was refunded: %+v", led)
	}
	if n := e.scalar(`SELECT count(*) FROM orders WHERE (order_id = 'RF-DUP' AND status = 'paid') OR (order_id = 'RF-LATE' AND status = 'closed')`); n != 2 {
		t.Errorf("orders changed by refunds of payments they did not keep")
	}
}
