package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
)

// PruneOutbox deletes the events published more than keep ago that come
// before the oldest event that must stay, and nothing else: not an
// unpublished event however old, not a recent one, not an old one behind
// either.
func TestPruneOutbox(t *testing.T) {
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
