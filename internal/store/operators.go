package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Actor is who does an operator action: "console:<user>" or
// "cli:<os user>@<host>", with the console role and the client's address
// where there is one.
type Actor struct {
	Name       string
	Role       string
	RemoteAddr string
}

// Audit outcomes.
const (
	AuditOK      = "ok"
	AuditRefused = "refused"
	AuditFailed  = "failed"
)

// AuditEntry is one operator action as the audit log keeps it.
type AuditEntry struct {
	ID      int64
	At      time.Time
	Actor   Actor
	Action  string
	Target  string
	Outcome string
	// Detail is what else is worth keeping (counts, the reason of a
	// refusal); stored as JSON.
	Detail map[string]any
}

const insertAuditQuery = `
INSERT INTO audit_log (actor, role, action, target, outcome, detail, remote_addr)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)`

// Audit appends an entry to the audit log. Callers audit every operator
// action, including the refused and failed ones.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	detail := []byte("{}")
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return fmt.Errorf("audit %s: detail: %w", e.Action, err)
		}
	}
	if _, err := s.db.ExecContext(ctx, insertAuditQuery, e.Actor.Name, e.Actor.Role, e.Action, e.Target, e.Outcome,
		string(detail), e.Actor.RemoteAddr); err != nil {
		return fmt.Errorf("audit %s by %s: %w", e.Action, e.Actor.Name, err)
	}
	return nil
}

const auditLogQuery = `
SELECT id, at, actor, role, action, target, outcome, detail, remote_addr FROM audit_log
WHERE ($1 = 0 OR id < $1) ORDER BY id DESC LIMIT $2`

// AuditLog returns up to limit entries, newest first, older than the
// entry before (0: from the newest).
func (s *Store) AuditLog(ctx context.Context, before int64, limit int) ([]AuditEntry, error) {
	rows, err := s.db.QueryContext(ctx, auditLogQuery, before, limit)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var detail []byte
		if err := rows.Scan(&e.ID, &e.At, &e.Actor.Name, &e.Actor.Role, &e.Action, &e.Target, &e.Outcome, &detail, &e.Actor.RemoteAddr); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		if err := json.Unmarshal(detail, &e.Detail); err != nil {
			return nil, fmt.Errorf("audit log %d: detail: %w", e.ID, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// DLQReplay is a dead-lettered record sent back to its topic.
type DLQReplay struct {
	DLQTopic  string
	Partition int
	Offset    int64
	// RecordTime is the DLQ record's timestamp (milliseconds, as Kafka
	// keeps it): it tells a record from one at the same offset of a
	// topic created again.
	RecordTime  time.Time
	MessageID   string
	ReplayCount int
	ReplayedAt  time.Time
	Actor       string
}

const dlqReplayedQuery = `
SELECT dlq_offset, record_time, message_id, replay_count, replayed_at, actor FROM dlq_replays
WHERE dlq_topic = $1 AND partition = $2 AND dlq_offset = ANY($3)`

// DLQReplayed returns the replays recorded for the given offsets of a
// DLQ partition, by offset. A row whose record time differs from the
// record's is about an older record at that offset: callers compare
// RecordTime.
func (s *Store) DLQReplayed(ctx context.Context, dlqTopic string, partition int, offsets []int64) (map[int64]DLQReplay, error) {
	out := map[int64]DLQReplay{}
	if len(offsets) == 0 {
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx, dlqReplayedQuery, dlqTopic, partition, pq.Array(offsets))
	if err != nil {
		return nil, fmt.Errorf("replays of %s/%d: %w", dlqTopic, partition, err)
	}
	defer rows.Close()
	for rows.Next() {
		r := DLQReplay{DLQTopic: dlqTopic, Partition: partition}
		if err := rows.Scan(&r.Offset, &r.RecordTime, &r.MessageID, &r.ReplayCount, &r.ReplayedAt, &r.Actor); err != nil {
			return nil, fmt.Errorf("replays of %s/%d: %w", dlqTopic, partition, err)
		}
		out[r.Offset] = r
	}
	return out, rows.Err()
}

// recordDLQReplayQuery inserts a replay, or replaces the row of an older
// record that had the same offset (a topic created again); a row of the
// same record stays as it was.
const recordDLQReplayQuery = `
INSERT INTO dlq_replays (dlq_topic, partition, dlq_offset, record_time, message_id, replay_count, actor)
SELECT $1, $2, o, t, m, c, $7
FROM unnest($3::bigint[], $4::timestamptz[], $5::text[], $6::int[]) AS u(o, t, m, c)
ON CONFLICT (dlq_topic, partition, dlq_offset) DO UPDATE
SET record_time = EXCLUDED.record_time, message_id = EXCLUDED.message_id, replay_count = EXCLUDED.replay_count,
    replayed_at = now(), actor = EXCLUDED.actor
WHERE dlq_replays.record_time <> EXCLUDED.record_time`

// RecordDLQReplays records replays of records of one DLQ partition, all
// by one actor, in one statement.
func (s *Store) RecordDLQReplays(ctx context.Context, dlqTopic string, partition int, actor string, rs []DLQReplay) error {
	if len(rs) == 0 {
		return nil
	}
	offsets, times, ids, counts := make([]int64, len(rs)), make([]string, len(rs)), make([]string, len(rs)), make([]int64, len(rs))
	for i, r := range rs {
		offsets[i], times[i], ids[i], counts[i] = r.Offset, r.RecordTime.UTC().Format(time.RFC3339Nano), r.MessageID, int64(r.ReplayCount)
	}
	if _, err := s.db.ExecContext(ctx, recordDLQReplayQuery, dlqTopic, partition, pq.Array(offsets), pq.Array(times),
		pq.Array(ids), pq.Array(counts), actor); err != nil {
		return fmt.Errorf("record %d replays of %s/%d: %w", len(rs), dlqTopic, partition, err)
	}
	return nil
}

const dlqReplayedFromQuery = `
SELECT count(*) FROM dlq_replays WHERE dlq_topic = $1 AND partition = $2 AND dlq_offset >= $3 AND dlq_offset < $4`

// DLQReplayedBetween counts the replays recorded for offsets from..to-1
// of a DLQ partition (the records replayed one by one ahead of the
// replay cursor).
func (s *Store) DLQReplayedBetween(ctx context.Context, dlqTopic string, partition int, from, to int64) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, dlqReplayedFromQuery, dlqTopic, partition, from, to).Scan(&n); err != nil {
		return 0, fmt.Errorf("replays of %s/%d: %w", dlqTopic, partition, err)
	}
	return n, nil
}

// ErrLocked is returned when another process holds a lock the caller
// only tries.
var ErrLocked = errors.New("held by another process")

const (
	tryLockQuery = `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`
	unlockQuery  = `SELECT pg_advisory_unlock(hashtextextended($1, 0))`
)

// TryLock takes the session-level advisory lock named name on a
// connection of its own, or returns ErrLocked at once if another session
// holds it. The returned function releases it (and the connection). Held
// locks die with their connection, so a crashed holder frees them.
func (s *Store) TryLock(ctx context.Context, name string) (unlock func(), err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, tryLockQuery, name).Scan(&ok); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("lock %s: %w", name, ErrLocked)
	}
	return func() {
		// A fresh context: the caller's may have ended, and the lock must
		// go. If the unlock fails the connection is closed, which frees it.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(ctx, unlockQuery, name); err != nil {
			_ = conn.Raw(func(any) error { return driverBadConn }) // drop it from the pool
		}
		_ = conn.Close()
	}, nil
}
