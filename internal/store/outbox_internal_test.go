package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/paygate/paygate/domain"
)

// PruneOutbox deletes the events published more than keep ago that come
// before the oldest event that must stay, and nothing else: not an
// unpublished event however old, not a recent one, not an old one behind
// either.
func TestPruneOutbox(t *testing.T) {
	t.Parallel()
	ctx, s := context.Background(), testStore(t, Config{})
	// id order: published ago, in hours; -1 is not published.
	ages := []int{50, 49, 48, -1, 30, 1, 40}
	for i, h := range ages {
		_, err := s.db.ExecContext(ctx, `INSERT INTO outbox (id, event_id, topic, key, type, payload, created_at, published_at)
			VALUES ($1::bigint, 'e' || $1::text, 't', 'k', 'paid', '{}', now() - interval '60 hours',
			        CASE WHEN $2::int < 0 THEN NULL ELSE now() - make_interval(hours => $2::int) END)`, i+1, h)
		if err != nil {
			t.Fatal(err)
		}
	}
	left := func() []int {
		t.Helper()
		var ids []int
		if err := s.db.SelectContext(ctx, &ids, `SELECT id FROM outbox ORDER BY id`); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	prune := func(want int64, wantLeft ...int) {
		t.Helper()
		n, err := s.PruneOutbox(ctx, 24*time.Hour)
		if err != nil || n != want {
			t.Fatalf("pruned %d, %v; want %d", n, err, want)
		}
		if got := left(); !slices.Equal(got, wantLeft) {
			t.Fatalf("left %v, want %v", got, wantLeft)
		}
	}
	prune(3, 4, 5, 6, 7) // 4 is unpublished: it and what follows wait
	if _, err := s.db.ExecContext(ctx, `UPDATE outbox SET published_at = now() - interval '26 hours' WHERE id = 4`); err != nil {
		t.Fatal(err)
	}
	prune(2, 6, 7) // 6 is recent: 7, older, waits behind it
	if _, err := s.db.ExecContext(ctx, `UPDATE outbox SET published_at = now() - interval '25 hours' WHERE id = 6`); err != nil {
		t.Fatal(err)
	}
	prune(2) // all old: all go
	prune(0)
}

// The relay gets the oldest unpublished events in id order, a round at a
// time, whatever order they lie in on disk, and each event once.
func TestPublishOutboxInIDOrder(t *testing.T) {
	t.Parallel()
	ctx, s := context.Background(), testStore(t, Config{})
	const n = 50
	for id := n; id >= 1; id-- { // stored newest first
		_, err := s.db.ExecContext(ctx, `INSERT INTO outbox (id, event_id, topic, key, type, payload, created_at)
			VALUES ($1::bigint, 'e' || $1::text, 't', 'k', 'paid', '{}', now())`, id)
		if err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, want := range []int{20, 20, 10, 0} {
		k, err := s.PublishOutbox(ctx, 20, func(_ context.Context, evs []domain.Event) error {
			for _, e := range evs {
				got = append(got, e.ID)
			}
			return nil
		})
		if err != nil || k != want {
			t.Fatalf("published %d, %v; want %d", k, err, want)
		}
	}
	for i, id := range got {
		if id != fmt.Sprintf("e%d", i+1) {
			t.Fatalf("event %d published as %s: out of order (%v)", i+1, id, got)
		}
	}
}

// A relay round reads the events it claims, not the outbox: behind
// thousands of published events (a day of them in production), claiming
// the few new ones touches only those, with the statistics of a smaller
// outbox (a fresh database, or autovacuum not yet come by) as well.
func TestClaimReadsOnlyWhatItClaims(t *testing.T) {
	t.Parallel()
	ctx, s := context.Background(), testStore(t, Config{})
	const published, fresh = 5000, 3
	insert := func(prefix string, n int, published bool) {
		t.Helper()
		if _, err := s.db.ExecContext(ctx, `INSERT INTO outbox (event_id, topic, key, type, payload, published_at)
			SELECT $1 || i, 't', 'k', 'paid', '{}', CASE WHEN $3 THEN now() END FROM generate_series(1, $2::int) i`,
			prefix, n, published); err != nil {
			t.Fatal(err)
		}
	}
	insert("first", 2, true)
	if _, err := s.db.ExecContext(ctx, `ANALYZE outbox`); err != nil {
		t.Fatal(err)
	}
	insert("old", published, true)
	insert("new", fresh, false)
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var plan string
	q := strings.TrimPrefix(claimEventsQuery, planEachTime)
	if err := tx.GetContext(ctx, &plan, `EXPLAIN (ANALYZE, FORMAT JSON) `+strings.ReplaceAll(q, "$1", "500")); err != nil {
		t.Fatal(err)
	}
	var root []struct {
		Plan explained `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(plan), &root); err != nil || len(root) != 1 {
		t.Fatalf("plan %s: %v", plan, err)
	}
	var claimed float64
	var walk func(n explained)
	walk = func(n explained) {
		if n.Relation == "outbox" && n.Rows > fresh {
			t.Errorf("%s on outbox read %.0f rows to claim %d:\n%s", n.Type, n.Rows, fresh, plan)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(root[0].Plan)
	if claimed = root[0].Plan.Rows; claimed != fresh {
		t.Fatalf("claimed %.0f events, want %d", claimed, fresh)
	}
}

// explained is a node of an EXPLAIN (ANALYZE, FORMAT JSON) plan.
type explained struct {
	Type     string      `json:"Node Type"`
	Relation string      `json:"Relation Name"`
	Rows     float64     `json:"Actual Rows"`
	Plans    []explained `json:"Plans"`
}

// The relay's lock statement turns synchronous commit off for its own
// transaction only: the connection it ran on commits synchronously again
// afterwards, for whichever transaction takes it next.
func TestRelayLockQueryRelaxesOnlyItsTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := testStore(t, Config{})
	c, err := s.db.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	show := func(q sqlx.QueryerContext) string {
		t.Helper()
		var v string
		if err := sqlx.GetContext(ctx, q, &v, `SHOW synchronous_commit`); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := show(c); v != "on" {
		t.Fatalf("synchronous_commit %q before the relay's transaction, want on (the test's server)", v)
	}
	tx, err := c.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var locked bool
	if err := tx.GetContext(ctx, &locked, relayLockQuery, relayLockKey); err != nil || !locked {
		t.Fatalf("relay lock: %v, %v", locked, err)
	}
	if v := show(tx); v != "off" {
		t.Fatalf("synchronous_commit %q in the relay's transaction, want off", v)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if v := show(c); v != "on" {
		t.Fatalf("synchronous_commit %q after the relay's transaction, want on", v)
	}
}
