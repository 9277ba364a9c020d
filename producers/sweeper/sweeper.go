// Package sweeper is paygate's time-driven worker (`paygate sweep`, also
// run by `dev`). It finds attempts that got no callback and sends status
// probes for them through the callbacks consumer — so one code path
// decides — with backoff until the attempt expires, and closes orders
// that expired unpaid. Several sweepers may run: each round claims its
// attempts with FOR UPDATE SKIP LOCKED, and probes go through the outbox
// in the same transaction that schedules the next one.
package sweeper

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/wire"
	"github.com/paygate/paygate/schemas"
)

// Store is what the sweeper needs.
type Store interface {
	ClaimProbes(ctx context.Context, now time.Time, firstAfter, ttl time.Duration, limit int,
		plan func(p domain.DueProbe) (next time.Time, probe domain.Event)) (int, error)
	CloseAbandonedOrders(ctx context.Context, cutoff time.Time, limit int) (int, error)
}

// Task is extra periodic work run by the sweeper each round (the refund
// poller, the daily settlement fetch); it returns how much it did.
type Task func(ctx context.Context) (int, error)

// Config configures the sweeper. Each setting's variable, default and
// help are its tags (internal/settings); New fills a zero field with the
// same default, which a test holds to the tag.
type Config struct {
	// Interval between rounds.
	Interval time.Duration `env:"PAYGATE_SWEEP_INTERVAL" default:"1s" min:"1ns" help:"time between the sweeper's rounds"`
	// Schedule is the delay before each probe of an open attempt: the
	// first is Schedule[0] after its session, the next Schedule[1] after
	// that, ...; past the end, the last delay repeats (hourly, by
	// default).
	Schedule []time.Duration `env:"PAYGATE_PROBE_SCHEDULE" default:"1m,5m,15m,1h" min:"1ns" help:"delays between status probes of an attempt without callback; the last repeats"`
	// AttemptTTL is the lifetime of an attempt whose PSP gave no expiry.
	AttemptTTL time.Duration `env:"PAYGATE_ATTEMPT_TTL" default:"30m" min:"1ns" help:"an attempt's lifetime when the PSP gives no expiry"`
	// OrderTTL is how long an order may stay unpaid before it is closed.
	OrderTTL time.Duration `env:"PAYGATE_ORDER_TTL" default:"24h" min:"1ns" help:"unpaid orders are closed after it"`
	// Batch is the most probes claimed per round. Default 500.
	Batch int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if len(c.Schedule) == 0 {
		c.Schedule = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour}
	}
	if c.AttemptTTL == 0 {
		c.AttemptTTL = 30 * time.Minute
	}
	if c.OrderTTL == 0 {
		c.OrderTTL = 24 * time.Hour
	}
	if c.Batch == 0 {
		c.Batch = 500
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Sweeper runs rounds until stopped.
type Sweeper struct {
	cfg    Config
	store  Store
	tasks  map[string]Task
	log    *slog.Logger
	probes prometheus.Counter
	closed prometheus.Counter
}

// New builds a sweeper; tasks run each round after the probes.
func New(cfg Config, st Store, tasks map[string]Task, log *slog.Logger, reg prometheus.Registerer) *Sweeper {
	cfg.defaults()
	s := &Sweeper{cfg: cfg, store: st, tasks: tasks, log: log.With("component", "sweeper"),
		probes: prometheus.NewCounter(prometheus.CounterOpts{Name: "paygate_sweeper_probes_total", Help: "Status probes sent for attempts without a callback."}),
		closed: prometheus.NewCounter(prometheus.CounterOpts{Name: "paygate_sweeper_orders_closed_total", Help: "Orders closed unpaid after their expiry."}),
	}
	if reg != nil {
		reg.MustRegister(s.probes, s.closed)
	}
	return s
}

// Run sweeps every Interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		s.Round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Round does one sweep: probes (as many rounds as are due), closes
// abandoned orders, runs the tasks. Errors are logged and retried next
// round: nothing the sweeper does is lost by waiting.
func (s *Sweeper) Round(ctx context.Context) {
	for {
		n, err := s.store.ClaimProbes(ctx, s.cfg.Now(), s.cfg.Schedule[0], s.cfg.AttemptTTL, s.cfg.Batch, s.plan)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("claim probes", "err", err)
			}
			break
		}
		s.probes.Add(float64(n))
		if n > 0 {
			s.log.Info("status probes sent", "count", n)
		}
		if n < s.cfg.Batch {
			break
		}
	}
	if n, err := s.store.CloseAbandonedOrders(ctx, s.cfg.Now().Add(-s.cfg.OrderTTL), s.cfg.Batch); err != nil {
		if ctx.Err() == nil {
			s.log.Error("close abandoned orders", "err", err)
		}
	} else if n > 0 {
		s.closed.Add(float64(n))
		s.log.Info("orders closed unpaid", "count", n)
	}
	for name, task := range s.tasks {
		if n, err := task(ctx); err != nil {
			if ctx.Err() == nil {
				s.log.Error("sweeper task failed", "task", name, "err", err)
			}
		} else if n > 0 {
			s.log.Info("sweeper task", "task", name, "count", n)
		}
	}
}

// plan makes one probe and says when the next is due.
func (s *Sweeper) plan(p domain.DueProbe) (time.Time, domain.Event) {
	now := s.cfg.Now().UTC()
	step := s.cfg.Schedule[min(p.Probes+1, len(s.cfg.Schedule)-1)]
	a := p.Attempt
	id := "probe/" + a.Code() + "/" + strconv.Itoa(p.Probes+1)
	b, _ := wire.EncodeCallback(domain.ProbeCallback(id, a.Channel(), a.Code(), now, !now.Before(p.ExpiresAt)))
	return now.Add(step), domain.Event{ID: id, Type: schemas.TypePSPCallback, Topic: schemas.TopicPSPCallbacks,
		Key: a.Channel() + "/" + a.Code(), Payload: b, Time: now}
}
