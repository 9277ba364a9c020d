package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/domain/routing"
	"github.com/paygate/paygate/internal/router"
	"github.com/paygate/paygate/internal/store"
)

// DevRoutingPolicy is `paygate dev`'s built-in routing policy: both
// simulator channels are candidates for every payment, split by their
// success rates, so that switching and failover can be tried out of the
// box (docs/routing.md).
const DevRoutingPolicy = `{
  "name": "paygate dev: sim and sim2 for every payment",
  "exploration": 0.05,
  "health": {"min_samples": 20},
  "segments": [
    {"name": "default", "split": "adaptive", "match": {},
     "candidates": [{"channel": "sim", "weight": 1}, {"channel": "sim2", "weight": 1}]}
  ]
}`

// defaultRoutingPolicy is the policy in force while none is stored:
// Config.Routing.Seed, else one catch-all segment split by the channels
// file's weights — what paygate did before routing policies (a channel of
// weight 0 takes only payments pinned to it). With no positive weight,
// every enabled channel is a candidate by priority, in the file's order.
func defaultRoutingPolicy(cfg Config, rules []domain.ChannelRule, known func(string) bool) (*routing.Policy, error) {
	if len(cfg.Routing.Seed) > 0 {
		p, err := routing.Parse(cfg.Routing.Seed, known)
		if err != nil {
			return nil, fmt.Errorf("built-in routing policy: %w", err)
		}
		return p, nil
	}
	seg := routing.Segment{Name: "default", Split: routing.SplitWeighted}
	for _, r := range rules {
		if r.Enabled && r.Weight > 0 {
			seg.Candidates = append(seg.Candidates, routing.Candidate{Channel: r.Name, Weight: r.Weight})
		}
	}
	if len(seg.Candidates) == 0 {
		seg.Split = routing.SplitPriority
		for i, r := range rules {
			if r.Enabled {
				seg.Candidates = append(seg.Candidates, routing.Candidate{Channel: r.Name, Priority: i})
			}
		}
	}
	if len(seg.Candidates) == 0 {
		return nil, fmt.Errorf("routing: no enabled channel in the channels file")
	}
	p := &routing.Policy{Name: "the channels file's weights", Segments: []routing.Segment{seg}}
	if err := p.Validate(known); err != nil {
		return nil, err
	}
	return p, nil
}

// startRouter builds and starts the process's router: a payinit member's
// (it snapshots its health), or a read-only one (the ingress's, for
// /v1/routing/health; the CLI's).
func (a *App) startRouter(snapshots bool) error {
	known := func(c string) bool { _, ok := a.Channels[c]; return ok }
	def, err := defaultRoutingPolicy(a.Config, a.Rules, known)
	if err != nil {
		return err
	}
	rc := a.Config.Routing
	rc.Brokers, rc.Dialer, rc.Known, rc.Default, rc.Now = a.Brokers, a.Kafka.Dialer(), known, def, a.Now
	switch {
	case !snapshots:
		rc.SnapshotEvery = 0 // a read-only router: the ingress's
	case rc.SnapshotEvery == 0:
		rc.SnapshotEvery = defaultSnapshotEvery
	}
	a.Router, err = router.New(rc, a.Store, a.Log, router.NewMetrics(a.Registry))
	if err != nil {
		return err
	}
	if err := a.Router.Start(a.ctx); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	a.Registry.MustRegister(a.Router)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		<-a.ctx.Done()
		a.Router.Wait()
	}()
	return nil
}

// Routing is what the routing subcommands work with: the store, the
// channels file's rules and a router (not started).
type Routing struct {
	Store  *store.Store
	Rules  []domain.ChannelRule
	Router *router.Router
	// Channels lists the configured channel names.
	Channels []string
	stop     context.CancelFunc
}

// Close stops the router's reading and closes the store.
func (r *Routing) Close() {
	if r.stop != nil {
		r.stop()
		r.Router.Wait()
	}
	r.Store.Close()
}

// Known says whether a channel is configured.
func (r *Routing) Known(c string) bool { return slices.Contains(r.Channels, c) }

// OpenRouting connects to the database and builds the channels' rules and
// a read-only router; with feedback, it also reads the routing feedback
// topic up to its end (KAFKA_BROKERS), so that its health is the members'.
func OpenRouting(ctx context.Context, cfg Config, feedback bool, log *slog.Logger) (*Routing, error) {
	st, err := store.Open(ctx, store.Config{URL: cfg.Store.URL, MaxConns: 4, StatementCache: cfg.Store.StatementCache}, nil)
	if err != nil {
		return nil, err
	}
	r := &Routing{Store: st}
	files, err := loadChannels(cfg, "http://"+cfg.SimAddr)
	if err != nil {
		st.Close()
		return nil, err
	}
	for _, c := range files.Channels {
		r.Channels = append(r.Channels, c.Name)
		r.Rules = append(r.Rules, domain.ChannelRule{Name: c.Name, Countries: c.Countries, Currencies: c.Currencies,
			Methods: c.Methods, Weight: c.Weight, Enabled: c.Enabled})
	}
	def, err := defaultRoutingPolicy(cfg, r.Rules, r.Known)
	if err != nil {
		st.Close()
		return nil, err
	}
	rc := router.Config{Known: r.Known, Default: def}
	if feedback {
		if len(cfg.Brokers) == 0 {
			st.Close()
			return nil, errors.New("KAFKA_BROKERS is not set: the routing health is read from the routing feedback topic (paygate dev's broker: KAFKA_BROKERS=127.0.0.1:9092)")
		}
		sec, err := cfg.Kafka.Build()
		if err != nil {
			st.Close()
			return nil, err
		}
		rc.Brokers, rc.Dialer = cfg.Brokers, sec.Dialer()
	}
	if r.Router, err = router.New(rc, st, log, router.NewMetrics(nil)); err != nil {
		st.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	if err := r.Router.Start(rctx); err != nil {
		cancel()
		r.Router.Wait()
		st.Close()
		return nil, err
	}
	r.stop = cancel
	return r, nil
}
