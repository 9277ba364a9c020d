// Package producers holds everything that writes to Kafka: a kafka-go
// writer with the settings payments need, the CloudEvents-style headers,
// and the outbox relay.
package producers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/schemas"
)

// WriterConfig configures a Writer.
type WriterConfig struct {
	// Brokers are the bootstrap addresses. Required.
	Brokers []string
	// BatchTimeout is how long the writer waits to fill a batch. Default
	// 50µs: kafka-go's default of 1s would make every synchronous write
	// wait a second, and every write waits this long for company, and
	// longer: a timer fires late on a busy or virtualised machine. A lone
	// payment crosses two writers (ingress, relay). Measured with paygate
	// bench on a 2-core VM where a 500µs timer took 1.1ms: a lone write's
	// acknowledgement p50 1.73ms at 500µs, 0.72ms at 50µs; lone payment
	// p50 14.3 -> 11.4ms. Under load a partition's batch still holds what
	// arrived while its previous batch was written, and saturation moved
	// by less than the run-to-run noise (as it did from 2ms to 500µs).
	BatchTimeout time.Duration
	// BatchSize is the most messages in one produce request to a
	// partition. Default 64. kafka-go allocates room for BatchSize
	// messages (152 bytes each) with every batch it opens, full or not,
	// and a synchronous writer at a 500µs timeout opens one per partition
	// every few messages: at 500 that was 76 kB per batch and 42% of all
	// the bytes a paygate bench run allocated. A partition's batches are
	// written one after another, so a batch holds what arrived during the
	// previous write; 64 is more than a partition sees then even at
	// 20,000 requests/s over 8 partitions.
	BatchSize int
	// WriteTimeout bounds one write. Default 10s.
	WriteTimeout time.Duration
	// Source is the ce_source header. Default "paygate".
	Source string
}

// Writer writes messages synchronously with acks=all and key hashing
// compatible with the Java client's default partitioner (murmur2), so the
// mall producing straight to a topic lands on the same partition for the
// same key as paygate does.
type Writer struct {
	w      *kafka.Writer
	source string
}

// NewWriter builds a Writer. Messages carry their own topic.
func NewWriter(cfg WriterConfig) (*Writer, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("producers: no brokers")
	}
	if cfg.BatchTimeout == 0 {
		cfg.BatchTimeout = 50 * time.Microsecond
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 64
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.Source == "" {
		cfg.Source = "paygate"
	}
	return &Writer{source: cfg.Source, w: &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: cfg.BatchTimeout,
		BatchSize:    cfg.BatchSize,
		BatchBytes:   4 << 20, // below the topics' max.message.bytes (broker.MaxMessageBytes)
		WriteTimeout: cfg.WriteTimeout,
		ReadTimeout:  cfg.WriteTimeout,
		MaxAttempts:  3,
		Async:        false,
	}}, nil
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
// them (acks=all), or the error. It is safe for concurrent use.
func (w *Writer) Write(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	km := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		t := m.Time
		if t.IsZero() {
			t = time.Now()
		}
		h := []kafka.Header{
			{Key: schemas.HeaderID, Value: []byte(m.ID)},
			{Key: schemas.HeaderType, Value: []byte(m.Type)},
			{Key: schemas.HeaderSource, Value: []byte(w.source)},
			{Key: schemas.HeaderTime, Value: []byte(t.UTC().Format(time.RFC3339Nano))},
			{Key: schemas.HeaderSpecVersion, Value: []byte(schemas.SpecVersion)},
		}
		km[i] = kafka.Message{Topic: m.Topic, Key: []byte(m.Key), Value: m.Value, Headers: append(h, m.Extra...), Time: t}
	}
	if err := w.w.WriteMessages(ctx, km...); err != nil {
		return fmt.Errorf("write %d messages to kafka: %w", len(msgs), err)
	}
	return nil
}

// Close flushes and closes the writer.
func (w *Writer) Close() error { return w.w.Close() }
