package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The operator console's reads (internal/console): each is one query, or
// a few, served by an index; none runs on the payment path.

// OrderHit is an order found by a console search, and what matched.
type OrderHit struct {
	OrderID   string
	Status    string
	Amount    int64
	Currency  string
	CreatedAt time.Time
	Matched   string
}

// findOrdersQuery looks q up as an order id, a transaction code, a PSP
// reference, a buyer id or a buyer email (migration 00011's indexes; the
// <> ” conditions let the partial ones serve).
const findOrdersQuery = `
SELECT o.order_id, o.status, o.amount, o.currency, o.created_at, string_agg(DISTINCT m.what, ', ')
FROM (
    SELECT order_id, 'order id' AS what FROM orders WHERE order_id = $1
  UNION ALL
    SELECT order_id, 'transaction code' FROM attempts WHERE transaction_code = $1
  UNION ALL
    SELECT order_id, 'PSP reference' FROM attempts WHERE psp_reference = $1 AND psp_reference <> ''
  UNION ALL
    SELECT order_id, 'buyer id' FROM orders WHERE buyer ->> 'id' = $1 AND buyer ->> 'id' <> ''
  UNION ALL
    SELECT order_id, 'buyer email' FROM orders WHERE lower(buyer ->> 'email') = lower($1) AND buyer ->> 'email' <> ''
) m JOIN orders o USING (order_id)
GROUP BY o.order_id, o.status, o.amount, o.currency, o.created_at
ORDER BY o.created_at DESC LIMIT $2`

// FindOrders returns the orders q names, newest first, at most limit.
func (s *Store) FindOrders(ctx context.Context, q string, limit int) ([]OrderHit, error) {
	rows, err := s.db.QueryContext(ctx, findOrdersQuery, q, limit)
	if err != nil {
		return nil, fmt.Errorf("find orders %q: %w", q, err)
	}
	defer rows.Close()
	var out []OrderHit
	for rows.Next() {
		var h OrderHit
		if err := rows.Scan(&h.OrderID, &h.Status, &h.Amount, &h.Currency, &h.CreatedAt, &h.Matched); err != nil {
			return nil, fmt.Errorf("find orders %q: %w", q, err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// OrderView is an order as an operator sees it, with everything stored
// about it.
type OrderView struct {
	OrderID     string
	Status      string
	Amount      int64
	Currency    string
	Country     string
	Method      string
	Description string
	Buyer       string // JSON
	ReturnURLs  string // JSON
	PaidAttempt string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	PaidAt      *time.Time
	Attempts    []AttemptView
	Callbacks   []CallbackView
	Exchanges   []ExchangeView
	Refunds     []RefundView
}

// AttemptView is one attempt of an order.
type AttemptView struct {
	TransactionCode string
	Channel         string
	Amount          int64
	Currency        string
	Status          string
	PSPReference    string
	PayURL          string
	Review          string
	CreatedAt       time.Time
	PaidAt          *time.Time
}

// CallbackView is one stored callback or status probe, with its raw
// message (the ingress's record of the PSP's request, unmasked: callers
// mask before showing it).
type CallbackView struct {
	MessageID       string
	Channel         string
	Kind            string
	ReceivedAt      time.Time
	TransactionCode string
	NotifiedStatus  string
	ConfirmedStatus string
	Outcome         string
	Rejected        string
	Raw             []byte
}

// ExchangeView is one HTTP exchange with a PSP (bodies masked when
// stored).
type ExchangeView struct {
	Operation       string
	TransactionCode string
	Method          string
	URL             string
	RequestBody     string
	StatusCode      *int
	ResponseBody    string
	Error           string
	StartedAt       time.Time
	DurationMS      float64
}

// RefundView is one refund as the console lists it.
type RefundView struct {
	RefundID        string
	OrderID         string
	TransactionCode string
	Channel         string
	Amount          int64
	Currency        string
	Reason          string
	Status          string
	CallStatus      string
	Error           string
	Polls           int
	CreatedAt       time.Time
	FinishedAt      *time.Time
}

const orderViewQuery = `
SELECT order_id, status, amount, currency, country, method, description, buyer::text, return_urls::text,
    coalesce(paid_attempt, ''), created_at, updated_at, paid_at
FROM orders WHERE order_id = $1`

const orderAttemptsViewQuery = `
SELECT transaction_code, channel, amount, currency, status, psp_reference, coalesce(pay_url, ''), review, created_at, paid_at
FROM attempts WHERE order_id = $1 ORDER BY created_at, transaction_code`

const orderCallbacksViewQuery = `
SELECT c.message_id, c.channel, c.kind, c.received_at, coalesce(c.transaction_code, ''), coalesce(c.notified_status, ''),
    coalesce(c.confirmed_status, ''), coalesce(c.outcome, ''), c.rejected, c.raw
FROM callbacks c JOIN attempts a ON a.transaction_code = c.transaction_code
WHERE a.order_id = $1 ORDER BY c.received_at, c.id`

const orderExchangesViewQuery = `
SELECT operation, coalesce(transaction_code, ''), method, url, request_body, status_code, response_body, error, started_at, duration_ms
FROM psp_exchanges WHERE transaction_code IN (SELECT transaction_code FROM attempts WHERE order_id = $1)
ORDER BY started_at, id`

const consoleRefundColumns = `refund_id, order_id, transaction_code, channel, amount, currency, reason, status, call_status, error,
    polls, created_at, finished_at`

const orderRefundsViewQuery = `SELECT ` + consoleRefundColumns + ` FROM refunds WHERE order_id = $1 ORDER BY id`

// OrderView returns the order with its attempts, callbacks, PSP
// exchanges and refunds, or ErrNotFound.
func (s *Store) OrderView(ctx context.Context, orderID string) (OrderView, error) {
	var o OrderView
	err := s.db.QueryRowContext(ctx, orderViewQuery, orderID).Scan(&o.OrderID, &o.Status, &o.Amount, &o.Currency, &o.Country,
		&o.Method, &o.Description, &o.Buyer, &o.ReturnURLs, &o.PaidAttempt, &o.CreatedAt, &o.UpdatedAt, &o.PaidAt)
	if errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("order %s: %w", orderID, ErrNotFound)
	}
	if err != nil {
		return o, fmt.Errorf("order %s: %w", orderID, err)
	}
	if err := s.scanAll(ctx, orderAttemptsViewQuery, orderID, func(sc scanner) error {
		var a AttemptView
		err := sc.Scan(&a.TransactionCode, &a.Channel, &a.Amount, &a.Currency, &a.Status, &a.PSPReference, &a.PayURL, &a.Review, &a.CreatedAt, &a.PaidAt)
		o.Attempts = append(o.Attempts, a)
		return err
	}); err != nil {
		return o, fmt.Errorf("attempts of order %s: %w", orderID, err)
	}
	if err := s.scanAll(ctx, orderCallbacksViewQuery, orderID, func(sc scanner) error {
		var c CallbackView
		err := sc.Scan(&c.MessageID, &c.Channel, &c.Kind, &c.ReceivedAt, &c.TransactionCode, &c.NotifiedStatus, &c.ConfirmedStatus,
			&c.Outcome, &c.Rejected, &c.Raw)
		o.Callbacks = append(o.Callbacks, c)
		return err
	}); err != nil {
		return o, fmt.Errorf("callbacks of order %s: %w", orderID, err)
	}
	if err := s.scanAll(ctx, orderExchangesViewQuery, orderID, func(sc scanner) error {
		var x ExchangeView
		err := sc.Scan(&x.Operation, &x.TransactionCode, &x.Method, &x.URL, &x.RequestBody, &x.StatusCode, &x.ResponseBody, &x.Error,
			&x.StartedAt, &x.DurationMS)
		o.Exchanges = append(o.Exchanges, x)
		return err
	}); err != nil {
		return o, fmt.Errorf("PSP exchanges of order %s: %w", orderID, err)
	}
	if err := s.scanAll(ctx, orderRefundsViewQuery, orderID, func(sc scanner) error {
		r, err := scanConsoleRefund(sc)
		o.Refunds = append(o.Refunds, r)
		return err
	}); err != nil {
		return o, fmt.Errorf("refunds of order %s: %w", orderID, err)
	}
	return o, nil
}

type scanner interface{ Scan(...any) error }

func scanConsoleRefund(sc scanner) (RefundView, error) {
	var r RefundView
	err := sc.Scan(&r.RefundID, &r.OrderID, &r.TransactionCode, &r.Channel, &r.Amount, &r.Currency, &r.Reason, &r.Status,
		&r.CallStatus, &r.Error, &r.Polls, &r.CreatedAt, &r.FinishedAt)
	return r, err
}

// scanAll runs q with arg and calls row for each row.
func (s *Store) scanAll(ctx context.Context, q string, arg any, row func(scanner) error) error {
	rows, err := s.db.QueryContext(ctx, q, arg)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Refunds not final (in flight), oldest first, and refunds that failed in
// the last 30 days, newest first.
const (
	refundsInFlightQuery = `SELECT ` + consoleRefundColumns + ` FROM refunds
WHERE status IN ('queued', 'calling', 'pending_at_psp') ORDER BY created_at LIMIT $1`
	refundsFailedQuery = `SELECT ` + consoleRefundColumns + ` FROM refunds
WHERE status = 'failed' AND finished_at > now() - interval '30 days' ORDER BY finished_at DESC LIMIT $1`
)

// RefundsInFlightView returns refunds not final yet, oldest first.
func (s *Store) RefundsInFlightView(ctx context.Context, limit int) ([]RefundView, error) {
	return s.refundList(ctx, refundsInFlightQuery, limit)
}

// RefundsFailedView returns refunds that failed in the last 30 days,
// newest first.
func (s *Store) RefundsFailedView(ctx context.Context, limit int) ([]RefundView, error) {
	return s.refundList(ctx, refundsFailedQuery, limit)
}

func (s *Store) refundList(ctx context.Context, q string, limit int) ([]RefundView, error) {
	var out []RefundView
	err := s.scanAll(ctx, q, limit, func(sc scanner) error {
		r, err := scanConsoleRefund(sc)
		out = append(out, r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("refunds: %w", err)
	}
	return out, nil
}

// ChannelOutcomes are a channel's attempts that ended in a window.
type ChannelOutcomes struct {
	Channel string
	Paid    int64
	Failed  int64
	Expired int64
}

const outcomesQuery = `
SELECT channel, count(*) FILTER (WHERE status = 'paid'), count(*) FILTER (WHERE status = 'failed'),
    count(*) FILTER (WHERE status = 'expired')
FROM attempts WHERE status IN ('paid', 'failed', 'expired') AND updated_at > $1
GROUP BY channel ORDER BY channel`

// AttemptOutcomes counts, per channel, the attempts that ended (paid,
// failed, expired) since since (the attempts_finished index).
func (s *Store) AttemptOutcomes(ctx context.Context, since time.Time) ([]ChannelOutcomes, error) {
	var out []ChannelOutcomes
	err := s.scanAll(ctx, outcomesQuery, since, func(sc scanner) error {
		var c ChannelOutcomes
		err := sc.Scan(&c.Channel, &c.Paid, &c.Failed, &c.Expired)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("attempt outcomes: %w", err)
	}
	return out, nil
}

const reviewsQuery = `
SELECT a.transaction_code, a.order_id, a.channel, a.amount, a.currency, a.status, a.review, a.updated_at
FROM attempts a WHERE a.review <> '' ORDER BY a.updated_at DESC LIMIT $1`

// FlaggedAttempt is an attempt flagged for review (a confirmed success
// whose amount or currency differed from the attempt's).
type FlaggedAttempt struct {
	TransactionCode string
	OrderID         string
	Channel         string
	Amount          int64
	Currency        string
	Status          string
	Review          string
	At              time.Time
}

// FlaggedAttempts returns the attempts flagged for review, newest first.
func (s *Store) FlaggedAttempts(ctx context.Context, limit int) ([]FlaggedAttempt, error) {
	var out []FlaggedAttempt
	err := s.scanAll(ctx, reviewsQuery, limit, func(sc scanner) error {
		var f FlaggedAttempt
		err := sc.Scan(&f.TransactionCode, &f.OrderID, &f.Channel, &f.Amount, &f.Currency, &f.Status, &f.Review, &f.At)
		out = append(out, f)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("flagged attempts: %w", err)
	}
	return out, nil
}

// ConsoleSession is a signed-in console user.
type ConsoleSession struct {
	Username  string
	Role      string
	CSRFToken string
	ExpiresAt time.Time
}

const (
	createSessionQuery = `INSERT INTO console_sessions (token_hash, username, role, csrf_token, expires_at) VALUES ($1, $2, $3, $4, $5)`
	sessionQuery       = `UPDATE console_sessions SET last_seen_at = now() WHERE token_hash = $1 AND expires_at > now()
RETURNING username, role, csrf_token, expires_at`
	deleteSessionQuery = `DELETE FROM console_sessions WHERE token_hash = $1`
	pruneSessionsQuery = `DELETE FROM console_sessions WHERE expires_at < now()`
)

// CreateSession stores a session under the hash of its token.
func (s *Store) CreateSession(ctx context.Context, tokenHash []byte, sess ConsoleSession) error {
	if _, err := s.db.ExecContext(ctx, createSessionQuery, tokenHash, sess.Username, sess.Role, sess.CSRFToken, sess.ExpiresAt); err != nil {
		return fmt.Errorf("create console session for %s: %w", sess.Username, err)
	}
	if _, err := s.db.ExecContext(ctx, pruneSessionsQuery); err != nil {
		return fmt.Errorf("prune console sessions: %w", err)
	}
	return nil
}

// Session returns the live session of a token hash, or ErrNotFound.
func (s *Store) Session(ctx context.Context, tokenHash []byte) (ConsoleSession, error) {
	var sess ConsoleSession
	err := s.db.QueryRowContext(ctx, sessionQuery, tokenHash).Scan(&sess.Username, &sess.Role, &sess.CSRFToken, &sess.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return sess, ErrNotFound
	}
	if err != nil {
		return sess, fmt.Errorf("console session: %w", err)
	}
	return sess, nil
}

// DeleteSession ends a session.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte) error {
	if _, err := s.db.ExecContext(ctx, deleteSessionQuery, tokenHash); err != nil {
		return fmt.Errorf("delete console session: %w", err)
	}
	return nil
}
