package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/schemas"
)

// RefundDecider validates one refund request inside the recording
// transaction: order is nil for an unknown order; attempts and existing
// are the order's attempts and refunds (those recorded earlier in the
// same batch included). It returns the refund to record, queued or
// failed (the error says why it was refused).
type RefundDecider = func(in domain.RefundIntent, order *domain.Order, attempts []domain.Attempt, existing []domain.Refund) (domain.Refund, error)

// RefundResulter builds the outbox event announcing a refund's final
// result (paygate.refund-results.v1).
type RefundResulter = func(r domain.Refund) (domain.Event, error)

const refundColumns = `refund_id, coalesce(refund_ref, ''), order_id, transaction_code, channel, amount, currency, reason,
    status, call_status, psp_reference, payment_psp_reference, error, polls`

func scanRefund(sc interface{ Scan(...any) error }) (domain.Refund, int, error) {
	var s domain.RefundState
	var amount int64
	var cur, status, call string
	var polls int
	if err := sc.Scan(&s.ID, &s.Ref, &s.OrderID, &s.TransactionCode, &s.Channel, &amount, &cur, &s.Reason,
		&status, &call, &s.PSPReference, &s.PaymentPSPReference, &s.Error, &polls); err != nil {
		return domain.Refund{}, 0, fmt.Errorf("scan refund: %w", err)
	}
	var err error
	if s.Amount, err = domain.NewMoney(amount, cur); err != nil {
		// A refused request may carry a currency paygate does not know;
		// it is only ever shown, never computed with.
		s.Amount = domain.Money{}
	}
	if s.Status, err = domain.ParseRefundStatus(status); err != nil {
		return domain.Refund{}, 0, fmt.Errorf("refund %s: %w", s.ID, err)
	}
	if s.Call, err = domain.ParseCallStatus(call); err != nil {
		return domain.Refund{}, 0, fmt.Errorf("refund %s: %w", s.ID, err)
	}
	return domain.RestoreRefund(s), polls, nil
}

func newLease() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func msInterval(d time.Duration) string { return fmt.Sprintf("%d milliseconds", d.Milliseconds()) }

const knownRefundsQuery = `SELECT refund_id, body_hash FROM refunds WHERE refund_id = ANY($1)`

const orderAttemptsQuery = `SELECT ` + attemptColumns + ` FROM attempts WHERE order_id = ANY($1) ORDER BY created_at, transaction_code`

const orderRefundsQuery = `SELECT ` + refundColumns + ` FROM refunds WHERE order_id = ANY($1) ORDER BY id`

const insertRefundQuery = `
INSERT INTO refunds (refund_id, body_hash, message_id, refund_ref, order_id, transaction_code, channel, amount, currency,
    reason, status, payment_psp_reference, error, raw, finished_at)
VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
    CASE WHEN $15::boolean THEN now() END)`

const insertRefundConflictQuery = `
INSERT INTO refund_conflicts (message_id, refund_id, body_hash, raw) VALUES ($1, $2, $3, $4)
ON CONFLICT (message_id) DO NOTHING`

// QueueRefunds is the refunds group's first transaction for a batch of
// requests. In input order, each request is: a duplicate (its refund id
// is known with the same body hash: nothing happens), a conflict (known
// with another hash: recorded as evidence, the original untouched), or
// new: decide validates it against the locked order, and it is recorded
// queued, or failed with its final result in the outbox. Then the batch's
// orders that have no refund in flight start their oldest queued refund,
// and refunds of those orders left in flight by a dead worker (lease
// expired) are taken over; both are returned as claims held under a new
// lease for the caller to call or query the PSP outside any transaction.
func (s *Store) QueueRefunds(ctx context.Context, in []domain.RefundIntent, decide RefundDecider, result RefundResulter,
	lease time.Duration) ([]domain.RefundRecorded, []domain.RefundClaim, error) {
	var recorded []domain.RefundRecorded
	var claims []domain.RefundClaim
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		recorded, claims = make([]domain.RefundRecorded, 0, len(in)), nil
		orderIDs, refundIDs := make([]string, 0, len(in)), make([]string, 0, len(in))
		for _, r := range in {
			orderIDs, refundIDs = append(orderIDs, r.OrderID), append(refundIDs, r.RefundID)
		}
		orderIDs = sortedUnique(orderIDs)
		orders, err := lockOrderRows(ctx, tx, orderIDs, false)
		if err != nil {
			return err
		}
		known := map[string][]byte{}
		rows, err := tx.QueryContext(ctx, knownRefundsQuery, pq.Array(refundIDs))
		if err != nil {
			return fmt.Errorf("look up %d refund ids: %w", len(refundIDs), err)
		}
		for rows.Next() {
			var id string
			var h []byte
			if err := rows.Scan(&id, &h); err != nil {
				rows.Close()
				return fmt.Errorf("scan refund id: %w", err)
			}
			known[id] = h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		attempts, existing, err := loadOrderState(ctx, tx, orderIDs)
		if err != nil {
			return err
		}
		var events []domain.Event
		for _, r := range in {
			rec := domain.RefundRecorded{MessageID: r.MessageID, RefundID: r.RefundID}
			if h, ok := known[r.RefundID]; ok {
				if bytes.Equal(h, r.BodyHash) {
					rec.Outcome = domain.RecordedDuplicate
				} else {
					rec.Outcome = domain.RecordedConflict
					rec.Err = refundReusedReason(r.RefundID)
					if _, err := tx.ExecContext(ctx, insertRefundConflictQuery, r.MessageID, r.RefundID, r.BodyHash, nonNil(r.Raw)); err != nil {
						return fmt.Errorf("record refund conflict %s: %w", r.RefundID, err)
					}
				}
				recorded = append(recorded, rec)
				continue
			}
			var op *domain.Order
			if o, ok := orders[r.OrderID]; ok {
				op = &o
			}
			ref, derr := decide(r, op, attempts[r.OrderID], existing[r.OrderID])
			st := ref.State()
			rec.Outcome = domain.RecordedQueued
			if derr != nil {
				rec.Outcome, rec.Err = domain.RecordedRejected, derr.Error()
				ev, err := result(ref)
				if err != nil {
					return err
				}
				events = append(events, ev)
			}
			if _, err := tx.ExecContext(ctx, insertRefundQuery, st.ID, r.BodyHash, r.MessageID, st.Ref, r.OrderID, st.TransactionCode,
				st.Channel, r.Amount.Minor(), r.Amount.Currency().Code(), st.Reason, st.Status.String(), st.PaymentPSPReference,
				st.Error, nonNil(r.Raw), st.Status.IsFinal()); err != nil {
				var pe *pq.Error
				if errors.As(err, &pe) && pe.Code == "23505" {
					// The refund id was recorded by another transaction
					// since it was looked up (another order's partition):
					// run again, and decide against it.
					return fmt.Errorf("record refund %s: %w", r.RefundID, errStoredMeanwhile)
				}
				return fmt.Errorf("record refund %s: %w", r.RefundID, err)
			}
			known[r.RefundID] = r.BodyHash
			existing[r.OrderID] = append(existing[r.OrderID], ref)
			recorded = append(recorded, rec)
		}
		if err := insertEvents(ctx, tx, events); err != nil {
			return err
		}
		token := newLease()
		started, err := startQueued(ctx, tx, keys(orders), token, lease)
		if err != nil {
			return err
		}
		resumed, err := resumeDue(ctx, tx, orderIDs, len(orderIDs)+len(in), token, lease)
		if err != nil {
			return err
		}
		claims = append(started, resumed...)
		return nil
	})
	return recorded, claims, err
}

// ClaimRefunds is the poller's claim: up to limit refunds that are due —
// in flight and due for a query (pending at the PSP, or an unknown call
// outcome) and not held by a live worker, and the oldest queued refund of
// orders with none in flight — taken under a new lease. Rows held by
// another poller's transaction are skipped (FOR UPDATE SKIP LOCKED), and
// a live lease keeps a refund from being claimed twice, so any number of
// pollers may run.
func (s *Store) ClaimRefunds(ctx context.Context, limit int, lease time.Duration) ([]domain.RefundClaim, error) {
	var claims []domain.RefundClaim
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		token := newLease()
		resumed, err := resumeDue(ctx, tx, nil, limit, token, lease)
		if err != nil {
			return err
		}
		var candidates []string
		if err := tx.SelectContext(ctx, &candidates, queuedOrdersQuery, limit); err != nil {
			return fmt.Errorf("find orders with queued refunds: %w", err)
		}
		locked, err := lockOrderRows(ctx, tx, candidates, true)
		if err != nil {
			return err
		}
		started, err := startQueued(ctx, tx, keys(locked), token, lease)
		if err != nil {
			return err
		}
		claims = append(resumed, started...)
		return nil
	})
	return claims, err
}

const queuedOrdersQuery = `
SELECT DISTINCT q.order_id FROM refunds q
WHERE q.status = 'queued'
  AND NOT EXISTS (SELECT 1 FROM refunds f WHERE f.order_id = q.order_id AND f.status IN ('calling', 'pending_at_psp'))
LIMIT $1`

const saveRefundOutcomeQuery = `
UPDATE refunds SET status = $3, call_status = $4, psp_reference = $5, error = $6,
    lease = NULL, lease_until = NULL, polls = polls + 1, next_at = now() + $7::interval, updated_at = now(),
    finished_at = CASE WHEN $9::boolean THEN now() END
WHERE refund_id = $1 AND lease = $2 AND status = $8`

const refundedOfAttemptsQuery = `
SELECT transaction_code, sum(amount) FROM refunds
WHERE transaction_code = ANY($1) AND status = 'succeeded' GROUP BY transaction_code`

// FinishRefunds is the second transaction: it records what the PSP said
// about claimed refunds. An outcome is applied only if the refund is still
// held under the claim's lease and in the claimed state (a worker that
// lost its lease changes nothing). A final refund's result goes to the
// outbox (once: its event id is stable), its order moves on
// (partially_refunded or refunded, for refunds of the attempt that paid
// it), and the order's next queued refund starts: it is returned as a
// claim, to be called by the caller as well. The PSP exchanges are stored
// as evidence.
func (s *Store) FinishRefunds(ctx context.Context, outcomes []domain.RefundOutcome, result RefundResulter, exchanges []psp.Exchange,
	lease time.Duration) ([]domain.RefundClaim, error) {
	var next []domain.RefundClaim
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		next = nil
		ids := make([]string, 0, len(outcomes))
		for _, o := range outcomes {
			ids = append(ids, o.Refund.OrderID())
		}
		orders, err := lockOrderRows(ctx, tx, sortedUnique(ids), false)
		if err != nil {
			return err
		}
		var events []domain.Event
		finished := map[string]bool{}      // orders with a refund that became final
		refundedCodes := map[string]bool{} // attempts with a refund that succeeded
		for _, o := range outcomes {
			st := o.Refund.State()
			res, err := tx.ExecContext(ctx, saveRefundOutcomeQuery, st.ID, o.Claim.Lease, st.Status.String(), st.Call.String(),
				st.PSPReference, st.Error, msInterval(o.Retry), o.Claim.Refund.Status().String(), st.Status.IsFinal())
			if err != nil {
				return fmt.Errorf("save refund %s: %w", st.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue // the lease was lost: another worker has it now
			}
			if !st.Status.IsFinal() {
				continue
			}
			ev, err := result(o.Refund)
			if err != nil {
				return err
			}
			events = append(events, ev)
			finished[st.OrderID] = true
			if st.Status == domain.RefundSucceeded {
				refundedCodes[st.TransactionCode] = true
			}
		}
		if err := applyRefundsToOrders(ctx, tx, orders, keys(refundedCodes)); err != nil {
			return err
		}
		if err := insertEvents(ctx, tx, events); err != nil {
			return err
		}
		if err := insertExchanges(ctx, tx, exchanges); err != nil {
			return err
		}
		next, err = startQueued(ctx, tx, keys(finished), newLease(), lease)
		return err
	})
	return next, err
}

// applyRefundsToOrders moves the (locked) orders of attempts that got
// money back to partially_refunded or refunded.
func applyRefundsToOrders(ctx context.Context, tx *sqlx.Tx, orders map[string]domain.Order, codes []string) error {
	if len(codes) == 0 {
		return nil
	}
	attempts, err := attemptsByCode(ctx, tx, codes)
	if err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, refundedOfAttemptsQuery, pq.Array(codes))
	if err != nil {
		return fmt.Errorf("sum refunds of %d attempts: %w", len(codes), err)
	}
	total := map[string]int64{}
	for rows.Next() {
		var code string
		var sum int64
		if err := rows.Scan(&code, &sum); err != nil {
			rows.Close()
			return err
		}
		total[code] = sum
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var changed []domain.Order
	for _, code := range codes {
		a, ok := attempts[code]
		if !ok {
			continue
		}
		o, ok := orders[a.OrderID()]
		if !ok {
			continue
		}
		refunded, err := domain.NewMoney(total[code], a.Amount().Currency().Code())
		if err != nil {
			return err
		}
		no, err := o.ApplyRefunds(a, refunded)
		if err != nil {
			return fmt.Errorf("refunds of %s: %w", code, err)
		}
		if no.Status() != o.Status() {
			orders[o.ID()] = no
			changed = append(changed, no)
		}
	}
	return saveOrders(ctx, tx, changed)
}

func attemptsByCode(ctx context.Context, tx *sqlx.Tx, codes []string) (map[string]domain.Attempt, error) {
	var rows []attemptRow
	if err := tx.SelectContext(ctx, &rows, `SELECT `+attemptColumns+` FROM attempts WHERE transaction_code = ANY($1)`, pq.Array(codes)); err != nil {
		return nil, fmt.Errorf("load %d attempts: %w", len(codes), err)
	}
	out := make(map[string]domain.Attempt, len(rows))
	for _, r := range rows {
		a, err := r.toDomain()
		if err != nil {
			return nil, err
		}
		out[a.Code()] = a
	}
	return out, nil
}

// lockOrderRows locks existing orders in id order (so that transactions
// locking several cannot deadlock); with skipLocked, orders another
// transaction holds are left out instead of waited for.
func lockOrderRows(ctx context.Context, tx *sqlx.Tx, ids []string, skipLocked bool) (map[string]domain.Order, error) {
	out := map[string]domain.Order{}
	if len(ids) == 0 {
		return out, nil
	}
	q := `SELECT order_id, amount, currency, status, paid_attempt FROM orders WHERE order_id = ANY($1) ORDER BY order_id FOR UPDATE`
	if skipLocked {
		q += ` SKIP LOCKED`
	}
	var rows []orderRow
	if err := tx.SelectContext(ctx, &rows, q, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("lock %d orders: %w", len(ids), err)
	}
	for _, r := range rows {
		o, err := r.toDomain()
		if err != nil {
			return nil, err
		}
		out[o.ID()] = o
	}
	return out, nil
}

func loadOrderState(ctx context.Context, tx *sqlx.Tx, orderIDs []string) (map[string][]domain.Attempt, map[string][]domain.Refund, error) {
	attempts, refunds := map[string][]domain.Attempt{}, map[string][]domain.Refund{}
	var ars []attemptRow
	if err := tx.SelectContext(ctx, &ars, orderAttemptsQuery, pq.Array(orderIDs)); err != nil {
		return nil, nil, fmt.Errorf("load attempts of %d orders: %w", len(orderIDs), err)
	}
	for _, r := range ars {
		a, err := r.toDomain()
		if err != nil {
			return nil, nil, err
		}
		attempts[a.OrderID()] = append(attempts[a.OrderID()], a)
	}
	rows, err := tx.QueryContext(ctx, orderRefundsQuery, pq.Array(orderIDs))
	if err != nil {
		return nil, nil, fmt.Errorf("load refunds of %d orders: %w", len(orderIDs), err)
	}
	defer rows.Close()
	for rows.Next() {
		r, _, err := scanRefund(rows)
		if err != nil {
			return nil, nil, err
		}
		refunds[r.OrderID()] = append(refunds[r.OrderID()], r)
	}
	return attempts, refunds, rows.Err()
}

// startableQuery finds, for orders the caller has locked, the oldest
// queued refund of each order that has none in flight.
const startableQuery = `
SELECT DISTINCT ON (q.order_id) ` + refundColumns + ` FROM refunds q
WHERE q.order_id = ANY($1) AND q.status = 'queued'
  AND NOT EXISTS (SELECT 1 FROM refunds f WHERE f.order_id = q.order_id AND f.status IN ('calling', 'pending_at_psp'))
ORDER BY q.order_id, q.id`

const claimRefundsQuery = `
UPDATE refunds r SET status = u.status, lease = $2, lease_until = now() + $3::interval, updated_at = now()
FROM unnest($1::text[], $4::text[]) AS u(refund_id, status)
WHERE r.refund_id = u.refund_id`

// startQueued starts (queued → calling, through the domain) the oldest
// queued refund of each of the given orders, which the caller has
// locked, if the order has no refund in flight.
func startQueued(ctx context.Context, tx *sqlx.Tx, orderIDs []string, token string, lease time.Duration) ([]domain.RefundClaim, error) {
	if len(orderIDs) == 0 {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, startableQuery, pq.Array(orderIDs))
	if err != nil {
		return nil, fmt.Errorf("find startable refunds: %w", err)
	}
	var claims []domain.RefundClaim
	for rows.Next() {
		r, polls, err := scanRefund(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		started, err := r.Start()
		if err != nil {
			rows.Close()
			return nil, err
		}
		claims = append(claims, domain.RefundClaim{Refund: started, Lease: token, Polls: polls})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return claims, saveClaims(ctx, tx, claims, token, lease)
}

func saveClaims(ctx context.Context, tx *sqlx.Tx, claims []domain.RefundClaim, token string, lease time.Duration) error {
	if len(claims) == 0 {
		return nil
	}
	ids, st := make([]string, len(claims)), make([]string, len(claims))
	for i, c := range claims {
		ids[i], st[i] = c.Refund.ID(), c.Refund.Status().String()
	}
	if _, err := tx.ExecContext(ctx, claimRefundsQuery, pq.Array(ids), token, msInterval(lease), pq.Array(st)); err != nil {
		return fmt.Errorf("claim %d refunds: %w", len(ids), err)
	}
	return nil
}

const resumableQuery = `
SELECT ` + refundColumns + ` FROM refunds
WHERE status IN ('calling', 'pending_at_psp') AND next_at <= now() AND (lease_until IS NULL OR lease_until < now())
  AND ($1::text[] IS NULL OR order_id = ANY($1))
ORDER BY next_at LIMIT $2
FOR UPDATE SKIP LOCKED`

// resumeDue takes over in-flight refunds that are due for a query and
// held by no live worker (of the given orders; all if nil).
func resumeDue(ctx context.Context, tx *sqlx.Tx, orderIDs []string, limit int, token string, lease time.Duration) ([]domain.RefundClaim, error) {
	var filter any
	if orderIDs != nil {
		filter = pq.Array(orderIDs)
	}
	rows, err := tx.QueryContext(ctx, resumableQuery, filter, limit)
	if err != nil {
		return nil, fmt.Errorf("find due refunds: %w", err)
	}
	var claims []domain.RefundClaim
	for rows.Next() {
		r, polls, err := scanRefund(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		claims = append(claims, domain.RefundClaim{Refund: r, Lease: token, Query: true, Polls: polls})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return claims, saveClaims(ctx, tx, claims, token, lease)
}

const refundViewColumns = `refund_id, coalesce(refund_ref, ''), order_id, transaction_code, channel, amount, currency, reason,
    status, call_status, psp_reference, error, created_at, updated_at, finished_at`

func scanRefundView(sc interface{ Scan(...any) error }, extra ...any) (schemas.Refund, error) {
	var r schemas.Refund
	var fin sql.NullTime
	dest := append([]any{&r.RefundID, &r.RefundRef, &r.OrderID, &r.TransactionCode, &r.Channel, &r.Amount, &r.Currency, &r.Reason,
		&r.RefundStatus, &r.CallStatus, &r.PSPReference, &r.Error, &r.CreatedAt, &r.UpdatedAt, &fin}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return r, err
	}
	r.FinishedAt = timePtr(fin)
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	r.Status = schemas.RefundInProgress
	if r.RefundStatus == domain.RefundSucceeded.String() || r.RefundStatus == domain.RefundFailed.String() {
		r.Status = r.RefundStatus
	}
	return r, nil
}

// refundReusedReason is why a refund request under a refund id already
// recorded with other content is refused.
func refundReusedReason(refundID string) string {
	return "idempotency_key_reused: refund id " + refundID + " was first used for another request (another order, attempt, amount, currency or reason); " +
		"that refund stands, and this request was refused and not processed: send it with a refund id of its own"
}

// Refund is a refund as GET /v1/refunds/{id} shows it, with the requests
// refused for reusing its refund id, and the hash of the request that
// created it (to tell a retry from a conflict). It returns ErrNotFound
// for an unknown refund id.
func (s *Store) Refund(ctx context.Context, refundID string) (schemas.Refund, []byte, error) {
	var hash []byte
	row := s.db.QueryRowContext(ctx, `SELECT `+refundViewColumns+`, body_hash FROM refunds WHERE refund_id = $1`, refundID)
	r, err := scanRefundView(row, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return r, nil, ErrNotFound
	}
	if err != nil {
		return r, nil, fmt.Errorf("load refund %s: %w", refundID, err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT message_id, received_at FROM refund_conflicts WHERE refund_id = $1 ORDER BY received_at, message_id LIMIT 100`, refundID)
	if err != nil {
		return r, nil, fmt.Errorf("load refused requests of refund %s: %w", refundID, err)
	}
	defer rows.Close()
	for rows.Next() {
		rr := schemas.RejectedRequest{Reason: refundReusedReason(refundID)}
		if err := rows.Scan(&rr.MessageID, &rr.ReceivedAt); err != nil {
			return r, nil, fmt.Errorf("scan refused request of refund %s: %w", refundID, err)
		}
		rr.ReceivedAt = rr.ReceivedAt.UTC()
		r.RejectedRequests = append(r.RejectedRequests, rr)
	}
	return r, hash, rows.Err()
}

// orderRefunds lists an order's refunds, oldest first, for GET
// /v1/payments/{order_id}.
func (s *Store) orderRefunds(ctx context.Context, orderID string) ([]schemas.Refund, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+refundViewColumns+` FROM refunds WHERE order_id = $1 ORDER BY id`, orderID)
	if err != nil {
		return nil, fmt.Errorf("load refunds of %s: %w", orderID, err)
	}
	defer rows.Close()
	out := []schemas.Refund{}
	for rows.Next() {
		r, err := scanRefundView(rows)
		if err != nil {
			return nil, fmt.Errorf("scan refund of %s: %w", orderID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RefundStatuses returns the refund status (queued, calling,
// pending_at_psp, succeeded, failed) of each known refund id; unknown ids
// are absent. The duplicate-payment bookkeeping (repeat_payments) reads
// its refunds' progress through it.
func (s *Store) RefundStatuses(ctx context.Context, refundIDs []string) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT refund_id, status FROM refunds WHERE refund_id = ANY($1)`, pq.Array(refundIDs))
	if err != nil {
		return nil, fmt.Errorf("refund statuses: %w", err)
	}
	defer rows.Close()
	out := make(map[string]string, len(refundIDs))
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return nil, err
		}
		out[id] = st
	}
	return out, rows.Err()
}

func sortedUnique(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func keys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

const refundsByRefQuery = `SELECT refund_ref, order_id FROM refunds WHERE refund_ref = ANY($1)`

const lockRefundsByRefQuery = `SELECT ` + refundColumns + ` FROM refunds WHERE refund_ref = ANY($1) ORDER BY id FOR UPDATE`

const finishRefundByCallbackQuery = `
UPDATE refunds SET status = $2, call_status = $3, psp_reference = $4, error = $5,
    lease = NULL, lease_until = NULL, updated_at = now(), finished_at = now()
WHERE refund_id = $1 AND status = $6`

// ApplyRefundCallbacks is the callback path's transaction for PSP
// callbacks about refunds. It stores every callback as evidence in
// callbacks, once, with its outcome, as ApplyCallbacks does (a message
// id stored before is a redelivery: reported Duplicate, nothing else
// done; one stored meanwhile by another transaction makes it retry),
// locks the orders and then the refunds the verified ones name by refund
// reference, and lets the domain
// (Refund.NotifiedByPSP) rule on each in input order. A refund in flight
// that the PSP reports final becomes final exactly once — whatever lease a
// worker holds on it: that worker's outcome is then dropped by
// FinishRefunds, which only writes a refund still in the state it claimed
// — its result goes to the outbox through result (the refunds group's
// builder: one way to announce a result, with the stable event id
// refund_result/<refund id>), and its order moves on. A callback about a
// refund already final with the same status is a repeated webhook and
// changes nothing; an unknown reference, another channel's refund or a
// transition the domain refuses is stored rejected, not an error.
//
// The order's next queued refund is not started here: the callback path
// cannot call the PSP, and the poller (ClaimRefunds) starts the oldest
// queued refund of every order that has none in flight.
func (s *Store) ApplyRefundCallbacks(ctx context.Context, in []domain.RefundNotice, result RefundResulter) ([]domain.RefundNoticeApplied, error) {
	var applied []domain.RefundNoticeApplied
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		applied = make([]domain.RefundNoticeApplied, len(in))
		var refs []string
		for _, m := range in {
			if !m.Refusal.Refused() && m.RefundRef != "" {
				refs = append(refs, m.RefundRef)
			}
		}
		refs = sortedUnique(refs)
		var orderIDs []string
		if len(refs) > 0 {
			rows, err := tx.QueryContext(ctx, refundsByRefQuery, pq.Array(refs))
			if err != nil {
				return fmt.Errorf("find refunds of %d references: %w", len(refs), err)
			}
			for rows.Next() {
				var ref, orderID string
				if err := rows.Scan(&ref, &orderID); err != nil {
					rows.Close()
					return fmt.Errorf("scan refund reference: %w", err)
				}
				orderIDs = append(orderIDs, orderID)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		// Orders first, then refunds: the order every refund transaction
		// locks in, so that they cannot deadlock.
		orders, err := lockOrderRows(ctx, tx, sortedUnique(orderIDs), false)
		if err != nil {
			return err
		}
		refunds := map[string]domain.Refund{}
		if len(refs) > 0 {
			rows, err := tx.QueryContext(ctx, lockRefundsByRefQuery, pq.Array(refs))
			if err != nil {
				return fmt.Errorf("lock refunds of %d references: %w", len(refs), err)
			}
			for rows.Next() {
				r, _, err := scanRefund(rows)
				if err != nil {
					rows.Close()
					return err
				}
				refunds[r.Ref()] = r
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		fresh, err := unseenCallbacks(ctx, tx, in, func(m domain.RefundNotice) string { return m.Callback.MessageID })
		if err != nil {
			return err
		}
		var events []domain.Event
		refundedCodes := map[string]bool{}
		stored := make([]callbackRow, 0, len(in))
		for i, m := range in {
			id := m.Callback.MessageID
			r := domain.RefundNoticeApplied{MessageID: id, Rejected: m.Refusal.String()}
			if !fresh[id] {
				r.Duplicate = true
				applied[i] = r
				continue
			}
			fresh[id] = false // the same message twice in one batch
			var code string
			if !m.Refusal.Refused() {
				ref, ok := refunds[m.RefundRef]
				switch {
				case !ok:
					r.Rejected = fmt.Sprintf("unknown refund reference %q", m.RefundRef)
				case ref.Channel() != m.Callback.Channel:
					r.Rejected = fmt.Sprintf("refund %s belongs to channel %s, callback came to %s", ref.ID(), ref.Channel(), m.Callback.Channel)
				default:
					code = ref.TransactionCode()
					nr, outcome, changed, derr := ref.NotifiedByPSP(m.Status, m.PSPReference)
					if derr != nil {
						r.Rejected = derr.Error()
						r.Refund = &ref
						break
					}
					r.Outcome, r.Refund = outcome, &nr
					if !changed {
						break
					}
					st := nr.State()
					res, err := tx.ExecContext(ctx, finishRefundByCallbackQuery, st.ID, st.Status.String(), st.Call.String(),
						st.PSPReference, st.Error, ref.Status().String())
					if err != nil {
						return fmt.Errorf("finish refund %s: %w", st.ID, err)
					}
					if n, _ := res.RowsAffected(); n != 1 {
						return fmt.Errorf("finish refund %s: %d rows changed under lock", st.ID, n)
					}
					refunds[m.RefundRef] = nr
					ev, err := result(nr)
					if err != nil {
						return err
					}
					events = append(events, ev)
					if st.Status == domain.RefundSucceeded {
						refundedCodes[st.TransactionCode] = true
					}
				}
			}
			applied[i] = r
			stored = append(stored, refundNoticeRow(m, r, code))
		}
		if err := applyRefundsToOrders(ctx, tx, orders, keys(refundedCodes)); err != nil {
			return err
		}
		if err := insertEvents(ctx, tx, events); err != nil {
			return err
		}
		if len(stored) == 0 {
			return nil
		}
		inserted, err := storeCallbacks(ctx, tx, "refund callbacks", stored)
		if err != nil {
			return err
		}
		if len(inserted) != len(stored) {
			return fmt.Errorf("store %d refund callbacks: %d were: %w", len(stored), len(inserted), errStoredMeanwhile)
		}
		return nil
	})
	return applied, err
}

// refundNoticeRow is the callbacks row of a refund callback and what
// became of it, stored as the payment callbacks are (see ApplyCallbacks):
// psp_reference is the PSP's id of the refund, notified_status what the
// callback states, and transaction_code the refunded attempt's, where
// the reference was known.
func refundNoticeRow(m domain.RefundNotice, r domain.RefundNoticeApplied, code string) callbackRow {
	return callbackRow{id: m.Callback.MessageID, channel: m.Callback.Channel, kind: m.Callback.Kind.String(), at: m.Callback.ReceivedAt, raw: m.Raw,
		ref: m.PSPReference, notified: m.Status.String(), code: code, rejected: r.Rejected, outcome: r.Outcome}
}

// RefundsInFlight counts the refunds in each unfinished status, with the
// request time of the oldest: what operators watch for money stuck on
// its way back. Every unfinished status is in the answer, with 0 if none.
func (s *Store) RefundsInFlight(ctx context.Context) ([]domain.RefundsInFlight, error) {
	var rows []struct {
		Status string    `db:"status"`
		Count  int       `db:"count"`
		Oldest time.Time `db:"oldest"`
	}
	// The statuses are spelled as refunds_due's predicate spells them (the
	// domain's RefundUnfinished), so that this reads that partial index.
	err := s.db.SelectContext(ctx, &rows, `SELECT status, count(*) AS count, min(created_at) AS oldest FROM refunds
		WHERE status IN ('queued', 'calling', 'pending_at_psp') GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("refunds in flight: %w", err)
	}
	out := make([]domain.RefundsInFlight, len(domain.RefundUnfinished))
	for i, st := range domain.RefundUnfinished {
		out[i].Status = st
		for _, r := range rows {
			if r.Status == st.String() {
				out[i].Count, out[i].Oldest = r.Count, r.Oldest
			}
		}
	}
	return out, nil
}
