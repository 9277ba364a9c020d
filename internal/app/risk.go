package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/paygate/paygate/internal/riskcheck"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/producers/sweeper"
)

// riskMetrics are the process's risk metrics, registered once whichever
// roles use them (payinit's decisions, the sweeper's review queue).
func (a *App) riskMetrics() *riskcheck.Metrics {
	if a.riskM == nil {
		a.riskM = riskcheck.NewMetrics(a.Registry)
	}
	return a.riskM
}

// startRisk builds and starts the process's risk control (payinit's):
// the rules in force, kept so, and the outside service's client.
func (a *App) startRisk() error {
	c, err := riskcheck.New(riskcheck.Config{RulesFile: a.Config.Risk.RulesFile, Seed: a.Config.Risk.Rules,
		ServiceURL: a.Config.Risk.ServiceURL, ServiceKeyID: a.Config.Risk.ServiceKeyID, ServiceSecret: a.Config.Risk.ServiceSecret},
		a.Store, a.Log, a.riskMetrics())
	if err != nil {
		return err
	}
	if err := c.Start(a.ctx); err != nil {
		return err
	}
	a.Risk = c
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		<-a.ctx.Done()
		c.Wait()
	}()
	return nil
}

// reviewExpiryBatch is the most reviews a sweeper round ends.
const reviewExpiryBatch = 100

// riskSweepTask ends the reviews no operator decided in time, by their
// default, and keeps the review queue's gauges.
func (a *App) riskSweepTask() sweeper.Task {
	m := a.riskMetrics()
	now := a.Config.Sweeper.Now
	if now == nil {
		now = time.Now
	}
	return func(ctx context.Context) (int, error) {
		n, q, err := a.Store.ExpireReviews(ctx, now(), reviewExpiryBatch)
		if err != nil {
			return 0, fmt.Errorf("expire risk reviews: %w", err)
		}
		m.Expired(n)
		m.ReviewQueue(q)
		return n, nil
	}
}

// Risk is what the risk subcommands work with: the store and a checker
// (not started: the rules are read from the store as needed).
type Risk struct {
	Store   *store.Store
	Checker *riskcheck.Checker
}

// Close closes the store.
func (r *Risk) Close() { r.Store.Close() }

// OpenRisk connects to the database for the risk subcommands.
func OpenRisk(ctx context.Context, cfg Config, log *slog.Logger) (*Risk, error) {
	st, err := store.Open(ctx, store.Config{URL: cfg.DatabaseURL, MaxConns: 4, StatementCache: cfg.StatementCache}, nil)
	if err != nil {
		return nil, err
	}
	c, err := riskcheck.New(riskcheck.Config{}, st, log, riskcheck.NewMetrics(nil))
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Risk{Store: st, Checker: c}, nil
}

// riskEvents records the refunds group's large refunds (refunds.RiskEvents).
type riskEvents struct {
	*riskcheck.Checker
	*store.Store
}
