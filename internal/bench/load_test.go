package bench

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/psp/sim"
)

// TestPresignBuildsTheLeadAhead: before presign returns, every webhook due
// within signLead is built and signed, once per order (a duplicate reuses
// its first delivery's); later ones are left for later, and nothing is
// built after stop.
func TestPresignBuildsTheLeadAhead(t *testing.T) {
	var mu sync.Mutex
	built := map[string]int{}
	tg := &target{webhook: func(o *order, _ bool) (sim.Webhook, error) {
		mu.Lock()
		defer mu.Unlock()
		built[o.id]++
		return sim.Webhook{Body: []byte(o.id)}, nil
	}}
	a, b, c, d := &order{id: "a"}, &order{id: "b"}, &order{id: "c"}, &order{id: "d"}
	sched := []send{
		{at: 0, o: a},
		{at: time.Second, o: a, dup: true},
		{at: 30 * time.Second, o: b},
		{at: signLead - time.Millisecond, o: c},
		{at: signLead + time.Second, o: d},
	}
	stop := presign(context.Background(), tg, sched)
	stop()
	w, err := a.webhook(tg) // what the send of a will use
	mu.Lock()
	defer mu.Unlock()
	if built["a"] != 1 || built["b"] != 1 || built["c"] != 1 {
		t.Errorf("within the lead, built %v; want a, b and c once each", built)
	}
	if built["d"] != 0 {
		t.Errorf("d, due after the lead, was built before its time: %v", built)
	}
	if err != nil || string(w.Body) != "a" || built["a"] != 1 {
		t.Errorf("the send got %q, %v after %d builds; want the presigned webhook", w.Body, err, built["a"])
	}
}
