package bench

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp/sim"
)

// prepareByClone prepares n orders the fast way (in process only): the
// lone payments and two templates — one paid at the simulator, one never
// paid, for the forgeries — go through the pipeline as prepare makes them;
// every other order is a copy of its template, made at once at the
// simulator (sim.Server.Clone) and in PostgreSQL (INSERT … SELECT from the
// template's own rows, every column but the keys, amounts and PSP
// references copied, so the copies are what payinit wrote). The load then
// meets the same rows and the same simulator answers as with prepare, at
// thousands of orders a second instead of hundreds.
func prepareByClone(ctx context.Context, cfg *Config, t *target, prefix string, n, nLone int, forged func(i int) bool) ([]*order, error) {
	if t.sim == nil {
		return nil, fmt.Errorf("prepare by clone: needs the simulator in this process")
	}
	orders := make([]*order, n)
	var viaPipeline []int
	for i := range min(nLone, n) {
		viaPipeline = append(viaPipeline, i)
	}
	paidTmpl, forgedTmpl := -1, -1
	for i := nLone; i < n && (paidTmpl < 0 || forgedTmpl < 0); i++ {
		if forged(i) && forgedTmpl < 0 {
			forgedTmpl = i
			viaPipeline = append(viaPipeline, i)
		} else if !forged(i) && paidTmpl < 0 {
			paidTmpl = i
			viaPipeline = append(viaPipeline, i)
		}
	}
	made, err := prepareSome(ctx, cfg, t, prefix, viaPipeline, forged)
	if err != nil {
		return nil, err
	}
	for k, i := range viaPipeline {
		orders[i] = made[k]
	}
	db, err := sql.Open("postgres", t.dbURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	const chunk = 20_000
	start, done := time.Now(), 0
	for _, tmpl := range []int{paidTmpl, forgedTmpl} {
		if tmpl < 0 {
			continue
		}
		var batch []*order
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			if err := cloneOrders(ctx, db, t.sim, orders[tmpl], batch); err != nil {
				return err
			}
			done += len(batch)
			cfg.logf("cloned %d/%d orders (%.0f/s)", done, n-len(viaPipeline), float64(done)/time.Since(start).Seconds())
			batch = batch[:0]
			return nil
		}
		for i := nLone; i < n; i++ {
			if orders[i] != nil || forged(i) != orders[tmpl].forged {
				continue
			}
			o := &order{id: orderID(prefix, i), amount: orderAmount(i), forged: forged(i)}
			orders[i] = o
			if batch = append(batch, o); len(batch) == chunk {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
		if err := flush(); err != nil {
			return nil, err
		}
	}
	_, err = db.ExecContext(ctx, `ANALYZE orders; ANALYZE attempts`)
	return orders, err
}

// cloneOrders makes copies of the template order tmpl — each of batch
// gets its own transaction code and simulator payment — at the simulator
// and then in one PostgreSQL transaction.
func cloneOrders(ctx context.Context, db *sql.DB, s *sim.Server, tmpl *order, batch []*order) error {
	copies := make([]sim.Copy, len(batch))
	now := time.Now()
	for i, o := range batch {
		o.code = domain.NewTransactionCode(now)
		copies[i] = sim.Copy{MerchantRef: o.code, Amount: o.amount}
	}
	if err := s.Clone(tmpl.code, copies); err != nil {
		return err
	}
	var ids, codes, refs, urls, tokens []string
	var amounts []int64
	for i, o := range batch {
		o.pspRef = copies[i].PaymentID
		ids, codes, refs = append(ids, o.id), append(codes, o.code), append(refs, o.pspRef)
		urls, tokens, amounts = append(urls, copies[i].PayURL), append(tokens, copies[i].Token), append(amounts, o.amount)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ordersSQL, err := cloneSQL(ctx, tx, "orders", "order_id", []string{"order_id", "amount"})
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, ordersSQL, tmpl.id, pq.Array(ids), pq.Array(amounts)); err != nil {
		return fmt.Errorf("clone orders: %w", err)
	}
	attemptsSQL, err := cloneSQL(ctx, tx, "attempts", "transaction_code",
		[]string{"transaction_code", "order_id", "amount", "psp_reference", "pay_url", "token"})
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, attemptsSQL, tmpl.code, pq.Array(codes), pq.Array(ids), pq.Array(amounts),
		pq.Array(refs), pq.Array(urls), pq.Array(tokens)); err != nil {
		return fmt.Errorf("clone attempts: %w", err)
	}
	return tx.Commit()
}

// cloneSQL builds INSERT INTO table SELECT … FROM the template row ($1,
// by key) and unnest($2…) of the columns in subst (arrays, in that order);
// every other column of the table is copied from the template.
func cloneSQL(ctx context.Context, tx *sql.Tx, table, key string, subst []string) (string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, table)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	types := map[string]string{}
	var cols, exprs []string
	for rows.Next() {
		var c, typ string
		if err := rows.Scan(&c, &typ); err != nil {
			return "", err
		}
		types[c] = typ
		cols = append(cols, pq.QuoteIdentifier(c))
		if slices.Contains(subst, c) {
			exprs = append(exprs, "n."+pq.QuoteIdentifier(c))
		} else {
			exprs = append(exprs, "t."+pq.QuoteIdentifier(c))
		}
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	args := make([]string, len(subst))
	names := make([]string, len(subst))
	for i, c := range subst {
		typ, ok := types[c]
		if !ok {
			return "", fmt.Errorf("clone %s: no column %s", table, c)
		}
		args[i] = fmt.Sprintf("$%d::%s[]", i+2, typ)
		names[i] = pq.QuoteIdentifier(c)
	}
	return fmt.Sprintf(`INSERT INTO %s (%s) SELECT %s FROM %s t, unnest(%s) AS n(%s) WHERE t.%s = $1`,
		pq.QuoteIdentifier(table), strings.Join(cols, ", "), strings.Join(exprs, ", "), pq.QuoteIdentifier(table),
		strings.Join(args, ", "), strings.Join(names, ", "), pq.QuoteIdentifier(key)), nil
}
