package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/domain/routing"
	"github.com/paygate/paygate/internal/psp"
)

// RoutingPolicy is one stored version of the routing policy.
type RoutingPolicy struct {
	Version   int64     `db:"version"`
	Document  []byte    `db:"document"`
	SHA256    string    `db:"sha256"`
	AppliedBy string    `db:"applied_by"`
	Source    string    `db:"source"`
	Note      string    `db:"note"`
	AppliedAt time.Time `db:"applied_at"`
}

// routingPolicyLock serialises appliers, so that two applying the same
// document at once store it once.
const routingPolicyLock = 0x726f757465 // "route"

const latestRoutingPolicyQuery = `SELECT version, document, sha256, applied_by, source, note, applied_at
FROM routing_policies ORDER BY version DESC LIMIT 1`

// ApplyRoutingPolicy stores a routing policy document as the new version,
// with who applied it, from where and why. validate must accept the
// document first (the caller parses it against the configured channels):
// a refused document is not stored and the version in force stays. A
// document identical to the version in force is not stored again: that
// version is returned with created false.
func (s *Store) ApplyRoutingPolicy(ctx context.Context, doc []byte, by, source, note string, validate func([]byte) error) (p RoutingPolicy, created bool, err error) {
	if err := validate(doc); err != nil {
		return p, false, err
	}
	sum := sha256.Sum256(doc)
	hash := hex.EncodeToString(sum[:])
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		created = false
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, routingPolicyLock); err != nil {
			return fmt.Errorf("lock routing policies: %w", err)
		}
		err := tx.GetContext(ctx, &p, latestRoutingPolicyQuery)
		switch {
		case err == nil && p.SHA256 == hash:
			return nil
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("latest routing policy: %w", err)
		}
		created = true
		return tx.GetContext(ctx, &p, `INSERT INTO routing_policies (document, sha256, applied_by, source, note)
VALUES ($1, $2, $3, $4, $5) RETURNING version, document, sha256, applied_by, source, note, applied_at`, doc, hash, by, source, note)
	})
	if err != nil {
		return p, false, fmt.Errorf("apply routing policy: %w", err)
	}
	return p, created, nil
}

// LatestRoutingPolicy is the version in force, ErrNotFound if none was
// ever applied.
func (s *Store) LatestRoutingPolicy(ctx context.Context) (RoutingPolicy, error) {
	var p RoutingPolicy
	if err := s.db.GetContext(ctx, &p, latestRoutingPolicyQuery); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return p, ErrNotFound
		}
		return p, fmt.Errorf("latest routing policy: %w", err)
	}
	return p, nil
}

// RoutingPolicyVersion is one stored version, ErrNotFound if there is none.
func (s *Store) RoutingPolicyVersion(ctx context.Context, version int64) (RoutingPolicy, error) {
	var p RoutingPolicy
	if err := s.db.GetContext(ctx, &p, `SELECT version, document, sha256, applied_by, source, note, applied_at
FROM routing_policies WHERE version = $1`, version); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return p, ErrNotFound
		}
		return p, fmt.Errorf("routing policy %d: %w", version, err)
	}
	return p, nil
}

// RoutingPolicies is the audit trail: the newest versions first, up to
// limit, documents included.
func (s *Store) RoutingPolicies(ctx context.Context, limit int) ([]RoutingPolicy, error) {
	var ps []RoutingPolicy
	if err := s.db.SelectContext(ctx, &ps, `SELECT version, document, sha256, applied_by, source, note, applied_at
FROM routing_policies ORDER BY version DESC LIMIT $1`, limit); err != nil {
		return nil, fmt.Errorf("routing policies: %w", err)
	}
	return ps, nil
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
