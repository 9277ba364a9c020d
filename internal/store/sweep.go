package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paygate/paygate/domain"
)

// dueProbesQuery finds open attempts whose next probe is due — the first
// one firstAfter their session (or creation) — and locks them, skipping
// those another sweeper holds: several sweepers never probe one attempt
// twice in one round.
//
// Each kind of due time is read in order from its own index
// (attempts_probe_next, attempts_probe_first), at most limit of each,
// instead of sorting every open attempt; the outer query takes the
// earliest and checks each again as it locks it, on the row as it is
// then (one another sweeper has just scheduled is no longer due). A
// sweeper that finds the earliest ones locked by another takes fewer in
// that round; the next round takes the rest. It is planned each time (a
// round a second can afford it): a generic plan made while attempts was
// small would scan the table, and keep scanning it as it grew.
const dueProbesQuery = planEachTime + `
SELECT ` + prefixedAttemptColumns + `, a.probe_count, coalesce(a.expires_at, a.created_at + $3::interval) AS expires
FROM attempts a JOIN (
    (SELECT transaction_code, next_probe_at AS due FROM attempts
     WHERE status IN ('created', 'pending') AND next_probe_at <= $1::timestamptz
     ORDER BY next_probe_at LIMIT $4)
    UNION ALL
    (SELECT transaction_code, coalesce(session_at, created_at) + $2::interval FROM attempts
     WHERE status IN ('created', 'pending') AND next_probe_at IS NULL
       AND coalesce(session_at, created_at) <= $1::timestamptz - $2::interval
     ORDER BY coalesce(session_at, created_at) LIMIT $4)
) d ON d.transaction_code = a.transaction_code
WHERE a.status IN ('created', 'pending')
  AND coalesce(a.next_probe_at, coalesce(a.session_at, a.created_at) + $2::interval) <= $1::timestamptz
ORDER BY d.due
LIMIT $4
FOR UPDATE OF a SKIP LOCKED`

const scheduleProbesQuery = `
UPDATE attempts a SET probe_count = a.probe_count + 1, next_probe_at = u.next
FROM unnest($1::text[], $2::timestamptz[]) AS u(transaction_code, next)
WHERE a.transaction_code = u.transaction_code`

// ClaimProbes is the sweeper's round: in one transaction it takes up to
// limit due attempts, asks plan for each probe's event and next time, and
// writes the events to the outbox and the new schedule. ttl is the
// lifetime of an attempt whose PSP gave no expiry. It returns how many
// probes it scheduled.
func (s *Store) ClaimProbes(ctx context.Context, now time.Time, firstAfter, ttl time.Duration, limit int,
	plan func(p domain.DueProbe) (next time.Time, probe domain.Event)) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		rows, err := tx.QueryContext(ctx, dueProbesQuery, now, interval(firstAfter), interval(ttl), limit)
		if err != nil {
			return fmt.Errorf("claim probes: %w", err)
		}
		var due []domain.DueProbe
		for rows.Next() {
			var r attemptRow
			var p domain.DueProbe
			if err := rows.Scan(append(r.targets(), &p.Probes, &p.ExpiresAt)...); err != nil {
				rows.Close()
				return fmt.Errorf("scan due probe: %w", err)
			}
			if p.Attempt, err = r.toDomain(); err != nil {
				rows.Close()
				return err
			}
			due = append(due, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("claim probes: %w", err)
		}
		codes, nexts, events := make([]string, len(due)), make([]time.Time, len(due)), make([]domain.Event, len(due))
		for i, p := range due {
			codes[i] = p.Attempt.Code()
			nexts[i], events[i] = plan(p)
		}
		if err := insertEvents(ctx, tx, events); err != nil {
			return err
		}
		if len(codes) > 0 {
			if _, err := tx.ExecContext(ctx, scheduleProbesQuery, pq.Array(codes), pq.Array(nexts)); err != nil {
				return fmt.Errorf("schedule probes: %w", err)
			}
		}
		n = len(due)
		return nil
	})
	return n, err
}

const abandonedOrdersQuery = `
SELECT order_id, amount, currency, status, paid_attempt FROM orders o
WHERE status = 'pending' AND created_at < $1
  AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.order_id = o.order_id AND a.status IN ('created', 'pending'))
ORDER BY created_at
LIMIT $2
FOR UPDATE SKIP LOCKED`

// CloseAbandonedOrders closes up to limit orders created before cutoff
// that were never paid and have no attempt still open. A payment that
// still arrives for one is a late payment, refunded.
func (s *Store) CloseAbandonedOrders(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var rows []orderRow
		if err := tx.SelectContext(ctx, &rows, abandonedOrdersQuery, cutoff, limit); err != nil {
			return fmt.Errorf("find abandoned orders: %w", err)
		}
		closed := make([]domain.Order, 0, len(rows))
		for _, r := range rows {
			o, err := r.toDomain()
			if err != nil {
				return err
			}
			if o, err = o.Close(); err != nil {
				return err
			}
			closed = append(closed, o)
		}
		n = len(closed)
		return saveOrders(ctx, tx, closed)
	})
	return n, err
}

func interval(d time.Duration) string { return fmt.Sprintf("%d milliseconds", d.Milliseconds()) }
