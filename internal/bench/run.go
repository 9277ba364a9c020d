package bench

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lib/pq"

	"github.com/paygate/paygate/internal/broker"
	"github.com/paygate/paygate/schemas"
)

// Run runs the benchmark and returns its report. The report's OK is false
// if a paid event was lost or duplicated or a forged order was paid.
//
// In order: the pipeline started (or, in target mode, pointed at), its
// database's settings read, the ceiling measured, then the mode's load —
// the ingress alone, whole payments, or the webhook half (runWebhooks) —
// and the report's targets.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	rep := &Report{StartedAt: time.Now().UTC(), Machine: machine(), Mode: "in-process"}
	t, err := startPipeline(ctx, &cfg, rep)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	db, err := sql.Open("postgres", t.dbURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(2)
	readServer(ctx, db, &rep.Machine)

	if !cfg.SkipCeiling {
		if rep.Ceiling, err = measureCeiling(ctx, &cfg, t); err != nil {
			return nil, err
		}
	}
	if t.app != nil {
		// The ceiling's records and garbage are not the pipeline's
		// memory: give them back and restart the peak RSS count.
		debug.FreeOSMemory()
		resetHWM()
	}
	switch {
	case cfg.IngressOnly:
		rep.Mode += ", ingress only"
		err = watchMemory(ctx, t, rep, func() error { return runIngressOnly(ctx, &cfg, t, rep, cfg.rates()) })
	case cfg.Whole:
		rep.Mode += ", whole payments"
		err = watchMemory(ctx, t, rep, func() error { return runWhole(ctx, &cfg, t, rep, db) })
	default:
		if err := runWebhooks(ctx, &cfg, t, rep, db); err != nil {
			return nil, err
		}
		err = ctx.Err()
	}
	rep.Targets = rep.targets()
	return rep, err
}

// startPipeline starts the pipeline under load as cfg asks — in target
// mode it points at one running elsewhere — and puts its mode and where
// its broker runs in rep.
func startPipeline(ctx context.Context, cfg *Config, rep *Report) (*target, error) {
	switch {
	case cfg.IngressURL != "":
		if cfg.IngressOnly {
			return nil, fmt.Errorf("bench: -ingress-only starts an ingress of its own, with nothing behind it: not with -ingress")
		}
		rep.Mode = "target"
		t := startTarget(cfg)
		rep.Machine.Broker = strings.Join(t.kafka.brokers, ",")
		return t, nil
	case cfg.Split:
		if cfg.Stall > 0 {
			return nil, fmt.Errorf("bench: -split runs the callbacks group in the gateway process: no -stall")
		}
		rep.Mode = "split (gateway in its own process; broker, simulator and load here)"
		if cfg.IngressOnly {
			rep.Mode = "split (the ingress in its own process; broker and load here)"
		}
		cfg.logf("starting the gateway process (fresh database; the broker embedded here)")
		t, err := startSplit(ctx, cfg)
		if err != nil {
			return nil, err
		}
		rep.Machine.Broker = "embedded kfake (in the harness's process)"
		return t, nil
	default:
		cfg.logf("starting the pipeline in process (fresh database, embedded broker)")
		t, err := startInProcess(ctx, cfg)
		if err != nil {
			return nil, err
		}
		rep.Machine.Broker = "embedded kfake (in process)"
		return t, nil
	}
}

// readServer reads the database server's version, synchronous_commit and
// autovacuum into m (left empty if it cannot).
func readServer(ctx context.Context, db *sql.DB, m *Machine) {
	_ = db.QueryRowContext(ctx, `SELECT current_setting('server_version'), current_setting('synchronous_commit'), current_setting('autovacuum')`).
		Scan(&m.Postgres, &m.SyncCommt, &m.Autovacuum)
}

// measureCeiling measures the machine's ceiling for CeilingDuration each:
// PostgreSQL's minimal payment write at 32 connections, then the broker's
// produce and consume.
func measureCeiling(ctx context.Context, cfg *Config, t *target) (*Ceiling, error) {
	c := &Ceiling{PGConnections: 32, RecordBytes: 1100}
	var err error
	cfg.logf("ceiling: PostgreSQL minimal payment write at %d connections for %s", c.PGConnections, cfg.CeilingDuration)
	if c.PGPaymentWrites, err = pgCeiling(ctx, t.dbURL, c.PGConnections, cfg.CeilingDuration); err != nil {
		return nil, err
	}
	cfg.logf("ceiling: broker produce/consume for %s", cfg.CeilingDuration)
	parts, err := topicPartitions(ctx, t.kafka, schemas.TopicPSPCallbacks)
	if err != nil {
		return nil, err
	}
	ck, closeBroker := t.kafka, func() {}
	if t.gateway != nil {
		// Split: a fresh embedded broker, the same software on the
		// same cores, so that the ceiling's records do not load the
		// pipeline's broker.
		e, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", Retention: time.Minute})
		if err != nil {
			return nil, err
		}
		ck, closeBroker = cluster{brokers: []string{e.Addr()}}, e.Close
	}
	c.BrokerProduce, c.BrokerConsume, err = brokerCeiling(ctx, ck, parts, cfg.CeilingDuration, c.RecordBytes)
	closeBroker()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// watchMemory runs a mode's load while it watches the pipeline's memory
// (in process), and puts the pipeline's memory in rep once it has ended.
func watchMemory(ctx context.Context, t *target, rep *Report, load func() error) error {
	mem := &memWatch{}
	if t.app != nil {
		go mem.run(ctx)
	}
	err := load()
	if t.app != nil {
		mem.stop()
	}
	rep.Memory = pipelineMemory(t, mem)
	return err
}

// pipelineMemory is the pipeline's memory to report: in process what mem
// watched, in split mode the gateway process's peak RSS, in target mode
// nothing.
func pipelineMemory(t *target, mem *memWatch) *Memory {
	switch {
	case t.app != nil:
		return mem.report()
	case t.gateway != nil:
		return &Memory{GatewayProcessHWMBytes: procHWM(t.gateway.Pid)}
	}
	return nil
}

// webhookRun is the webhook mode's run: signed webhooks for orders
// prepared before the load, one step per rate.
type webhookRun struct {
	cfg   *Config
	t     *target
	rep   *Report
	db    *sql.DB
	rates []float64
	runID string
	// orders are every order prepared: lone, then paid (at the simulator,
	// nobody told), then forged (never paid). Each step takes its own from
	// the front of paid and forged.
	orders, lone, paid, forged []*order
}

// runWebhooks runs the webhook mode: the preload, the orders prepared,
// the order center watching for their paid events, the lone payments, the
// steps with the pipeline's memory watched, then the verdict.
func runWebhooks(ctx context.Context, cfg *Config, t *target, rep *Report, db *sql.DB) error {
	if cfg.Preload > 0 {
		cfg.logf("preloading %d orders by COPY", cfg.Preload)
		if err := preload(ctx, t.dbURL, cfg.Preload); err != nil {
			return err
		}
		rep.Preloaded = cfg.Preload
	}
	w := &webhookRun{cfg: cfg, t: t, rep: rep, db: db, rates: cfg.rates(), runID: strconv.FormatInt(time.Now().Unix()%1_000_000, 36)}
	if err := w.prepare(ctx); err != nil {
		return err
	}
	oc := startOrderCenter(t.kafka, "bench-order-center-"+w.runID)
	defer oc.stop()
	oc.watch(w.orders)
	parts, err := topicPartitions(ctx, t.kafka, schemas.TopicPSPCallbacks)
	if err != nil {
		return err
	}
	if len(w.lone) > 0 {
		cfg.logf("lone payments: %d, one at a time", len(w.lone))
		if rep.Lone, err = lonePayments(ctx, t, w.lone); err != nil {
			return err
		}
	}
	mem := &memWatch{}
	if t.app != nil {
		go mem.run(ctx)
		defer mem.stop()
	}
	if err := w.steps(ctx, parts); err != nil {
		return err
	}
	rep.Memory = pipelineMemory(t, mem)
	w.verdict(oc)
	return nil
}

// prepare makes the orders every step needs, and the lone payments': in
// process by cloning all but a few (prepareByClone), else through the
// pipeline; their time is in the report.
func (w *webhookRun) prepare(ctx context.Context) error {
	cfg, t, rep := w.cfg, w.t, w.rep
	var nPaid, nForged int
	for _, r := range w.rates {
		p, f := need(cfg, r, cfg.Duration)
		nPaid, nForged = nPaid+p, nForged+f
	}
	nLone := max(cfg.Lone, 0)
	total := nLone + nPaid + nForged
	start := time.Now()
	isForged := func(i int) bool { return i >= nLone+nPaid }
	var orders []*order
	var err error
	rep.PrepareMode = "pipeline"
	if t.sim != nil && !cfg.PrepareViaPipeline {
		rep.PrepareMode = "clone"
		cfg.logf("preparing %d orders (%d paid at the simulator, %d never paid): %d through the pipeline, the rest cloned from them",
			total, nLone+nPaid, nForged, min(nLone+2, total))
		orders, err = prepareByClone(ctx, cfg, t, "B"+w.runID, total, nLone, isForged)
	} else {
		cfg.logf("preparing %d orders through the pipeline (%d paid at the simulator, %d never paid)", total, nLone+nPaid, nForged)
		orders, err = prepare(ctx, cfg, t, "B"+w.runID, total, isForged)
	}
	if err != nil {
		return err
	}
	rep.PrepareSec = time.Since(start).Seconds()
	rep.PreparedPS = float64(total) / rep.PrepareSec
	w.orders, w.lone, w.paid, w.forged = orders, orders[:nLone], orders[nLone:nLone+nPaid], orders[nLone+nPaid:]
	return nil
}

// steps runs one step per rate, in order, until the rates or ctx end, and
// puts each in the report.
func (w *webhookRun) steps(ctx context.Context, parts int) error {
	ls := newLoadSteps(w.cfg, w.t, w.rep, w.db, len(w.rates))
	ls.begin(ctx)
	for i, rate := range w.rates {
		st, err := w.loadStep(ctx, ls, i, rate, parts)
		if err != nil {
			return err
		}
		w.rep.Steps = append(w.rep.Steps, *st)
		if ctx.Err() != nil {
			break
		}
	}
	return nil
}

// loadStep runs step i at rate: its schedule from the prepared orders,
// signed ahead of its sends (presign), driven and measured (runStep), with
// what the harness does around a step (loadSteps); then the transactions
// per paid event and the PostgreSQL ceiling ratio.
func (w *webhookRun) loadStep(ctx context.Context, ls *loadSteps, i int, rate float64, parts int) (*Step, error) {
	cfg, t := w.cfg, w.t
	stopVacuum, err := ls.vacuumBefore(ctx, i)
	if err != nil {
		return nil, err
	}
	p, f := need(cfg, rate, cfg.Duration)
	sched := schedule(cfg, rate, cfg.Duration, w.paid[:p], w.forged[:f])
	w.paid, w.forged = w.paid[p:], w.forged[f:]
	stopSigning := presign(ctx, t, sched)
	cfg.logf("step %d/%d: %.0f webhooks/s for %s", i+1, len(w.rates), rate, cfg.Duration)
	profiled := ls.loadStarts(ctx, i)
	st, err := runStep(ctx, cfg, t, rate, sched, parts)
	if perr := profiled(); perr != nil && err == nil {
		err = perr
	}
	stopSigning()
	vacuums := stopVacuum()
	if err != nil {
		return nil, err
	}
	st.Vacuums = vacuums
	ls.loadEnds(i)
	st.TransactionsPerEvent = ls.transactionsPer(ctx, st.First-st.Lost)
	st.PGCeilingRatio = w.rep.pgCeilingRatio(st.Sustained)
	return st, nil
}

// verdict judges the steps: the report is OK unless a paid event was
// lost or duplicated, a forged order paid, or (on a pipeline of the
// harness's own) the order center read paid events of orders the run does
// not know; the knees are the lowest rates whose e2e p99 passed 50 and
// 100 ms.
func (w *webhookRun) verdict(oc *orderCenter) {
	cfg, rep := w.cfg, w.rep
	rep.OK = true
	for i, s := range rep.Steps {
		if s.Lost > 0 || s.Duplicated > 0 || s.ForgedPaid > 0 {
			rep.OK = false
		}
		if s.Lost > 0 && len(cfg.Brokers) == 0 {
			cfg.logf("step %d: %d paid events missing; the embedded broker deletes records older than %s unread, so a callbacks backlog older than that is lost with them (see the lag; -retention)",
				i+1, s.Lost, cfg.Retention)
		}
		if s.E2E.P99 > 50 && rep.Knee50 == 0 {
			rep.Knee50 = w.rates[i]
		}
		if s.E2E.P99 > 100 && rep.Knee100 == 0 {
			rep.Knee100 = w.rates[i]
		}
	}
	if n := oc.foreign.Load(); n > 0 && w.t.sim != nil {
		rep.OK = false // on a pipeline of our own every paid event is one of ours
		cfg.logf("%d paid events for orders the run does not know", n)
	}
}

// autovacuumNaptime is how often the harness does autovacuum's work during
// a step when the server does not: PostgreSQL's default naptime.
const autovacuumNaptime = time.Minute

// vacuumEvery does autovacuum's work on db every period (autovacuumRound)
// until the returned function is called; that function waits for a round
// in progress and says how many tables were vacuumed or analyzed. It
// works on a connection of its own, paced as autovacuum's workers are
// (autovacuumPaceQuery), and gives it back unpaced.
func vacuumEvery(ctx context.Context, cfg *Config, db *sql.DB, period time.Duration) (stop func() int) {
	// Stopping ends the waits between rounds, not a round in progress: a
	// VACUUM cancelled after the server finished it would not be counted.
	waits, cancel := context.WithCancel(ctx)
	var n int
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, release, err := pacedConn(ctx, db)
		if err != nil {
			cfg.logf("vacuum during the step: %v", err)
			return
		}
		defer release()
		for sleepCtx(waits, period) {
			start := time.Now()
			tables, err := autovacuumRound(ctx, conn)
			n += len(tables)
			if err != nil {
				if ctx.Err() == nil {
					cfg.logf("vacuum during the step: %v", err)
				}
				return
			}
			if len(tables) > 0 {
				cfg.logf("vacuumed or analyzed %s during the step (%.1fs)", strings.Join(tables, ", "), time.Since(start).Seconds())
			}
		}
	}()
	return func() int {
		cancel()
		<-done
		return n
	}
}

// autovacuumPaceQuery makes a session's VACUUM and ANALYZE pause as
// autovacuum's workers do on this server: its cost-based delay and limit
// (autovacuum_vacuum_cost_delay, 2 ms by default, and
// autovacuum_vacuum_cost_limit, 200 by default through vacuum_cost_limit;
// -1 in either means the plain setting's). A manual VACUUM does not pause:
// unpaced, the harness's vacuums took a core for 4–10 s every minute of a
// long step, where autovacuum spreads the same work out.
const autovacuumPaceQuery = `
SELECT set_config('vacuum_cost_delay', CASE current_setting('autovacuum_vacuum_cost_delay')
           WHEN '-1' THEN current_setting('vacuum_cost_delay') ELSE current_setting('autovacuum_vacuum_cost_delay') END, false),
       set_config('vacuum_cost_limit', CASE current_setting('autovacuum_vacuum_cost_limit')
           WHEN '-1' THEN current_setting('vacuum_cost_limit') ELSE current_setting('autovacuum_vacuum_cost_limit') END, false)`

// pacedConn takes a connection of db's paced as autovacuum's workers are
// (autovacuumPaceQuery); release gives it back unpaced.
func pacedConn(ctx context.Context, db *sql.DB) (_ *sql.Conn, release func(), _ error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	release = func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `RESET vacuum_cost_delay; RESET vacuum_cost_limit`)
		conn.Close()
	}
	if _, err := conn.ExecContext(ctx, autovacuumPaceQuery); err != nil {
		release()
		return nil, nil, fmt.Errorf("pace as autovacuum: %w", err)
	}
	return conn, release, nil
}

// sqlConn is what autovacuumRound needs of a connection.
type sqlConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// autovacuumQuery finds the tables autovacuum would take now, by its
// default thresholds: VACUUM (ANALYZE) where dead rows passed 50 plus 20%
// of the table, ANALYZE where the rows changed since the last analyze
// passed 50 plus 10%.
const autovacuumQuery = `
SELECT s.relname, s.n_dead_tup > 50 + 0.2 * greatest(c.reltuples, 0)
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.n_dead_tup > 50 + 0.2 * greatest(c.reltuples, 0)
   OR s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0)
ORDER BY s.relname`

// autovacuumRound vacuums or analyzes the tables autovacuum would, and
// returns their names.
func autovacuumRound(ctx context.Context, db sqlConn) ([]string, error) {
	rows, err := db.QueryContext(ctx, autovacuumQuery)
	if err != nil {
		return nil, err
	}
	type table struct {
		name   string
		vacuum bool
	}
	var due []table
	for rows.Next() {
		var t table
		if err := rows.Scan(&t.name, &t.vacuum); err != nil {
			rows.Close()
			return nil, err
		}
		due = append(due, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var done []string
	for _, t := range due {
		stmt := `ANALYZE ` + pq.QuoteIdentifier(t.name)
		if t.vacuum {
			stmt = `VACUUM (ANALYZE) ` + pq.QuoteIdentifier(t.name)
		}
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return done, fmt.Errorf("%s: %w", stmt, err)
		}
		done = append(done, t.name)
	}
	return done, nil
}

// runStep drives one schedule and waits for its paid events.
func runStep(ctx context.Context, cfg *Config, t *target, rate float64, sched []send, parts int) (*Step, error) {
	st := &Step{Rate: rate, DurationSec: cfg.Duration.Seconds(), Sent: len(sched)}
	st.First, st.Duplicates, st.Forged = scheduleCounts(sched)
	var before, after struct{ stmts, trips int64 }
	if c, ok := t.counts(); ok {
		before.stmts, before.trips = c.Statements, c.RoundTrips()
	}
	kc := t.kafka.client(5 * time.Second)
	lctx, lcancel := context.WithCancel(ctx)
	var lagMu sync.Mutex
	var lags []lagSample
	loadStart := time.Now()
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			if l, err := groupLag(lctx, kc, "callbacks", schemas.TopicPSPCallbacks, parts); err == nil {
				lagMu.Lock()
				lags = append(lags, lagSample{At: time.Since(loadStart).Seconds(), Lag: l})
				lagMu.Unlock()
			}
			select {
			case <-lctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	var stallDone chan *StallOutcome
	if cfg.Stall > 0 && t.callbacks != nil {
		stallDone = make(chan *StallOutcome, 1)
		go func() { stallDone <- stall(lctx, cfg, t, rate, loadStart, &lagMu, &lags) }()
	}

	cpu0 := readCPU(t.gatewayPid())
	res := drive(ctx, cfg, t, sched)
	drain(ctx, sched, cfg.DrainTimeout+cfg.Stall, cfg.logf)
	// The CPU the webhooks cost is what the machine did from the first
	// send until the pipeline had carried them all: past saturation it
	// works on after the last send, and the send window alone priced a
	// webhook at what the machine could do in it, not at what it took.
	st.CPU = cpuBetween(cpu0, readCPU(t.gatewayPid()), runtime.NumCPU(), len(sched))
	time.Sleep(time.Second) // late duplicates would show now
	if stallDone != nil {
		st.Stall = <-stallDone
	}
	lcancel()
	<-lagDone
	if c, ok := t.counts(); ok {
		after.stmts, after.trips = c.Statements, c.RoundTrips()
	}

	var e2e []time.Duration
	var lastPaid int64
	for _, s := range sched {
		o := s.o
		if s.dup {
			continue
		}
		n, at := o.events.Load(), o.paidAt.Load()
		if o.forged {
			if n > 0 {
				st.ForgedPaid++
			}
			continue
		}
		switch {
		case n == 0:
			st.Lost++
			continue
		case n > 1:
			st.Duplicated += int(n - 1)
		}
		e2e = append(e2e, time.Duration(at-o.first.Load()))
		lastPaid = max(lastPaid, at)
	}
	st.E2E, st.Ingress, st.IngressSvc = latency(e2e), latency(res.ingress), latency(res.ingressSvc)
	st.E2E.Missed = st.Lost
	st.SendErrors, st.LateStarts, st.SendRetries, st.SendShed = res.errors.Load(), res.lateStarts.Load(), res.tries.retries.Load(), res.tries.shed.Load()
	if e, ok := res.firstErr.Load().(string); ok {
		st.FirstError = e
	}
	st.AchievedSend = float64(len(sched)) / res.ended.Sub(res.start).Seconds()
	if lastPaid > 0 {
		window := time.Unix(0, lastPaid).Sub(res.start).Seconds()
		st.Sustained = float64(len(sched)) / window
		st.PaidPerSec = float64(len(e2e)) / window
	}
	if paidN := len(e2e); paidN > 0 && after.trips > 0 {
		st.StatementsPerEvent = float64(after.stmts-before.stmts) / float64(paidN)
		st.RoundTripsPerEvent = float64(after.trips-before.trips) / float64(paidN)
	}
	st.Lag = lags
	for _, l := range lags {
		st.MaxLag = max(st.MaxLag, l.Lag)
	}
	return st, nil
}

// stall stops the callbacks group StallAfter into the load for Stall,
// starts it again and measures how fast the backlog drains.
func stall(ctx context.Context, cfg *Config, t *target, rate float64, loadStart time.Time, mu *sync.Mutex, lags *[]lagSample) *StallOutcome {
	out := &StallOutcome{StallSec: cfg.Stall.Seconds()}
	if !sleepCtx(ctx, time.Until(loadStart.Add(cfg.StallAfter))) {
		return out
	}
	cfg.logf("stalling the callbacks group for %s", cfg.Stall)
	t.callbacks.pause()
	sleepCtx(ctx, cfg.Stall)
	resume := time.Now()
	if err := t.callbacks.start(); err != nil {
		cfg.logf("restart callbacks: %v", err)
		return out
	}
	cfg.logf("callbacks group restarted; draining")
	threshold := int64(max(float64(2*cfg.BatchSize), rate*0.1))
	for ctx.Err() == nil {
		time.Sleep(250 * time.Millisecond)
		mu.Lock()
		ls := *lags
		mu.Unlock()
		var atResume *lagSample
		for i := range ls {
			at := loadStart.Add(time.Duration(ls[i].At * float64(time.Second)))
			if at.Before(resume) {
				atResume = &ls[i]
				continue
			}
			if atResume != nil && out.Backlog == 0 {
				out.Backlog = atResume.Lag
			}
			if ls[i].Lag <= threshold && at.Sub(resume) > time.Second {
				out.DrainSec = at.Sub(resume).Seconds()
				processed := float64(out.Backlog-ls[i].Lag) + rate*out.DrainSec
				out.DrainRate = processed / out.DrainSec
				out.DrainRatio = out.DrainRate / rate
				out.Drained = true
				return out
			}
		}
		if time.Since(resume) > cfg.DrainTimeout+cfg.Stall {
			return out
		}
	}
	return out
}

// lonePayments sends one webhook at a time and waits for its paid event.
func lonePayments(ctx context.Context, t *target, orders []*order) (*Latency, error) {
	var ds []time.Duration
	for _, o := range orders {
		w, err := o.webhook(t)
		if err != nil {
			return nil, err
		}
		_ = w
		start := time.Now()
		o.first.Store(start.UnixNano())
		if err := postWebhook(ctx, t, o, &tries{}); err != nil {
			return nil, fmt.Errorf("lone payment %s: %w", o.id, err)
		}
		for deadline := time.Now().Add(30 * time.Second); o.paidAt.Load() == 0; {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return nil, fmt.Errorf("lone payment %s: no paid event in 30s", o.id)
			}
			time.Sleep(200 * time.Microsecond)
		}
		ds = append(ds, time.Duration(o.paidAt.Load()-start.UnixNano()))
		time.Sleep(20 * time.Millisecond)
	}
	return latency(ds), nil
}

// pgXacts is the database's committed plus rolled back transactions.
func pgXacts(ctx context.Context, db *sql.DB) int64 {
	var n int64
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0
	}
	defer conn.Close()
	_, _ = conn.ExecContext(ctx, `SELECT pg_stat_clear_snapshot()`)
	_ = conn.QueryRowContext(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	return n
}

// preload COPYs n paid orders with their attempts, in chunks.
func preload(ctx context.Context, dbURL string, n int) error {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	const chunk = 200_000
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		if err := copyChunk(ctx, db, lo, hi); err != nil {
			return fmt.Errorf("preload orders %d..%d: %w", lo, hi, err)
		}
	}
	_, err = db.ExecContext(ctx, `ANALYZE orders; ANALYZE attempts`)
	return err
}

func copyChunk(ctx context.Context, db *sql.DB, lo, hi int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, tbl := range []struct {
		q   string
		row func(i int) []any
	}{
		{`COPY orders (order_id, amount, currency, country, status, paid_attempt, paid_at) FROM STDIN`,
			func(i int) []any {
				return []any{"P-" + strconv.Itoa(i), int64(1000 + i%9000), "USD", "US", "paid", "ptc-" + strconv.Itoa(i), time.Now()}
			}},
		{`COPY attempts (transaction_code, order_id, channel, amount, currency, status, psp_reference, paid_at) FROM STDIN`,
			func(i int) []any {
				return []any{"ptc-" + strconv.Itoa(i), "P-" + strconv.Itoa(i), "sim", int64(1000 + i%9000), "USD", "paid", "sp_pre" + strconv.Itoa(i), time.Now()}
			}},
	} {
		stmt, err := tx.PrepareContext(ctx, tbl.q)
		if err != nil {
			return err
		}
		for i := lo; i < hi; i++ {
			if _, err := stmt.ExecContext(ctx, tbl.row(i)...); err != nil {
				return err
			}
		}
		if _, err := stmt.ExecContext(ctx); err != nil {
			return err
		}
		if err := stmt.Close(); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// machine describes the host.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				m.MemBytes = kb << 10
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}

// memWatch samples the heap each second and splits it at its peak.
type memWatch struct {
	mu     sync.Mutex
	peak   uint64
	split  [4]int64
	lastAt time.Time
	cancel context.CancelFunc
	done   chan struct{}
}

func (m *memWatch) run(ctx context.Context) {
	ctx, m.cancel = context.WithCancel(ctx)
	m.done = make(chan struct{})
	defer close(m.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		m.mu.Lock()
		if ms.HeapInuse > m.peak {
			m.peak = ms.HeapInuse
			if time.Since(m.lastAt) > 3*time.Second {
				b, h, s, g := heapSplit()
				m.split, m.lastAt = [4]int64{b, h, s, g}, time.Now()
			}
		}
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (m *memWatch) stop() {
	if m.cancel != nil {
		m.cancel()
		<-m.done
	}
}

func (m *memWatch) report() *Memory {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := &Memory{VmHWMBytes: vmHWM(), HeapInuseBytes: int64(m.peak), BrokerHeapBytes: m.split[0], HarnessHeapBytes: m.split[1],
		SimHeapBytes: m.split[2], GatewayHeapBytes: m.split[3]}
	r.GatewayRSSEstimate = r.VmHWMBytes - r.BrokerHeapBytes - r.HarnessHeapBytes - r.SimHeapBytes
	return r
}

// drain waits for every first delivery's paid event. The timeout runs
// from the last paid event read, not from the end of the sends: a
// pipeline that fell behind and is still carrying its backlog has lost
// nothing, and its backlog counts in the sustained rate; one that reads
// nothing new for the timeout has lost what is still missing.
func drain(ctx context.Context, sched []send, idle time.Duration, logf func(string, ...any)) {
	drainUntil(ctx, func() int {
		missing := 0
		for _, s := range sched {
			if !s.dup && !s.o.forged && s.o.paidAt.Load() == 0 {
				missing++
			}
		}
		return missing
	}, idle, 100*time.Millisecond, func(n int) { logf("draining: %d paid events still to come", n) })
}

// drainUntil waits until left counts nothing, or the count has not
// changed for idle, looking every poll; every 10 s it says how many are
// still to come (say). The modes' drains are this, with what each counts.
func drainUntil(ctx context.Context, left func() int, idle, poll time.Duration, say func(int)) {
	last, progressed, logged := -1, time.Now(), time.Now()
	for ctx.Err() == nil {
		n := left()
		now := time.Now()
		switch {
		case n == 0:
			return
		case n != last:
			last, progressed = n, now
		case now.Sub(progressed) > idle:
			return
		}
		if now.Sub(logged) >= 10*time.Second {
			say(n)
			logged = now
		}
		time.Sleep(poll)
	}
}
