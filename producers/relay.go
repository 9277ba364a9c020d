package producers

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/backoff"
)

// OutboxStore is what the relay needs from the store.
type OutboxStore interface {
	PublishOutbox(ctx context.Context, limit int, publish func(ctx context.Context, events []domain.Event) error) (int, error)
	OutboxBacklog(ctx context.Context) (int64, error)
	PruneOutbox(ctx context.Context, keep time.Duration) (int64, error)
}

// Publisher writes messages to Kafka and waits for their acknowledgement.
type Publisher interface {
	Write(ctx context.Context, msgs ...Message) error
}

// RelayConfig configures the outbox relay.
type RelayConfig struct {
	// Listen, if set, LISTENs on a PostgreSQL notification channel
	// (store.Listen) and calls notify for each notification until ctx
	// ends: the relay listens on paygate_outbox, which the outbox's
	// trigger notifies, and publishes as soon as events are written. Nil:
	// poll only.
	Listen func(ctx context.Context, channel string, notify func(payload string)) error
	// BatchSize is the most events published per round. Default 500.
	BatchSize int
	// PollInterval is how often the relay looks without being woken.
	// Default 500ms.
	PollInterval time.Duration
	// Keep is how long published events stay in the outbox. Default 24h.
	Keep time.Duration
}

// Relay publishes outbox events in id order, at least once, with the
// event id as ce_id. Several relays may run: one publishes at a time.
type Relay struct {
	cfg     RelayConfig
	store   OutboxStore
	pub     Publisher
	log     *slog.Logger
	backlog prometheus.Gauge
	sent    prometheus.Counter
	errs    prometheus.Counter
}

// NewRelay builds a relay.
func NewRelay(cfg RelayConfig, st OutboxStore, pub Publisher, log *slog.Logger, reg prometheus.Registerer) *Relay {
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 500
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.Keep == 0 {
		cfg.Keep = 24 * time.Hour
	}
	r := &Relay{cfg: cfg, store: st, pub: pub, log: log,
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paygate_outbox_backlog", Help: "Outbox events not yet published."}),
		sent:    prometheus.NewCounter(prometheus.CounterOpts{Name: "paygate_outbox_published_total", Help: "Outbox events published to Kafka."}),
		errs:    prometheus.NewCounter(prometheus.CounterOpts{Name: "paygate_outbox_publish_errors_total", Help: "Failed outbox publish rounds."}),
	}
	if reg != nil {
		reg.MustRegister(r.backlog, r.sent, r.errs)
	}
	return r
}

// Run publishes until ctx ends.
func (r *Relay) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	if r.cfg.Listen != nil {
		err := r.cfg.Listen(ctx, "paygate_outbox", func(string) {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
		if err != nil {
			r.log.Warn("relay: LISTEN failed, polling only", "err", err)
		}
	}
	tick := time.NewTicker(r.cfg.PollInterval)
	defer tick.Stop()
	housekeeping := time.NewTicker(time.Minute)
	defer housekeeping.Stop()
	failures := 0 // rounds failed in a row
	for {
		n, err := r.store.PublishOutbox(ctx, r.cfg.BatchSize, func(ctx context.Context, evs []domain.Event) error {
			msgs := make([]Message, len(evs))
			for i, e := range evs {
				msgs[i] = FromEvent(e)
			}
			return r.pub.Write(ctx, msgs...)
		})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.errs.Inc()
			delay := relayRetry.Delay(failures)
			failures++
			r.log.Error("relay: publish failed, retrying", "err", err, "backoff", delay)
			if !relayRetry.WaitFor(ctx, delay) {
				return nil
			}
			continue
		}
		failures = 0
		r.sent.Add(float64(n))
		if n == r.cfg.BatchSize {
			continue // more waiting
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-tick.C:
			if b, err := r.store.OutboxBacklog(ctx); err == nil {
				r.backlog.Set(float64(b))
			}
		case <-housekeeping.C:
			if n, err := r.store.PruneOutbox(ctx, r.cfg.Keep); err != nil {
				r.log.Warn("relay: prune outbox", "err", err)
			} else if n > 0 {
				r.log.Info("relay: pruned published events", "count", n)
			}
		}
	}
}

// relayRetry is the wait after a failed round: 50 ms, doubling to 5 s,
// jittered.
var relayRetry = backoff.Policy{Min: 50 * time.Millisecond, Max: 5 * time.Second}
