package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/pgtest"
)

// testStore opens a store with cfg on a fresh, migrated database; it is
// closed when the test ends.
func testStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	cfg.URL = pgtest.New(t)
	s, err := Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// onOneConn opens a store with the given cache size on a fresh database
// and runs fn with one of its connections.
func onOneConn(t *testing.T, cache int, fn func(ctx context.Context, c *sqlx.Conn)) {
	t.Helper()
	ctx := context.Background()
	s := testStore(t, Config{StatementCache: CacheSize(cache)})
	c, err := s.db.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fn(ctx, c)
}

// prepared is the statements the connection holds prepared (asked as a
// simple query, which the cache leaves alone).
func prepared(ctx context.Context, t *testing.T, c *sqlx.Conn) []string {
	t.Helper()
	var out []string
	if err := c.SelectContext(ctx, &out, `SELECT statement FROM pg_prepared_statements ORDER BY prepare_time`); err != nil {
		t.Fatal(err)
	}
	return out
}

// A statement with parameters is prepared once per connection and then
// reused; one without parameters is not prepared; at most the cache's size
// are kept, the least recently used going first.
func TestStatementCache(t *testing.T) {
	t.Parallel()
	onOneConn(t, 2, func(ctx context.Context, c *sqlx.Conn) {
		var n int
		for i := range 3 {
			if err := c.GetContext(ctx, &n, `SELECT $1::int + 1`, i); err != nil || n != i+1 {
				t.Fatalf("run %d: %d, %v", i, n, err)
			}
		}
		if _, err := c.ExecContext(ctx, `SELECT 1`); err != nil {
			t.Fatal(err)
		}
		if got := prepared(ctx, t, c); len(got) != 1 || got[0] != `SELECT $1::int + 1` {
			t.Fatalf("after three runs of one statement and one without parameters: %q", got)
		}
		for _, q := range []string{`SELECT $1::int + 2`, `SELECT $1::int + 1`, `SELECT $1::int + 3`} {
			if err := c.GetContext(ctx, &n, q, 1); err != nil {
				t.Fatal(err)
			}
		}
		// +2 was the least recently used when +3 needed room
		if got := strings.Join(prepared(ctx, t, c), " | "); got != `SELECT $1::int + 1 | SELECT $1::int + 3` {
			t.Fatalf("with room for two: %s", got)
		}
	})
}

func TestStatementCacheOff(t *testing.T) {
	t.Parallel()
	onOneConn(t, -1, func(ctx context.Context, c *sqlx.Conn) {
		var n int
		if err := c.GetContext(ctx, &n, `SELECT $1::int + 1`, 1); err != nil || n != 2 {
			t.Fatalf("%d, %v", n, err)
		}
		if got := prepared(ctx, t, c); len(got) != 0 {
			t.Fatalf("cache off, yet prepared: %q", got)
		}
	})
}

// When a table changes shape under a prepared statement, the server
// refuses the statement once; the cache then forgets it, and the next run
// prepares it again and sees the new shape.
func TestStatementCacheForgetsAStatementTheServerRefuses(t *testing.T) {
	t.Parallel()
	onOneConn(t, 8, func(ctx context.Context, c *sqlx.Conn) {
		if _, err := c.ExecContext(ctx, `CREATE TABLE t (a int); INSERT INTO t VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		row := func() ([]any, error) {
			r := c.QueryRowxContext(ctx, `SELECT * FROM t WHERE a = $1`, 1)
			return r.SliceScan()
		}
		if v, err := row(); err != nil || len(v) != 1 {
			t.Fatalf("before: %v, %v", v, err)
		}
		if _, err := c.ExecContext(ctx, `ALTER TABLE t ADD COLUMN b int`); err != nil {
			t.Fatal(err)
		}
		if _, err := row(); err == nil || !strings.Contains(err.Error(), "cached plan must not change result type") {
			t.Fatalf("first run after the change: %v; want the server to refuse the cached plan", err)
		}
		if v, err := row(); err != nil || len(v) != 2 {
			t.Fatalf("second run after the change: %v, %v; want both columns", v, err)
		}
	})
}

// A statement marked planEachTime runs as it is, never prepared, so
// PostgreSQL plans it for the table as it is at that moment.
func TestStatementPlannedEachTime(t *testing.T) {
	t.Parallel()
	onOneConn(t, 8, func(ctx context.Context, c *sqlx.Conn) {
		var n int
		for i := range 7 {
			if err := c.GetContext(ctx, &n, planEachTime+`SELECT $1::int + 1`, i); err != nil || n != i+1 {
				t.Fatalf("run %d: %d, %v", i, n, err)
			}
		}
		if got := prepared(ctx, t, c); len(got) != 0 {
			t.Fatalf("planned each time, yet prepared: %q", got)
		}
	})
}

// The relay's statements claim and prune the outbox, a queue whose size
// swings by orders of magnitude within minutes. A plan cached when it was
// small scans all of it on every round until the next ANALYZE (2.6 ms a
// round with 9,000 published rows, and a third of PostgreSQL's CPU at
// 500 webhooks/s), so they are planned at every execution; the others
// are prepared.
func TestRelayStatementsAreNotPrepared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := testStore(t, Config{MaxConns: 1})
	published := 0
	for round := range 8 {
		err := s.tryTx(ctx, func(tx *sqlx.Tx) error {
			return insertEvents(ctx, tx, []domain.Event{{ID: fmt.Sprintf("e/%d", round), Topic: "t", Key: "k", Type: "paid", Payload: []byte(`{}`)}})
		})
		if err != nil {
			t.Fatal(err)
		}
		n, err := s.PublishOutbox(ctx, 10, func(context.Context, []domain.Event) error { return nil })
		if err != nil || n != 1 {
			t.Fatalf("round %d: published %d, %v", round, n, err)
		}
		published += n
		if _, err := s.PruneOutbox(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	joined := preparedOnTheConnection(ctx, t, s)
	if !strings.Contains(joined, "INSERT INTO outbox") {
		t.Fatalf("the outbox insert is not prepared, so this test cannot tell: %q", joined)
	}
	for _, q := range []string{claimEventsQuery, pruneBoundaryQuery, pruneQuery} {
		if strings.Contains(joined, q) {
			t.Errorf("prepared after %d rounds: %s", published, q)
		}
	}
}

// The callbacks group looks its batch's message ids up in callbacks, a
// table that grows by every message. A generic plan made while it was
// small scans it all on every batch (PostgreSQL's CPU 0.46 → 0.77 of a
// core, and the pipeline at half its throughput, at 4,000 webhooks/s on
// a fresh database), so the lookup is planned at every execution.
func TestCallbackLookupIsNotPrepared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := testStore(t, Config{MaxConns: 1})
	for round := range 8 {
		in := []domain.Inbound{{Callback: domain.Callback{MessageID: fmt.Sprintf("m%d", round), Channel: "sim", Kind: domain.CallbackAsync, ReceivedAt: time.Now()},
			Raw: []byte("forged"), Refusal: domain.Refuse("bad signature")}}
		applied, err := s.ApplyCallbacks(ctx, in, nil, nil)
		if err != nil || applied[0].Duplicate || applied[0].Rejected != "bad signature" {
			t.Fatalf("round %d: %+v, %v", round, applied, err)
		}
	}
	joined := preparedOnTheConnection(ctx, t, s)
	if !strings.Contains(joined, "INSERT INTO callbacks") {
		t.Fatalf("the callbacks insert is not prepared, so this test cannot tell: %q", joined)
	}
	if strings.Contains(joined, seenCallbacksQuery) {
		t.Errorf("prepared: %s", seenCallbacksQuery)
	}
}

// preparedOnTheConnection is every statement prepared on the one
// connection of s (Config.MaxConns 1), one a line.
func preparedOnTheConnection(ctx context.Context, t *testing.T, s *Store) string {
	t.Helper()
	var stmts []string
	if err := s.db.SelectContext(ctx, &stmts, `SELECT statement FROM pg_prepared_statements`); err != nil {
		t.Fatal(err)
	}
	return strings.Join(stmts, "\n")
}

// The sweeper's query for due probes runs once a round on a table that
// grows from nothing; prepared, it could keep a plan made for an empty
// attempts table. It is planned at every execution.
func TestDueProbesQueryIsNotPrepared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := testStore(t, Config{MaxConns: 1})
	plan := func(p domain.DueProbe) (time.Time, domain.Event) {
		t.Fatal("nothing is due")
		return time.Time{}, domain.Event{}
	}
	for range 8 {
		if n, err := s.ClaimProbes(ctx, time.Now(), time.Minute, 30*time.Minute, 10, plan); err != nil || n != 0 {
			t.Fatalf("claimed %d, %v", n, err)
		}
		var one int
		if err := s.db.GetContext(ctx, &one, `SELECT $1::int`, 1); err != nil {
			t.Fatal(err)
		}
	}
	joined := preparedOnTheConnection(ctx, t, s)
	if !strings.Contains(joined, "SELECT $1::int") {
		t.Fatalf("nothing is prepared, so this test cannot tell: %q", joined)
	}
	if strings.Contains(joined, "FOR UPDATE OF a SKIP LOCKED") {
		t.Errorf("prepared: %s", dueProbesQuery)
	}
}
