package bench

import (
	"context"
	"database/sql"
	"io"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/pgtest"
)

// vacuumEvery vacuums and analyzes the database on its period until
// stopped, and counts what it ran: a table that was never analyzed has
// statistics afterwards, and nothing runs after stop.
func TestVacuumEvery(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("postgres", pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE v (id int); INSERT INTO v SELECT generate_series(1, 1000)`); err != nil {
		t.Fatal(err)
	}
	analyzed := func() int64 {
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT pg_stat_clear_snapshot(), coalesce(vacuum_count + analyze_count, 0) FROM pg_stat_user_tables WHERE relname = 'v'`).Scan(new(any), &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := analyzed(); n != 0 {
		t.Fatalf("table already vacuumed or analyzed %d times", n)
	}
	cfg := &Config{Progress: io.Discard}
	stop := vacuumEvery(ctx, cfg, db, 100*time.Millisecond)
	deadline := time.Now().Add(20 * time.Second)
	for analyzed() < 4 && time.Now().Before(deadline) { // two rounds: a vacuum and an analyze each
		time.Sleep(50 * time.Millisecond)
	}
	n := stop()
	if n < 2 {
		t.Fatalf("%d vacuums counted", n)
	}
	after := analyzed()
	time.Sleep(300 * time.Millisecond)
	if got := analyzed(); got != after {
		t.Errorf("vacuumed after stop: %d → %d", after, got)
	}
}
