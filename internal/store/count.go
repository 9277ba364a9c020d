package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
)

// Counts are the database round trips a Store has made since it opened,
// counted client-side at the driver: every Exec, Query and Prepare is a
// statement (lib/pq sends a statement with its parse, bind and execute in
// one round trip), and BEGIN, COMMIT and ROLLBACK are round trips too.
type Counts struct {
	Statements   int64
	Transactions int64 // BEGINs
	Ends         int64 // COMMITs and ROLLBACKs
	// ByCaller are the round trips by caller (WithCaller): "payinit",
	// "callbacks", "relay", "ingress"…, and "other" for the rest.
	ByCaller map[string]int64
}

// callerKey is the context key of WithCaller.
type callerKey struct{}

// WithCaller names the component on whose behalf ctx's statements run
// (a consumer group, the relay, the ingress), so that its round trips are
// counted apart: paygate_store_round_trips_by_caller_total{caller}. The
// composition root names them; a statement under no name counts as
// "other".
func WithCaller(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, callerKey{}, name)
}

func callerOf(ctx context.Context) string {
	if v, ok := ctx.Value(callerKey{}).(string); ok && v != "" {
		return v
	}
	return "other"
}

// RoundTrips is every round trip counted.
func (c Counts) RoundTrips() int64 { return c.Statements + c.Transactions + c.Ends }

// Counts returns the round trips made so far (for the benchmark, which
// reads them in process; operators read paygate_store_statements_total).
func (s *Store) Counts() Counts {
	c := Counts{Statements: s.counter.stmts.Load(), Transactions: s.counter.begins.Load(), Ends: s.counter.ends.Load(),
		ByCaller: map[string]int64{}}
	s.counter.byCaller.Range(func(k, v any) bool {
		c.ByCaller[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return c
}

type counter struct {
	stmts, begins, ends atomic.Int64
	byCaller            sync.Map // caller → *atomic.Int64 (round trips)
}

// trip counts one round trip for caller.
func (c *counter) trip(caller string) {
	v, ok := c.byCaller.Load(caller)
	if !ok {
		v, _ = c.byCaller.LoadOrStore(caller, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// statement counts a statement sent on ctx's behalf.
func (c *counter) statement(ctx context.Context) {
	c.stmts.Add(1)
	c.trip(callerOf(ctx))
}

// Describe and Collect export the round trips by caller
// (prometheus.Collector).
func (c *counter) Describe(ch chan<- *prometheus.Desc) { ch <- byCallerDesc }

func (c *counter) Collect(ch chan<- prometheus.Metric) {
	c.byCaller.Range(func(k, v any) bool {
		ch <- prometheus.MustNewConstMetric(byCallerDesc, prometheus.CounterValue, float64(v.(*atomic.Int64).Load()), k.(string))
		return true
	})
}

var byCallerDesc = prometheus.NewDesc("paygate_store_round_trips_by_caller_total",
	"Database round trips by the component that made them (a consumer group, the relay, the ingress; other for the rest).",
	[]string{"caller"}, nil)

// countingConnector opens lib/pq connections that count their round trips.
//
// Unless the URL says otherwise, the connections use lib/pq's
// binary_parameters: a statement with parameters is then parsed, bound
// and executed in one round trip. Without it lib/pq first asks the server
// to parse and describe the statement and waits for the answer, two round
// trips for every statement with parameters. ([]byte parameters then go
// as binary, which is what bytea wants; no paygate query passes []byte to
// a column of another type.)
func countingConnector(url string, c *counter, cache int) (driver.Connector, error) {
	cfg, err := pq.NewConfig(url)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(url, "binary_parameters") {
		cfg.BinaryParameters = true
	}
	pc, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &connector{pc: pc, c: c, cache: cache}, nil
}

// register exports the counts; a second Store on one registry keeps its
// counts to itself.
func (c *counter) register(reg prometheus.Registerer) error {
	for _, col := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "paygate_store_statements_total",
			Help: "SQL statements sent (Exec, Query, Prepare), counted at the driver."},
			func() float64 { return float64(c.stmts.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "paygate_store_round_trips_total",
			Help: "Database round trips: statements plus BEGIN, COMMIT and ROLLBACK."},
			func() float64 { return float64(c.stmts.Load() + c.begins.Load() + c.ends.Load()) }),
		c,
	} {
		if err := reg.Register(col); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

type connector struct {
	pc    *pq.Connector
	c     *counter
	cache int // prepared statements kept per connection; 0: none
}

func (k *connector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := k.pc.Connect(ctx)
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: cn, c: k.c}
	if k.cache > 0 {
		c.stmts = newStmtCache(k.cache)
	}
	return c, nil
}

func (k *connector) Driver() driver.Driver { return k.pc.Driver() }

// conn forwards to a lib/pq connection, which implements every optional
// interface below; the assertions would only fail with another driver.
type conn struct {
	driver.Conn
	c     *counter
	stmts *stmtCache // nil: every statement goes unnamed
}

func (cn *conn) Prepare(q string) (driver.Stmt, error) {
	cn.c.statement(context.Background())
	return cn.Conn.Prepare(q)
}

func (cn *conn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	cn.c.statement(ctx)
	return cn.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
}

// ExecContext and QueryContext run a statement with parameters as the
// connection's prepared statement (stmtCache), when the cache is on; one
// without parameters goes as a simple query, which may hold several
// statements and cannot be prepared; one marked planEachTime goes
// unnamed, planned for its parameters every time.
func (cn *conn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return run(ctx, cn, q, args,
		func() (driver.Result, error) { return cn.Conn.(driver.ExecerContext).ExecContext(ctx, q, args) },
		func(st driver.Stmt) (driver.Result, error) { return st.(driver.StmtExecContext).ExecContext(ctx, args) })
}

func (cn *conn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return run(ctx, cn, q, args,
		func() (driver.Rows, error) { return cn.Conn.(driver.QueryerContext).QueryContext(ctx, q, args) },
		func(st driver.Stmt) (driver.Rows, error) { return st.(driver.StmtQueryContext).QueryContext(ctx, args) })
}

// run counts a statement and sends it as is, or as q's prepared
// statement on the connection.
func run[R any](ctx context.Context, cn *conn, q string, args []driver.NamedValue,
	asIs func() (R, error), prepared func(driver.Stmt) (R, error)) (R, error) {
	cn.c.statement(ctx)
	if cn.stmts == nil || len(args) == 0 || strings.HasPrefix(q, planEachTime) {
		return asIs()
	}
	st, err := cn.stmts.get(ctx, cn, q)
	if err != nil {
		var none R
		return none, err
	}
	r, err := prepared(st)
	if err != nil {
		cn.stmts.forget(ctx, cn, q, err)
	}
	return r, err
}

func (cn *conn) Begin() (driver.Tx, error) { //nolint:staticcheck // driver.Conn requires it
	return cn.BeginTx(context.Background(), driver.TxOptions{})
}

func (cn *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	cn.c.begins.Add(1)
	caller := callerOf(ctx)
	cn.c.trip(caller)
	tx, err := cn.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &countedTx{Tx: tx, c: cn.c, caller: caller}, nil
}

func (cn *conn) Ping(ctx context.Context) error { return cn.Conn.(driver.Pinger).Ping(ctx) }

func (cn *conn) ResetSession(ctx context.Context) error {
	return cn.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (cn *conn) IsValid() bool { return cn.Conn.(driver.Validator).IsValid() }

func (cn *conn) CheckNamedValue(nv *driver.NamedValue) error {
	return cn.Conn.(driver.NamedValueChecker).CheckNamedValue(nv)
}

type countedTx struct {
	driver.Tx
	c      *counter
	caller string // whose BEGIN it was: its COMMIT or ROLLBACK is theirs too
}

func (t *countedTx) Commit() error {
	t.c.ends.Add(1)
	t.c.trip(t.caller)
	return t.Tx.Commit()
}

func (t *countedTx) Rollback() error {
	t.c.ends.Add(1)
	t.c.trip(t.caller)
	return t.Tx.Rollback()
}
