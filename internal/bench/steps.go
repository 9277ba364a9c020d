package bench

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// loadSteps is what the harness does around each step of a mode's load
// (the webhook mode's and the whole-payment mode's): the database's work
// autovacuum would do, the profiles of the first step, and PostgreSQL's
// transactions between steps. A mode calls, per step i, vacuumBefore,
// loadStarts, then (its load done) loadEnds and transactionsPer, after
// begin before the first.
type loadSteps struct {
	cfg *Config
	t   *target
	rep *Report
	db  *sql.DB
	n   int // steps
	// vacuum: on a server without autovacuum nothing refreshes the
	// planner's statistics or clears dead rows, and over a sweep the bench
	// database grows by hundreds of thousands of rows: PostgreSQL's CPU per
	// webhook doubled by the fourth step, in sequential scans of the outbox
	// and the callbacks. A production server runs autovacuum, so on its own
	// database the harness does that work between steps, outside the
	// measured window, and says so in the report. During a step, every
	// autovacuumNaptime, it vacuums and analyzes the tables autovacuum
	// would, inside the measured window.
	vacuum bool
	// txBase is the database's transactions at the last reading.
	txBase int64
}

// newLoadSteps is the frame of n steps on the pipeline t, whose database
// db is; it vacuums where the server does not and the database is the
// harness's own (it runs the simulator).
func newLoadSteps(cfg *Config, t *target, rep *Report, db *sql.DB, n int) *loadSteps {
	return &loadSteps{cfg: cfg, t: t, rep: rep, db: db, n: n, vacuum: rep.Machine.Autovacuum == "off" && t.sim != nil}
}

// begin lets the statistics settle and takes the first count of
// transactions.
func (s *loadSteps) begin(ctx context.Context) {
	sleepCtx(ctx, s.cfg.StatSettle)
	s.txBase = pgXacts(ctx, s.db)
}

// vacuumBefore, where the harness vacuums, does VACUUM (ANALYZE) before
// step i (its time in the report's Vacuums), counts the transactions
// afresh after it, and does autovacuum's work during the step until the
// returned stop, which says how many tables it took. Elsewhere stop says 0.
func (s *loadSteps) vacuumBefore(ctx context.Context, i int) (stop func() int, err error) {
	if !s.vacuum {
		return func() int { return 0 }, nil
	}
	start := time.Now()
	if _, err := s.db.ExecContext(ctx, `VACUUM (ANALYZE)`); err != nil {
		return nil, fmt.Errorf("vacuum before step %d: %w", i+1, err)
	}
	s.rep.Vacuums = append(s.rep.Vacuums, time.Since(start).Seconds())
	s.txBase = pgXacts(ctx, s.db)
	return vacuumEvery(ctx, s.cfg, s.db, autovacuumNaptime), nil
}

// loadStarts tells the command that the load starts (its profiles) and
// starts the gateway's profiles, on the first step only; profiled waits
// for the gateway's to be written.
func (s *loadSteps) loadStarts(ctx context.Context, i int) (profiled func() error) {
	if i == 0 && s.cfg.OnLoad != nil {
		s.cfg.OnLoad(true)
	}
	if i == 0 {
		return profileGateway(ctx, s.cfg, s.t)
	}
	return func() error { return nil }
}

// loadEnds tells the command that the load ended, after the last step.
func (s *loadSteps) loadEnds(i int) {
	if i == s.n-1 && s.cfg.OnLoad != nil {
		s.cfg.OnLoad(false)
	}
}

// transactionsPer lets the statistics settle, counts the transactions
// since the last count, and returns them per one of n (0 if n or either
// count is 0).
func (s *loadSteps) transactionsPer(ctx context.Context, n int) float64 {
	sleepCtx(ctx, s.cfg.StatSettle)
	tx := pgXacts(ctx, s.db)
	var per float64
	if n > 0 && tx > 0 && s.txBase > 0 {
		per = float64(tx-s.txBase) / float64(n)
	}
	s.txBase = tx
	return per
}

// pgCeilingRatio is a sustained rate over the PostgreSQL ceiling, 0 if the
// ceiling was not measured.
func (r *Report) pgCeilingRatio(sustained float64) float64 {
	if r.Ceiling != nil && r.Ceiling.PGPaymentWrites > 0 {
		return sustained / r.Ceiling.PGPaymentWrites
	}
	return 0
}
