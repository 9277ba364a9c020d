// Package settlement starts reconciliation runs (DESIGN.md §7,
// docs/reconciliation.md): for one channel's business day it records the
// run and our side of its window in PostgreSQL — every paid attempt and
// succeeded refund becomes an outbox event for paygate.reconciliation.v1,
// in the same transaction — then pages through the PSP's settlement list
// of every day of the window (or the list imported by hand) and writes
// one record per row to the same topic, acks=all. Each side ends with an
// end record that says how many records it sent; the recon group matches
// the run once both sides are complete. The sweeper runs it daily through
// Task.
package settlement

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/producers/sweeper"
	"github.com/paygate/paygate/schemas"
)

// Store is what the fetcher needs from the system of record.
type Store interface {
	BeginReconRun(ctx context.Context, spec domain.ReconSpec,
		ours func(run domain.ReconRun, records []domain.ReconRecord) ([]domain.Event, error)) (bool, error)
	AbandonReconRun(ctx context.Context, runID, why string) error
	ImportedSettlement(ctx context.Context, channel, day string) (recs []domain.ReconRecord, refunds, ok bool, err error)
	MarkReconHealed(ctx context.Context) (map[string]int, error)
	ReconUnhealed(ctx context.Context) ([]domain.ReconUnhealed, error)
}

// Publisher writes to Kafka and returns once the broker acknowledged.
type Publisher interface {
	Write(ctx context.Context, msgs ...producers.Message) error
}

// Channels finds a configured channel by name.
type Channels interface {
	Channel(name string) (psp.Channel, bool)
}

// Config configures the fetcher. Tolerance is a setting: its variable,
// default and help are its tags (internal/settings); Validate fills it in
// when zero with the same default, which a test holds to the tag.
type Config struct {
	// Tolerance is how many days either side of the reconciled day a
	// payment's counterpart may be listed. With the default, 2, a payment
	// paid at 23:59:59 and settled up to two days later is matched; our
	// payments the PSP lacks are held until the end of day+2 before they
	// are missing_at_psp.
	Tolerance int `env:"PAYGATE_RECON_TOLERANCE_DAYS" default:"2" min:"1" help:"days a payment may straddle midnight before it counts as missing"`
	// Zones are the channels' time zones (the channels file's
	// "timezone"); a channel not named is on UTC.
	Zones map[string]*time.Location
	// Scheduled are the channels the daily task reconciles. Default:
	// none (the app passes every channel with a settlement API).
	Scheduled []string
	// StaleAfter is how long a run may collect before the scheduler
	// starts its slot again. Default 15m.
	StaleAfter time.Duration
	// RetryAfter is how long the scheduler waits after a failed run.
	// Default 1m.
	RetryAfter time.Duration
	// Chunk is how many PSP records are written to Kafka at once.
	// Default 500.
	Chunk int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultTolerance is Config.Tolerance's default, in days.
const DefaultTolerance = 2

// Validate fills defaults and checks the config.
func (c *Config) Validate() error {
	if c.Tolerance == 0 {
		c.Tolerance = DefaultTolerance
	}
	if c.Tolerance < 0 || c.Tolerance > 31 {
		return fmt.Errorf("settlement: tolerance %d days is not in 0..31", c.Tolerance)
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = 15 * time.Minute
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = time.Minute
	}
	if c.Chunk == 0 {
		c.Chunk = 500
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Fetcher starts reconciliation runs. It is safe for concurrent use.
type Fetcher struct {
	cfg      Config
	store    Store
	pub      Publisher
	channels Channels
	log      *slog.Logger
	rows     *prometheus.CounterVec
	runs     *prometheus.CounterVec
	healed   *prometheus.CounterVec
	// unhealed and oldest are the missing_at_gateway findings their
	// status probe has not paid (Unhealed).
	unhealed *prometheus.GaugeVec
	oldest   *prometheus.GaugeVec

	mu      sync.Mutex
	seen    map[string]bool      // channels the gauges were set for
	counted time.Time            // when Unhealed last set them
	settled map[string]bool      // channel/day/slot the scheduler has seen done
	retry   map[string]time.Time // channel/day/slot → not before
}

// New builds a fetcher and registers its metrics (reg may be nil).
func New(cfg Config, st Store, pub Publisher, ch Channels, log *slog.Logger, reg prometheus.Registerer) (*Fetcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Fetcher{cfg: cfg, store: st, pub: pub, channels: ch, log: log.With("component", "settlement"),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_recon_settlement_rows_total",
			Help: "Settlement rows fetched from PSPs (or imported lists), by channel."}, []string{"channel"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_recon_runs_started_total",
			Help: "Reconciliation runs started, by channel and outcome (started, failed)."}, []string{"channel", "outcome"}),
		healed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_recon_healed_total",
			Help: "missing_at_gateway mismatches healed: the status probe paid the attempt."}, []string{"channel"}),
		unhealed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paygate_recon_unhealed",
			Help: "missing_at_gateway findings whose status probe has not paid the attempt, by channel."}, []string{"channel"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paygate_recon_oldest_unhealed_seconds",
			Help: "Age of the oldest missing_at_gateway finding not healed, since it was found, by channel; 0 if none."}, []string{"channel"}),
		settled: map[string]bool{}, retry: map[string]time.Time{}, seen: map[string]bool{},
	}
	if reg != nil {
		reg.MustRegister(f.rows, f.runs, f.healed, f.unhealed, f.oldest)
	}
	return f, nil
}

// Zone is the channel's time zone.
func (f *Fetcher) Zone(channel string) *time.Location {
	if z := f.cfg.Zones[channel]; z != nil {
		return z
	}
	return time.UTC
}

// Run starts a run of channel's business day (YYYY-MM-DD in its zone)
// and returns its id once both sides are written; the recon group
// matches it. slot is "" for a run asked for by hand; a scheduler's slot
// already done (or being run) is not started again: began is false.
// Running a channel-day again is safe: findings are stored per
// channel-day, published and healed once.
func (f *Fetcher) Run(ctx context.Context, channel, day, slot string) (runID string, began bool, err error) {
	ch, ok := f.channels.Channel(channel)
	if !ok {
		return "", false, fmt.Errorf("reconcile %s %s: unknown channel", channel, day)
	}
	loc := f.Zone(channel)
	if _, _, err := domain.DayBounds(day, loc); err != nil {
		return "", false, fmt.Errorf("reconcile %s: %w", channel, err)
	}
	runID = newRunID(channel, day)
	spec := domain.ReconSpec{RunID: runID, Channel: channel, Day: day, Location: loc, Tolerance: f.cfg.Tolerance,
		AsOf: f.cfg.Now(), Slot: slot, StaleAfter: f.cfg.StaleAfter}
	began, err = f.store.BeginReconRun(ctx, spec, ourSide)
	if err != nil || !began {
		return "", began, err
	}
	log := f.log.With("channel", channel, "day", day, "run", runID)
	if err := f.pspSide(ctx, ch, spec); err != nil {
		f.runs.WithLabelValues(channel, "failed").Inc()
		if aerr := f.store.AbandonReconRun(context.WithoutCancel(ctx), runID, err.Error()); aerr != nil {
			log.Error("abandon run", "err", aerr)
		}
		return runID, true, fmt.Errorf("reconcile %s %s: %w", channel, day, err)
	}
	f.runs.WithLabelValues(channel, "started").Inc()
	log.Info("reconciliation run started: both sides written")
	return runID, true, nil
}

// ourSide turns our records of a run into outbox events, the end last.
func ourSide(run domain.ReconRun, recs []domain.ReconRecord) ([]domain.Event, error) {
	events := make([]domain.Event, 0, len(recs)+1)
	for i, r := range recs {
		ev, err := recordEvent(run.RunID, run.Channel, run.Day, schemas.ReconSideOurs, i, r)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	ev, err := endEvent(schemas.ReconRecord{Type: schemas.ReconTypeEnd, RunID: run.RunID, Channel: run.Channel, Day: run.Day,
		Side: schemas.ReconSideOurs, Count: len(recs)})
	return append(events, ev), err
}

func recordEvent(runID, channel, day, side string, seq int, r domain.ReconRecord) (domain.Event, error) {
	at := r.At.UTC()
	b, err := json.Marshal(schemas.ReconRecord{Type: schemas.ReconTypeRecord, RunID: runID, Channel: channel, Day: day, Side: side,
		Seq: seq, Item: r.Item.String(), Reference: r.Ref, PSPReference: r.PSPReference, Amount: r.Amount.Minor(),
		Currency: r.Amount.Currency().Code(), Status: r.Status.String(), RecordDay: r.Day, At: &at})
	if err != nil {
		return domain.Event{}, err
	}
	return domain.Event{ID: "recon/" + runID + "/" + side + "/" + strconv.Itoa(seq), Type: schemas.TypeReconRecord,
		Topic: schemas.TopicReconciliation, Key: channel + "/" + day, Payload: b, Time: time.Now().UTC()}, nil
}

func endEvent(v schemas.ReconRecord) (domain.Event, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return domain.Event{}, err
	}
	return domain.Event{ID: "recon/" + v.RunID + "/" + v.Side + "/end", Type: schemas.TypeReconEnd,
		Topic: schemas.TopicReconciliation, Key: v.Channel + "/" + v.Day, Payload: b, Time: time.Now().UTC()}, nil
}

// pspSide writes the PSP's lists of every day of the window that has
// begun: the imported list of a day if there is one, else the channel's
// settlement API, page by page. A day's list counts as had (PSPDays)
// once the day has ended or was imported.
func (f *Fetcher) pspSide(ctx context.Context, ch psp.Channel, spec domain.ReconSpec) error {
	days, _, err := domain.ReconWindow(spec.Day, spec.Tolerance, spec.Location)
	if err != nil {
		return err
	}
	seq, had, refunds := 0, []string{}, false
	var batch []producers.Message
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := f.pub.Write(ctx, batch...); err != nil {
			return err
		}
		f.rows.WithLabelValues(spec.Channel).Add(float64(len(batch)))
		batch = batch[:0]
		return nil
	}
	add := func(r domain.ReconRecord) error {
		ev, err := recordEvent(spec.RunID, spec.Channel, spec.Day, schemas.ReconSidePSP, seq, r)
		if err != nil {
			return err
		}
		seq++
		batch = append(batch, producers.FromEvent(ev))
		if len(batch) >= f.cfg.Chunk {
			return flush()
		}
		return nil
	}
	for _, day := range days {
		start, end, _ := domain.DayBounds(day, spec.Location)
		if !spec.AsOf.After(start) {
			continue // the day has not begun: nothing listed yet
		}
		imported, withRefunds, ok, err := f.store.ImportedSettlement(ctx, spec.Channel, day)
		if err != nil {
			return err
		}
		if ok {
			refunds = refunds || withRefunds
			for _, r := range imported {
				if err := add(r); err != nil {
					return err
				}
			}
			had = append(had, day)
			continue
		}
		if !ch.Capabilities().Settlement {
			if day == spec.Day {
				return fmt.Errorf("channel %s has no settlement API and no list was imported for %s (paygate recon import)", spec.Channel, day)
			}
			continue
		}
		page := ""
		for {
			p, err := ch.SettledPayments(ctx, start, page)
			if err != nil {
				return fmt.Errorf("settled payments of %s: %w", day, err)
			}
			for _, row := range p.Rows {
				if err := add(domain.ReconRecord{Item: domain.ReconPayment, Ref: row.TransactionCode, PSPReference: row.PSPReference,
					Amount: row.Amount, Status: row.Status, Day: day, At: row.SettledAt}); err != nil {
					return err
				}
			}
			if p.NextPage == "" {
				break
			}
			page = p.NextPage
		}
		if !spec.AsOf.Before(end) {
			had = append(had, day)
		}
	}
	if err := flush(); err != nil {
		return err
	}
	ev, err := endEvent(schemas.ReconRecord{Type: schemas.ReconTypeEnd, RunID: spec.RunID, Channel: spec.Channel, Day: spec.Day,
		Side: schemas.ReconSidePSP, Count: seq, PSPDays: had, PSPRefunds: refunds})
	if err != nil {
		return err
	}
	return f.pub.Write(ctx, producers.FromEvent(ev))
}

// Task is the sweeper's daily reconciliation: each round it marks healed
// the mismatches whose probe paid their attempt, and for every scheduled
// channel starts the run of each of the last Tolerance+1 business days
// that is due — a "daily" run once the day has ended, a "final" one once
// its tolerance window has closed. Slots are kept in the database, so
// several sweepers start each run once; this process remembers the slots
// it saw done, so a round costs no query when nothing is due.
func (f *Fetcher) Task() sweeper.Task {
	return func(ctx context.Context) (int, error) {
		healed, err := f.store.MarkReconHealed(ctx)
		if err != nil {
			return 0, err
		}
		for ch, n := range healed {
			f.healed.WithLabelValues(ch).Add(float64(n))
		}
		now := f.cfg.Now()
		started := 0
		var errs []error
		f.mu.Lock()
		count := now.Sub(f.counted) >= unhealedInterval
		f.mu.Unlock()
		if count {
			if err := f.Unhealed(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		for _, channel := range f.cfg.Scheduled {
			loc := f.Zone(channel)
			today := domain.BusinessDay(now, loc)
			for k := 1; k <= f.cfg.Tolerance+1; k++ {
				day, _ := domain.AddDays(today, -k)
				_, closes, err := domain.ReconWindow(day, f.cfg.Tolerance, loc)
				if err != nil {
					return started, err
				}
				slot := "daily"
				if !now.Before(closes) {
					slot = "final"
				}
				key := channel + "/" + day + "/" + slot
				f.mu.Lock()
				skip := f.settled[key] || now.Before(f.retry[key])
				f.mu.Unlock()
				if skip {
					continue
				}
				_, began, err := f.Run(ctx, channel, day, slot)
				f.mu.Lock()
				if err != nil {
					f.retry[key] = now.Add(f.cfg.RetryAfter)
					errs = append(errs, err)
				} else {
					f.settled[key] = true
				}
				f.mu.Unlock()
				if began && err == nil {
					started++
				}
			}
		}
		return started + sum(healed), errors.Join(errs...)
	}
}

// unhealedInterval is how often the task counts the findings not healed
// (it runs every sweeper round, a second by default).
const unhealedInterval = 15 * time.Second

// Unhealed sets paygate_recon_unhealed and
// paygate_recon_oldest_unhealed_seconds from the findings still probing;
// a channel that had some and has none now goes back to 0. A finding
// whose probe did not pay its attempt within the hour needs a person
// (alert ReconNotHealed): no counter can say that it is still there.
func (f *Fetcher) Unhealed(ctx context.Context) error {
	un, err := f.store.ReconUnhealed(ctx)
	if err != nil {
		return err
	}
	now := f.cfg.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	left := maps.Clone(f.seen)
	for _, u := range un {
		f.unhealed.WithLabelValues(u.Channel).Set(float64(u.Count))
		f.oldest.WithLabelValues(u.Channel).Set(max(now.Sub(u.Oldest).Seconds(), 0))
		f.seen[u.Channel] = true
		delete(left, u.Channel)
	}
	for ch := range left {
		f.unhealed.WithLabelValues(ch).Set(0)
		f.oldest.WithLabelValues(ch).Set(0)
	}
	f.counted = now
	return nil
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// newRunID is a run's id: readable, and unique however often a
// channel-day is run.
func newRunID(channel, day string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "rr-" + channel + "-" + day + "-" + hex.EncodeToString(b[:])
}
