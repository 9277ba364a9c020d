package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/paygate/paygate/schemas"
)

const paymentQuery = `SELECT order_id, status, amount, currency, created_at, paid_at,
    coalesce((SELECT r.status FROM risk_reviews r WHERE r.order_id = orders.order_id ORDER BY r.id DESC LIMIT 1), '')
FROM orders WHERE order_id = $1`

const paymentAttemptsQuery = `
SELECT transaction_code, channel, status, pay_url, token, psp_reference, review, created_at, paid_at
FROM attempts WHERE order_id = $1 ORDER BY created_at, transaction_code`

const lastRejectionQuery = `
SELECT reason FROM pay_requests WHERE order_id = $1 AND outcome = 'rejected' ORDER BY received_at DESC LIMIT 1`

// RejectedError says that an order does not exist because its pay
// requests were refused, and why.
type RejectedError struct{ Reason string }

func (e *RejectedError) Error() string { return "pay request rejected: " + e.Reason }

// Payment is the order as GET /v1/payments/{order_id} shows it. It
// returns ErrNotFound for an unknown order, or a *RejectedError when the
// only requests for it were refused.
func (s *Store) Payment(ctx context.Context, orderID string) (schemas.Payment, error) {
	var p schemas.Payment
	var paid sql.NullTime
	err := s.db.QueryRowContext(ctx, paymentQuery, orderID).Scan(&p.OrderID, &p.Status, &p.Amount, &p.Currency, &p.CreatedAt, &paid, &p.RiskReview)
	if errors.Is(err, sql.ErrNoRows) {
		var reason string
		if err := s.db.GetContext(ctx, &reason, lastRejectionQuery, orderID); err == nil {
			return p, &RejectedError{Reason: reason}
		}
		return p, ErrNotFound
	}
	if err != nil {
		return p, fmt.Errorf("load payment %s: %w", orderID, err)
	}
	p.PaidAt = timePtr(paid)
	rows, err := s.db.QueryContext(ctx, paymentAttemptsQuery, orderID)
	if err != nil {
		return p, fmt.Errorf("load attempts of %s: %w", orderID, err)
	}
	defer rows.Close()
	p.Attempts = []schemas.Attempt{}
	for rows.Next() {
		var a schemas.Attempt
		var paidAt sql.NullTime
		if err := rows.Scan(&a.TransactionCode, &a.Channel, &a.Status, &a.PayURL, &a.Token, &a.PSPReference, &a.Review, &a.CreatedAt, &paidAt); err != nil {
			return p, fmt.Errorf("scan attempt of %s: %w", orderID, err)
		}
		a.PaidAt = timePtr(paidAt)
		p.Attempts = append(p.Attempts, a)
	}
	if err := rows.Err(); err != nil {
		return p, err
	}
	if p.Refunds, err = s.orderRefunds(ctx, orderID); err != nil {
		return p, err
	}
	p.RejectedRequests, err = s.rejectedRequests(ctx, orderID)
	return p, err
}

const rejectedRequestsQuery = `
SELECT message_id, reason, received_at FROM (
    SELECT message_id, reason, received_at FROM pay_requests
    WHERE order_id = $1 AND outcome = 'rejected' ORDER BY received_at DESC, message_id DESC LIMIT 100
) r ORDER BY received_at, message_id`

// rejectedRequests lists the order's refused pay requests, oldest first
// (the newest 100), nil if none.
func (s *Store) rejectedRequests(ctx context.Context, orderID string) ([]schemas.RejectedRequest, error) {
	rows, err := s.db.QueryContext(ctx, rejectedRequestsQuery, orderID)
	if err != nil {
		return nil, fmt.Errorf("load refused requests of %s: %w", orderID, err)
	}
	defer rows.Close()
	var out []schemas.RejectedRequest
	for rows.Next() {
		var r schemas.RejectedRequest
		if err := rows.Scan(&r.MessageID, &r.Reason, &r.ReceivedAt); err != nil {
			return nil, fmt.Errorf("scan refused request of %s: %w", orderID, err)
		}
		r.ReceivedAt = r.ReceivedAt.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

// ReturnTarget is what the sync return needs to send a buyer's browser
// back to the mall.
type ReturnTarget struct {
	OrderID       string
	OrderStatus   string
	AttemptStatus string
	Returns       schemas.ReturnURLs
}

const returnTargetQuery = `
SELECT o.order_id, o.status, a.status, o.return_urls
FROM attempts a JOIN orders o ON o.order_id = a.order_id
WHERE a.transaction_code = $1`

// ReturnTarget loads the order and return pages of an attempt; ErrNotFound
// if the transaction code is unknown.
func (s *Store) ReturnTarget(ctx context.Context, transactionCode string) (ReturnTarget, error) {
	var t ReturnTarget
	var urls []byte
	err := s.db.QueryRowContext(ctx, returnTargetQuery, transactionCode).Scan(&t.OrderID, &t.OrderStatus, &t.AttemptStatus, &urls)
	if errors.Is(err, sql.ErrNoRows) {
		return t, ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("return target of %s: %w", transactionCode, err)
	}
	if err := json.Unmarshal(urls, &t.Returns); err != nil {
		return t, fmt.Errorf("return urls of %s: %w", t.OrderID, err)
	}
	return t, nil
}
