package store

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// CallbackDecider applies one verified inbound message (its Effective
// notification) to its locked order and attempt: the decision and the
// events it implies.
type CallbackDecider = func(o domain.Order, a domain.Attempt, in domain.Inbound) (domain.Decision, []domain.Event, error)

const insertCallbacksQuery = `
INSERT INTO callbacks (message_id, channel, kind, received_at, raw, transaction_code, psp_reference, psp_event_id,
    notified_status, notified_amount, confirmed_status, rejected)
SELECT c.message_id, c.channel, c.kind, c.received_at, substring($5::bytea FROM c.raw_from FOR c.raw_len),
    NULLIF(c.tc, ''), NULLIF(c.ref, ''), NULLIF(c.evt, ''), NULLIF(c.ns, ''), c.na, NULLIF(c.cs, ''), c.rejected
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $6::int[], $7::int[], $8::text[], $9::text[],
    $10::text[], $11::text[], $12::bigint[], $13::text[], $14::text[])
    AS c(message_id, channel, kind, received_at, raw_from, raw_len, tc, ref, evt, ns, na, cs, rejected)
ON CONFLICT (message_id) DO NOTHING
RETURNING message_id`

const lockAttemptsQuery = `
SELECT o.order_id, o.amount, o.currency, o.status, o.paid_attempt, ` + prefixedAttemptColumns + `
FROM attempts a JOIN orders o ON o.order_id = a.order_id
WHERE a.transaction_code = ANY($1)
ORDER BY o.order_id, a.transaction_code
FOR UPDATE`

const saveCallbackOutcomesQuery = `
UPDATE callbacks c SET outcome = NULLIF(u.outcome, ''), rejected = u.rejected
FROM unnest($1::text[], $2::text[], $3::text[]) AS u(message_id, outcome, rejected)
WHERE c.message_id = u.message_id`

// ApplyCallbacks is the callbacks consumer's transaction for one batch.
// It stores every inbound message as evidence (a message id seen before is
// a redelivery: reported Duplicate, nothing else done), locks the orders
// and attempts the verified ones name (sorted, so concurrent batches do
// not deadlock), lets decide rule on each in input order against the
// state left by the previous ones, and writes the changed orders and
// attempts, the events and the PSP exchanges — all or nothing.
func (s *Store) ApplyCallbacks(ctx context.Context, in []domain.Inbound, decide CallbackDecider, exchanges []psp.Exchange) ([]domain.Applied, error) {
	var applied []domain.Applied
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		applied = make([]domain.Applied, len(in))
		fresh, err := insertCallbacks(ctx, tx, in)
		if err != nil {
			return err
		}
		var codes []string
		for _, m := range in {
			if n := m.Effective(); fresh[m.MessageID] && m.Rejected == "" && n != nil {
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
		ids, outcomes, rejections := make([]string, 0, len(in)), make([]string, 0, len(in)), make([]string, 0, len(in))
		for i, m := range in {
			r := domain.Applied{MessageID: m.MessageID, Rejected: m.Rejected}
			if !fresh[m.MessageID] {
				r.Duplicate = true
				applied[i] = r
				continue
			}
			fresh[m.MessageID] = false // the same message twice in one batch
			if n := m.Effective(); r.Rejected == "" && n != nil {
				a, ok := attempts[n.TransactionCode]
				switch {
				case !ok:
					r.Rejected = fmt.Sprintf("unknown transaction code %q", n.TransactionCode)
				case a.Channel() != m.Channel:
					r.Rejected = fmt.Sprintf("attempt %s belongs to channel %s, callback came to %s", a.Code(), a.Channel(), m.Channel)
				default:
					o := orders[a.OrderID()]
					d, evs, err := decide(o, a, m)
					if err != nil {
						return fmt.Errorf("decide callback %s for %s: %w", m.MessageID, n.TransactionCode, err)
					}
					if d.Changed {
						orders[o.ID()], attempts[a.Code()] = d.Order, d.Attempt
						changedOrders[o.ID()], changedAttempts[a.Code()] = true, true
					}
					if d.Repeat != nil {
						repeats = append(repeats, *d.Repeat)
					}
					events = append(events, evs...)
					r.Outcome, r.OrderID = d.Outcome, o.ID()
				}
			}
			applied[i] = r
			ids, outcomes, rejections = append(ids, m.MessageID), append(outcomes, r.Outcome.String()), append(rejections, r.Rejected)
		}
		if err := insertRepeatPayments(ctx, tx, repeats); err != nil {
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
		if len(ids) > 0 {
			w.add(saveCallbackOutcomesQuery, []any{pq.Array(ids), pq.Array(outcomes), pq.Array(rejections)})
		}
		if len(exchanges) > 0 {
			w.add(insertExchangesQuery, insertExchangesArgs(exchanges))
		}
		if err := w.exec(ctx, tx); err != nil {
			return fmt.Errorf("write %d orders, %d attempts, %d events, %d outcomes, %d exchanges: %w",
				len(changedOrders), len(changedAttempts), len(events), len(ids), len(exchanges), err)
		}
		return nil
	})
	return applied, err
}

// batchWrite joins independent writes — each to its own table, none
// reading another's rows — into one statement of data-modifying CTEs,
// renumbering their parameters. They see one snapshot, which is the
// snapshot separate statements would have seen, as no write reads a
// table another writes.
type batchWrite struct {
	sql  strings.Builder
	args []any
}

var paramRef = regexp.MustCompile(`\$[0-9]+`)

func (w *batchWrite) add(query string, args []any) {
	if w.sql.Len() == 0 {
		w.sql.WriteString("WITH ")
	} else {
		w.sql.WriteString(",\n")
	}
	off := len(w.args)
	fmt.Fprintf(&w.sql, "w%d AS (%s)", off, paramRef.ReplaceAllStringFunc(strings.TrimSpace(query), func(m string) string {
		n, _ := strconv.Atoi(m[1:])
		return "$" + strconv.Itoa(n+off)
	}))
	w.args = append(w.args, args...)
}

func (w *batchWrite) exec(ctx context.Context, tx *sqlx.Tx) error {
	if w.sql.Len() == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, w.sql.String()+"\nSELECT 1", w.args...)
	return err
}

func pick[T any](all map[string]T, keys map[string]bool) []T {
	out := make([]T, 0, len(keys))
	for k := range keys {
		out = append(out, all[k])
	}
	return out
}

func insertCallbacks(ctx context.Context, tx *sqlx.Tx, in []domain.Inbound) (map[string]bool, error) {
	rs := make([]callbackRow, len(in))
	for i, m := range in {
		r := callbackRow{id: m.MessageID, channel: m.Channel, kind: m.Kind, at: m.ReceivedAt, raw: m.Raw, rejected: m.Rejected}
		if n := m.Notified; n != nil {
			r.code, r.ref, r.event, r.notified = n.TransactionCode, n.PSPReference, n.EventID, n.Status.String()
			if !n.Amount.IsZero() {
				v := n.Amount.Minor()
				r.amount = &v
			}
		}
		if c := m.Confirmed; c != nil {
			r.confirmed = c.Status.String()
			if r.code == "" {
				r.code, r.ref = c.TransactionCode, c.PSPReference
			}
		}
		rs[i] = r
	}
	return storeCallbacks(ctx, tx, "callbacks", rs)
}

// callbackRow is a callbacks row as stored on arrival.
type callbackRow struct {
	id, channel, kind                               string
	at                                              time.Time
	raw                                             []byte
	code, ref, event, notified, confirmed, rejected string
	amount                                          *int64 // notified; nil if none
}

// storeCallbacks inserts the rows in one statement and returns the
// message ids it inserted: a message id stored before is left as it was.
// The raw messages go packed (see packed).
func storeCallbacks(ctx context.Context, tx *sqlx.Tx, what string, rs []callbackRow) (map[string]bool, error) {
	n := len(rs)
	ids, ch, kind, tc, ref, evt, ns, cs, rej := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	at, na, raws := make([]time.Time, n), make([]*int64, n), make([][]byte, n)
	for i, r := range rs {
		ids[i], ch[i], kind[i], at[i], tc[i], ref[i], evt[i], ns[i], na[i], cs[i], rej[i], raws[i] =
			r.id, r.channel, r.kind, r.at, r.code, r.ref, r.event, r.notified, r.amount, r.confirmed, r.rejected, r.raw
	}
	args := append([]any{pq.Array(ids), pq.Array(ch), pq.Array(kind), pq.Array(at)}, pack(raws).args()...) // $1–$7
	args = append(args, pq.Array(tc), pq.Array(ref), pq.Array(evt), pq.Array(ns), pq.Array(na), pq.Array(cs), pq.Array(rej))
	rows, err := tx.QueryContext(ctx, insertCallbacksQuery, args...)
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
		if err := rows.Scan(&o.OrderID, &o.Amount, &o.Currency, &o.Status, &o.PaidAttempt,
			&a.TransactionCode, &a.OrderID, &a.Channel, &a.Amount, &a.Currency, &a.Status, &a.PSPReference, &a.Review); err != nil {
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
