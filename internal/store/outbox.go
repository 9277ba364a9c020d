package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paygate/paygate/domain"
)

// insertEvents writes events to the outbox in one statement, in slice
// order. An event whose id exists already is skipped: its fact was emitted.
const insertEventsQuery = `
INSERT INTO outbox (event_id, topic, key, type, payload, created_at)
SELECT e.event_id, e.topic, e.key, e.type, substring($5::bytea FROM e.payload_from FOR e.payload_len), e.created_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $6::int[], $7::int[], $8::timestamptz[]) WITH ORDINALITY
    AS e(event_id, topic, key, type, payload_from, payload_len, created_at, n)
ORDER BY n
ON CONFLICT (event_id) DO NOTHING`

func insertEvents(ctx context.Context, tx *sqlx.Tx, events []domain.Event) error {
	if len(events) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, insertEventsQuery, insertEventsArgs(events)...); err != nil {
		return fmt.Errorf("insert %d outbox events: %w", len(events), err)
	}
	return nil
}

func insertEventsArgs(events []domain.Event) []any {
	n := len(events)
	ids, topics, keys, types := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	payloads, times := make([][]byte, n), make([]time.Time, n)
	for i, e := range events {
		ids[i], topics[i], keys[i], types[i], payloads[i], times[i] = e.ID, e.Topic, e.Key, e.Type, e.Payload, e.Time
		if times[i].IsZero() {
			times[i] = time.Now()
		}
	}
	args := []any{pq.Array(ids), pq.Array(topics), pq.Array(keys), pq.Array(types)} // $1–$4
	args = append(args, pack(payloads).args()...)                                   // $5–$7: see packed
	return append(args, pq.Array(times))                                            // $8
}

// relayLockKey is the advisory lock that makes one relay at a time
// publish, which keeps the outbox's order per key on the topics.
const relayLockKey = 0x70617967617465 // "paygate"

// The relay's statements are planned at every execution (planEachTime).
// The outbox is a queue: its unpublished part and its size swing by
// orders of magnitude within minutes. PostgreSQL settles a prepared
// statement on a generic plan after five runs, for the table as its
// statistics then describe it; one settled while the outbox held a few
// rows (a fresh database, or statistics gathered then) scanned the whole
// table on every round until the next ANALYZE: 1–2.6 ms a round with
// 9,000 published rows, a third of PostgreSQL's CPU at 500 webhooks/s.
// Planning costs 0.06–0.09 ms.
//
// claimEventsQuery marks the oldest unpublished events published and
// returns them, in one round trip; the transaction commits the marks only
// once Kafka has the events.
//
// The ids are taken first, into an array, and the events then fetched by
// their primary key. Written as a join (id IN (SELECT …)), it was planned
// as a merge join that walks the primary key from the outbox's first
// event up to the first unpublished one: every published event of the
// last day, every round (5 ms with 9,000 of them; 2.4 ms a round, a
// quarter of a core, at 500 webhooks/s).
const claimEventsQuery = planEachTime + `
UPDATE outbox SET published_at = now()
WHERE id = ANY (ARRAY(SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1))
RETURNING id, event_id, topic, key, type, payload, created_at`

// relayLockQuery takes the relay lock and, in the same round trip, lets
// the transaction commit without waiting for its WAL to reach the disk
// (SET LOCAL synchronous_commit = off). All it commits is the marks of
// events Kafka already has: a crash can lose only the last of them, and
// their events are then published again with the same ids — at least
// once, as after a crash between publishing and committing. The WAL is
// written in order, so a lost mark loses every later one too, and the
// events go out again in the outbox's order. Every other transaction
// keeps synchronous commit: a decision must not be lost once its
// callback is acknowledged.
const relayLockQuery = `SELECT pg_try_advisory_xact_lock($1) FROM set_config('synchronous_commit', 'off', true)`

// PublishOutbox hands up to limit unpublished events, oldest first, to
// publish, and marks them published if it returns nil — all while holding
// the relay lock in one transaction, so a second relay waits its turn and
// order is kept. A crash after publish and before commit republishes the
// same events with the same ids (at least once). It returns how many were
// published; 0 with a nil error when another relay holds the lock.
func (s *Store) PublishOutbox(ctx context.Context, limit int, publish func(ctx context.Context, events []domain.Event) error) (int, error) {
	var n int
	err := s.tryTx(ctx, func(tx *sqlx.Tx) error {
		var locked bool
		if err := tx.GetContext(ctx, &locked, relayLockQuery, relayLockKey); err != nil {
			return fmt.Errorf("relay lock: %w", err)
		}
		if !locked {
			return nil
		}
		rows, err := tx.QueryContext(ctx, claimEventsQuery, limit)
		if err != nil {
			return fmt.Errorf("claim outbox events: %w", err)
		}
		type claimed struct {
			id int64
			e  domain.Event
		}
		var cs []claimed
		for rows.Next() {
			var c claimed
			if err := rows.Scan(&c.id, &c.e.ID, &c.e.Topic, &c.e.Key, &c.e.Type, &c.e.Payload, &c.e.Time); err != nil {
				rows.Close()
				return fmt.Errorf("scan outbox: %w", err)
			}
			cs = append(cs, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("claim outbox events: %w", err)
		}
		if len(cs) == 0 {
			return nil
		}
		// RETURNING has no order; the events go out in the outbox's.
		slices.SortFunc(cs, func(a, b claimed) int { return cmp.Compare(a.id, b.id) })
		events := make([]domain.Event, len(cs))
		for i, c := range cs {
			events[i] = c.e
		}
		if err := publish(ctx, events); err != nil {
			return err
		}
		n = len(events)
		return nil
	})
	return n, err
}

// OutboxBacklog counts unpublished events (a gauge for operators).
func (s *Store) OutboxBacklog(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM outbox WHERE published_at IS NULL`)
	return n, err
}

// pruneBoundaryQuery finds the oldest event that must stay: unpublished,
// or published within keep. The relay publishes in id order, so the
// events before it are, nearly always, all there is to prune, and both
// statements walk the primary key over them alone instead of scanning a
// day of events every minute (430–530 ms for 2 million rows here). Both are
// planned each time: the outbox's size swings.
const pruneBoundaryQuery = planEachTime + `
SELECT id FROM outbox WHERE published_at IS NULL OR published_at >= now() - $1::interval
ORDER BY id LIMIT 1`

const pruneQuery = planEachTime + `
DELETE FROM outbox WHERE id < $1 AND published_at < now() - $2::interval`

// PruneOutbox deletes events published longer ago than keep, up to the
// oldest event that must stay (an event published late, after younger
// ones, holds back those after it until its own turn).
func (s *Store) PruneOutbox(ctx context.Context, keep time.Duration) (int64, error) {
	age := fmt.Sprintf("%d seconds", int64(keep.Seconds()))
	boundary := int64(math.MaxInt64)
	switch err := s.db.GetContext(ctx, &boundary, pruneBoundaryQuery, age); {
	case errors.Is(err, sql.ErrNoRows): // every event is old enough
	case err != nil:
		return 0, fmt.Errorf("prune outbox: %w", err)
	}
	res, err := s.db.ExecContext(ctx, pruneQuery, boundary, age)
	if err != nil {
		return 0, fmt.Errorf("prune outbox: %w", err)
	}
	return res.RowsAffected()
}
