package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
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

// PlanAttempts is payinit's first transaction. For each intent, in order:
// a message seen before with the same body (PayIntent.Retries) returns its
// stored plan (Resumed); one seen before with another body is refused
// (domain.ErrIdempotencyKeyReused) and recorded under an id of its own,
// reusedID, which its plan's Intent.MessageID carries so that its
// rejection is announced under its own event id; otherwise decide chooses
// against the order as it is (or missing), and the order, the attempt
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
// request's keys if let through, and queued for review if held. A
// redelivered request counts nothing again.
//
// Whatever the batch's size, the transaction takes a fixed number of
// round trips: BEGIN; the stored plans of the batch's messages; its
// existing orders, locked, with their pending reviews; the risk counts
// (when risk control counts); the approved reviews it releases (when it
// has any); one statement for every write (planWrites); COMMIT. The
// decisions run in between, in memory, each against the orders, reviews
// and counts as the intents before it in the batch left them.
func (s *Store) PlanAttempts(ctx context.Context, intents []domain.PayIntent, screen domain.Screen, decide PlanDecider) ([]domain.AttemptPlan, error) {
	var plans []domain.AttemptPlan
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		plans = make([]domain.AttemptPlan, 0, len(intents))
		seen, err := plannedRequests(ctx, tx, intents)
		if err != nil {
			return err
		}
		orders, err := lockOrders(ctx, tx, intents)
		if err != nil {
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
		w := planWrites{at: screen.At, newOrders: map[string]int{}, returns: map[string]string{}, counts: map[countKey]*countRow{}}
		for _, in := range intents {
			if first, ok := seen[in.MessageID]; ok {
				if why := in.Retries(first.digest, first.orderID); why != nil {
					plans = append(plans, refuseReused(in, why, seen, &w))
					continue
				}
				p := first.plan
				p.Intent = in
				if p.Rejected == "" {
					p.Order = orders[in.OrderID].order
				}
				plans = append(plans, p)
				continue
			}
			p, err := planOne(in, orders, decide, domain.RiskSeen{Tally: tally, Approved: released[in.MessageID]}, &w)
			if err != nil {
				return err
			}
			// The same message id twice in one batch: a retry, or a reuse.
			seen[in.MessageID] = plannedRequest{plan: p, digest: in.Digest, orderID: in.OrderID}
			plans = append(plans, p)
		}
		return w.exec(ctx, tx)
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

// refuseReused records in as refused for why (its message id names
// another request), once, and returns its rejected plan under reusedID.
func refuseReused(in domain.PayIntent, why error, seen map[string]plannedRequest, w *planWrites) domain.AttemptPlan {
	id := reusedID(in)
	if r, ok := seen[id]; ok { // recorded before: a redelivery
		p := r.plan
		p.Intent, p.Intent.MessageID = in, id
		return p
	}
	p := domain.AttemptPlan{Intent: in, Rejected: why.Error()}
	p.Intent.MessageID = id
	w.requests = append(w.requests, payRequestRow{id: id, orderID: in.OrderID, body: in.Raw, outcome: "rejected", reason: p.Rejected})
	seen[id] = plannedRequest{plan: domain.AttemptPlan{Resumed: true, Rejected: p.Rejected}, digest: in.Digest, orderID: in.OrderID}
	return p
}

// lockOrdersQuery locks and loads the batch's existing orders in one
// round trip and in a fixed order, so that batches running concurrently
// cannot deadlock; each says whether it has a review pending (risk
// control refuses another request for it meanwhile).
const lockOrdersQuery = `
SELECT o.order_id, o.amount, o.currency, o.status, o.paid_attempt,
    EXISTS (SELECT 1 FROM risk_reviews r WHERE r.order_id = o.order_id AND r.status = 'pending')
FROM orders o WHERE o.order_id = ANY($1) ORDER BY o.order_id FOR UPDATE OF o`

// lockedOrder is an order as the planning transaction sees it.
type lockedOrder struct {
	order         domain.Order
	reviewPending bool
}

func lockOrders(ctx context.Context, tx *sqlx.Tx, intents []domain.PayIntent) (map[string]lockedOrder, error) {
	ids := make([]string, len(intents))
	for i, in := range intents {
		ids[i] = in.OrderID
	}
	rows, err := tx.QueryContext(ctx, lockOrdersQuery, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("lock %d orders: %w", len(ids), err)
	}
	defer rows.Close()
	orders := make(map[string]lockedOrder, len(ids))
	for rows.Next() {
		var r orderRow
		var pending bool
		if err := rows.Scan(&r.OrderID, &r.Amount, &r.Currency, &r.Status, &r.PaidAttempt, &pending); err != nil {
			return nil, fmt.Errorf("scan locked order: %w", err)
		}
		o, err := r.toDomain()
		if err != nil {
			return nil, err
		}
		orders[o.ID()] = lockedOrder{order: o, reviewPending: pending}
	}
	return orders, rows.Err()
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

// planOne decides one new intent against the orders as the batch has left
// them so far, and adds what it stores to w: a new order, or a review
// queued for one, is in orders for the intents after it.
func planOne(in domain.PayIntent, orders map[string]lockedOrder, decide PlanDecider, rs domain.RiskSeen, w *planWrites) (domain.AttemptPlan, error) {
	p := domain.AttemptPlan{Intent: in}
	existing, found := orders[in.OrderID]
	var ex *domain.Order
	if found {
		ex = &existing.order
	}
	rs.ReviewPending = existing.reviewPending
	d, derr := decide(ex, in, rs)
	p.Risk = d.Risk
	req := payRequestRow{id: in.MessageID, orderID: in.OrderID, body: in.Raw, outcome: "accepted"}
	if derr != nil {
		req.outcome, req.reason = "rejected", derr.Error()
		p.Rejected = req.reason
		if found {
			p.Order = existing.order
		}
	} else {
		p.Order = d.Order
		if d.Held() {
			req.outcome, p.Held = "review", true
		} else {
			p.Attempt = d.Attempt
			w.attempts = append(w.attempts, d.Attempt)
			req.code = d.Attempt.Code()
		}
		w.order(d.Order, in, found)
		orders[d.Order.ID()] = lockedOrder{order: d.Order, reviewPending: existing.reviewPending || p.Held}
	}
	w.requests = append(w.requests, req)
	if d.Risk != nil {
		if err := w.risk(in, d.Risk); err != nil {
			return p, fmt.Errorf("risk decision of %s: %w", in.MessageID, err)
		}
		if d.Risk.Counted && rs.Tally != nil {
			rs.Tally.Count(d.Risk.Keys, in.Amount.Currency().Code(), in.Amount.Minor())
		}
	}
	return p, nil
}

// planWrites are a planning transaction's writes, made at its end in one
// statement (batchWrite): the new orders, the return pages of existing
// ones, the attempts, the requests with their outcomes, and risk
// control's decisions, counts and reviews. Within one statement an
// attempt's foreign key finds its order, and a request's its attempt,
// written beside them: PostgreSQL checks them at the statement's end.
type planWrites struct {
	at        time.Time      // the batch's time (domain.Screen.At)
	newOrders map[string]int // order id → its row in orders
	orders    []newOrderRow
	returns   map[string]string // existing order id → the newest request's return_urls
	attempts  []domain.Attempt
	requests  []payRequestRow
	decisions []riskDecisionRow
	counts    map[countKey]*countRow // requests counted, by key and currency
	countKeys []countKey             // counts' keys in the order first counted
	reviews   []reviewRow
}

type newOrderRow struct {
	id, currency, country, method, description, buyer, returns, status string
	amount                                                             int64
}

type payRequestRow struct {
	id, orderID, outcome, reason, code string
	body                               []byte
}

type riskDecisionRow struct {
	messageID, orderID, decision, matched, inputs, keys string
	outside                                             *string
	rulesVersion                                        int64
	score                                               int64
}

type countKey struct{ key, currency string }

type countRow struct{ n, amount int64 }

type reviewRow struct {
	orderID, messageID, def string
	expires                 time.Time
}

// order records that o is new (its row) or, found, that its return pages
// are the intent's now: a repeat pay request may come from another device.
// A second request for an order new in the batch changes its row.
func (w *planWrites) order(o domain.Order, in domain.PayIntent, found bool) {
	if i, ok := w.newOrders[o.ID()]; ok {
		w.orders[i].returns = returnURLs(in)
		return
	}
	if found {
		w.returns[o.ID()] = returnURLs(in)
		return
	}
	w.newOrders[o.ID()] = len(w.orders)
	w.orders = append(w.orders, newOrderRow{id: o.ID(), amount: o.Amount().Minor(), currency: o.Amount().Currency().Code(),
		country: in.Country, method: in.Method, description: in.Description, status: o.Status().String(), returns: returnURLs(in),
		buyer: jsonText(map[string]string{"id": in.Buyer.ID, "email": in.Buyer.Email, "ip": in.Buyer.IP, "device": in.Buyer.Device})})
}

// risk records what a risk decision writes with its request: the
// decision, the request counted under its keys at the batch's minute
// (summed with the batch's other requests under the same key), and a
// review for a held request.
func (w *planWrites) risk(in domain.PayIntent, a *risk.Assessment) error {
	matched, err := json.Marshal(a.Matched)
	if err != nil {
		return err
	}
	inputs, err := json.Marshal(a.Inputs)
	if err != nil {
		return err
	}
	keys := a.Keys
	if keys == nil {
		keys = []string{}
	}
	keysJSON, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	d := riskDecisionRow{messageID: in.MessageID, orderID: in.OrderID, decision: a.Decision.String(), rulesVersion: a.RulesVersion,
		score: int64(a.Score), matched: string(matched), inputs: string(inputs), keys: string(keysJSON)}
	if a.Outside != nil {
		b, err := json.Marshal(a.Outside)
		if err != nil {
			return err
		}
		o := string(b)
		d.outside = &o
	}
	w.decisions = append(w.decisions, d)
	if a.Counted {
		for _, k := range keys {
			ck := countKey{k, in.Amount.Currency().Code()}
			c, ok := w.counts[ck]
			if !ok {
				c = &countRow{}
				w.counts[ck] = c
				w.countKeys = append(w.countKeys, ck)
			}
			c.n, c.amount = c.n+1, c.amount+in.Amount.Minor()
		}
	}
	if a.Decision == risk.Review {
		def := "deny"
		if a.ReviewDefault == risk.Allow {
			def = "approve"
		}
		w.reviews = append(w.reviews, reviewRow{orderID: in.OrderID, messageID: in.MessageID, expires: a.ReviewExpires, def: def})
	}
	return nil
}

const insertOrdersQuery = `
INSERT INTO orders (order_id, amount, currency, country, method, description, buyer, return_urls, status)
SELECT o.order_id, o.amount, o.currency, o.country, o.method, o.description, o.buyer::jsonb, o.return_urls::jsonb, o.status
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
    AS o(order_id, amount, currency, country, method, description, buyer, return_urls, status)`

// updateReturnURLsQuery keeps the newest request's return pages of
// existing orders.
const updateReturnURLsQuery = `
UPDATE orders o SET return_urls = u.return_urls::jsonb, updated_at = now()
FROM unnest($1::text[], $2::text[]) AS u(order_id, return_urls)
WHERE o.order_id = u.order_id`

// insertAttemptsQuery's routing decisions (the evidence, JSON of a few
// hundred bytes each) go packed.
const insertAttemptsQuery = `
INSERT INTO attempts (transaction_code, order_id, channel, amount, currency, status, segment, policy_version, explore, hop, routing)
SELECT a.transaction_code, a.order_id, a.channel, a.amount, a.currency, a.status, a.segment, a.policy_version, a.explore, a.hop,
    NULLIF(convert_from(substring($11::bytea FROM a.routing_from FOR a.routing_len), 'UTF8'), '')::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bool[], $10::int[],
    $12::int[], $13::int[])
    AS a(transaction_code, order_id, channel, amount, currency, status, segment, policy_version, explore, hop, routing_from, routing_len)`

// insertPayRequestsQuery stores the requests with their outcomes (the
// bodies packed); a message id another transaction stored since
// plannedRequests looked is left as it is, and counted out (exec runs
// the transaction again).
const insertPayRequestsQuery = `
INSERT INTO pay_requests (message_id, order_id, body, outcome, reason, transaction_code)
SELECT r.message_id, r.order_id, substring($3::bytea FROM r.body_from FOR r.body_len), r.outcome, r.reason, NULLIF(r.tc, '')
FROM unnest($1::text[], $2::text[], $4::int[], $5::int[], $6::text[], $7::text[], $8::text[])
    AS r(message_id, order_id, body_from, body_len, outcome, reason, tc)
ON CONFLICT (message_id) DO NOTHING
RETURNING message_id`

// insertRiskDecisionsQuery stores the decisions (what matched and what
// the rules saw packed; the keys each as a JSON array).
const insertRiskDecisionsQuery = `
INSERT INTO risk_decisions (message_id, order_id, decided_at, decision, rules_version, score, matched, inputs, outside, keys)
SELECT d.message_id, d.order_id, $3, d.decision, d.rules_version, d.score,
    convert_from(substring($7::bytea FROM d.matched_from FOR d.matched_len), 'UTF8')::jsonb,
    convert_from(substring($10::bytea FROM d.inputs_from FOR d.inputs_len), 'UTF8')::jsonb,
    d.outside::jsonb, ARRAY(SELECT jsonb_array_elements_text(d.keys::jsonb))
FROM unnest($1::text[], $2::text[], $4::text[], $5::bigint[], $6::int[], $8::int[], $9::int[], $11::int[], $12::int[], $13::text[], $14::text[])
    AS d(message_id, order_id, decision, rules_version, score, matched_from, matched_len, inputs_from, inputs_len, outside, keys)`

// countRequestsQuery counts the batch's requests let through under their
// keys at the batch's minute, each key once, summed.
const countRequestsQuery = `
INSERT INTO risk_counts (key, kind, currency, bucket, n, amount)
SELECT c.key, 'request', c.currency, $3, c.n, c.amount FROM unnest($1::text[], $2::text[], $4::bigint[], $5::bigint[]) AS c(key, currency, n, amount)
ON CONFLICT (key, kind, currency, bucket) DO UPDATE SET n = risk_counts.n + EXCLUDED.n, amount = risk_counts.amount + EXCLUDED.amount`

// insertReviewsQuery queues the held requests for review.
const insertReviewsQuery = `
INSERT INTO risk_reviews (order_id, message_id, status, expires_at, default_decision)
SELECT r.order_id, r.message_id, 'pending', r.expires_at, r.default_decision
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) AS r(order_id, message_id, expires_at, default_decision)`

// exec writes everything in one statement. A request another transaction
// stored meanwhile (another partition's batch, the same id for another
// order) makes the transaction run again, to decide against it
// (errStoredMeanwhile).
func (w *planWrites) exec(ctx context.Context, tx *sqlx.Tx) error {
	var b batchWrite
	if n := len(w.orders); n > 0 {
		ids, cur, country, method, desc, buyer, ret, st, amount := make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
		for i, o := range w.orders {
			ids[i], cur[i], country[i], method[i], desc[i], buyer[i], ret[i], st[i], amount[i] =
				o.id, o.currency, o.country, o.method, o.description, o.buyer, o.returns, o.status, o.amount
		}
		b.add(insertOrdersQuery, []any{pq.Array(ids), pq.Array(amount), pq.Array(cur), pq.Array(country), pq.Array(method),
			pq.Array(desc), pq.Array(buyer), pq.Array(ret), pq.Array(st)})
	}
	if len(w.returns) > 0 {
		ids, ret := make([]string, 0, len(w.returns)), make([]string, 0, len(w.returns))
		for id, r := range w.returns {
			ids, ret = append(ids, id), append(ret, r)
		}
		b.add(updateReturnURLsQuery, []any{pq.Array(ids), pq.Array(ret)})
	}
	if n := len(w.attempts); n > 0 {
		codes, ids, ch, cur, st, seg := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n),
			make([]string, n)
		amount, version, hop, evidence, explore := make([]int64, n), make([]int64, n), make([]int64, n), make([]string, n), make([]bool, n)
		for i, a := range w.attempts {
			r := a.Route()
			codes[i], ids[i], ch[i], amount[i], cur[i], st[i] = a.Code(), a.OrderID(), a.Channel(), a.Amount().Minor(), a.Amount().Currency().Code(), a.Status().String()
			seg[i], version[i], explore[i], hop[i], evidence[i] = r.Segment, r.PolicyVersion, r.Explore, int64(r.Hop), r.Evidence
		}
		args := []any{pq.Array(codes), pq.Array(ids), pq.Array(ch), pq.Array(amount), pq.Array(cur), pq.Array(st), pq.Array(seg),
			pq.Array(version), pq.Array(explore), pq.Array(hop)} // $1–$10
		b.add(insertAttemptsQuery, append(args, pack(evidence).args()...)) // $11–$13
	}
	if n := len(w.decisions); n > 0 {
		ids, orders, dec, keys, outside := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]*string, n)
		version, score, matched, inputs := make([]int64, n), make([]int64, n), make([]string, n), make([]string, n)
		for i, d := range w.decisions {
			ids[i], orders[i], dec[i], keys[i], outside[i], version[i], score[i], matched[i], inputs[i] =
				d.messageID, d.orderID, d.decision, d.keys, d.outside, d.rulesVersion, d.score, d.matched, d.inputs
		}
		args := []any{pq.Array(ids), pq.Array(orders), w.at, pq.Array(dec), pq.Array(version), pq.Array(score)} // $1–$6
		args = append(args, pack(matched).args()...)                                                            // $7–$9
		args = append(args, pack(inputs).args()...)                                                             // $10–$12
		b.add(insertRiskDecisionsQuery, append(args, pq.Array(outside), pq.Array(keys)))                        // $13–$14
	}
	if n := len(w.countKeys); n > 0 {
		keys, cur, cnt, amount := make([]string, n), make([]string, n), make([]int64, n), make([]int64, n)
		for i, k := range w.countKeys {
			c := w.counts[k]
			keys[i], cur[i], cnt[i], amount[i] = k.key, k.currency, c.n, c.amount
		}
		b.add(countRequestsQuery, []any{pq.Array(keys), pq.Array(cur), w.at.UTC().Truncate(risk.Bucket()), pq.Array(cnt), pq.Array(amount)})
	}
	if n := len(w.reviews); n > 0 {
		orders, ids, expires, def := make([]string, n), make([]string, n), make([]time.Time, n), make([]string, n)
		for i, r := range w.reviews {
			orders[i], ids[i], expires[i], def[i] = r.orderID, r.messageID, r.expires, r.def
		}
		b.add(insertReviewsQuery, []any{pq.Array(orders), pq.Array(ids), pq.Array(expires), pq.Array(def)})
	}
	if n := len(w.requests); n > 0 {
		ids, orders, outcome, reason, code, body := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([][]byte, n)
		for i, r := range w.requests {
			ids[i], orders[i], outcome[i], reason[i], code[i], body[i] = r.id, r.orderID, r.outcome, r.reason, r.code, r.body
		}
		args := append([]any{pq.Array(ids), pq.Array(orders)}, pack(body).args()...) // $1–$5
		b.addCounted(insertPayRequestsQuery, append(args, pq.Array(outcome), pq.Array(reason), pq.Array(code)))
	}
	stored, err := b.exec(ctx, tx)
	if err != nil {
		return fmt.Errorf("store %d orders, %d attempts, %d pay requests, %d risk decisions: %w",
			len(w.orders), len(w.attempts), len(w.requests), len(w.decisions), err)
	}
	if stored != len(w.requests) {
		// Another transaction stored a request under one of these ids
		// since plannedRequests looked: run again, and decide against it.
		return fmt.Errorf("store %d pay requests: %d were: %w", len(w.requests), stored, errStoredMeanwhile)
	}
	return nil
}

// finishAttemptsQuery stores what the PSPs answered for a batch's
// attempts, in one statement: an attempt a callback already moved on
// keeps its status and PSP reference.
const finishAttemptsQuery = `
UPDATE attempts a SET
    status = CASE WHEN a.status = 'created' THEN u.status ELSE a.status END,
    psp_reference = CASE WHEN a.psp_reference = '' THEN u.psp_reference ELSE a.psp_reference END,
    pay_url = u.pay_url, token = u.token, form = u.form::jsonb, expires_at = u.expires_at,
    session_at = CASE WHEN u.pay_url <> '' THEN coalesce(a.session_at, now()) END,
    initiate_error = u.initiate_error,
    updated_at = now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::text[])
    AS u(transaction_code, status, psp_reference, pay_url, token, form, expires_at, initiate_error)
WHERE a.transaction_code = u.transaction_code`

func finishAttemptsArgs(starts []domain.AttemptStart) []any {
	n := len(starts)
	codes, st, ref, payURL, token, errs := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n)
	forms, expires := make([]*string, n), make([]*time.Time, n)
	for i, s := range starts {
		a := s.Attempt
		codes[i], st[i], ref[i], payURL[i], token[i], errs[i] = a.Code(), a.Status().String(), a.PSPReference(), s.PayURL, s.Token, s.InitiateError
		if len(s.Form) > 0 {
			f := jsonText(s.Form)
			forms[i] = &f
		}
		if !s.ExpiresAt.IsZero() {
			t := s.ExpiresAt
			expires[i] = &t
		}
	}
	return []any{pq.Array(codes), pq.Array(st), pq.Array(ref), pq.Array(payURL), pq.Array(token), pq.Array(forms), pq.Array(expires),
		pq.Array(errs)}
}

// FinishAttempts is payinit's second transaction: it stores what the PSPs
// answered (sessions, or failure to start), the events announcing them,
// and the PSP exchanges as evidence. It is idempotent: events are keyed by
// their stable ids, and an attempt a callback already moved on keeps its
// status.
//
// The three writes are one statement (batchWrite), whatever the batch's
// size, and that statement is its own transaction (inStatement): one
// round trip, where an UPDATE per attempt inside BEGIN and COMMIT took a
// batch of n attempts n + 4.
func (s *Store) FinishAttempts(ctx context.Context, starts []domain.AttemptStart, events []domain.Event, exchanges []psp.Exchange) error {
	var w batchWrite
	if len(starts) > 0 {
		w.add(finishAttemptsQuery, finishAttemptsArgs(starts))
	}
	if len(events) > 0 {
		w.add(insertEventsQuery, insertEventsArgs(events))
	}
	if len(exchanges) > 0 {
		w.add(insertExchangesQuery, insertExchangesArgs(exchanges))
	}
	if _, err := s.inStatement(ctx, &w); err != nil {
		return fmt.Errorf("finish %d attempts, %d events, %d exchanges: %w", len(starts), len(events), len(exchanges), err)
	}
	return nil
}
