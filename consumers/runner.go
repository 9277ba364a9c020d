// Package consumers runs paygate's consumer groups: a Runner fetches
// micro-batches from Kafka, hands them to a Handler, dead-letters what can
// never be processed, and commits offsets only after the handler's
// transaction (or the dead-letter write) succeeded. One sub-package per
// consumer group holds its Handler.
package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/backoff"

	"github.com/paygate/paygate/schemas"
)

// Rejection is a message of a batch that can never be processed, and why:
// it goes to the topic's DLQ and processing goes on.
type Rejection struct {
	Index int
	Err   error
}

// Handler processes one batch, in order. It returns the messages it
// rejects for good, or an error for the whole batch: a permanent one
// (see Permanent) makes the runner isolate the poison message, any other
// is retried with backoff. A handler must be idempotent: after a crash or
// a rebalance the same messages come again.
type Handler func(ctx context.Context, batch []kafka.Message) ([]Rejection, error)

// Prepare is the first half of a Handler, which a runner may run one batch
// ahead: it prepares batch k+1 (decoding, verifying, asking a PSP; for
// payinit, planning in a transaction of its own, which nothing batch k's
// second half writes can change) while batch k is finished and its
// offsets are committed, and returns the Handler that finishes its batch. If that
// Handler fails, the batch is retried from the start with the runner's
// whole Handler, which must do what Prepare and the Handler it returned
// do together. What Prepare reads may be older than batch k's effects, so
// what it prepares must stay right whatever batch k changes (a handler
// decides inside its transaction).
type Prepare func(ctx context.Context, batch []kafka.Message) Handler

// PermanentError marks an error that retrying cannot fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as permanent (bad JSON, bad signature, unknown
// channel...). Errors not marked are treated as retryable: when unsure,
// wait and retry rather than drop.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err is marked permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// Config configures a Runner. BatchSize is a setting: its variable,
// default and help are its tags (internal/settings); NewRunner fills it in
// when zero with the same default, which a test holds to the tag.
type Config struct {
	// Brokers are the Kafka bootstrap addresses. Required.
	Brokers []string
	// Group is the consumer group id. Required.
	Group string
	// Topic to consume. Required.
	Topic string
	// BatchSize is the most messages handled together.
	BatchSize int `env:"PAYGATE_BATCH_SIZE" default:"256" min:"1" help:"the most messages a consumer handles in one batch: one transaction, one offset commit"`
	// Linger is how long to wait for more messages once the buffered ones
	// are taken. Default 0: a batch is the message that woke the runner
	// and whatever the reader had buffered behind it, so a lone message
	// is handled at once and, under load, batches grow by themselves
	// while the previous batch is handled. (A wait costs more than it
	// says: a 1ms linger held every lone message 1.6ms on a 2-core VM,
	// where a timer fires late.)
	Linger time.Duration
	// MinBackoff and MaxBackoff bound the retry delay of failing batches
	// (backoff.Policy: doubling from MinBackoff up to MaxBackoff,
	// jittered). Defaults 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// SessionTimeout of the group membership. Default 10s.
	SessionTimeout time.Duration
	// Dialer connects to the brokers (TLS, SASL: broker.Security).
	// Default: kafka-go's, plaintext.
	Dialer *kafka.Dialer
}

func (c *Config) validate() error {
	if len(c.Brokers) == 0 || c.Group == "" || c.Topic == "" {
		return fmt.Errorf("consumer config: brokers, group and topic are required (got %v, %q, %q)", c.Brokers, c.Group, c.Topic)
	}
	if c.BatchSize == 0 {
		c.BatchSize = 256
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	return nil
}

// Metrics are the runner's Prometheus collectors, shared by all runners
// of a process.
type Metrics struct {
	messages *prometheus.CounterVec
	batches  *prometheus.HistogramVec
	sizes    *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	lag      *prometheus.GaugeVec
}

// NewMetrics creates and registers the consumer metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_consumer_messages_total",
			Help: "Messages consumed, by group and outcome (ok, dlq)."}, []string{"group", "outcome"}),
		batches: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paygate_consumer_batch_seconds",
			Help: "Time from fetching a batch to committing it.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"group"}),
		sizes: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paygate_consumer_batch_size",
			Help: "Messages per batch.", Buckets: prometheus.ExponentialBuckets(1, 2, 10)}, []string{"group"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_consumer_retries_total",
			Help: "Batches retried after a transient error."}, []string{"group"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paygate_consumer_lag",
			Help: "Messages behind the end of the partitions this member reads."}, []string{"group"}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.batches, m.sizes, m.retries, m.lag)
	}
	return m
}

// DeadLetterWriter writes dead-lettered messages to Kafka and returns once
// the broker acknowledged them (acks=all): the runner commits past a
// message only then. A message's ce_id and ce_type headers are its id and
// type; the writer adds the other CloudEvents headers. producers.Writer
// is one.
type DeadLetterWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Runner is one member of a consumer group.
type Runner struct {
	cfg     Config
	handle  Handler
	prepare Prepare // nil: one batch at a time
	dlq     DeadLetterWriter
	log     *slog.Logger
	metrics *Metrics
	// reader is the member's reader while Run runs; tests read how much
	// it has buffered (export_test.go).
	reader atomic.Pointer[kafka.Reader]
}

// NewRunner builds a runner; dlq receives dead-lettered messages.
func NewRunner(cfg Config, h Handler, dlq DeadLetterWriter, log *slog.Logger, m *Metrics) (*Runner, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Runner{cfg: cfg, handle: h, dlq: dlq, log: log.With("group", cfg.Group, "topic", cfg.Topic), metrics: m}, nil
}

// Pipeline makes the runner prepare each batch with p while it finishes
// and commits the one before: a batch then waits for the previous one's
// transaction or for its own PSP calls, whichever is longer, rather than
// for both in turn. h, given to NewRunner, still handles retries. A nil p
// leaves the runner handling one batch at a time.
func (r *Runner) Pipeline(p Prepare) *Runner {
	r.prepare = p
	return r
}

// Run consumes until ctx ends. On return the reader has left the group;
// a batch in progress when ctx ended is not committed (it comes again).
func (r *Runner) Run(ctx context.Context) error {
	rd := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           r.cfg.Brokers,
		GroupID:           r.cfg.Group,
		Topic:             r.cfg.Topic,
		Dialer:            r.cfg.Dialer,
		MinBytes:          1,
		MaxBytes:          16 << 20,
		MaxWait:           time.Second, // a long poll: with MinBytes 1 the broker answers as soon as data arrives
		QueueCapacity:     r.cfg.BatchSize,
		CommitInterval:    0, // synchronous commits, only when we say
		StartOffset:       kafka.FirstOffset,
		HeartbeatInterval: time.Second,
		SessionTimeout:    r.cfg.SessionTimeout,
		RebalanceTimeout:  r.cfg.SessionTimeout,
		JoinGroupBackoff:  500 * time.Millisecond,
		ReadBackoffMin:    10 * time.Millisecond,
		ReadBackoffMax:    500 * time.Millisecond,
		ErrorLogger: kafka.LoggerFunc(func(f string, a ...any) {
			r.log.Warn("kafka reader: " + fmt.Sprintf(f, a...))
		}),
	})
	defer rd.Close()
	r.reader.Store(rd)
	defer r.reader.Store(nil)
	r.log.Info("consumer started")
	next, stop := r.batches(ctx, rd)
	defer stop()
	for {
		b := next()
		if b.err != nil {
			if ctx.Err() != nil {
				r.log.Info("consumer stopped")
				return nil
			}
			return fmt.Errorf("consumer %s: fetch: %w", r.cfg.Group, b.err)
		}
		if _, err := r.pipeline(b.finish)(ctx, b.msgs); err != nil {
			if ctx.Err() != nil {
				return nil // ctx ended mid-batch: nothing committed
			}
			return fmt.Errorf("consumer %s: %w", r.cfg.Group, err)
		}
		if err := rd.CommitMessages(ctx, b.msgs...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The batch's effects are stored; redelivery is harmless.
			r.log.Warn("commit failed; batch will be redelivered", "err", err, "size", len(b.msgs))
		}
		r.metrics.batches.WithLabelValues(r.cfg.Group).Observe(time.Since(b.start).Seconds())
		r.metrics.sizes.WithLabelValues(r.cfg.Group).Observe(float64(len(b.msgs)))
		r.metrics.lag.WithLabelValues(r.cfg.Group).Set(float64(rd.Lag()))
	}
}

// batch is a fetched batch and, if it was prepared, the Handler that
// finishes it; or why fetching failed.
type batch struct {
	msgs   []kafka.Message
	finish Handler // nil: not prepared
	start  time.Time
	err    error
}

// batches returns the function that gives the next batch. Without
// Prepare it fetches when called, so that a batch is what arrived while
// the previous one was handled. With Prepare a goroutine fetches and
// prepares one batch ahead, and hands it over when asked. stop ends that
// goroutine and waits for it.
func (r *Runner) batches(ctx context.Context, rd *kafka.Reader) (next func() batch, stop func()) {
	if r.prepare == nil {
		return func() batch {
			msgs, err := r.fetch(ctx, rd)
			return batch{msgs: msgs, start: time.Now(), err: err}
		}, func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	ahead := make(chan batch) // unbuffered: one prepared batch waits at most
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msgs, err := r.fetch(ctx, rd)
			b := batch{msgs: msgs, start: time.Now(), err: err}
			if err == nil {
				b.finish = r.safePrepare(ctx, msgs)
			}
			select {
			case ahead <- b:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return func() batch {
			select {
			case b := <-ahead:
				return b
			case <-ctx.Done():
				return batch{err: ctx.Err()}
			}
		}, func() {
			cancel()
			<-done
		}
}

// fetch blocks for one message, then takes the messages the reader has
// already buffered, up to BatchSize, and then what else arrives within
// Linger (if set).
//
// A fetch that fails while ctx lasts (the broker unreachable, a
// coordinator moving) is tried again with the one backoff policy, for as
// long as it takes: the group waits for Kafka, as it waits for the
// database, instead of ending its process.
func (r *Runner) fetch(ctx context.Context, rd *kafka.Reader) ([]kafka.Message, error) {
	m, err := rd.FetchMessage(ctx)
	for failures := 0; err != nil; failures++ {
		if ctx.Err() != nil {
			return nil, err
		}
		r.metrics.retries.WithLabelValues(r.cfg.Group).Inc()
		r.log.Warn("fetch failed; retrying", "err", err, "failures", failures+1)
		if !fetchRetry.Wait(ctx, failures) {
			return nil, ctx.Err()
		}
		m, err = rd.FetchMessage(ctx)
	}
	batch := []kafka.Message{m}
	// Buffered messages come at once; the timeout only guards against a
	// rebalance emptying the queue between the count and the fetch.
	bctx, cancel := context.WithTimeout(ctx, bufferedWait)
	for n := rd.Stats().QueueLength; n > 0 && len(batch) < r.cfg.BatchSize; n-- {
		m, err := rd.FetchMessage(bctx)
		if err != nil {
			break
		}
		batch = append(batch, m)
	}
	cancel()
	if r.cfg.Linger <= 0 {
		return batch, nil
	}
	lctx, cancel := context.WithTimeout(ctx, r.cfg.Linger)
	defer cancel()
	for len(batch) < r.cfg.BatchSize {
		m, err := rd.FetchMessage(lctx)
		if err != nil {
			break
		}
		batch = append(batch, m)
	}
	return batch, nil
}

// fetchRetry spaces the tries of a fetch that failed.
var fetchRetry = backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}

// bufferedWait bounds the wait for a message the reader said it had
// buffered.
const bufferedWait = 50 * time.Millisecond

// safePrepare prepares a batch; if Prepare panics, the batch goes to the
// runner's Handler, whose own panic process isolates.
func (r *Runner) safePrepare(ctx context.Context, batch []kafka.Message) (finish Handler) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("prepare panic", "panic", p, "stack", string(debug.Stack()))
			finish = nil
		}
	}()
	return r.prepare(ctx, batch)
}

func (r *Runner) deadLetter(ctx context.Context, batch []kafka.Message, rejects []Rejection) error {
	if len(rejects) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, 0, len(rejects))
	for _, rj := range rejects {
		m := batch[rj.Index]
		id, typ := Header(m, schemas.HeaderID), Header(m, schemas.HeaderType)
		if id == "" {
			id = fmt.Sprintf("%s/%d/%d", m.Topic, m.Partition, m.Offset)
		}
		r.log.Warn("dead-lettering message", "err", rj.Err, "partition", m.Partition, "offset", m.Offset, "key", string(m.Key))
		headers := []kafka.Header{
			{Key: schemas.HeaderID, Value: []byte(id)},
			{Key: schemas.HeaderType, Value: []byte(typ)},
			{Key: schemas.HeaderDLQReason, Value: []byte(rj.Err.Error())},
			{Key: schemas.HeaderDLQOrigin, Value: []byte(m.Topic + "/" + strconv.Itoa(m.Partition) + "/" + strconv.FormatInt(m.Offset, 10))},
		}
		// A replayed message that fails again keeps its replay count, so
		// that operators see how often it was tried.
		if n := Header(m, schemas.HeaderReplayCount); n != "" {
			headers = append(headers, kafka.Header{Key: schemas.HeaderReplayCount, Value: []byte(n)})
		}
		msgs = append(msgs, kafka.Message{
			Topic: schemas.DLQ(m.Topic), Key: m.Key, Value: m.Value, Headers: headers,
		})
	}
	if err := r.dlq.WriteMessages(ctx, msgs...); err != nil {
		return err
	}
	r.metrics.messages.WithLabelValues(r.cfg.Group, "dlq").Add(float64(len(msgs)))
	return nil
}

// Header returns the value of a message header, "" if absent.
func Header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// MessageID is a message's stable id: its ce_id header, or
// topic/partition/offset for producers that send none (the mall may
// produce to a topic directly).
func MessageID(m kafka.Message) string {
	if id := Header(m, schemas.HeaderID); id != "" {
		return id
	}
	return m.Topic + "/" + strconv.Itoa(m.Partition) + "/" + strconv.FormatInt(m.Offset, 10)
}
