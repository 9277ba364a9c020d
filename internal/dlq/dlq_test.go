package dlq_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/internal/broker/brokertest"
	"github.com/paygate/paygate/internal/dlq"
	"github.com/paygate/paygate/internal/pgtest"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/schemas"
)

var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// env is a broker with paygate's topics (3 partitions each), a store, a
// DLQ service, and a consumer group "test" on the pay requests topic
// run by the real consumer runner: it dead-letters every message whose
// value starts with "bad" while broken is set, and counts the others.
type env struct {
	t       *testing.T
	ctx     context.Context
	brokers []string
	w       *producers.Writer
	st      *store.Store
	svc     *dlq.Service
	broken  atomic.Bool

	mu      sync.Mutex
	handled map[string]int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, b := brokertest.Start(t, 3)
	e := &env{t: t, ctx: ctx, brokers: []string{b.Addr()}, handled: map[string]int{}}
	e.broken.Store(true)
	var err error
	if e.w, err = producers.NewWriter(producers.WriterConfig{Brokers: e.brokers}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.w.Close() })
	if e.st, err = store.Open(ctx, store.Config{URL: pgtest.New(t), MaxConns: 4}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.st.Close() })
	if e.svc, err = dlq.New(dlq.Config{Brokers: e.brokers}, e.st, quiet); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.svc.Close() })
	h := func(_ context.Context, batch []kafka.Message) ([]consumers.Rejection, error) {
		var rejects []consumers.Rejection
		e.mu.Lock()
		defer e.mu.Unlock()
		for i, m := range batch {
			if bytes.HasPrefix(m.Value, []byte("bad")) && e.broken.Load() {
				rejects = append(rejects, consumers.Rejection{Index: i, Err: errors.New("cannot handle " + string(m.Value[:min(len(m.Value), 8)]))})
				continue
			}
			e.handled[string(m.Value[:min(len(m.Value), 16)])]++
		}
		return rejects, nil
	}
	r, err := consumers.NewRunner(consumers.Config{Brokers: e.brokers, Group: "test", Topic: schemas.TopicPayRequests}, h, e.w, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

func (e *env) write(values ...string) {
	e.t.Helper()
	var msgs []producers.Message
	for i, v := range values {
		msgs = append(msgs, producers.Message{Topic: schemas.TopicPayRequests, Key: "order-" + strconv.Itoa(i), ID: "m-" + v[:min(len(v), 8)] + strconv.Itoa(i), Type: "t", Value: []byte(v)})
	}
	if err := e.w.Write(e.ctx, msgs...); err != nil {
		e.t.Fatal(err)
	}
}

// ends is the sum of a topic's end offsets.
func (e *env) ends(topic string) (map[int]int64, int64) {
	e.t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 5 * time.Second}
	md, err := c.Metadata(e.ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 {
		e.t.Fatalf("metadata %s: %v", topic, err)
	}
	var req []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		req = append(req, kafka.LastOffsetOf(p.ID))
	}
	res, err := c.ListOffsets(e.ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		e.t.Fatalf("offsets %s: %v", topic, err)
	}
	out, sum := map[int]int64{}, int64(0)
	for _, p := range res.Topics[topic] {
		out[p.Partition] = p.LastOffset
		sum += p.LastOffset
	}
	return out, sum
}

// until polls cond (a barrier on broker state, not a sleep for effect).
func (e *env) until(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settled waits until the test group has committed everything in the
// pay requests topic, and its DLQ holds want records; then nothing more
// can come from what was written.
func (e *env) settled(want int64) {
	e.t.Helper()
	dlqTopic := schemas.DLQ(schemas.TopicPayRequests)
	c := &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 5 * time.Second}
	e.until("the test group at the end of the pay requests", func() bool {
		ends, _ := e.ends(schemas.TopicPayRequests)
		parts := []int{}
		for p := range ends {
			parts = append(parts, p)
		}
		res, err := c.OffsetFetch(e.ctx, &kafka.OffsetFetchRequest{GroupID: "test", Topics: map[string][]int{schemas.TopicPayRequests: parts}})
		if err != nil {
			return false
		}
		// Every partition answered, each at its end: a group without
		// offsets yet answers none, which is not caught up.
		got := res.Topics[schemas.TopicPayRequests]
		if len(got) != len(parts) {
			return false
		}
		for _, p := range got {
			if p.Error != nil || max(p.CommittedOffset, 0) != ends[p.Partition] {
				return false
			}
		}
		return true
	})
	if _, n := e.ends(dlqTopic); n != want {
		e.t.Fatalf("%s holds %d records once the group caught up, want %d", dlqTopic, n, want)
	}
}

func (e *env) dlqRecords() []dlq.Record {
	e.t.Helper()
	recs, err := e.svc.List(e.ctx, schemas.TopicPayRequests, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	return recs
}

var cli = store.Actor{Name: "cli:test@host"}

// A replay sends each record that was in the DLQ when it started once and
// stops there, though the records it sends fail again and land in the
// same DLQ meanwhile; the copies carry their replay count; a second run
// starts where the first stopped; once the cause is fixed, a run empties
// the DLQ for good. Records above the old 1 MiB limit go through.
func TestReplayOnceUpToTheEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	big := "bad-big-" + strings.Repeat("x", 5<<20) // above kafka-go's 1 MiB and the writer's 4 MiB batches
	e.write("bad-1", "bad-2", "good-1", big)
	e.until("3 records dead-lettered", func() bool { _, n := e.ends(schemas.DLQ(schemas.TopicPayRequests)); return n == 3 })
	e.settled(3)

	res, err := e.svc.Replay(e.ctx, schemas.TopicPayRequests, 0, cli)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 3 || res.Skipped != 0 || res.Left != 0 {
		t.Fatalf("first replay = %+v, want 3 sent", res)
	}
	// They fail again: each lands in the DLQ once more, and no more.
	e.settled(6)
	counts := map[int]int{}
	for _, r := range e.dlqRecords() {
		counts[r.ReplayCount]++
		if r.ReplayCount == 1 && r.Replayed != nil {
			t.Errorf("the copy %d@%d is marked replayed", r.Partition, r.Offset)
		}
		if r.ReplayCount == 0 && r.Replayed == nil {
			t.Errorf("the original %d@%d is not marked replayed", r.Partition, r.Offset)
		}
		if r.Reason == "" || r.Origin == "" {
			t.Errorf("record %d@%d lacks reason or origin: %+v", r.Partition, r.Offset, r.Headers)
		}
	}
	if counts[0] != 3 || counts[1] != 3 {
		t.Fatalf("replay counts in the DLQ = %v, want 3 originals and 3 copies counted 1", counts)
	}

	// The second run sends only the copies.
	res, err = e.svc.Replay(e.ctx, schemas.TopicPayRequests, 0, cli)
	if err != nil || res.Sent != 3 {
		t.Fatalf("second replay = %+v, %v; want the 3 copies sent", res, err)
	}
	e.settled(9)

	// Fixed: the third run sends the 3 newest copies, which now pass.
	e.broken.Store(false)
	if res, err = e.svc.Replay(e.ctx, schemas.TopicPayRequests, 0, cli); err != nil || res.Sent != 3 {
		t.Fatalf("third replay = %+v, %v", res, err)
	}
	e.settled(9)
	if res, err = e.svc.Replay(e.ctx, schemas.TopicPayRequests, 0, cli); err != nil || res.Sent != 0 {
		t.Fatalf("fourth replay = %+v, %v; want nothing to send", res, err)
	}
	e.mu.Lock()
	if e.handled["good-1"] != 1 || e.handled["bad-1"] != 1 || e.handled["bad-2"] != 1 || e.handled["bad-big-xxxxxxxx"] != 1 {
		t.Errorf("handled = %v, want each message once", e.handled)
	}
	e.mu.Unlock()
	sizes, err := e.svc.Sizes(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sz := range sizes {
		if sz.Topic == schemas.TopicPayRequests && (sz.Total != 9 || sz.Pending != 0) {
			t.Errorf("size of %s = %+v, want 9 records, none pending", sz.DLQTopic, sz)
		}
	}
	log, err := e.st.AuditLog(e.ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 4 || log[0].Action != "dlq.replay" || log[0].Actor.Name != cli.Name || log[0].Outcome != store.AuditOK || log[3].Detail["sent"] != 3.0 {
		t.Errorf("audit log = %+v", log)
	}
}

// A limited run commits as it goes: the next run sends the rest, and
// nothing twice. A record replayed on its own is skipped by a later run
// of the whole topic, and cannot be replayed on its own twice. A replay
// of a topic while another runs is refused. Each is audited.
func TestReplayLimitOneAndBusy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.write("bad-a", "bad-b", "bad-c", "bad-d", "bad-e")
	e.settled(5)
	e.broken.Store(false) // everything replayed from now on passes

	recs := e.dlqRecords()
	one := recs[len(recs)-1]
	got, err := e.svc.ReplayOne(e.ctx, schemas.TopicPayRequests, one.Partition, one.Offset, store.Actor{Name: "console:alice", Role: "operator"})
	if err != nil || got.MessageID != one.MessageID {
		t.Fatalf("replay one = %+v, %v", got, err)
	}
	if _, err := e.svc.ReplayOne(e.ctx, schemas.TopicPayRequests, one.Partition, one.Offset, store.Actor{Name: "console:bob"}); !errors.Is(err, dlq.ErrAlreadyReplayed) ||
		!strings.Contains(err.Error(), "console:alice") {
		t.Errorf("second replay of one record: %v, want already replayed by console:alice", err)
	}
	if _, err := e.svc.ReplayOne(e.ctx, schemas.TopicPayRequests, one.Partition, 999, cli); !errors.Is(err, dlq.ErrNoRecord) {
		t.Errorf("replay of a missing record: %v", err)
	}

	res, err := e.svc.Replay(e.ctx, schemas.TopicPayRequests, 2, cli)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 2 || res.Left+int64(res.Sent+res.Skipped) != 5 {
		t.Fatalf("limited replay = %+v, want 2 sent and the rest left", res)
	}
	res2, err := e.svc.Replay(e.ctx, schemas.TopicPayRequests, 0, cli)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent+res2.Sent != 4 || res.Skipped+res2.Skipped != 1 || res2.Left != 0 {
		t.Fatalf("replays = %+v then %+v: want 4 sent in all and the one replayed alone skipped", res, res2)
	}
	e.settled(5)
	e.mu.Lock()
	for _, v := range []string{"bad-a", "bad-b", "bad-c", "bad-d", "bad-e"} {
		if e.handled[v] != 1 {
			t.Errorf("%s handled %d times, want once", v, e.handled[v])
		}
	}
	e.mu.Unlock()

	unlock, err := e.st.TryLock(e.ctx, "paygate.dlq_replay/"+schemas.DLQ(schemas.TopicPayRequests))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Replay(e.ctx, schemas.TopicPayRequests, 0, cli); !errors.Is(err, dlq.ErrBusy) {
		t.Errorf("replay while another runs: %v, want busy", err)
	}
	unlock()
	if _, err := e.svc.Replay(e.ctx, schemas.TopicPayRequests+".dlq", 0, cli); !errors.Is(err, dlq.ErrUnknownTopic) {
		t.Errorf("replay of a DLQ's DLQ: %v", err)
	}

	log, err := e.st.AuditLog(e.ctx, 0, 20)
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for i := len(log) - 1; i >= 0; i-- {
		outcomes = append(outcomes, log[i].Action+"/"+log[i].Outcome)
	}
	want := "dlq.replay_one/ok dlq.replay_one/refused dlq.replay_one/refused dlq.replay/ok dlq.replay/ok dlq.replay/refused dlq.replay/refused"
	if strings.Join(outcomes, " ") != want {
		t.Errorf("audit log = %s\nwant        %s", strings.Join(outcomes, " "), want)
	}
}
