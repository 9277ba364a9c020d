package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/domain/routing"
	"github.com/paygate/paygate/internal/psp"
)

// RoutingPolicy is one stored version of the routing policy: a document
// of kind DocRouting.
type RoutingPolicy = Document

// ApplyRoutingPolicy stores a routing policy document as the new version
// (ApplyDocument).
func (s *Store) ApplyRoutingPolicy(ctx context.Context, doc []byte, by, source, note string, validate func([]byte) error) (RoutingPolicy, bool, error) {
	return s.ApplyDocument(ctx, DocRouting, doc, by, source, note, validate)
}

// LatestRoutingPolicy is the version in force, ErrNotFound if none was
// ever applied.
func (s *Store) LatestRoutingPolicy(ctx context.Context) (RoutingPolicy, error) {
	return s.LatestDocument(ctx, DocRouting)
}

// RoutingPolicyVersion is one stored version, ErrNotFound if there is none.
func (s *Store) RoutingPolicyVersion(ctx context.Context, version int64) (RoutingPolicy, error) {
	return s.DocumentVersion(ctx, DocRouting, version)
}

// RoutingPolicies is the audit trail: the newest versions first, up to
// limit, documents included.
func (s *Store) RoutingPolicies(ctx context.Context, limit int) ([]RoutingPolicy, error) {
	return s.Documents(ctx, DocRouting, limit)
}

// RoutingSnapshot is a payinit member's routing health as of the offsets
// of the feedback topic it had read.
type RoutingSnapshot struct {
	TakenAt time.Time
	TakenBy string
	// Offsets are the next offset to read, per partition.
	Offsets map[int]int64
	State   []byte
}

// snapshotsKept is how many snapshots stay: a few, in case the newest is
// of a member whose state another member cannot read.
const snapshotsKept = 3

// SaveRoutingSnapshot stores a snapshot and drops all but the newest few.
func (s *Store) SaveRoutingSnapshot(ctx context.Context, snap RoutingSnapshot) error {
	offsets, err := json.Marshal(snap.Offsets)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO routing_snapshots (taken_by, offsets, state) VALUES ($1, $2, $3)`,
			snap.TakenBy, string(offsets), snap.State); err != nil {
			return fmt.Errorf("save routing snapshot: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM routing_snapshots WHERE id <= (SELECT id FROM routing_snapshots ORDER BY id DESC OFFSET $1 LIMIT 1)`,
			snapshotsKept); err != nil {
			return fmt.Errorf("drop old routing snapshots: %w", err)
		}
		return nil
	})
}

// LatestRoutingSnapshot is the newest snapshot, ErrNotFound if none.
func (s *Store) LatestRoutingSnapshot(ctx context.Context) (RoutingSnapshot, error) {
	var snap RoutingSnapshot
	var offsets []byte
	err := s.db.QueryRowContext(ctx, `SELECT taken_at, taken_by, offsets, state FROM routing_snapshots ORDER BY id DESC LIMIT 1`).
		Scan(&snap.TakenAt, &snap.TakenBy, &offsets, &snap.State)
	if errors.Is(err, sql.ErrNoRows) {
		return snap, ErrNotFound
	}
	if err != nil {
		return snap, fmt.Errorf("latest routing snapshot: %w", err)
	}
	if err := json.Unmarshal(offsets, &snap.Offsets); err != nil {
		return snap, fmt.Errorf("latest routing snapshot: offsets: %w", err)
	}
	return snap, nil
}

// routingRecordsQuery reads the attempts of a window for the backtest. It
// scans the window's attempts in creation order: a backtest is an
// operator's offline question, not worth an index every insert pays for.
const routingRecordsQuery = `
SELECT a.transaction_code, coalesce(a.routing->>'request_id', a.transaction_code), a.channel, a.segment, a.created_at,
    a.status, a.initiate_error, coalesce(a.paid_at, a.updated_at), a.explore,
    coalesce((a.routing->>'propensity')::float8, 0), a.hop,
    coalesce(a.routing->'request'->>'country', o.country), a.currency, coalesce(a.routing->'request'->>'method', o.method),
    coalesce(a.routing->'request'->>'bank', ''), a.amount
FROM attempts a JOIN orders o ON o.order_id = a.order_id
WHERE a.created_at >= $1 AND a.created_at < $2
ORDER BY a.created_at, a.transaction_code`

// RoutingRecords calls fn with each attempt made in [from, to), in the
// order they were made, as the backtest reads them.
func (s *Store) RoutingRecords(ctx context.Context, from, to time.Time, fn func(routing.Record) error) error {
	rows, err := s.db.QueryContext(ctx, routingRecordsQuery, from, to)
	if err != nil {
		return fmt.Errorf("routing records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r routing.Record
		var status, initErr string
		if err := rows.Scan(&r.TransactionCode, &r.RequestID, &r.Channel, &r.Segment, &r.DecidedAt, &status, &initErr, &r.ResolvedAt,
			&r.Explore, &r.Propensity, &r.Hop, &r.Request.Country, &r.Request.Currency, &r.Request.Method, &r.Request.Bank, &r.Request.Amount); err != nil {
			return fmt.Errorf("scan routing record: %w", err)
		}
		switch {
		case status == "paid":
			r.Outcome = routing.Paid
		case initErr != "":
			r.Outcome = routing.InitiateFailed
		case status == "failed":
			r.Outcome = routing.Declined
		case status == "expired":
			r.Outcome = routing.Abandoned
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

const failoverFromQuery = `
UPDATE attempts SET status = CASE WHEN status = 'created' THEN $2 ELSE status END, initiate_error = $3, updated_at = now()
WHERE transaction_code = $1`

// FailoverAttempts stores, in one transaction, a batch's failovers: each
// failed attempt with why its Initiate failed, each new attempt with its
// routing decision, and each pay request's plan pointed at its new
// attempt (a redelivered request resumes there), with the events (the
// routing feedback of the failed attempts) and the PSP exchanges so far.
func (s *Store) FailoverAttempts(ctx context.Context, fs []domain.Failover, events []domain.Event, exchanges []psp.Exchange) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		for _, f := range fs {
			if _, err := tx.ExecContext(ctx, failoverFromQuery, f.From.Code(), f.From.Status().String(), f.FromError); err != nil {
				return fmt.Errorf("fail over from attempt %s: %w", f.From.Code(), err)
			}
			if err := insertAttempt(ctx, tx, f.To); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE pay_requests SET transaction_code = $2 WHERE message_id = $1`, f.MessageID, f.To.Code()); err != nil {
				return fmt.Errorf("point pay request %s at attempt %s: %w", f.MessageID, f.To.Code(), err)
			}
		}
		if err := insertEvents(ctx, tx, events); err != nil {
			return err
		}
		return insertExchanges(ctx, tx, exchanges)
	})
}
