package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paygate/paygate/domain"
)

// orderRow and attemptRow are the tables' shapes; they turn into domain
// values through toDomain.
type orderRow struct {
	OrderID     string         `db:"order_id"`
	Amount      int64          `db:"amount"`
	Currency    string         `db:"currency"`
	Status      string         `db:"status"`
	PaidAttempt sql.NullString `db:"paid_attempt"`
}

func (r orderRow) toDomain() (domain.Order, error) {
	m, err := domain.NewMoney(r.Amount, r.Currency)
	if err != nil {
		return domain.Order{}, fmt.Errorf("order %s: %w", r.OrderID, err)
	}
	st, err := domain.ParseOrderStatus(r.Status)
	if err != nil {
		return domain.Order{}, fmt.Errorf("order %s: %w", r.OrderID, err)
	}
	return domain.RestoreOrder(r.OrderID, m, st, r.PaidAttempt.String), nil
}

type attemptRow struct {
	TransactionCode string    `db:"transaction_code"`
	OrderID         string    `db:"order_id"`
	Channel         string    `db:"channel"`
	Amount          int64     `db:"amount"`
	Currency        string    `db:"currency"`
	Status          string    `db:"status"`
	PSPReference    string    `db:"psp_reference"`
	Review          string    `db:"review"`
	Segment         string    `db:"segment"`
	PolicyVersion   int64     `db:"policy_version"`
	Explore         bool      `db:"explore"`
	Hop             int       `db:"hop"`
	CreatedAt       time.Time `db:"created_at"`
	InitiateFailed  bool      `db:"initiate_failed"`
}

// targets are the row's fields in attemptColumns' order, for Scan.
func (r *attemptRow) targets() []any {
	return []any{&r.TransactionCode, &r.OrderID, &r.Channel, &r.Amount, &r.Currency, &r.Status, &r.PSPReference, &r.Review,
		&r.Segment, &r.PolicyVersion, &r.Explore, &r.Hop, &r.CreatedAt, &r.InitiateFailed}
}

func (r attemptRow) toDomain() (domain.Attempt, error) {
	m, err := domain.NewMoney(r.Amount, r.Currency)
	if err != nil {
		return domain.Attempt{}, fmt.Errorf("attempt %s: %w", r.TransactionCode, err)
	}
	st, err := domain.ParseAttemptStatus(r.Status)
	if err != nil {
		return domain.Attempt{}, fmt.Errorf("attempt %s: %w", r.TransactionCode, err)
	}
	a := domain.RestoreAttempt(r.TransactionCode, r.OrderID, r.Channel, m, st, r.PSPReference, r.Review)
	return a.WithRoute(domain.Route{Segment: r.Segment, PolicyVersion: r.PolicyVersion, DecidedAt: r.CreatedAt, Explore: r.Explore, Hop: r.Hop,
		InitiateFailed: r.InitiateFailed}), nil
}

const attemptColumns = `transaction_code, order_id, channel, amount, currency, status, psp_reference, review,
    segment, policy_version, explore, hop, created_at, initiate_error <> '' AS initiate_failed`

// returnURLs is the return_urls column of a pay intent.
func returnURLs(in domain.PayIntent) string {
	return jsonText(map[string]string{"success": in.Returns.Success, "failure": in.Returns.Failure, "pending": in.Returns.Pending})
}

// jsonText is v as JSON for a jsonb parameter. A string, not []byte: the
// connections send []byte parameters in binary format, which jsonb reads
// only with a version byte in front.
func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

const insertAttemptQuery = `
INSERT INTO attempts (transaction_code, order_id, channel, amount, currency, status, segment, policy_version, explore, hop, routing)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

func insertAttempt(ctx context.Context, tx *sqlx.Tx, a domain.Attempt) error {
	r := a.Route()
	var evidence any
	if r.Evidence != "" {
		evidence = r.Evidence
	}
	_, err := tx.ExecContext(ctx, insertAttemptQuery, a.Code(), a.OrderID(), a.Channel(),
		a.Amount().Minor(), a.Amount().Currency().Code(), a.Status().String(), r.Segment, r.PolicyVersion, r.Explore, r.Hop, evidence)
	if err != nil {
		return fmt.Errorf("insert attempt %s: %w", a.Code(), err)
	}
	return nil
}

// saveOrders writes the status of changed orders in one statement.
const saveOrdersQuery = `
UPDATE orders o SET status = u.status, paid_attempt = NULLIF(u.paid_attempt, ''), updated_at = now(),
    paid_at = CASE WHEN u.status = 'paid' AND o.paid_at IS NULL THEN now() ELSE o.paid_at END
FROM unnest($1::text[], $2::text[], $3::text[]) AS u(order_id, status, paid_attempt)
WHERE o.order_id = u.order_id`

func saveOrders(ctx context.Context, tx *sqlx.Tx, orders []domain.Order) error {
	if len(orders) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, saveOrdersQuery, saveOrdersArgs(orders)...); err != nil {
		return fmt.Errorf("save %d orders: %w", len(orders), err)
	}
	return nil
}

func saveOrdersArgs(orders []domain.Order) []any {
	ids, st, pa := make([]string, len(orders)), make([]string, len(orders)), make([]string, len(orders))
	for i, o := range orders {
		ids[i], st[i], pa[i] = o.ID(), o.Status().String(), o.PaidAttempt()
	}
	return []any{pq.Array(ids), pq.Array(st), pq.Array(pa)}
}

// saveAttemptsQuery writes the state of changed attempts in one statement
// (part of the callbacks batch's single write).
const saveAttemptsQuery = `
UPDATE attempts a SET status = u.status, psp_reference = u.psp_reference, review = u.review, updated_at = now(),
    paid_at = CASE WHEN u.status = 'paid' AND a.paid_at IS NULL THEN now() ELSE a.paid_at END
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(transaction_code, status, psp_reference, review)
WHERE a.transaction_code = u.transaction_code`

func saveAttemptsArgs(attempts []domain.Attempt) []any {
	n := len(attempts)
	codes, st, ref, rev := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, a := range attempts {
		codes[i], st[i], ref[i], rev[i] = a.Code(), a.Status().String(), a.PSPReference(), a.Review()
	}
	return []any{pq.Array(codes), pq.Array(st), pq.Array(ref), pq.Array(rev)}
}

// Attempts loads attempts by transaction code, outside any transaction
// (for work done before one, like choosing whom to query). Unknown codes
// are absent from the map.
func (s *Store) Attempts(ctx context.Context, codes []string) (map[string]domain.Attempt, error) {
	var rows []attemptRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+attemptColumns+` FROM attempts WHERE transaction_code = ANY($1)`, pq.Array(codes)); err != nil {
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

const openAttemptsQuery = `SELECT ` + attemptColumns + ` FROM attempts
WHERE order_id = ANY($1) AND status IN ('created', 'pending') ORDER BY created_at`

// OpenAttempts loads the attempts of the given orders that are not final
// (created or pending at the PSP), by order id.
func (s *Store) OpenAttempts(ctx context.Context, orderIDs []string) (map[string][]domain.Attempt, error) {
	var rows []attemptRow
	if err := s.db.SelectContext(ctx, &rows, openAttemptsQuery, pq.Array(orderIDs)); err != nil {
		return nil, fmt.Errorf("load open attempts of %d orders: %w", len(orderIDs), err)
	}
	out := map[string][]domain.Attempt{}
	for _, r := range rows {
		a, err := r.toDomain()
		if err != nil {
			return nil, err
		}
		out[a.OrderID()] = append(out[a.OrderID()], a)
	}
	return out, nil
}
