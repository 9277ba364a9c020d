// Package pgtest gives tests a fresh PostgreSQL database of their own,
// cloned from a template that is migrated once per migration set (the
// exposure-notifications-server pattern): cloning takes milliseconds,
// migrating takes longer, and tests never share state.
//
// The server is PAYGATE_TEST_DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/paygate/paygate/migrations"
)

// adminURL is the server tests use.
func adminURL() string {
	if u := os.Getenv("PAYGATE_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// New creates a database for t, migrated, dropped when t ends, and
// returns its URL. t first waits for one of the server's test slots
// (see Slots) and holds it until it ends.
//
// Under -short it skips t: `make test-short` runs without PostgreSQL.
func New(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL: skipped under -short")
	}
	holdSlot(t)
	// Bounded: the advisory lock waits for another package's test binary
	// building the template, and a test should fail, not hang, if that
	// or the clone never ends.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := sql.Open("postgres", adminURL())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer admin.Close()
	tmpl, err := template(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: template: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "paygate_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, pq.QuoteIdentifier(name), pq.QuoteIdentifier(tmpl))); err != nil {
		t.Fatalf("pgtest: clone %s: %v", tmpl, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("postgres", adminURL())
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec(fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, pq.QuoteIdentifier(name)))
	})
	u, _ := url.Parse(adminURL())
	u.Path = "/" + name
	return u.String()
}

// Slots is how many tests may use a database of the server at once,
// machine-wide: PAYGATE_TEST_DB_SLOTS, or else as many as the server's
// connections allow (serverSlots). Tests run in parallel (every package's
// test binary at once, and every engineer's), while the server's
// max_connections is shared: past the slots a test waits for one instead
// of failing with "too many clients". Most tests wait on the pipeline far
// more than they work, so the more run at once the sooner `make test` ends.
func Slots() int {
	if n, err := strconv.Atoi(os.Getenv("PAYGATE_TEST_DB_SLOTS")); err == nil && n > 0 {
		return n
	}
	slotsOnce.Do(func() { serverSlotsN = serverSlots() })
	return serverSlotsN
}

// connsPerTest is the most connections one test holds: a paygate under
// test (its pool of 6 in the e2e tests, its LISTEN sessions), the test's
// own, and the slot's session; measured at 9 + 1. connsSpare are left to
// everything else on the server (psql, make run, a test starting a second
// member for a moment).
const (
	connsPerTest = 10
	connsSpare   = 16
)

var (
	slotsOnce    sync.Once
	serverSlotsN int
)

// serverSlots is the slots the server's max_connections allows (8 for
// PostgreSQL's default of 100), at least 1, and 4 if it cannot be asked.
func serverSlots() int {
	db, err := sql.Open("postgres", adminURL())
	if err != nil {
		return 4
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var conns, reserved int
	if err := db.QueryRowContext(ctx, `SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int`).Scan(&conns, &reserved); err != nil {
		return 4
	}
	return max(1, min(16, (conns-reserved-connsSpare)/connsPerTest))
}

// slotKey is the first key of the slots' advisory locks (the second is
// the slot's number).
const slotKey = 727061

var (
	slotsMu sync.Mutex
	holders = map[string]bool{} // tests of this process holding a slot
)

// holdSlot waits until it takes a free slot for t, on a connection of its
// own that it closes, releasing the slot, when t ends (after t's other
// cleanups: the slot is taken before them). A test whose parent holds a
// slot, or that holds one already, uses that one: a test waiting for a
// second slot while holding one could wait forever.
func holdSlot(t testing.TB) {
	t.Helper()
	name := t.Name()
	slotsMu.Lock()
	for h := range holders {
		if name == h || strings.HasPrefix(name, h+"/") {
			slotsMu.Unlock()
			return
		}
	}
	slotsMu.Unlock()
	db, err := sql.Open("postgres", adminURL())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		t.Fatalf("pgtest: slot: %v", err)
	}
	n := Slots()
	for {
		for i := range n {
			var ok bool
			if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1, $2)`, slotKey, i).Scan(&ok); err != nil {
				conn.Close()
				db.Close()
				t.Fatalf("pgtest: slot: %v", err)
			}
			if ok {
				slotsMu.Lock()
				holders[name] = true
				slotsMu.Unlock()
				t.Cleanup(func() {
					slotsMu.Lock()
					delete(holders, name)
					slotsMu.Unlock()
					conn.Close() // the session's end releases the lock
					db.Close()
				})
				return
			}
		}
		select {
		case <-ctx.Done():
			conn.Close()
			db.Close()
			t.Fatalf("pgtest: no free test slot of %d within 15 minutes", n)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// template returns the name of the migrated template database for the
// current migrations, building it under an advisory lock if needed (test
// binaries of several packages run at once).
func template(ctx context.Context, admin *sql.DB) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.Files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.Files, p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	if err != nil {
		return "", err
	}
	name := "paygate_tmpl_" + hex.EncodeToString(h.Sum(nil))[:16]
	conn, err := admin.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7270617967)`); err != nil {
		return "", err
	}
	defer conn.ExecContext(ctx, `SELECT pg_advisory_unlock(7270617967)`) //nolint:errcheck
	var exists bool
	if err := conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_wip"
	_, _ = conn.ExecContext(ctx, `DROP DATABASE IF EXISTS `+pq.QuoteIdentifier(building)+` WITH (FORCE)`)
	if _, err := conn.ExecContext(ctx, `CREATE DATABASE `+pq.QuoteIdentifier(building)); err != nil {
		return "", err
	}
	u, _ := url.Parse(adminURL())
	u.Path = "/" + building
	db, err := sql.Open("postgres", u.String())
	if err != nil {
		return "", err
	}
	err = migrations.Up(ctx, db)
	db.Close()
	if err != nil {
		return "", err
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`, pq.QuoteIdentifier(building), pq.QuoteIdentifier(name))); err != nil {
		return "", err
	}
	return name, nil
}
