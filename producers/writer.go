// Package producers holds everything that writes to Kafka: a writer on
// kafka-go's client with the settings payments need, the CloudEvents-style
// headers, and the outbox relay.
package producers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/backoff"
	"github.com/paygate/paygate/schemas"
)

// WriterConfig configures a Writer.
type WriterConfig struct {
	// Brokers are the bootstrap addresses. Required.
	Brokers []string
	// BatchBytes bounds one produce request to a partition. Default 4 MiB,
	// below the topics' max.message.bytes (broker.MaxMessageBytes).
	BatchBytes int
	// WriteTimeout bounds one produce request. Default 10s.
	WriteTimeout time.Duration
	// Source is the ce_source header. Default "paygate".
	Source string
	// Transport connects to the brokers (TLS, SASL: broker.Security).
	// Default: plaintext.
	Transport *kafka.Transport
}

// metadataTTL is how long a topic's partitions are taken as known: the
// default of kafka-go's Transport, whose cached partition leaders route
// the produce requests (a request to a former leader fails with a
// temporary error and is tried again).
const metadataTTL = 6 * time.Second

// maxAttempts is how often a produce request is tried when the broker or
// the network fails in a way worth trying again (kafka-go's Writer's
// test: a temporary Kafka error or a transient network error).
const maxAttempts = 3

// Writer writes messages synchronously with acks=all and key hashing
// compatible with the Java client's default partitioner (murmur2), so the
// mall producing straight to a topic lands on the same partition for the
// same key as paygate does.
//
// It batches naturally: a partition with no produce request in flight
// sends a message at once; what arrives while a request is in flight goes
// in the next one, all together. kafka-go's Writer instead holds every
// batch that is not full for its BatchTimeout, and an idle Go process
// cannot wait less than a millisecond for a timer (the runtime sleeps in
// epoll_wait, whose timeout is in whole milliseconds): a lone payment
// crosses two writers (ingress, relay) and waited about 1 ms in each.
type Writer struct {
	client  *kafka.Client
	source  string
	bytes   int
	timeout time.Duration
	// produce sends one request (client.Produce; tests stand in for it).
	produce func(context.Context, *kafka.ProduceRequest) (*kafka.ProduceResponse, error)

	mu       sync.Mutex // guards the fields below and every partition
	closed   bool
	parts    map[topicPartition]*partition
	counts   map[string]partitionCount
	flushing sync.WaitGroup // partitions' flushers running
}

type topicPartition struct {
	topic     string
	partition int
}

type partitionCount struct {
	ids []int
	at  time.Time
}

// partition is one topic-partition's queue (guarded by Writer.mu):
// batches waiting, written one after another by one goroutine while busy.
type partition struct {
	queue []*batch
	busy  bool
}

// batch is one produce request's records and the outcome its writers
// wait for.
type batch struct {
	records []kafka.Record
	bytes   int
	done    chan struct{}
	err     error
}

// NewWriter builds a Writer. Messages carry their own topic.
func NewWriter(cfg WriterConfig) (*Writer, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("producers: no brokers")
	}
	if cfg.BatchBytes == 0 {
		cfg.BatchBytes = 4 << 20
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.Source == "" {
		cfg.Source = "paygate"
	}
	if cfg.Transport == nil {
		cfg.Transport = &kafka.Transport{}
	}
	c := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.WriteTimeout, Transport: cfg.Transport}
	return &Writer{client: c, produce: c.Produce, source: cfg.Source, bytes: cfg.BatchBytes, timeout: cfg.WriteTimeout,
		parts: map[topicPartition]*partition{}, counts: map[string]partitionCount{}}, nil
}

// Message is one record to write with its event identity.
type Message struct {
	Topic string
	Key   string
	// ID is the stable event id (ce_id); Type the ce_type.
	ID    string
	Type  string
	Time  time.Time
	Value []byte
	// Extra headers beyond the CloudEvents ones.
	Extra []kafka.Header
}

// FromEvent turns an outbox event into a Message.
func FromEvent(e domain.Event) Message {
	return Message{Topic: e.Topic, Key: e.Key, ID: e.ID, Type: e.Type, Time: e.Time, Value: e.Payload}
}

// Write writes messages and returns once the broker acknowledged all of
// them (acks=all), or the error. It is safe for concurrent use. A write
// whose ctx ends returns then; its messages may still be written.
func (w *Writer) Write(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	tps, recs := make([]topicPartition, len(msgs)), make([]kafka.Record, len(msgs))
	var ids []int
	for i, m := range msgs {
		if i == 0 || m.Topic != msgs[i-1].Topic {
			var err error
			if ids, err = w.partitions(ctx, m.Topic); err != nil {
				return fmt.Errorf("write %d messages to kafka: %w", len(msgs), err)
			}
		}
		key := []byte(m.Key)
		tps[i] = topicPartition{topic: m.Topic, partition: murmur2.Balance(kafka.Message{Key: key}, ids...)}
		recs[i] = w.record(m, key)
	}
	wait, err := w.enqueue(tps, recs)
	if err != nil {
		return fmt.Errorf("write %d messages to kafka: %w", len(msgs), err)
	}
	for _, b := range wait {
		select {
		case <-b.done:
			if b.err != nil {
				return fmt.Errorf("write %d messages to kafka: %w", len(msgs), b.err)
			}
		case <-ctx.Done():
			return fmt.Errorf("write %d messages to kafka: %w", len(msgs), ctx.Err())
		}
	}
	return nil
}

// WriteMessages writes kafka-go messages as Write writes Messages: a
// message's ce_id and ce_type headers are its id and type, its other
// headers follow the CloudEvents ones, and its Time (zero: now) is
// ce_time. It serves code that speaks kafka-go's types only, as the
// consumer runner does for its dead letters (consumers.DeadLetterWriter).
func (w *Writer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		pm := Message{Topic: m.Topic, Key: string(m.Key), Time: m.Time, Value: m.Value}
		for _, h := range m.Headers {
			switch h.Key {
			case schemas.HeaderID:
				pm.ID = string(h.Value)
			case schemas.HeaderType:
				pm.Type = string(h.Value)
			default:
				pm.Extra = append(pm.Extra, h)
			}
		}
		out[i] = pm
	}
	return w.Write(ctx, out...)
}

func (w *Writer) record(m Message, key []byte) kafka.Record {
	t := m.Time
	if t.IsZero() {
		t = time.Now()
	}
	h := make([]kafka.Header, 0, 5+len(m.Extra))
	h = append(h,
		kafka.Header{Key: schemas.HeaderID, Value: []byte(m.ID)},
		kafka.Header{Key: schemas.HeaderType, Value: []byte(m.Type)},
		kafka.Header{Key: schemas.HeaderSource, Value: []byte(w.source)},
		kafka.Header{Key: schemas.HeaderTime, Value: []byte(t.UTC().Format(time.RFC3339Nano))},
		kafka.Header{Key: schemas.HeaderSpecVersion, Value: []byte(schemas.SpecVersion)},
	)
	// kafka.NewBytes(nil) is nil: a message without a value is Kafka's
	// null, as with kafka-go's Writer.
	return kafka.Record{Time: t, Key: kafka.NewBytes(key), Value: kafka.NewBytes(m.Value), Headers: append(h, m.Extra...)}
}

// partitions are the topic's partition ids, for murmur2 of a key over
// them, as kafka-go's Murmur2Balancer and the Java client choose. They are
// asked of the broker once per topic and again after metadataTTL.
func (w *Writer) partitions(ctx context.Context, topic string) ([]int, error) {
	w.mu.Lock()
	pc, ok := w.counts[topic]
	w.mu.Unlock()
	if ok && time.Since(pc.at) <= metadataTTL {
		return pc.ids, nil
	}
	md, err := w.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil || len(md.Topics[0].Partitions) == 0 {
		var terr error = kafka.UnknownTopicOrPartition
		if len(md.Topics) == 1 && md.Topics[0].Error != nil {
			terr = md.Topics[0].Error
		}
		return nil, fmt.Errorf("partitions of %s: %w", topic, terr)
	}
	ids := make([]int, len(md.Topics[0].Partitions))
	for i, p := range md.Topics[0].Partitions {
		ids[i] = p.ID
	}
	sort.Ints(ids)
	w.mu.Lock()
	w.counts[topic] = partitionCount{ids: ids, at: time.Now()}
	w.mu.Unlock()
	return ids, nil
}

var murmur2 kafka.Murmur2Balancer

// enqueue adds each record to its partition's newest batch that has room,
// all or none, starts the flusher of a partition where none runs, and
// returns the batches to wait for.
func (w *Writer) enqueue(tps []topicPartition, recs []kafka.Record) ([]*batch, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, errors.New("writer closed")
	}
	var wait []*batch
	for i, tp := range tps {
		p := w.parts[tp]
		if p == nil {
			p = &partition{}
			w.parts[tp] = p
		}
		size := recordSize(recs[i])
		var b *batch
		if n := len(p.queue); n > 0 && p.queue[n-1].bytes+size <= w.bytes {
			b = p.queue[n-1]
		} else {
			b = &batch{done: make(chan struct{})}
			p.queue = append(p.queue, b)
		}
		b.records, b.bytes = append(b.records, recs[i]), b.bytes+size
		if !p.busy {
			p.busy = true
			w.flushing.Add(1)
			go w.flush(tp, p)
		}
		if !slices.Contains(wait, b) {
			wait = append(wait, b)
		}
	}
	return wait, nil
}

func recordSize(r kafka.Record) int {
	n := 64
	for _, b := range []kafka.Bytes{r.Key, r.Value} {
		if b != nil { // a nil key or value is Kafka's null
			n += b.Len()
		}
	}
	for _, h := range r.Headers {
		n += 8 + len(h.Key) + len(h.Value)
	}
	return n
}

// flush writes the partition's batches one after another until none is
// left: a batch takes everything that arrived while the previous one was
// in flight.
func (w *Writer) flush(tp topicPartition, p *partition) {
	defer w.flushing.Done()
	for {
		w.mu.Lock()
		if len(p.queue) == 0 {
			p.busy = false
			w.mu.Unlock()
			return
		}
		b := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		w.mu.Unlock()
		b.err = w.send(tp, b.records)
		close(b.done)
	}
}

// send produces one batch, trying again after a temporary Kafka error
// or a transient network error.
func (w *Writer) send(tp topicPartition, records []kafka.Record) error {
	err := produceRetry.Retry(context.Background(), retryable, nil, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
		defer cancel()
		res, err := w.produce(ctx, &kafka.ProduceRequest{Topic: tp.topic, Partition: tp.partition,
			RequiredAcks: kafka.RequireAll, Records: kafka.NewRecordReader(records...)})
		if err == nil && res.Error != nil {
			err = res.Error
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%s/%d: %w", tp.topic, tp.partition, err)
	}
	return nil
}

// produceRetry is the wait between tries of a produce request: 100 ms,
// then 200 ms, jittered, maxAttempts tries in all.
var produceRetry = backoff.Policy{Min: 100 * time.Millisecond, Max: 200 * time.Millisecond, Attempts: maxAttempts}

// retryable is kafka-go's Writer's test for trying a produce again.
func retryable(err error) bool {
	var t interface{ Temporary() bool }
	if errors.As(err, &t) && t.Temporary() {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Close waits for the batches in flight and closes the writer; a Write
// after Close fails.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.flushing.Wait()
	if t, ok := w.client.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
	return nil
}
