package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/paygate/paygate/domain/risk"
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
	c, err := riskcheck.New(a.Config.Risk,
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

// reviewExpiryBatch is the most reviews a sweeper round ends, pruneBatch
// the most old velocity counters it deletes.
const (
	reviewExpiryBatch = 100
	pruneBatch        = 5000
)

// riskSweepTask ends the reviews no operator decided in time, by their
// default, keeps the review queue's gauges, and deletes the velocity
// counters older than any window.
func (a *App) riskSweepTask() sweeper.Task {
	m := a.riskMetrics()
	now := a.Config.Sweeper.Now
	if now == nil {
		now = time.Now
	}
	return func(ctx context.Context) (int, error) {
		t := now()
		n, q, err := a.Store.ExpireReviews(ctx, t, reviewExpiryBatch)
		if err != nil {
			return 0, fmt.Errorf("expire risk reviews: %w", err)
		}
		m.Expired(n)
		m.ReviewQueue(q)
		// Counters no window reaches any more (a day's margin for clocks).
		pruned, err := a.Store.PruneRiskCounts(ctx, t.Add(-risk.Retention()-24*time.Hour), pruneBatch)
		if err != nil {
			return n, err
		}
		return n + pruned, nil
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
	st, err := store.Open(ctx, store.Config{URL: cfg.Store.URL, MaxConns: 4, StatementCache: cfg.Store.StatementCache}, nil)
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
