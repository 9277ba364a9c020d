package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/schemas"
)

// TestCallbacksConsumerKilledBetweenCommitAndOffsetCommit: the callbacks
// consumer dies right after its database transaction committed and
// before it committed its Kafka offsets, again and again; each restart
// is a new group member that gets the same messages again. Still exactly
// one paid event per order.
func TestCallbacksConsumerKilledBetweenCommitAndOffsetCommit(t *testing.T) {
	t.Parallel()
	const n, crashes = 30, 6
	roles := app.All
	roles.Callbacks = false
	e := start(t, roles)
	oc := e.consume(schemas.TopicPayments, "order-center-crash")

	attempts := make([]schemas.Attempt, n)
	parallel(n, 8, func(i int) { attempts[i] = e.requestPayment(orderID("CRASH", i), 500) })
	parallel(n, 8, func(i int) { e.pay(attempts[i].PayURL, url.Values{"result": {"success"}}) })
	if t.Failed() {
		t.FailNow()
	}

	inner := e.app.CallbacksHandler().Handle
	var crashed, applied atomic.Int64
	for round := 0; ; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		crash := round < crashes
		h := func(ctx context.Context, batch []kafka.Message) ([]consumers.Rejection, error) {
			rej, err := inner(ctx, batch)
			if err != nil {
				return rej, err
			}
			applied.Add(int64(len(batch)))
			if crash {
				crashed.Add(1)
				cancel() // the process dies here: the transaction is committed, the offsets are not
				return nil, errors.New("killed before offset commit")
			}
			return rej, nil
		}
		r, err := consumers.NewRunner(consumers.Config{Brokers: e.app.Brokers, Group: "callbacks", Topic: schemas.TopicPSPCallbacks,
			BatchSize: 8, SessionTimeout: 6 * time.Second}, h, e.app.Writer, logger(), e.metrics)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = r.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done }) // a round that fails the test stops its member too
		if !crash {
			oc.waitFor(t, 60*time.Second, "paid events", func(evs []event) bool { return countType(evs, "paid") >= n })
			e.eventually(30*time.Second, fmt.Sprintf("%d callbacks stored", 2*n), func() bool {
				return e.scalar(`SELECT count(*) FROM callbacks`) >= 2*n
			})
			e.quiet(30 * time.Second)
			cancel()
			<-done
			break
		}
		e.eventually(60*time.Second, fmt.Sprintf("round %d's member to apply a batch and die", round), func() bool { return received(done) })
	}
	if crashed.Load() < crashes {
		t.Fatalf("crashed %d times, want %d", crashed.Load(), crashes)
	}
	if applied.Load() <= 2*n {
		t.Errorf("%d messages handled for %d callbacks: the crashes caused no redelivery, so the test proved nothing", applied.Load(), 2*n)
	}
	evs := oc.snapshot()
	per := map[string]int{}
	for _, ev := range evs {
		per[ev.Payment.OrderID]++
	}
	if len(per) != n || len(evs) != n {
		t.Fatalf("%d events for %d orders, want %d for %d", len(evs), len(per), n, n)
	}
	if got := e.scalar(`SELECT count(*) FROM orders WHERE status = 'paid'`); got != n {
		t.Errorf("paid orders = %d, want %d", got, n)
	}
	if got := e.scalar(`SELECT count(*) FROM callbacks`); got != 2*n {
		t.Errorf("stored callbacks = %d, want %d (a redelivery is not a new callback)", got, 2*n)
	}
}
