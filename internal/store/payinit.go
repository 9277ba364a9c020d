package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/domain/risk"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/schemas"
)

// PlanDecider decides, inside the planning transaction, what a new pay
// intent does to its order: existing is nil for an unknown order, seen is
// what risk control knows of the intent (its counts, locked). It returns
// the order (new or as it is) and the attempt to create with risk
// control's assessment — no attempt when the assessment holds the intent
// for review — or an error that rejects the intent (its text is stored
// and published; an assessment returned with it is stored too). Methods
// take the underlying func type, so that consumers can declare the
// interfaces they need without importing this package.
type PlanDecider = func(existing *domain.Order, in domain.PayIntent, seen domain.RiskSeen) (domain.Planned, error)

// plannedRequestsQuery finds the stored plans of a batch's messages. A
// rejected request has no attempt: its attempt columns are the defaults.
const plannedRequestsQuery = `
SELECT p.message_id, p.order_id, p.body, p.outcome, p.reason,
    coalesce(a.transaction_code, ''), coalesce(a.order_id, ''), coalesce(a.channel, ''), coalesce(a.amount, 0),
    coalesce(a.currency, ''), coalesce(a.status, ''), coalesce(a.psp_reference, ''), coalesce(a.review, ''),
    coalesce(a.segment, ''), coalesce(a.policy_version, 0), coalesce(a.explore, false), coalesce(a.hop, 0),
    coalesce(a.created_at, now()), coalesce(a.initiate_error, '') <> ''
FROM pay_requests p LEFT JOIN attempts a ON a.transaction_code = p.transaction_code
WHERE p.message_id = ANY($1)`

const prefixedAttemptColumns = `a.transaction_code, a.order_id, a.channel, a.amount, a.currency, a.status, a.psp_reference, a.review,
    a.segment, a.policy_version, a.explore, a.hop, a.created_at, a.initiate_error <> ''`

const insertPayRequestQuery = `
INSERT INTO pay_requests (message_id, order_id, body, outcome, reason, transaction_code)
VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''))`

// PlanAttempts is payinit's first transaction. For each intent, in order:
// a message seen before with the same body (PayIntent.Retries) returns its
// stored plan (Resumed); one seen before with another body is refused
// (domain.ErrIdempotencyKeyReused) and recorded under an id of its own,
// reusedID, which its plan's Intent.MessageID carries so that its
// rejection is announced under its own event id; otherwise the order is
// locked (or found missing), decide chooses, and the order, the attempt
// (state created) and the request are stored. The first body stored under
// a message id wins: in the batch's order, and between batches by which
// transaction stores it first (the loser's is run again, and finds it).
// Each intent carries the Digest of its Raw body (schemas.Digest); a
// stored body's is computed again from it. Nothing here talks to a PSP.
//
// Risk control (screen): before deciding, the counters of the new
// intents' probes are locked and read, in one round trip for the batch
// (riskTally); each decision sees them with the batch's requests let
// through before it, and is stored with its request, counted under the
// request's keys if let through, and queued for review if held — in the
// request's own statement. A redelivered request counts nothing again.
func (s *Store) PlanAttempts(ctx context.Context, intents []domain.PayIntent, screen domain.Screen, decide PlanDecider) ([]domain.AttemptPlan, error) {
	var plans []domain.AttemptPlan
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		plans = make([]domain.AttemptPlan, 0, len(intents))
		seen, err := plannedRequests(ctx, tx, intents)
		if err != nil {
			return err
		}
		if err := lockOrders(ctx, tx, intents); err != nil {
			return err
		}
		var tally *risk.Tally
		if screen.Probes != nil {
			var probes []risk.Probe
			for _, in := range intents {
				if _, ok := seen[in.MessageID]; !ok {
					probes = append(probes, screen.Probes(in)...)
				}
			}
			if tally, err = riskTally(ctx, tx, probes); err != nil {
				return err
			}
		}
		released, err := releases(ctx, tx, intents)
		if err != nil {
			return err
		}
		for _, in := range intents {
			if first, ok := seen[in.MessageID]; ok {
				if why := in.Retries(first.digest, first.orderID); why != nil {
					p, err := refuseReused(ctx, tx, in, why, seen)
					if err != nil {
						return err
					}
					plans = append(plans, p)
					continue
				}
				p := first.plan
				p.Intent = in
				if p.Rejected == "" {
					o, _, err := lockOrder(ctx, tx, in.OrderID)
					if err != nil {
						return err
					}
					p.Order = o
				}
				plans = append(plans, p)
				continue
			}
			p, err := planOne(ctx, tx, in, decide, domain.RiskSeen{Tally: tally, Approved: released[in.MessageID]}, screen.At)
			if err != nil {
				return err
			}
			// The same message id twice in one batch: a retry, or a reuse.
			seen[in.MessageID] = plannedRequest{plan: p, digest: in.Digest, orderID: in.OrderID}
			plans = append(plans, p)
		}
		return nil
	})
	return plans, err
}

// plannedRequest is a pay request stored before (or earlier in the
// batch): its plan, and what tells a retry of it from another request
// under its message id.
type plannedRequest struct {
	plan    domain.AttemptPlan
	digest  []byte // schemas.Digest of its body
	orderID string
}

// reusedID is the id a request refused for reusing a message id is
// recorded under in pay_requests: "<message id>/reused/<16 hex digits of
// its digest>", one per message id and body, so that its redelivery
// finds it and announces nothing twice.
func reusedID(in domain.PayIntent) string {
	return in.MessageID + "/reused/" + hex.EncodeToString(in.Digest[:min(8, len(in.Digest))])
}

const insertReusedRequestQuery = `
INSERT INTO pay_requests (message_id, order_id, body, outcome, reason)
VALUES ($1, $2, $3, 'rejected', $4)
ON CONFLICT (message_id) DO NOTHING`

// refuseReused records in as refused for why (its message id names
// another request), once, and returns its rejected plan under reusedID.
func refuseReused(ctx context.Context, tx *sqlx.Tx, in domain.PayIntent, why error, seen map[string]plannedRequest) (domain.AttemptPlan, error) {
	id := reusedID(in)
	if r, ok := seen[id]; ok { // recorded before: a redelivery
		p := r.plan
		p.Intent, p.Intent.MessageID = in, id
		return p, nil
	}
	p := domain.AttemptPlan{Intent: in, Rejected: why.Error()}
	p.Intent.MessageID = id
	if _, err := tx.ExecContext(ctx, insertReusedRequestQuery, id, in.OrderID, in.Raw, p.Rejected); err != nil {
		return p, fmt.Errorf("record pay request %s refused for its reused id: %w", id, err)
	}
	seen[id] = plannedRequest{plan: domain.AttemptPlan{Resumed: true, Rejected: p.Rejected}, digest: in.Digest, orderID: in.OrderID}
	return p, nil
}

// lockOrdersQuery locks the batch's existing orders in one round trip and
// in a fixed order, so that batches running concurrently cannot deadlock.
const lockOrdersQuery = `SELECT order_id FROM orders WHERE order_id = ANY($1) ORDER BY order_id FOR UPDATE`

func lockOrders(ctx context.Context, tx *sqlx.Tx, intents []domain.PayIntent) error {
	ids := make([]string, len(intents))
	for i, in := range intents {
		ids[i] = in.OrderID
	}
	var locked []string
	if err := tx.SelectContext(ctx, &locked, lockOrdersQuery, pq.Array(ids)); err != nil {
		return fmt.Errorf("lock %d orders: %w", len(ids), err)
	}
	return nil
}

// plannedRequests loads the batch's requests stored before: under their
// message ids, and under the ids they would have been refused under.
func plannedRequests(ctx context.Context, tx *sqlx.Tx, intents []domain.PayIntent) (map[string]plannedRequest, error) {
	ids := make([]string, 0, 2*len(intents))
	for _, in := range intents {
		ids = append(ids, in.MessageID, reusedID(in))
	}
	rows, err := tx.QueryContext(ctx, plannedRequestsQuery, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("load planned requests: %w", err)
	}
	defer rows.Close()
	out := make(map[string]plannedRequest)
	for rows.Next() {
		var id, orderID, outcome, reason string
		var body []byte
		var r attemptRow
		if err := rows.Scan(append([]any{&id, &orderID, &body, &outcome, &reason}, r.targets()...)...); err != nil {
			return nil, fmt.Errorf("scan planned request: %w", err)
		}
		// The digest of what was stored, computed again: the canonical
		// form does not change, and a redelivery is rare.
		digest, err := schemas.Digest(body)
		if err != nil {
			return nil, fmt.Errorf("pay request %s: stored body: %w", id, err)
		}
		p := domain.AttemptPlan{Resumed: true, Rejected: reason, Held: outcome == "review"}
		if outcome == "accepted" {
			a, err := r.toDomain()
			if err != nil {
				return nil, err
			}
			p.Attempt, p.Rejected = a, ""
		}
		out[id] = plannedRequest{plan: p, digest: digest, orderID: orderID}
	}
	return out, rows.Err()
}

func planOne(ctx context.Context, tx *sqlx.Tx, in domain.PayIntent, decide PlanDecider, rs domain.RiskSeen, at time.Time) (domain.AttemptPlan, error) {
	p := domain.AttemptPlan{Intent: in}
	existing, found, pending, err := lockPlanOrder(ctx, tx, in.OrderID)
	if err != nil {
		return p, err
	}
	var ex *domain.Order
	if found {
		ex = &existing
	}
	rs.ReviewPending = pending
	d, derr := decide(ex, in, rs)
	p.Risk = d.Risk
	outcome, reason := "accepted", ""
	if derr != nil {
		outcome, reason = "rejected", derr.Error()
		p.Rejected = reason
		if found {
			p.Order = existing
		}
	} else {
		p.Order = d.Order
		if d.Held() {
			outcome, p.Held = "review", true
		} else {
			p.Attempt = d.Attempt
		}
		if !found {
			if err := insertOrder(ctx, tx, d.Order, in); err != nil {
				return p, err
			}
		} else {
			if _, err := tx.ExecContext(ctx, updateReturnURLsQuery, d.Order.ID(), returnURLs(in)); err != nil {
				return p, fmt.Errorf("update return urls of %s: %w", d.Order.ID(), err)
			}
		}
		if !p.Held {
			if err := insertAttempt(ctx, tx, d.Attempt); err != nil {
				return p, err
			}
		}
	}
	// The request, and its risk decision with what follows from it, in
	// one statement.
	var w batchWrite
	w.add(insertPayRequestQuery, []any{in.MessageID, in.OrderID, in.Raw, outcome, reason, p.Attempt.Code()})
	if d.Risk != nil {
		if err := addRiskWrites(&w, in, d.Risk, at); err != nil {
			return p, fmt.Errorf("risk decision of %s: %w", in.MessageID, err)
		}
		if d.Risk.Counted && rs.Tally != nil {
			rs.Tally.Count(d.Risk.Keys, in.Amount.Currency().Code(), in.Amount.Minor())
		}
	}
	if _, err := w.exec(ctx, tx); err != nil {
		var pe *pq.Error
		if errors.As(err, &pe) && pe.Code == "23505" {
			// Another transaction stored a request under this id since
			// plannedRequests looked (another partition's batch, the
			// same id for another order): run again, and decide against it.
			return p, fmt.Errorf("record pay request %s: %w", in.MessageID, errStoredMeanwhile)
		}
		return p, fmt.Errorf("record pay request %s: %w", in.MessageID, err)
	}
	return p, nil
}

const finishAttemptQuery = `
UPDATE attempts SET
    status = CASE WHEN status = 'created' THEN $2 ELSE status END,
    psp_reference = CASE WHEN psp_reference = '' THEN $3 ELSE psp_reference END,
    pay_url = $4, token = $5, form = $6, expires_at = $7,
    session_at = CASE WHEN $4 <> '' THEN coalesce(session_at, now()) END,
    initiate_error = $8,
    updated_at = now()
WHERE transaction_code = $1`

// FinishAttempts is payinit's second transaction: it stores what the PSPs
// answered (sessions, or failure to start), the events announcing them,
// and the PSP exchanges as evidence. It is idempotent: events are keyed by
// their stable ids, and an attempt a callback already moved on keeps its
// status.
func (s *Store) FinishAttempts(ctx context.Context, starts []domain.AttemptStart, events []domain.Event, exchanges []psp.Exchange) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		for _, st := range starts {
			var form any
			if len(st.Form) > 0 {
				form = jsonText(st.Form)
			}
			a := st.Attempt
			if _, err := tx.ExecContext(ctx, finishAttemptQuery, a.Code(), a.Status().String(), a.PSPReference(),
				st.PayURL, st.Token, form, nullTime(st.ExpiresAt), st.InitiateError); err != nil {
				return fmt.Errorf("finish attempt %s: %w", a.Code(), err)
			}
		}
		if err := insertEvents(ctx, tx, events); err != nil {
			return err
		}
		return insertExchanges(ctx, tx, exchanges)
	})
}
