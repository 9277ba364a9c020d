// Package router runs routing in a paygate process: the policy in force
// (the newest stored version, or the default), the health every payinit
// member folds from paygate.routing-feedback.v1, snapshots of it, and the
// decisions that read both from memory — no database round trip per pay
// request (DESIGN.md §8, docs/routing.md).
//
// Sharing. The feedback topic is keyed by arm (channel/segment), so every
// member reads one arm's feedback in one order, and the health is a
// function of that order: members that have read as far agree on every
// success rate and every breaker. A member that starts loads the newest
// snapshot and reads the topic on from its offsets before it routes; it
// writes a snapshot of its own every SnapshotEvery.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/domain/routing"
	"github.com/paygate/paygate/internal/backoff"
	"github.com/paygate/paygate/internal/policydoc"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/wire"
	"github.com/paygate/paygate/schemas"
)

// Store is what the router needs from the system of record: the policy
// documents (policydoc) and the health's snapshots.
type Store interface {
	policydoc.Store
	SaveRoutingSnapshot(ctx context.Context, snap store.RoutingSnapshot) error
	LatestRoutingSnapshot(ctx context.Context) (store.RoutingSnapshot, error)
}

// Config configures a router. PolicyFile and SnapshotEvery are settings:
// their variables, defaults and help are their tags (internal/settings).
type Config struct {
	// Brokers and Dialer reach Kafka. Without brokers the router reads no
	// feedback (its health stays empty): a process that only explains.
	Brokers []string
	Dialer  *kafka.Dialer
	// Known says whether a channel is configured: a policy naming another
	// one is refused.
	Known func(string) bool
	// Default is the policy in force while none is stored (version 0).
	Default *routing.Policy
	// Seed, if set, is a document stored as the first version when none
	// is stored yet (`paygate dev`'s built-in policy), so that every
	// process and the CLI see the policy dev routes by.
	Seed []byte
	// PolicyFile, if set, is applied when the router starts and whenever
	// it changes (checked every PolicyPoll); a bad file is refused and
	// logged, and the policy in force stays.
	PolicyFile string `env:"PAYGATE_ROUTING_POLICY_FILE" help:"none: policies applied with paygate routing apply; else this file, applied\nat start and whenever it changes, a bad one refused and logged"`
	// Member names this process in snapshots and in the audit of a
	// policy file it applies. Default host:pid.
	Member string
	// PolicyPoll is how often the newest stored version is looked up.
	// Default 1s.
	PolicyPoll time.Duration
	// RefreshEvery bounds how stale the health a decision reads may be.
	// Default 100ms.
	RefreshEvery time.Duration
	// SnapshotEvery is how often the health is snapshotted; 0 (in code)
	// takes no snapshots (a read-only router, such as the CLI's). A
	// payinit member's router snapshots every 1m, the tag's default, when
	// internal/app is given 0.
	SnapshotEvery time.Duration `env:"PAYGATE_ROUTING_SNAPSHOT_EVERY" default:"1m" min:"1ns" help:"how often a payinit member snapshots its routing health"`
	// CatchUp bounds how long Start waits to read the feedback topic up
	// to its end before routing. Default 30s.
	CatchUp time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Router is routing's state in one process. Its methods are safe for
// concurrent use.
type Router struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	metrics *Metrics

	mu      sync.RWMutex // guards health and offsets
	health  *routing.Health
	offsets map[int]int64

	policy atomic.Pointer[routing.Policy]
	view   atomic.Pointer[routing.View]
	seq    atomic.Uint64 // health.Seq() as of the last Apply
	// doc keeps the newest stored policy in force (the file, the seed,
	// the poll), as it keeps the risk rules.
	doc *policydoc.Watcher[*routing.Policy]

	refreshMu sync.Mutex
	wg        sync.WaitGroup
	readers   []*kafka.Reader
}

// New builds a router; Start loads its state.
func New(cfg Config, st Store, log *slog.Logger, m *Metrics) (*Router, error) {
	if cfg.Default == nil {
		return nil, errors.New("router: a default policy is required")
	}
	if cfg.PolicyPoll == 0 {
		cfg.PolicyPoll = time.Second
	}
	if cfg.RefreshEvery == 0 {
		cfg.RefreshEvery = 100 * time.Millisecond
	}
	if cfg.CatchUp == 0 {
		cfg.CatchUp = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Member == "" {
		host, _ := os.Hostname()
		cfg.Member = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if cfg.Known == nil {
		cfg.Known = func(string) bool { return true }
	}
	r := &Router{cfg: cfg, store: st, log: log.With("component", "router"), metrics: m, health: routing.NewHealth(), offsets: map[int]int64{}}
	r.policy.Store(cfg.Default)
	var err error
	r.doc, err = policydoc.New(policydoc.Config[*routing.Policy]{
		Kind: store.DocRouting, Label: "routing policy",
		Parse:   func(doc []byte) (*routing.Policy, error) { return routing.Parse(doc, r.cfg.Known) },
		InForce: r.inForce,
		File:    cfg.PolicyFile, Seed: cfg.Seed, Member: cfg.Member, Poll: cfg.PolicyPoll,
		ReloadErrors: m.reloadErrors, Version: m.version,
	}, st, log.With("component", "router"))
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Start applies the policy file (if any), loads the policy in force and
// the newest snapshot, reads the feedback topic up to its end (or for
// CatchUp at most), and then keeps all of it fresh in the background
// until ctx ends.
func (r *Router) Start(ctx context.Context) error {
	if err := r.doc.Start(ctx); err != nil {
		return err
	}
	if len(r.cfg.Brokers) > 0 {
		if err := r.startFeedback(ctx); err != nil {
			return err
		}
	}
	r.Refresh()
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		r.loop(ctx)
	}()
	go func() {
		defer r.wg.Done()
		r.doc.Run(ctx)
	}()
	return nil
}

// Wait waits for the background work to end (after Start's ctx ended).
func (r *Router) Wait() {
	r.wg.Wait()
	for _, rd := range r.readers {
		_ = rd.Close()
	}
}

func (r *Router) loop(ctx context.Context) {
	refresh := time.NewTicker(r.cfg.RefreshEvery)
	defer refresh.Stop()
	var snapC <-chan time.Time
	if r.cfg.SnapshotEvery > 0 && len(r.cfg.Brokers) > 0 {
		// Jittered, so that members do not all write at once.
		snap := time.NewTicker(r.cfg.SnapshotEvery + time.Duration(rand.Int64N(int64(r.cfg.SnapshotEvery)/4+1)))
		defer snap.Stop()
		snapC = snap.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-refresh.C:
			r.refreshIfStale()
		case <-snapC:
			if err := r.Snapshot(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("routing snapshot failed", "err", err)
			}
		}
	}
}

// Validate parses a policy document against the configured channels.
func (r *Router) Validate(doc []byte) error { return r.doc.Validate(doc) }

// inForce puts a stored version of the policy in force.
func (r *Router) inForce(version int64, p *routing.Policy) {
	p.Version = version
	r.policy.Store(p)
	r.Refresh()
}

// Policy is the policy in force.
func (r *Router) Policy() *routing.Policy { return r.policy.Load() }

// View is the health decisions read now.
func (r *Router) View() *routing.View { return r.view.Load() }

// Refresh recomputes the health view now.
func (r *Router) Refresh() {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	r.mu.RLock()
	v := r.health.View(r.policy.Load(), r.cfg.Now())
	r.mu.RUnlock()
	r.view.Store(v)
}

// refreshIfStale recomputes the view if feedback arrived, the policy
// changed, or time moved on enough to matter to the breakers.
func (r *Router) refreshIfStale() {
	v := r.view.Load()
	if v == nil || v.Seq != r.seq.Load() || v.PolicyVersion != r.policy.Load().Version || r.cfg.Now().Sub(v.At) >= time.Second {
		r.Refresh()
	}
}

// Decide routes one request under the policy in force and the current
// health view.
func (r *Router) Decide(req routing.Request, usable routing.Usable) (routing.Decision, error) {
	d, err := routing.Decide(r.policy.Load(), req, r.view.Load(), usable, globalRand{}, r.cfg.Now())
	if err == nil {
		r.metrics.decisions.WithLabelValues(d.Segment, d.Chosen, d.Reason.String()).Inc()
	}
	return d, err
}

// Next is the failover decision after d's channel failed to start the
// payment (attempt previous).
func (r *Router) Next(d routing.Decision, previous string) (routing.Decision, bool) {
	r.refreshIfStale()
	n, ok := d.Next(r.policy.Load(), r.view.Load(), previous, r.cfg.Now())
	if ok {
		r.metrics.decisions.WithLabelValues(n.Segment, n.Chosen, n.Reason.String()).Inc()
		r.metrics.failovers.WithLabelValues(n.Segment, d.Chosen, n.Chosen).Inc()
	}
	return n, ok
}

// Apply folds one feedback in (the topic reader calls it; tests may too).
func (r *Router) Apply(f routing.Feedback) bool {
	r.mu.Lock()
	ok := r.health.Apply(f)
	r.seq.Store(r.health.Seq())
	r.mu.Unlock()
	if ok {
		r.metrics.feedback.WithLabelValues(f.Outcome.String()).Inc()
	}
	return ok
}

// Snapshot stores the health with the offsets it reflects.
func (r *Router) Snapshot(ctx context.Context) error {
	r.mu.RLock()
	state, err := r.health.Snapshot()
	offsets := make(map[int]int64, len(r.offsets))
	for p, o := range r.offsets {
		offsets[p] = o
	}
	r.mu.RUnlock()
	if err != nil {
		return err
	}
	return r.store.SaveRoutingSnapshot(ctx, store.RoutingSnapshot{TakenBy: r.cfg.Member, Offsets: offsets, State: state})
}

// Offsets are the next offsets the router reads, per partition.
func (r *Router) Offsets() map[int]int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[int]int64, len(r.offsets))
	for p, o := range r.offsets {
		out[p] = o
	}
	return out
}

// startFeedback restores the newest snapshot, opens a reader per
// partition of the feedback topic at the snapshot's offsets (the first
// offset without one), and waits until they reach the ends the topic had
// when it started.
func (r *Router) startFeedback(ctx context.Context) error {
	client := &kafka.Client{Addr: kafka.TCP(r.cfg.Brokers...), Timeout: 10 * time.Second}
	if r.cfg.Dialer != nil {
		client.Transport = &kafka.Transport{TLS: r.cfg.Dialer.TLS, SASL: r.cfg.Dialer.SASLMechanism}
	}
	first, last, err := partitionBounds(ctx, client, schemas.TopicRoutingFeedback)
	if err != nil {
		return fmt.Errorf("router: feedback topic: %w", err)
	}
	start := first
	snap, err := r.store.LatestRoutingSnapshot(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	default:
		if h, herr := routing.RestoreHealth(snap.State); herr != nil {
			r.log.Warn("routing snapshot unreadable; reading the feedback topic from its start", "err", herr)
		} else if usable(snap.Offsets, first, last) {
			r.health, start = h, snap.Offsets
			r.seq.Store(h.Seq())
			r.log.Info("routing health restored from a snapshot", "taken_at", snap.TakenAt, "taken_by", snap.TakenBy)
		} else {
			r.log.Warn("routing snapshot does not fit the feedback topic (recreated, or past its retention); reading it from its start",
				"taken_at", snap.TakenAt)
		}
	}
	r.mu.Lock()
	for p, o := range start {
		r.offsets[p] = o
	}
	r.mu.Unlock()
	caughtUp := make(chan int, len(last))
	for p := range last {
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: r.cfg.Brokers, Dialer: r.cfg.Dialer, Topic: schemas.TopicRoutingFeedback,
			Partition: p, MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 250 * time.Millisecond, QueueCapacity: 1000})
		if err := rd.SetOffset(start[p]); err != nil {
			return fmt.Errorf("router: feedback partition %d: %w", p, err)
		}
		r.readers = append(r.readers, rd)
		r.wg.Add(1)
		go func(p int, end int64) {
			defer r.wg.Done()
			r.read(ctx, rd, p, end, caughtUp)
		}(p, last[p])
	}
	deadline := time.NewTimer(r.cfg.CatchUp)
	defer deadline.Stop()
	for range last {
		select {
		case <-caughtUp:
		case <-deadline.C:
			r.log.Warn("routing health not caught up with the feedback topic; routing on what was read", "after", r.cfg.CatchUp)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// read folds one partition's feedback in, for as long as ctx lasts; it
// signals caughtUp once it has read up to end.
func (r *Router) read(ctx context.Context, rd *kafka.Reader, p int, end int64, caughtUp chan<- int) {
	signalled := false
	if r.Offsets()[p] >= end {
		caughtUp <- p
		signalled = true
	}
	failures := 0
	for {
		m, err := rd.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("routing feedback read failed; retrying", "partition", p, "err", err, "failures", failures+1)
			if !readRetry.Wait(ctx, failures) {
				return
			}
			failures++
			continue
		}
		failures = 0
		f, err := wire.DecodeFeedback(m.Value)
		if err != nil {
			// Paygate writes this topic alone; a message it cannot read
			// is skipped, not retried for ever.
			r.log.Error("unreadable routing feedback skipped", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
			r.metrics.feedback.WithLabelValues("unreadable").Inc()
		} else {
			r.Apply(f)
		}
		r.mu.Lock()
		r.offsets[p] = m.Offset + 1
		r.mu.Unlock()
		if !signalled && m.Offset+1 >= end {
			caughtUp <- p
			signalled = true
		}
	}
}

// readRetry spaces the retries of a failed read of the feedback topic.
var readRetry = backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}

// usable reports whether snapshot offsets fit the topic: one per
// partition, none behind the first offset still kept nor past the end.
func usable(offsets, first, last map[int]int64) bool {
	if len(offsets) != len(last) {
		return false
	}
	for p, o := range offsets {
		if l, ok := last[p]; !ok || o > l || o < first[p] {
			return false
		}
	}
	return true
}

// partitionBounds is each partition's first and next-to-write offset.
func partitionBounds(ctx context.Context, c *kafka.Client, topic string) (first, last map[int]int64, err error) {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, nil, err
	}
	var parts []int
	for _, t := range md.Topics {
		if t.Name == topic {
			if t.Error != nil {
				return nil, nil, t.Error
			}
			for _, p := range t.Partitions {
				parts = append(parts, p.ID)
			}
		}
	}
	if len(parts) == 0 {
		return nil, nil, fmt.Errorf("topic %s has no partitions", topic)
	}
	req := map[string][]kafka.OffsetRequest{}
	for _, p := range parts {
		req[topic] = append(req[topic], kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return nil, nil, err
	}
	first, last = map[int]int64{}, map[int]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, nil, po.Error
		}
		first[po.Partition], last[po.Partition] = po.FirstOffset, po.LastOffset
	}
	return first, last, nil
}

// globalRand draws from math/rand/v2's goroutine-safe source.
type globalRand struct{}

func (globalRand) Float64() float64     { return rand.Float64() }
func (globalRand) NormFloat64() float64 { return rand.NormFloat64() }
func (globalRand) IntN(n int) int       { return rand.IntN(n) }
