package e2e

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/schemas"
)

// TestEveryOrderOfCallbacksEndsInThePSPsState: for one order, four
// callbacks — a success webhook, a failure webhook, the success webhook
// again, and the buyer's browser returning with success late — arrive
// in each of their 24 orders, once for a payment the PSP took and once
// for one it declined. Whatever the order, the gateway ends in the state
// the PSP reports, with one event for it.
func TestEveryOrderOfCallbacksEndsInThePSPsState(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	oc := e.consume(schemas.TopicPayments, "order-center-perm")
	type step struct{ status, kind string }
	events := map[byte]step{'S': {"succeeded", "async"}, 'F': {"failed", "async"}, 'D': {"succeeded", "async"}, 'L': {"succeeded", "sync"}}
	var perms []string
	var permute func(prefix, rest string)
	permute = func(prefix, rest string) {
		if rest == "" {
			perms = append(perms, prefix)
		}
		for i := range rest {
			permute(prefix+rest[i:i+1], rest[:i]+rest[i+1:])
		}
	}
	permute("", "SFDL")
	if len(perms) != 24 {
		t.Fatalf("%d permutations", len(perms))
	}
	type run struct {
		order, perm string
		paid        bool
	}
	var runs []run
	for _, p := range perms {
		runs = append(runs, run{"PERM-OK-" + p, p, true}, run{"PERM-NO-" + p, p, false})
	}
	parallel(len(runs), 8, func(i int) {
		r := runs[i]
		a := e.requestPayment(r.order, 1234)
		result := map[bool]string{true: "success", false: "decline"}[r.paid]
		e.pay(a.PayURL, url.Values{"result": {result}, "callbacks": {"none"}})
		for _, c := range []byte(r.perm) {
			if err := e.app.Sim.Notify(context.Background(), a.TransactionCode, events[c].status, events[c].kind); err != nil {
				t.Errorf("%s: %v", r.order, err)
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	e.eventually(60*time.Second, "every callback processed", func() bool {
		return e.scalar(`SELECT count(*) FROM callbacks`) >= int64(4*len(runs))
	})
	oc.waitFor(t, 30*time.Second, "24 paid and 24 failed events", func(evs []event) bool {
		return countType(evs, "paid") >= 24 && countType(evs, "failed") >= 24
	})
	e.quiet(30 * time.Second)
	got := map[string]int{}
	for _, ev := range oc.snapshot() {
		got[ev.Payment.OrderID+"/"+ev.Payment.Type]++
	}
	for _, r := range runs {
		wantEvent, wantOrder, wantAttempt := "failed", "pending", "failed"
		if r.paid {
			wantEvent, wantOrder, wantAttempt = "paid", "paid", "paid"
		}
		if got[r.order+"/"+wantEvent] != 1 || len(filter(got, r.order)) != 1 {
			t.Errorf("%s: events %v, want one %s", r.order, filter(got, r.order), wantEvent)
		}
		if n := e.scalar(`SELECT count(*) FROM orders o JOIN attempts a USING (order_id) WHERE o.order_id = $1 AND o.status = $2 AND a.status = $3`,
			r.order, wantOrder, wantAttempt); n != 1 {
			t.Errorf("%s (%s): order/attempt not %s/%s", r.order, r.perm, wantOrder, wantAttempt)
		}
	}
}

func filter(m map[string]int, order string) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if strings.HasPrefix(k, order+"/") {
			out[k] = v
		}
	}
	return out
}
