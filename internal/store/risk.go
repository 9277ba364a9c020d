package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/domain/risk"
	"github.com/paygate/paygate/schemas"
)

// farFuture stands for a probe counted up to now (risk.Probe.Until zero).
var farFuture = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// riskTallyQuery locks the keys of the probes and reads what their
// counters hold, in one round trip (paygate_risk_tally, migration 00008):
// the batch's only round trip for risk control.
const riskTallyQuery = `SELECT probe, kind, currency, n, amount FROM paygate_risk_tally($1, $2, $3, $4)`

// riskPeekQuery reads what the probes' counters hold without locking
// anything (`paygate risk explain`).
const riskPeekQuery = `
SELECT p.i::int, c.kind, c.currency, sum(c.n)::bigint, sum(c.amount)::bigint
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY AS p(key, since, until, i)
JOIN risk_counts c ON c.key = p.key AND c.bucket >= p.since AND c.bucket < p.until
GROUP BY p.i, c.kind, c.currency`

// riskTally locks the probes' keys until the transaction ends and loads
// what their counters hold: every batch deciding by one of these keys
// waits for this one to commit, and then reads its counts. Exact however
// many payinit members run.
func riskTally(ctx context.Context, tx *sqlx.Tx, probes []risk.Probe) (*risk.Tally, error) {
	probes = uniqueProbes(probes)
	t := risk.NewTally(probes)
	if len(probes) == 0 {
		return t, nil
	}
	keys, since, until := probeArgs(probes)
	rows, err := tx.QueryContext(ctx, riskTallyQuery, pq.Array(keys), pq.Array(keys), pq.Array(since), pq.Array(until))
	if err != nil {
		return nil, fmt.Errorf("risk counts of %d probes: %w", len(probes), err)
	}
	return t, scanTally(rows, t, probes)
}

// RiskCounts reads what the probes' counters hold now, locking nothing:
// a decision explained, not taken.
func (s *Store) RiskCounts(ctx context.Context, probes []risk.Probe) (*risk.Tally, error) {
	probes = uniqueProbes(probes)
	t := risk.NewTally(probes)
	if len(probes) == 0 {
		return t, nil
	}
	keys, since, until := probeArgs(probes)
	rows, err := s.db.QueryContext(ctx, riskPeekQuery, pq.Array(keys), pq.Array(since), pq.Array(until))
	if err != nil {
		return nil, fmt.Errorf("risk counts of %d probes: %w", len(probes), err)
	}
	return t, scanTally(rows, t, probes)
}

// uniqueProbes drops repeated probes (a batch's requests of one buyer
// share theirs): each is read, and loaded into the tally, once.
func uniqueProbes(probes []risk.Probe) []risk.Probe {
	type id struct {
		key          string
		since, until int64
	}
	seen := make(map[id]bool, len(probes))
	out := probes[:0:0]
	for _, p := range probes {
		k := id{p.Key, p.Since.UnixNano(), p.Until.UnixNano()}
		if !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

func probeArgs(probes []risk.Probe) (keys []string, since, until []time.Time) {
	keys, since, until = make([]string, len(probes)), make([]time.Time, len(probes)), make([]time.Time, len(probes))
	for i, p := range probes {
		keys[i], since[i], until[i] = p.Key, p.Since, p.Until
		if p.Until.IsZero() {
			until[i] = farFuture
		}
	}
	return keys, since, until
}

func scanTally(rows *sql.Rows, t *risk.Tally, probes []risk.Probe) error {
	defer rows.Close()
	for rows.Next() {
		var i int
		var kind, currency string
		var n, amount int64
		if err := rows.Scan(&i, &kind, &currency, &n, &amount); err != nil {
			return fmt.Errorf("scan risk count: %w", err)
		}
		if i < 1 || i > len(probes) {
			return fmt.Errorf("risk count of probe %d: out of range", i)
		}
		t.Set(probes[i-1], kind, currency, n, amount)
	}
	return rows.Err()
}

// releasesQuery finds the approved reviews a batch's releases name.
const releasesQuery = `SELECT release_id, id, decided_by FROM risk_reviews WHERE release_id = ANY($1) AND status = 'approved'`

// releases are the batch's intents that release an approved review, by
// message id. A message that only looks like one (its id names no
// approved review) is decided as any other request.
func releases(ctx context.Context, tx *sqlx.Tx, intents []domain.PayIntent) (map[string]*domain.ReviewRelease, error) {
	var ids []string
	for _, in := range intents {
		if domain.IsRelease(in.MessageID) {
			ids = append(ids, in.MessageID)
		}
	}
	out := map[string]*domain.ReviewRelease{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := tx.QueryContext(ctx, releasesQuery, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("look up %d approved reviews: %w", len(ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var r domain.ReviewRelease
		if err := rows.Scan(&id, &r.ReviewID, &r.By); err != nil {
			return nil, fmt.Errorf("scan approved review: %w", err)
		}
		out[id] = &r
	}
	return out, rows.Err()
}

// Review is one review of the risk review queue.
type Review struct {
	ID        int64
	OrderID   string
	MessageID string
	Status    string
	CreatedAt time.Time
	ExpiresAt time.Time
	// Default is what the review's expiry decides: approve or deny.
	Default   string
	DecidedAt *time.Time
	DecidedBy string
	Note      string
	// ReleaseID is the message id the approved request was sent back to
	// payinit under.
	ReleaseID string
	// Score, Matched and RulesVersion are from the risk decision that
	// held it.
	Score        int
	Matched      []risk.Match
	RulesVersion int64
}

const reviewColumns = `r.id, r.order_id, r.message_id, r.status, r.created_at, r.expires_at, r.default_decision, r.decided_at,
    r.decided_by, r.note, coalesce(r.release_id, ''), coalesce(d.score, 0), coalesce(d.matched, '[]'::jsonb), coalesce(d.rules_version, 0)`

func scanReview(row interface{ Scan(...any) error }) (Review, error) {
	var r Review
	var matched []byte
	if err := row.Scan(&r.ID, &r.OrderID, &r.MessageID, &r.Status, &r.CreatedAt, &r.ExpiresAt, &r.Default, &r.DecidedAt,
		&r.DecidedBy, &r.Note, &r.ReleaseID, &r.Score, &matched, &r.RulesVersion); err != nil {
		return r, err
	}
	if err := json.Unmarshal(matched, &r.Matched); err != nil {
		return r, fmt.Errorf("review %d: matched rules: %w", r.ID, err)
	}
	return r, nil
}

// Reviews lists the reviews of the queue, oldest first: the pending ones
// (pending true), or the newest decided up to limit.
func (s *Store) Reviews(ctx context.Context, pending bool, limit int) ([]Review, error) {
	q := `SELECT ` + reviewColumns + ` FROM risk_reviews r LEFT JOIN risk_decisions d ON d.message_id = r.message_id
WHERE r.status = 'pending' ORDER BY r.expires_at, r.id LIMIT $1`
	if !pending {
		q = `SELECT * FROM (SELECT ` + reviewColumns + ` FROM risk_reviews r LEFT JOIN risk_decisions d ON d.message_id = r.message_id
WHERE r.status <> 'pending' ORDER BY r.decided_at DESC, r.id DESC LIMIT $1) x ORDER BY 8, 1`
	}
	rows, err := s.db.QueryContext(ctx, q, limit)
	if err != nil {
		return nil, fmt.Errorf("risk reviews: %w", err)
	}
	defer rows.Close()
	var out []Review
	for rows.Next() {
		r, err := scanReview(rows)
		if err != nil {
			return nil, fmt.Errorf("risk reviews: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// lockReviewQuery locks an order's newest review with its held request.
const lockReviewQuery = `
SELECT ` + reviewColumns + `, p.body
FROM risk_reviews r JOIN pay_requests p ON p.message_id = r.message_id
LEFT JOIN risk_decisions d ON d.message_id = r.message_id
WHERE r.order_id = $1 ORDER BY r.id DESC LIMIT 1 FOR UPDATE OF r`

// DecideReview decides the pending review of an order: approve sends the
// held pay request back to payinit (through the outbox, on its topic,
// under the message id risk_review/<review id>), where it is routed and
// initiated once; deny rejects it (reason risk_denied) and publishes the
// rejected pay session. The decision and the audit entry are one
// transaction. ErrNotFound if the order has no review, ErrReviewDecided if
// its review was decided already (both audited as refused).
func (s *Store) DecideReview(ctx context.Context, orderID string, approve bool, by Actor, note string) (Review, error) {
	action := "risk.review.deny"
	if approve {
		action = "risk.review.approve"
	}
	var r Review
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var body []byte
		var err error
		r, body, err = lockReview(ctx, tx, orderID)
		if err != nil {
			return err
		}
		st, err := risk.ParseReviewStatus(r.Status)
		if err != nil {
			return fmt.Errorf("review %d: %w", r.ID, err)
		}
		next, err := st.Decide(approve)
		if err != nil {
			return err
		}
		r, err = decideReview(ctx, tx, r, body, next, by.Name, note)
		if err != nil {
			return err
		}
		return auditTx(ctx, tx, AuditEntry{Actor: by, Action: action, Target: orderID, Outcome: AuditOK,
			Detail: map[string]any{"review": r.ID, "held_request": r.MessageID, "note": note}})
	})
	if errors.Is(err, ErrNotFound) || errors.Is(err, risk.ErrReviewDecided) {
		detail := map[string]any{"why": err.Error(), "note": note}
		if r.ID != 0 {
			detail["review"], detail["status"], detail["decided_by"] = r.ID, r.Status, r.DecidedBy
		}
		if aerr := s.Audit(ctx, AuditEntry{Actor: by, Action: action, Target: orderID, Outcome: AuditRefused, Detail: detail}); aerr != nil {
			return r, errors.Join(err, aerr)
		}
	}
	return r, err
}

func lockReview(ctx context.Context, tx *sqlx.Tx, orderID string) (Review, []byte, error) {
	var body []byte
	var r Review
	var matched []byte
	err := tx.QueryRowContext(ctx, lockReviewQuery, orderID).Scan(&r.ID, &r.OrderID, &r.MessageID, &r.Status, &r.CreatedAt, &r.ExpiresAt,
		&r.Default, &r.DecidedAt, &r.DecidedBy, &r.Note, &r.ReleaseID, &r.Score, &matched, &r.RulesVersion, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return r, nil, ErrNotFound
	}
	if err != nil {
		return r, nil, fmt.Errorf("lock the review of %s: %w", orderID, err)
	}
	if err := json.Unmarshal(matched, &r.Matched); err != nil {
		return r, nil, fmt.Errorf("review %d: matched rules: %w", r.ID, err)
	}
	return r, body, nil
}

const approveReviewQuery = `
UPDATE risk_reviews SET status = $5, decided_at = now(), decided_by = $2, note = $3, release_id = $4
WHERE id = $1 RETURNING decided_at`

const denyReviewQuery = `
WITH r AS (UPDATE risk_reviews SET status = $5, decided_at = now(), decided_by = $2, note = $3 WHERE id = $1 RETURNING decided_at, message_id)
UPDATE pay_requests p SET outcome = 'rejected', reason = $4 FROM r WHERE p.message_id = r.message_id RETURNING r.decided_at`

// decideReview stores the decision of the locked pending review r (next,
// as risk.ReviewStatus.Decide gave it): the review, the held request and
// the event that follows, as DecideReview says.
func decideReview(ctx context.Context, tx *sqlx.Tx, r Review, body []byte, next risk.ReviewStatus, by, note string) (Review, error) {
	var at time.Time
	var ev domain.Event
	r.Status = next.String()
	if next == risk.ReviewApproved {
		r.ReleaseID = domain.ReleasePrefix + strconv.FormatInt(r.ID, 10)
		if err := tx.QueryRowContext(ctx, approveReviewQuery, r.ID, by, note, r.ReleaseID, r.Status).Scan(&at); err != nil {
			return r, fmt.Errorf("approve review %d: %w", r.ID, err)
		}
		ev = domain.Event{ID: r.ReleaseID, Type: schemas.TypePayRequest, Topic: schemas.TopicPayRequests, Key: r.OrderID, Payload: body, Time: at}
	} else {
		if err := tx.QueryRowContext(ctx, denyReviewQuery, r.ID, by, note, domain.ErrRiskDenied.Error(), r.Status).Scan(&at); err != nil {
			return r, fmt.Errorf("deny review %d: %w", r.ID, err)
		}
		payload, err := json.Marshal(schemas.PaySession{Type: schemas.SessionRejected, OrderID: r.OrderID, Reason: domain.ErrRiskDenied.Error()})
		if err != nil {
			return r, err
		}
		ev = domain.Event{ID: "pay_session/rejected/" + r.MessageID, Type: schemas.TypePaySession, Topic: schemas.TopicPaySessions,
			Key: r.OrderID, Payload: payload, Time: at}
	}
	r.DecidedAt, r.DecidedBy, r.Note = &at, by, note
	if err := insertEvents(ctx, tx, []domain.Event{ev}); err != nil {
		return r, err
	}
	return r, nil
}

// ReviewQueue is the pending reviews' count and the age of the oldest.
type ReviewQueue struct {
	Pending int
	Oldest  time.Duration
}

const dueReviewsQuery = `
SELECT ` + reviewColumns + `, p.body
FROM risk_reviews r JOIN pay_requests p ON p.message_id = r.message_id
LEFT JOIN risk_decisions d ON d.message_id = r.message_id
WHERE r.status = 'pending' AND r.expires_at <= $1
ORDER BY r.expires_at LIMIT $2
FOR UPDATE OF r SKIP LOCKED`

const reviewQueueQuery = `SELECT count(*), coalesce(extract(epoch FROM $1::timestamptz - min(created_at)), 0)::float8 FROM risk_reviews WHERE status = 'pending'`

// ExpireReviews ends the pending reviews past their expiry at now, up to
// limit, each by its default (as DecideReview would, by "timeout"), and
// returns how many it ended and the queue as it is left. Several
// sweepers may run: each claims other reviews (SKIP LOCKED).
func (s *Store) ExpireReviews(ctx context.Context, now time.Time, limit int) (int, ReviewQueue, error) {
	var n int
	var q ReviewQueue
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		n = 0
		rows, err := tx.QueryContext(ctx, dueReviewsQuery, now, limit)
		if err != nil {
			return fmt.Errorf("claim expired reviews: %w", err)
		}
		type due struct {
			r    Review
			body []byte
		}
		var dues []due
		for rows.Next() {
			var d due
			var matched []byte
			if err := rows.Scan(&d.r.ID, &d.r.OrderID, &d.r.MessageID, &d.r.Status, &d.r.CreatedAt, &d.r.ExpiresAt, &d.r.Default,
				&d.r.DecidedAt, &d.r.DecidedBy, &d.r.Note, &d.r.ReleaseID, &d.r.Score, &matched, &d.r.RulesVersion, &d.body); err != nil {
				rows.Close()
				return fmt.Errorf("scan expired review: %w", err)
			}
			dues = append(dues, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range dues {
			note := fmt.Sprintf("no decision within the review's time (expired at %s): %s by default", d.r.ExpiresAt.UTC().Format(time.RFC3339), d.r.Default)
			next, err := risk.ReviewPending.Decide(d.r.Default == "approve") // claimed pending, and locked
			if err != nil {
				return err
			}
			if _, err := decideReview(ctx, tx, d.r, d.body, next, "timeout", note); err != nil {
				return err
			}
			n++
		}
		var oldest float64
		if err := tx.QueryRowContext(ctx, reviewQueueQuery, now).Scan(&q.Pending, &oldest); err != nil {
			return fmt.Errorf("review queue: %w", err)
		}
		q.Oldest = time.Duration(oldest * float64(time.Second))
		return nil
	})
	return n, q, err
}

// auditTx appends an audit entry inside a transaction: the action and its
// record commit together.
func auditTx(ctx context.Context, tx *sqlx.Tx, e AuditEntry) error {
	detail, err := json.Marshal(e.Detail)
	if err != nil {
		return fmt.Errorf("audit %s: detail: %w", e.Action, err)
	}
	if _, err := tx.ExecContext(ctx, insertAuditQuery, e.Actor.Name, e.Actor.Role, e.Action, e.Target, e.Outcome,
		string(detail), e.Actor.RemoteAddr); err != nil {
		return fmt.Errorf("audit %s by %s: %w", e.Action, e.Actor.Name, err)
	}
	return nil
}

// recordRiskEventsQuery stores events once each and counts those stored
// under the keys of their order's last risk decision (its buyer's id,
// email, IP, device, card, account), at the minute they are recorded.
// An order decided while risk control was off has no keys: its events are
// kept, and count under nothing.
const recordRiskEventsQuery = `
WITH e AS (
    INSERT INTO risk_events (kind, ref, order_id, amount, currency, keys)
    SELECT v.kind, v.ref, v.order_id, v.amount, v.currency,
        coalesce((SELECT d.keys FROM risk_decisions d WHERE d.order_id = v.order_id ORDER BY d.decided_at DESC LIMIT 1), '{}')
    FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[]) AS v(kind, ref, order_id, amount, currency)
    ON CONFLICT (kind, ref) DO NOTHING
    RETURNING kind, at, currency, amount, keys)
INSERT INTO risk_counts (key, kind, currency, bucket, n, amount)
SELECT k, e.kind, e.currency, date_trunc('minute', e.at), count(*), sum(e.amount)
FROM e CROSS JOIN LATERAL unnest(e.keys) AS k
GROUP BY 1, 2, 3, 4
ON CONFLICT (key, kind, currency, bucket) DO UPDATE SET n = risk_counts.n + EXCLUDED.n, amount = risk_counts.amount + EXCLUDED.amount`

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func recordRiskEvents(ctx context.Context, x execer, evs []risk.Event) error {
	if len(evs) == 0 {
		return nil
	}
	n := len(evs)
	kinds, refs, orders, currencies, amounts := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
	for i, e := range evs {
		if !e.Kind.IsEvent() {
			return fmt.Errorf("risk event %s/%s: %s is not an event", e.Kind, e.Ref, e.Kind)
		}
		kinds[i], refs[i], orders[i], amounts[i], currencies[i] = e.Kind.String(), e.Ref, e.OrderID, e.Amount, e.Currency
	}
	if _, err := x.ExecContext(ctx, recordRiskEventsQuery, pq.Array(kinds), pq.Array(refs), pq.Array(orders), pq.Array(amounts),
		pq.Array(currencies)); err != nil {
		return fmt.Errorf("record %d risk events: %w", n, err)
	}
	return nil
}

// RecordRiskEvents records events after the money (the refunds group's
// large refunds) and counts them; an event recorded before is not counted
// again, so a caller may record again what it is not sure it recorded.
func (s *Store) RecordRiskEvents(ctx context.Context, evs []risk.Event) error {
	return recordRiskEvents(ctx, s.db, evs)
}

// riskEventOf is the risk event a callback decision raises, if any: a
// second payment of a paid order, or a signed callback whose amount or
// currency is not the attempt's.
func riskEventOf(d domain.Decision) (risk.Event, bool) {
	var kind risk.Measure
	switch d.Outcome {
	case domain.OutcomeDuplicatePayment:
		kind = risk.EventDuplicatePayment
	case domain.OutcomeAmountMismatch:
		kind = risk.EventAmountMismatch
	default:
		return risk.Event{}, false
	}
	a := d.Attempt
	ref := a.Code() // one wrong amount per attempt, however often it is told
	if d.Repeat != nil {
		ref = d.Repeat.TransactionCode + "/" + d.Repeat.PSPReference // one per second payment
	}
	return risk.Event{Kind: kind, Ref: ref, OrderID: a.OrderID(), Amount: a.Amount().Minor(), Currency: a.Amount().Currency().Code()}, true
}

// pruneRiskCountsQuery deletes up to $2 counters older than $1, found by
// the bucket index.
const pruneRiskCountsQuery = `
DELETE FROM risk_counts WHERE ctid = ANY(ARRAY(SELECT ctid FROM risk_counts WHERE bucket < $1 LIMIT $2))`

// PruneRiskCounts deletes up to limit velocity counters of minutes before
// before (no window reaches them any more) and says how many it deleted.
func (s *Store) PruneRiskCounts(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := s.db.ExecContext(ctx, pruneRiskCountsQuery, before, limit)
	if err != nil {
		return 0, fmt.Errorf("prune risk counters: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
