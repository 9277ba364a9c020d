package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paygate/paygate/internal/psp"
)

const insertExchangesQuery = `
INSERT INTO psp_exchanges (channel, operation, order_id, transaction_code, method, url, request_body,
    status_code, response_body, error, started_at, duration_ms)
SELECT e.channel, e.operation, NULLIF(e.order_id, ''), NULLIF(e.tc, ''), e.method, e.url,
    convert_from(substring($7::bytea FROM e.req_from FOR e.req_len), 'UTF8'), NULLIF(e.status_code, 0),
    convert_from(substring($10::bytea FROM e.resp_from FOR e.resp_len), 'UTF8'), e.err, e.started_at, e.duration_ms
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $8::int[], $9::int[],
    $11::int[], $12::int[], $13::int[], $14::text[], $15::timestamptz[], $16::float8[])
    AS e(channel, operation, order_id, tc, method, url, req_from, req_len, resp_from, resp_len, status_code, err,
    started_at, duration_ms)`

// insertExchanges stores PSP exchanges (already masked) in one statement.
func insertExchanges(ctx context.Context, tx *sqlx.Tx, exs []psp.Exchange) error {
	if len(exs) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, insertExchangesQuery, insertExchangesArgs(exs)...)
	if err != nil {
		return fmt.Errorf("insert %d psp exchanges: %w", len(exs), err)
	}
	return nil
}

func insertExchangesArgs(exs []psp.Exchange) []any {
	n := len(exs)
	ch, op, oid, tc, me, u, rq, rs, er := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	sc, st, du := make([]int64, n), make([]time.Time, n), make([]float64, n)
	for i, e := range exs {
		ch[i], op[i], oid[i], tc[i], me[i], u[i], rq[i], rs[i], er[i] = e.Channel, e.Operation, e.OrderID, e.TransactionCode,
			e.Method, e.URL, e.RequestBody, e.ResponseBody, e.Err
		sc[i], st[i], du[i] = int64(e.StatusCode), e.StartedAt, float64(e.Duration.Microseconds())/1000
	}
	// The bodies go packed (see packed): the two biggest strings of an
	// exchange, escaped and quoted in a text[].
	args := []any{pq.Array(ch), pq.Array(op), pq.Array(oid), pq.Array(tc), pq.Array(me), pq.Array(u)} // $1–$6
	args = append(args, pack(rq).args()...)                                                           // $7–$9
	args = append(args, pack(rs).args()...)                                                           // $10–$12
	return append(args, pq.Array(sc), pq.Array(er), pq.Array(st), pq.Array(du))                       // $13–$16
}
