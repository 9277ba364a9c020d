package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/domain/risk"
	"github.com/paygate/paygate/internal/psp"
)

// CallbackDecider applies one verified inbound message (its Effective
// notification) to its locked order and attempt: the decision and the
// events it implies.
type CallbackDecider = func(o domain.Order, a domain.Attempt, in domain.Inbound) (domain.Decision, []domain.Event, error)

const insertCallbacksQuery = `
INSERT INTO callbacks (message_id, channel, kind, received_at, raw, transaction_code, psp_reference, psp_event_id,
    notified_status, notified_amount, confirmed_status, rejected, outcome)
SELECT c.message_id, c.channel, c.kind, c.received_at, substring($5::bytea FROM c.raw_from FOR c.raw_len),
    NULLIF(c.tc, ''), NULLIF(c.ref, ''), NULLIF(c.evt, ''), NULLIF(c.ns, ''), c.na, NULLIF(c.cs, ''), c.rejected,
    NULLIF(c.outcome, '')
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $6::int[], $7::int[], $8::text[], $9::text[],
    $10::text[], $11::text[], $12::bigint[], $13::text[], $14::text[], $15::text[])
    AS c(message_id, channel, kind, received_at, raw_from, raw_len, tc, ref, evt, ns, na, cs, rejected, outcome)
ON CONFLICT (message_id) DO NOTHING
RETURNING message_id`

// seenCallbacksQuery is planned each time: a generic plan made while
// callbacks was small scans the table, and keeps scanning it as it grows
// (every batch, on a fresh database, until the next ANALYZE).
const seenCallbacksQuery = planEachTime + `SELECT message_id FROM callbacks WHERE message_id = ANY($1)`

const lockAttemptsQuery = `
SELECT o.order_id, o.amount, o.currency, o.status, o.paid_attempt, ` + prefixedAttemptColumns + `
FROM attempts a JOIN orders o ON o.order_id = a.order_id
WHERE a.transaction_code = ANY($1)
ORDER BY o.order_id, a.transaction_code
FOR UPDATE`

// ApplyCallbacks is the callbacks consumer's transaction for one batch.
// It stores every inbound message as evidence (a message id stored
// before is a redelivery: reported Duplicate, nothing else done), locks
// the orders and attempts the verified ones name (sorted, so concurrent
// batches do not deadlock), lets decide rule on each in input order
// against the state left by the previous ones, and writes the changed
// orders and attempts, the events, the PSP exchanges and the messages
// with their outcomes — all or nothing.
//
// A message is stored once, outcome included, after the decisions: a
// row inserted and then updated would be written twice, with its index
// entries, as the raw message makes it too wide to be updated in its
// page. The message ids are looked up first instead. A message another
// transaction stores meanwhile (a redelivery to another group member
// during a rebalance) makes the insert store fewer rows than decided;
// the transaction is then rolled back and retried (errStoredMeanwhile),
// and the retry finds it stored.
func (s *Store) ApplyCallbacks(ctx context.Context, in []domain.Inbound, decide CallbackDecider, exchanges []psp.Exchange) ([]domain.Applied, error) {
	var applied []domain.Applied
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		applied = make([]domain.Applied, len(in))
		fresh, err := unseenCallbacks(ctx, tx, in, func(m domain.Inbound) string { return m.Callback.MessageID })
		if err != nil {
			return err
		}
		var codes []string
		for _, m := range in {
			if n := m.Effective(); fresh[m.Callback.MessageID] && !m.Refusal.Refused() && n != nil {
				codes = append(codes, n.TransactionCode)
			}
		}
		orders, attempts, err := lockAttempts(ctx, tx, codes)
		if err != nil {
			return err
		}
		changedOrders, changedAttempts := map[string]bool{}, map[string]bool{}
		var events []domain.Event
		var repeats []domain.RepeatPayment
		var riskEvents []risk.Event // after the money, for risk control (rare: a statement of their own)
		stored := make([]callbackRow, 0, len(in))
		for i, m := range in {
			id := m.Callback.MessageID
			r := domain.Applied{MessageID: id, Rejected: m.Refusal.String()}
			if !fresh[id] {
				r.Duplicate = true
				applied[i] = r
				continue
			}
			fresh[id] = false // the same message twice in one batch
			if n := m.Effective(); !m.Refusal.Refused() && n != nil {
				a, ok := attempts[n.TransactionCode]
				switch {
				case !ok:
					r.Rejected = fmt.Sprintf("unknown transaction code %q", n.TransactionCode)
				case a.Channel() != m.Callback.Channel:
					r.Rejected = fmt.Sprintf("attempt %s belongs to channel %s, callback came to %s", a.Code(), a.Channel(), m.Callback.Channel)
				default:
					o := orders[a.OrderID()]
					d, evs, err := decide(o, a, m)
					if err != nil {
						return fmt.Errorf("decide callback %s for %s: %w", id, n.TransactionCode, err)
					}
					if d.Changed {
						orders[o.ID()], attempts[a.Code()] = d.Order, d.Attempt
						changedOrders[o.ID()], changedAttempts[a.Code()] = true, true
					}
					if d.Repeat != nil {
						repeats = append(repeats, *d.Repeat)
					}
					if ev, ok := riskEventOf(d); ok {
						riskEvents = append(riskEvents, ev)
					}
					events = append(events, evs...)
					r.Outcome, r.OrderID = d.Outcome, o.ID()
				}
			}
			applied[i] = r
			stored = append(stored, inboundRow(m, r))
		}
		if err := insertRepeatPayments(ctx, tx, repeats); err != nil {
			return err
		}
		if err := recordRiskEvents(ctx, tx, riskEvents); err != nil {
			return err
		}
		// The rest is one statement: one round trip, not five.
		var w batchWrite
		if len(changedOrders) > 0 {
			w.add(saveOrdersQuery, saveOrdersArgs(pick(orders, changedOrders)))
		}
		if len(changedAttempts) > 0 {
			w.add(saveAttemptsQuery, saveAttemptsArgs(pick(attempts, changedAttempts)))
		}
		if len(events) > 0 {
			w.add(insertEventsQuery, insertEventsArgs(events))
		}
		if len(stored) > 0 {
			w.addCounted(insertCallbacksQuery, insertCallbacksArgs(stored))
		}
		if len(exchanges) > 0 {
			w.add(insertExchangesQuery, insertExchangesArgs(exchanges))
		}
		n, err := w.exec(ctx, tx)
		if err != nil {
			return fmt.Errorf("write %d orders, %d attempts, %d events, %d callbacks, %d exchanges: %w",
				len(changedOrders), len(changedAttempts), len(events), len(stored), len(exchanges), err)
		}
		if n != len(stored) {
			return fmt.Errorf("store %d callbacks: %d were: %w", len(stored), n, errStoredMeanwhile)
		}
		return nil
	})
	return applied, err
}

// errStoredMeanwhile: a row looked up as new (a callback, a pay request
// under its message id) was stored by another transaction before this
// one could store it. Retrying finds it stored.
var errStoredMeanwhile = errors.New("stored by another transaction meanwhile")

// batchWrite joins independent writes — each to its own table, none
// reading another's rows — into one statement of data-modifying CTEs,
// renumbering their parameters. They see one snapshot, which is the
// snapshot separate statements would have seen, as no write reads a
// table another writes.
type batchWrite struct {
	sql     strings.Builder
	args    []any
	counted string // the CTE whose rows exec counts
}

var paramRef = regexp.MustCompile(`\$[0-9]+`)

func (w *batchWrite) add(query string, args []any) {
	w.addAs(query, args)
}

// addCounted adds a write with RETURNING, whose rows exec counts.
func (w *batchWrite) addCounted(query string, args []any) {
	w.counted = w.addAs(query, args)
}

func (w *batchWrite) addAs(query string, args []any) (name string) {
	if w.sql.Len() == 0 {
		w.sql.WriteString("WITH ")
	} else {
		w.sql.WriteString(",\n")
	}
	off := len(w.args)
	name = "w" + strconv.Itoa(off)
	fmt.Fprintf(&w.sql, "%s AS (%s)", name, paramRef.ReplaceAllStringFunc(strings.TrimSpace(query), func(m string) string {
		n, _ := strconv.Atoi(m[1:])
		return "$" + strconv.Itoa(n+off)
	}))
	w.args = append(w.args, args...)
	return name
}

// queryRower runs a statement returning one row: a transaction, or the
// pool (the statement then is a transaction of its own).
type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// exec runs the writes and returns how many rows the counted one
// returned (0 if none is).
func (w *batchWrite) exec(ctx context.Context, tx queryRower) (int, error) {
	if w.sql.Len() == 0 {
		return 0, nil
	}
	count := "0"
	if w.counted != "" {
		count = "(SELECT count(*) FROM " + w.counted + ")"
	}
	var n int
	err := tx.QueryRowContext(ctx, w.sql.String()+"\nSELECT "+count, w.args...).Scan(&n)
	return n, err
}

func pick[T any](all map[string]T, keys map[string]bool) []T {
	out := make([]T, 0, len(keys))
	for k := range keys {
		out = append(out, all[k])
	}
	return out
}

// unseenCallbacks returns which of the messages' ids are not stored yet.
func unseenCallbacks[M any](ctx context.Context, tx *sqlx.Tx, in []M, id func(M) string) (map[string]bool, error) {
	ids := make([]string, len(in))
	for i, m := range in {
		ids[i] = id(m)
	}
	rows, err := tx.QueryContext(ctx, seenCallbacksQuery, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("look up %d callbacks: %w", len(ids), err)
	}
	defer rows.Close()
	fresh := make(map[string]bool, len(ids))
	for _, id := range ids {
		fresh[id] = true
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("look up callbacks: %w", err)
		}
		fresh[id] = false
	}
	return fresh, rows.Err()
}

// inboundRow is the callbacks row of a message and what became of it.
func inboundRow(m domain.Inbound, r domain.Applied) callbackRow {
	c := callbackRow{id: m.Callback.MessageID, channel: m.Callback.Channel, kind: m.Callback.Kind.String(), at: m.Callback.ReceivedAt, raw: m.Raw,
		rejected: r.Rejected, outcome: r.Outcome.String()}
	if n := m.Notified; n != nil {
		c.code, c.ref, c.event, c.notified = n.TransactionCode, n.PSPReference, n.EventID, n.Status.String()
		if !n.Amount.IsZero() {
			v := n.Amount.Minor()
			c.amount = &v
		}
	}
	if cf := m.Confirmed; cf != nil {
		c.confirmed = cf.Status.String()
		if c.code == "" {
			c.code, c.ref = cf.TransactionCode, cf.PSPReference
		}
	}
	return c
}

// callbackRow is a callbacks row as stored.
type callbackRow struct {
	id, channel, kind                                        string
	at                                                       time.Time
	raw                                                      []byte
	code, ref, event, notified, confirmed, rejected, outcome string
	amount                                                   *int64 // notified; nil if none
}

// insertCallbacksArgs are insertCallbacksQuery's parameters for the rows;
// the raw messages go packed (see packed).
func insertCallbacksArgs(rs []callbackRow) []any {
	n := len(rs)
	ids, ch, kind, tc, ref, evt, ns, cs, rej, out := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	at, na, raws := make([]time.Time, n), make([]*int64, n), make([][]byte, n)
	for i, r := range rs {
		ids[i], ch[i], kind[i], at[i], tc[i], ref[i], evt[i], ns[i], na[i], cs[i], rej[i], out[i], raws[i] =
			r.id, r.channel, r.kind, r.at, r.code, r.ref, r.event, r.notified, r.amount, r.confirmed, r.rejected, r.outcome, r.raw
	}
	args := append([]any{pq.Array(ids), pq.Array(ch), pq.Array(kind), pq.Array(at)}, pack(raws).args()...) // $1–$7
	return append(args, pq.Array(tc), pq.Array(ref), pq.Array(evt), pq.Array(ns), pq.Array(na), pq.Array(cs), pq.Array(rej),
		pq.Array(out))
}

// storeCallbacks inserts the rows in one statement and returns the
// message ids it inserted: a message id stored before is left as it was.
func storeCallbacks(ctx context.Context, tx *sqlx.Tx, what string, rs []callbackRow) (map[string]bool, error) {
	n := len(rs)
	rows, err := tx.QueryContext(ctx, insertCallbacksQuery, insertCallbacksArgs(rs)...)
	if err != nil {
		return nil, fmt.Errorf("store %d %s: %w", n, what, err)
	}
	defer rows.Close()
	fresh := make(map[string]bool, n)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("store %s: %w", what, err)
		}
		fresh[id] = true
	}
	return fresh, rows.Err()
}

func lockAttempts(ctx context.Context, tx *sqlx.Tx, codes []string) (map[string]domain.Order, map[string]domain.Attempt, error) {
	orders, attempts := map[string]domain.Order{}, map[string]domain.Attempt{}
	if len(codes) == 0 {
		return orders, attempts, nil
	}
	rows, err := tx.QueryxContext(ctx, lockAttemptsQuery, pq.Array(codes))
	if err != nil {
		return nil, nil, fmt.Errorf("lock %d attempts: %w", len(codes), err)
	}
	defer rows.Close()
	for rows.Next() {
		var o orderRow
		var a attemptRow
		if err := rows.Scan(append([]any{&o.OrderID, &o.Amount, &o.Currency, &o.Status, &o.PaidAttempt}, a.targets()...)...); err != nil {
			return nil, nil, fmt.Errorf("scan locked attempt: %w", err)
		}
		do, err := o.toDomain()
		if err != nil {
			return nil, nil, err
		}
		da, err := a.toDomain()
		if err != nil {
			return nil, nil, err
		}
		orders[do.ID()], attempts[da.Code()] = do, da
	}
	return orders, attempts, rows.Err()
}

const insertRepeatPaymentQuery = `
INSERT INTO repeat_payments (order_id, transaction_code, channel, psp_reference, amount, currency, kind, refund_id, manual)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (transaction_code, psp_reference) DO NOTHING`

// insertRepeatPayments records duplicate and late payments; one detected
// again is recorded once.
func insertRepeatPayments(ctx context.Context, tx *sqlx.Tx, rs []domain.RepeatPayment) error {
	for _, r := range rs {
		refundID := r.RefundID()
		if r.Manual {
			refundID = ""
		}
		if _, err := tx.ExecContext(ctx, insertRepeatPaymentQuery, r.OrderID, r.TransactionCode, r.Channel, r.PSPReference,
			r.Amount.Minor(), r.Amount.Currency().Code(), r.Kind.String(), refundID, r.Manual); err != nil {
			return fmt.Errorf("record repeat payment %s/%s: %w", r.TransactionCode, r.PSPReference, err)
		}
	}
	return nil
}
