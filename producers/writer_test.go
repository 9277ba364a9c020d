package producers

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/broker/brokertest"
	"github.com/paygate/paygate/schemas"
)

// fakeProduce stands in for the broker: it records each request's
// partition and record count, and answers what answer says.
type fakeProduce struct {
	mu     sync.Mutex
	calls  []topicPartition
	counts []int
	answer func(call int) (*kafka.ProduceResponse, error)
}

func (f *fakeProduce) produce(_ context.Context, r *kafka.ProduceRequest) (*kafka.ProduceResponse, error) {
	n := 0
	for {
		if _, err := r.Records.ReadRecord(); err != nil {
			break
		}
		n++
	}
	f.mu.Lock()
	call := len(f.calls)
	f.calls, f.counts = append(f.calls, topicPartition{r.Topic, r.Partition}), append(f.counts, n)
	f.mu.Unlock()
	if f.answer == nil {
		return &kafka.ProduceResponse{}, nil
	}
	return f.answer(call)
}

// testWriter is a Writer on f, for topic "t" with 4 partitions, which
// never asks a broker.
func testWriter(t *testing.T, f *fakeProduce) *Writer {
	t.Helper()
	w, err := NewWriter(WriterConfig{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	w.produce = f.produce
	w.counts["t"] = partitionCount{ids: []int{0, 1, 2, 3}, at: time.Now().Add(time.Hour)}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

// A write to an idle partition goes at once, alone; what arrives while it
// is in flight goes in the next request, all together.
func TestWriterBatchesWhatArrivesWhileAWriteIsInFlight(t *testing.T) {
	release := make(chan struct{})
	f := &fakeProduce{}
	f.answer = func(call int) (*kafka.ProduceResponse, error) {
		if call == 0 {
			<-release
		}
		return &kafka.ProduceResponse{}, nil
	}
	w := testWriter(t, f)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the writer's Close, on failure
	ctx := context.Background()
	errs := make(chan error, 11)
	go func() { errs <- w.Write(ctx, Message{Topic: "t", Key: "k", ID: "first"}) }()
	waitFor(t, "the first request", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.calls) == 1 })
	for i := range 10 {
		go func() { errs <- w.Write(ctx, Message{Topic: "t", Key: "k", ID: string(rune('a' + i))}) }()
	}
	waitFor(t, "ten messages queued", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, p := range w.parts {
			if len(p.queue) == 1 && len(p.queue[0].records) == 10 {
				return true
			}
		}
		return false
	})
	once.Do(func() { close(release) })
	for range 11 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.counts) != 2 || f.counts[0] != 1 || f.counts[1] != 10 || f.calls[0] != f.calls[1] {
		t.Fatalf("requests %v with %v records; want one of 1 then one of 10, to one partition", f.calls, f.counts)
	}
}

// A temporary broker error is tried again; a permanent one fails the
// write at once, naming the partition.
func TestWriterRetriesOnlyTemporaryErrors(t *testing.T) {
	f := &fakeProduce{answer: func(call int) (*kafka.ProduceResponse, error) {
		if call == 0 {
			return &kafka.ProduceResponse{Error: kafka.LeaderNotAvailable}, nil
		}
		return &kafka.ProduceResponse{}, nil
	}}
	if err := testWriter(t, f).Write(context.Background(), Message{Topic: "t", Key: "k"}); err != nil || len(f.calls) != 2 {
		t.Fatalf("after a temporary error: %v in %d requests; want success in 2", err, len(f.calls))
	}
	f = &fakeProduce{answer: func(int) (*kafka.ProduceResponse, error) {
		return &kafka.ProduceResponse{Error: kafka.MessageSizeTooLarge}, nil
	}}
	err := testWriter(t, f).Write(context.Background(), Message{Topic: "t", Key: "k"})
	if !errors.Is(err, kafka.MessageSizeTooLarge) || len(f.calls) != 1 {
		t.Fatalf("after a permanent error: %v in %d requests; want it at once", err, len(f.calls))
	}
}

// Close waits for a request in flight; a write after it fails.
func TestWriterClose(t *testing.T) {
	release := make(chan struct{})
	f := &fakeProduce{answer: func(int) (*kafka.ProduceResponse, error) { <-release; return &kafka.ProduceResponse{}, nil }}
	w := testWriter(t, f)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the writer's Close, on failure
	errs := make(chan error, 1)
	go func() { errs <- w.Write(context.Background(), Message{Topic: "t", Key: "k"}) }()
	waitFor(t, "the request", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.calls) == 1 })
	closed := make(chan struct{})
	go func() { _ = w.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned with a request in flight")
	case <-time.After(50 * time.Millisecond):
	}
	once.Do(func() { close(release) })
	<-closed
	if err := <-errs; err != nil {
		t.Fatalf("the write in flight: %v", err)
	}
	if err := w.Write(context.Background(), Message{Topic: "t", Key: "k"}); err == nil {
		t.Fatal("a write after Close succeeded")
	}
}

// Against a real broker: every message lands once, on the partition
// kafka-go's murmur2 balancer (the Java client's default) gives its key,
// with the CloudEvents headers, in the order written per key.
func TestWriterAgainstTheEmbeddedBroker(t *testing.T) {
	ctx, b := brokertest.Start(t, 4)
	brokers := []string{b.Addr()}
	w, err := NewWriter(WriterConfig{Brokers: brokers, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				key := string(rune('A' + g))
				if err := w.Write(ctx, Message{Topic: schemas.TopicPayments, Key: key, ID: key + string(rune(i)), Type: "x", Value: []byte{byte(i)}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var bal kafka.Murmur2Balancer
	seen := map[string]int{}
	for p := range 4 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: schemas.TopicPayments, Partition: p, MaxWait: 100 * time.Millisecond})
		end, err := r.ReadLag(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for range end {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := bal.Balance(kafka.Message{Key: m.Key}, 0, 1, 2, 3); want != p {
				t.Errorf("key %s on partition %d; murmur2 says %d", m.Key, p, want)
			}
			if int(m.Value[0]) != seen[string(m.Key)] {
				t.Errorf("key %s: message %d where %d was due", m.Key, m.Value[0], seen[string(m.Key)])
			}
			seen[string(m.Key)]++
			if len(m.Headers) != 5 || m.Headers[2].Key != schemas.HeaderSource || string(m.Headers[2].Value) != "test" {
				t.Errorf("headers %v", m.Headers)
			}
		}
		r.Close()
	}
	for g := range writers {
		if n := seen[string(rune('A'+g))]; n != each {
			t.Errorf("key %c: %d messages, want %d", 'A'+g, n, each)
		}
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// A write to a broker that has gone fails, after its tries, instead of
// waiting: the ingress then answers 503 and the PSP sends again.
func TestWriterFailsWhenTheBrokerIsGone(t *testing.T) {
	ctx, b := brokertest.Start(t, 2)
	brokers := []string{b.Addr()}
	w, err := NewWriter(WriterConfig{Brokers: brokers, WriteTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	m := Message{Topic: schemas.TopicPayments, Key: "k", ID: "1"}
	if err := w.Write(ctx, m); err != nil {
		t.Fatalf("with the broker up: %v", err)
	}
	b.Close()
	if err := w.Write(ctx, m); err == nil || ctx.Err() != nil {
		t.Fatalf("with the broker gone: %v (test context: %v); want the write's own error", err, ctx.Err())
	}
}
