package bench

import (
	"context"
	"database/sql"
	"io"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/pgtest"
)

// vacuumEvery does what autovacuum's default thresholds call for, on its
// period, until stopped: a table never analyzed is analyzed, one whose
// rows were all updated is vacuumed, one below the thresholds is left
// alone, and nothing runs after stop.
func TestVacuumEvery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t)
	exec := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE TABLE busy (id int); INSERT INTO busy SELECT generate_series(1, 1000);
	      CREATE TABLE quiet (id int); INSERT INTO quiet SELECT generate_series(1, 40)`) // below autovacuum's 50
	counts := func(table string) (vacuums, analyzes int64) {
		t.Helper()
		if err := db.QueryRowContext(ctx, `SELECT vacuum_count, analyze_count FROM pg_stat_user_tables WHERE relname = $1`, table).
			Scan(&vacuums, &analyzes); err != nil {
			t.Fatal(err)
		}
		return vacuums, analyzes
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s", what)
			}
		}
	}
	stop := vacuumEvery(ctx, &Config{Progress: io.Discard}, db, 100*time.Millisecond)
	waitFor("analyze of the new table", func() bool { _, a := counts("busy"); return a >= 1 })
	exec(`UPDATE busy SET id = id + 1`) // 1,000 dead rows: past 50 + 20% of 1,000
	waitFor("vacuum after the update", func() bool { v, _ := counts("busy"); return v >= 1 })
	n := stop()
	if n < 2 {
		t.Errorf("%d tables counted", n)
	}
	if v, a := counts("quiet"); v != 0 || a != 0 {
		t.Errorf("the table below the thresholds was vacuumed %d times and analyzed %d", v, a)
	}
	v, a := counts("busy")
	time.Sleep(300 * time.Millisecond)
	exec(`UPDATE busy SET id = id + 1`)
	time.Sleep(300 * time.Millisecond)
	if v2, a2 := counts("busy"); v2 != v || a2 != a {
		t.Errorf("vacuumed after stop: %d/%d → %d/%d", v, a, v2, a2)
	}
}

// The harness's vacuums during a step (vacuumEvery) run on a connection
// that pauses as autovacuum's workers do — the server's autovacuum cost
// delay and limit, not a manual VACUUM's none — and that goes back to the
// pool unpaced.
func TestPacedConnPacesAsAutovacuum(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t)
	db.SetMaxOpenConns(1) // the paced connection is the one the pool hands out afterwards
	var delay, limit string
	if err := db.QueryRowContext(ctx, `SELECT current_setting('autovacuum_vacuum_cost_delay'), current_setting('vacuum_cost_limit')`).Scan(&delay, &limit); err != nil {
		t.Fatal(err)
	}
	if delay == "0" || delay == "-1" {
		t.Skipf("this server's autovacuum does not pause (autovacuum_vacuum_cost_delay %s)", delay)
	}
	pace := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) (delay, limit string) {
		t.Helper()
		if err := q.QueryRowContext(ctx, `SELECT current_setting('vacuum_cost_delay'), current_setting('vacuum_cost_limit')`).Scan(&delay, &limit); err != nil {
			t.Fatal(err)
		}
		return delay, limit
	}
	conn, release, err := pacedConn(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if d, l := pace(conn); d != delay || l != limit {
		t.Errorf("paced: vacuum_cost_delay %s, vacuum_cost_limit %s; want autovacuum's %s and %s", d, l, delay, limit)
	}
	release()
	if d, _ := pace(db); d != "0" {
		t.Errorf("the connection came back to the pool with vacuum_cost_delay %s, want 0", d)
	}
}

// openDB opens a fresh database, closed when the test ends.
func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
