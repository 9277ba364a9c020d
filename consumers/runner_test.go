package consumers_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/internal/broker/brokertest"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/schemas"
)

// startBroker starts an embedded broker with paygate's topics, one
// partition each, and a writer to it; both close when t ends.
func startBroker(t *testing.T) (context.Context, []string, *producers.Writer) {
	t.Helper()
	ctx, b := brokertest.Start(t, 1)
	brokers := []string{b.Addr()}
	w, err := producers.NewWriter(producers.WriterConfig{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return ctx, brokers, w
}

// The runner against a real Kafka-protocol broker: a transient failure is
// retried without losing or skipping anything, a poison message (a
// permanent batch error, a panic) is isolated and dead-lettered with its
// reason while the rest of its batch is handled, and per-message
// rejections go to the DLQ.
func TestRunnerRetriesIsolatesPoisonAndDeadLetters(t *testing.T) {
	t.Parallel()
	ctx, brokers, w := startBroker(t)
	values := []string{"ok-1", "flaky", "poison", "ok-2", "reject-me", "panic", "ok-3"}
	var msgs []producers.Message
	for i, v := range values {
		msgs = append(msgs, producers.Message{Topic: schemas.TopicPayRequests, Key: "k", ID: "m" + string(rune('0'+i)), Type: "t", Value: []byte(v)})
	}
	if err := w.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	handled := map[string]int{}
	var flakyFailures atomic.Int32
	h := func(_ context.Context, batch []kafka.Message) ([]consumers.Rejection, error) {
		var rejects []consumers.Rejection
		for i, m := range batch {
			switch string(m.Value) {
			case "flaky":
				if flakyFailures.Add(1) <= 2 {
					return nil, errors.New("database unavailable") // transient: the whole batch again
				}
			case "poison":
				return nil, consumers.Permanent(errors.New("cannot ever handle poison"))
			case "panic":
				panic("handler bug")
			case "reject-me":
				rejects = append(rejects, consumers.Rejection{Index: i, Err: errors.New("bad shape")})
				continue
			}
		}
		mu.Lock()
		for i, m := range batch {
			rejected := false
			for _, r := range rejects {
				rejected = rejected || r.Index == i
			}
			if !rejected {
				handled[string(m.Value)]++
			}
		}
		mu.Unlock()
		return rejects, nil
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := consumers.NewRunner(consumers.Config{Brokers: brokers, Group: "runner-test", Topic: schemas.TopicPayRequests,
		BatchSize: 16, Linger: 50 * time.Millisecond, MinBackoff: 10 * time.Millisecond, SessionTimeout: 6 * time.Second}, h, w, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()

	dlq := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: schemas.DLQ(schemas.TopicPayRequests), Partition: 0, MaxWait: 100 * time.Millisecond})
	defer dlq.Close()
	reasons := map[string]string{}
	for len(reasons) < 3 {
		m, err := dlq.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("reading the DLQ: %v (have %v)", err, reasons)
		}
		reasons[string(m.Value)] = consumers.Header(m, schemas.HeaderDLQReason)
		if o := consumers.Header(m, schemas.HeaderDLQOrigin); !strings.HasPrefix(o, schemas.TopicPayRequests+"/0/") {
			t.Errorf("DLQ origin %q", o)
		}
	}
	// Let the runner finish the rest, then stop it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := handled["ok-3"]
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("runner: %v", err)
	}
	want := map[string]string{"poison": "cannot ever handle poison", "panic": "handler panic: handler bug", "reject-me": "bad shape"}
	for v, reason := range want {
		if !strings.Contains(reasons[v], reason) {
			t.Errorf("DLQ reason for %s = %q, want it to contain %q", v, reasons[v], reason)
		}
	}
	mu.Lock()
	for _, v := range []string{"ok-1", "flaky", "ok-2", "ok-3"} {
		if handled[v] < 1 {
			t.Errorf("%s was never handled (handled: %v)", v, handled)
		}
	}
	for _, v := range []string{"poison", "panic", "reject-me"} {
		if handled[v] != 0 {
			t.Errorf("%s was handled %d times", v, handled[v])
		}
	}
	if flakyFailures.Load() < 3 {
		t.Errorf("the transient failure was not retried (%d tries)", flakyFailures.Load())
	}
	before := map[string]int{}
	for k, v := range handled {
		before[k] = v
	}
	mu.Unlock()

	// Everything handled or dead-lettered was committed: a new member of
	// the group gets nothing again. It runs until it has handled a last
	// message written after the first member stopped: what it would have
	// got again came before that.
	if err := w.Write(ctx, producers.Message{Topic: schemas.TopicPayRequests, Key: "k", ID: "m-last", Type: "t", Value: []byte("last")}); err != nil {
		t.Fatal(err)
	}
	r2, err := consumers.NewRunner(consumers.Config{Brokers: brokers, Group: "runner-test", Topic: schemas.TopicPayRequests,
		BatchSize: 16, SessionTimeout: 6 * time.Second}, h, w, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx2, stop2 := context.WithCancel(ctx)
	done2 := make(chan error, 1)
	go func() { done2 <- r2.Run(rctx2) }()
	waitHandled(t, &mu, handled, "last")
	stop2()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	for k, v := range handled {
		if k != "last" && v != before[k] {
			t.Errorf("%s handled again after a restart: %d → %d", k, before[k], v)
		}
	}
	mu.Unlock()
}

// waitHandled polls handled (under mu) until v was handled, for at most
// 20 s.
func waitHandled(t *testing.T, mu *sync.Mutex, handled map[string]int, v string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := handled[v]
		mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not handled within 20s", v)
		}
	}
}

// Without a linger, a batch is what the reader has buffered: while the
// handler is busy with one batch, the messages behind it queue up and
// come as the next batch, in order, none twice and none skipped.
func TestRunnerBatchesWhatIsBuffered(t *testing.T) {
	t.Parallel()
	ctx, brokers, w := startBroker(t)
	const n = 100
	var msgs []producers.Message
	for i := range n {
		msgs = append(msgs, producers.Message{Topic: schemas.TopicPayRequests, Key: "k", ID: "m", Type: "t", Value: []byte{byte(i)}})
	}
	if err := w.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sizes []int
	var seen []int
	var r *consumers.Runner
	h := func(_ context.Context, batch []kafka.Message) ([]consumers.Rejection, error) {
		mu.Lock()
		first := len(sizes) == 0
		sizes = append(sizes, len(batch))
		for _, m := range batch {
			seen = append(seen, int(m.Value[0]))
		}
		mu.Unlock()
		if first {
			// Hold the first batch until the reader has fetched the rest
			// (as much as its queue of BatchSize holds).
			want := min(n-len(batch), 64)
			deadline := time.Now().Add(10 * time.Second)
			for r.Buffered() < want {
				if time.Now().After(deadline) {
					t.Errorf("the reader buffered %d messages behind the first batch, want %d", r.Buffered(), want)
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
		return nil, nil
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := consumers.NewRunner(consumers.Config{Brokers: brokers, Group: "runner-buffered", Topic: schemas.TopicPayRequests,
		BatchSize: 64, SessionTimeout: 6 * time.Second}, h, w, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		got := len(seen)
		mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("runner: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != n {
		t.Fatalf("handled %d messages, want %d (batches %v)", len(seen), n, sizes)
	}
	for i, v := range seen {
		if v != i {
			t.Fatalf("message %d handled as the %dth: order lost (batches %v)", v, i, sizes)
		}
	}
	if len(sizes) < 2 || sizes[1] < 2 {
		t.Errorf("batches %v: the messages buffered during the first batch did not come together", sizes)
	}
	for _, s := range sizes {
		if s > 64 {
			t.Errorf("batch of %d above BatchSize 64 (batches %v)", s, sizes)
		}
	}
}

// A pipelined runner prepares batch k+1 while batch k is being finished,
// finishes and commits batches in order, and after a failed finish or a
// panicking Prepare retries the batch with its whole Handler: nothing is
// lost, skipped or committed before it is handled.
func TestRunnerPipelinePreparesAheadAndFallsBack(t *testing.T) {
	t.Parallel()
	ctx, brokers, w := startBroker(t)
	write := func(vs ...string) {
		t.Helper()
		var msgs []producers.Message
		for _, v := range vs {
			msgs = append(msgs, producers.Message{Topic: schemas.TopicPayRequests, Key: "k", ID: v, Type: "t", Value: []byte(v)})
		}
		if err := w.Write(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu       sync.Mutex
		events   []string // "prepare:v", "finish:v", "handle:v" in the order they happened
		prepared = make(chan string, 16)
	)
	record := func(what string, batch []kafka.Message) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range batch {
			events = append(events, what+":"+string(m.Value))
		}
	}
	var failedOnce atomic.Bool
	handle := func(_ context.Context, batch []kafka.Message) ([]consumers.Rejection, error) {
		record("handle", batch)
		return nil, nil
	}
	prepare := func(_ context.Context, batch []kafka.Message) consumers.Handler {
		if string(batch[0].Value) == "prepare-panics" {
			panic("prepare bug")
		}
		record("prepare", batch)
		for _, m := range batch {
			prepared <- string(m.Value)
		}
		return func(ctx context.Context, batch []kafka.Message) ([]consumers.Rejection, error) {
			switch string(batch[0].Value) {
			case "first":
				// Finish only once the next batch has been prepared: a
				// runner that does not prepare ahead never gets there.
				write("second")
				select {
				case v := <-prepared:
					if v != "first" {
						t.Errorf("prepared %q before first", v)
					}
				default:
				}
				select {
				case v := <-prepared:
					if v != "second" {
						t.Errorf("prepared %q, want second", v)
					}
				case <-time.After(10 * time.Second):
					t.Error("the next batch was not prepared while the first was being finished")
				}
			case "finish-fails":
				if !failedOnce.Swap(true) {
					return nil, errors.New("database unavailable")
				}
				t.Error("a failed finish was tried again instead of the whole handler")
			}
			record("finish", batch)
			return nil, nil
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	newRunner := func() *consumers.Runner {
		r, err := consumers.NewRunner(consumers.Config{Brokers: brokers, Group: "runner-pipeline", Topic: schemas.TopicPayRequests,
			BatchSize: 1, MinBackoff: 10 * time.Millisecond, SessionTimeout: 6 * time.Second}, handle, w, log, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.Pipeline(prepare)
	}
	write("first")
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- newRunner().Run(rctx) }()
	waitFor := func(event string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			found := slices.Contains(events, event)
			mu.Unlock()
			if found {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("no %s; events %v", event, events)
	}
	waitFor("finish:second")
	write("finish-fails", "prepare-panics", "last")
	waitFor("finish:last")
	stop()
	if err := <-done; err != nil {
		t.Fatalf("runner: %v", err)
	}
	mu.Lock()
	var done1 []string // how each message was completed, in order
	for _, e := range events {
		if !strings.HasPrefix(e, "prepare:") {
			done1 = append(done1, e)
		}
	}
	before := len(events)
	mu.Unlock()
	want := []string{"finish:first", "finish:second", "handle:finish-fails", "handle:prepare-panics", "finish:last"}
	if !slices.Equal(done1, want) {
		t.Fatalf("completed %v, want %v", done1, want)
	}

	// All of it was committed: the group's next member gets nothing but
	// a last message written after the first member stopped (what it
	// would have got again came before that).
	write("after-restart")
	rctx2, stop2 := context.WithCancel(ctx)
	done2 := make(chan error, 1)
	go func() { done2 <- newRunner().Run(rctx2) }()
	waitFor("finish:after-restart")
	stop2()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if again := events[before:]; !slices.Equal(again, []string{"prepare:after-restart", "finish:after-restart"}) {
		t.Errorf("handled again after a restart: %v", again)
	}
}
