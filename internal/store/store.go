// Package store is paygate's system of record in PostgreSQL: all SQL lives
// here, one file per table group, each query beside the method that runs
// it. The store owns transactions; the domain decides inside them through
// the functions callers pass in.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/internal/backoff"
	"github.com/paygate/paygate/migrations"
)

// Config configures the connection pool. URL and StatementCache are
// settings: their variables, defaults and help are their tags
// (internal/settings); Validate fills them in when zero with the same
// defaults, which a test holds to the tags.
type Config struct {
	// URL is the PostgreSQL connection URL. It may hold a password:
	// printed, it goes through url.URL.Redacted.
	URL string `env:"DATABASE_URL" default:"postgres://postgres@127.0.0.1:5432/paygate?sslmode=disable" secret:"true" help:"PostgreSQL connection URL"`
	// MaxConns bounds open connections. Default 16.
	MaxConns int
	// StatementCache is how many prepared statements each connection
	// keeps; a statement with parameters is prepared on its first use and
	// then only bound and executed. Negative turns it off (every
	// statement is then parsed and planned each time), as a connection
	// pooler that does not keep prepared statements needs.
	StatementCache CacheSize `env:"PAYGATE_DB_STATEMENT_CACHE" default:"256" help:"prepared statements kept per database connection; off for a pooler that drops them"`
	// CreateDatabase creates the URL's database if it does not exist
	// (connecting to the server's "postgres" database to do so). Default
	// false; `paygate dev` sets it.
	CreateDatabase bool
}

// CacheSize is Config.StatementCache: a number of statements, negative
// for none. Its text (PAYGATE_DB_STATEMENT_CACHE) is a positive integer,
// or off (or 0), which is -1.
type CacheSize int

// UnmarshalText reads a positive integer, or off.
func (c *CacheSize) UnmarshalText(b []byte) error {
	switch s := string(b); s {
	case "off", "0":
		*c = -1
	default:
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return errors.New("a positive integer, or off")
		}
		*c = CacheSize(n)
	}
	return nil
}

// DefaultURL is the database paygate uses when DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/paygate?sslmode=disable"

// Validate fills defaults and checks the config.
func (c *Config) Validate() error {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.MaxConns == 0 {
		c.MaxConns = 16
	}
	if c.StatementCache == 0 {
		c.StatementCache = DefaultStatementCache
	}
	if c.MaxConns < 1 {
		return fmt.Errorf("store: MaxConns %d < 1", c.MaxConns)
	}
	if _, err := url.Parse(c.URL); err != nil {
		return fmt.Errorf("store: DATABASE_URL: %w", err)
	}
	return nil
}

// Store is paygate's PostgreSQL store. It is safe for concurrent use.
type Store struct {
	db      *sqlx.DB
	url     string
	retries prometheus.Counter
	counter *counter
}

// Open connects (creating the database first if configured to), checks the
// connection and returns the store. It does not migrate: call Migrate.
func Open(ctx context.Context, cfg Config, reg prometheus.Registerer) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CreateDatabase {
		if err := createDatabase(ctx, cfg.URL); err != nil {
			return nil, err
		}
	}
	var cnt counter
	conn, err := countingConnector(cfg.URL, &cnt, max(int(cfg.StatementCache), 0))
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	db := sqlx.NewDb(sql.OpenDB(conn), "postgres")
	db.SetMaxOpenConns(cfg.MaxConns)
	db.SetMaxIdleConns(cfg.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: connect %s: %w", redact(cfg.URL), err)
	}
	s := &Store{db: db, url: cfg.URL, counter: &cnt, retries: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "paygate_store_tx_retries_total",
		Help: "Transactions retried after a serialization failure or deadlock.",
	})}
	if reg != nil {
		if err := reg.Register(s.retries); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			s.retries = are.ExistingCollector.(prometheus.Counter)
		}
		if err := cnt.register(reg); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Migrate applies pending migrations.
func (s *Store) Migrate(ctx context.Context) error { return migrations.Up(ctx, s.db.DB) }

// Ping checks the database is reachable (readiness).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Now is PostgreSQL's clock (clock_timestamp(), not the transaction's
// start): the processes compare theirs with it.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := s.db.QueryRowContext(ctx, `SELECT clock_timestamp()`).Scan(&t); err != nil {
		return t, fmt.Errorf("database clock: %w", err)
	}
	return t, nil
}

// Close closes the pool.
func (s *Store) Close() error { return s.db.Close() }

// URL is the connection URL, for components that need their own
// connection (LISTEN).
func (s *Store) URL() string { return s.url }

func createDatabase(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || name == "postgres" {
		return nil
	}
	admin := *u
	admin.Path = "/postgres"
	db, err := sql.Open("postgres", admin.String())
	if err != nil {
		return err
	}
	defer db.Close()
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("store: look for database %s on %s: %w", name, redact(raw), err)
	}
	if exists {
		return nil
	}
	if _, err := db.ExecContext(ctx, `CREATE DATABASE `+pq.QuoteIdentifier(name)); err != nil {
		var pe *pq.Error
		if errors.As(err, &pe) && pe.Code == "42P04" { // created concurrently
			return nil
		}
		return fmt.Errorf("store: create database %s: %w", name, err)
	}
	return nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<bad url>"
	}
	return u.Redacted()
}

// maxTxAttempts bounds retries of a transaction that hit a serialization
// failure or deadlock.
const maxTxAttempts = 4

// inTx runs fn in one transaction and commits; it retries the whole
// transaction on serialization failures and deadlocks (fn must be safe to
// run again), and reports a failed COMMIT as the error it is.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return txRetry.Retry(ctx, func(err error) bool { return IsRetryable(err) && ctx.Err() == nil },
		func(int, error) { s.retries.Inc() },
		func() error { return s.tryTx(ctx, fn) })
}

// inStatement runs w's writes as one statement outside any transaction:
// PostgreSQL runs a statement on its own as a transaction, all or
// nothing, so a use case whose writes fit in one statement needs no BEGIN
// and COMMIT, one round trip instead of three. It is retried as inTx
// retries a transaction, and returns what w.exec returns. Nothing is
// written when w is empty.
func (s *Store) inStatement(ctx context.Context, w *batchWrite) (int, error) {
	var n int
	err := txRetry.Retry(ctx, func(err error) bool { return IsRetryable(err) && ctx.Err() == nil },
		func(int, error) { s.retries.Inc() },
		func() (err error) { n, err = w.exec(ctx, s.db); return err })
	return n, err
}

// txRetry is the wait between tries of a transaction: 5 ms, doubling,
// jittered, for maxTxAttempts tries in all; a wait ends with ctx.
var txRetry = backoff.Policy{Min: 5 * time.Millisecond, Max: 40 * time.Millisecond, Attempts: maxTxAttempts}

func (s *Store) tryTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// IsRetryable reports whether a database error may pass on retry:
// serialization failures, deadlocks, lost connections, shutdowns, and a
// callback another transaction stored meanwhile.
func IsRetryable(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		switch pe.Code.Class() {
		case "40", "08", "53", "57": // tx rollback, connection, resources, operator intervention
			return true
		}
		return false
	}
	return errors.Is(err, sql.ErrConnDone) || errors.Is(err, driverBadConn) || isNetErr(err) || errors.Is(err, errStoredMeanwhile)
}
