package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// Outbox payloads and PSP exchange bodies go packed into one bytea each,
// on their own statement and joined into a batch statement: every one is
// stored byte for byte in its row, the empty ones and those that a text[]
// or bytea[] would have had to escape included, and a body that is not
// UTF-8 is refused as a text[] would have refused it.
func TestPackedPayloadsAndBodies(t *testing.T) {
	t.Parallel()
	ctx, s := context.Background(), testStore(t, Config{})
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	payloads := [][]byte{[]byte(`{"a":"b\"c"}`), {}, {0x00, 0xff, '\\', 'x', '"', '{', '}', ',', 0x01}, bytes.Repeat([]byte("9"), 70000)}
	bodies := []string{`{"q":"a,b","e":"\\"}`, "", "Zahlung über 12,50 € — 支付 😀", "NULL", strings.Repeat("x", 70000)}
	var events []domain.Event
	var exs []psp.Exchange
	for round, via := range []string{"alone", "batch"} {
		var evs []domain.Event
		for i, p := range payloads {
			evs = append(evs, domain.Event{ID: fmt.Sprintf("%s/%d", via, i), Topic: "t", Key: via, Type: "paid", Payload: p})
		}
		var xs []psp.Exchange
		for i, b := range bodies {
			xs = append(xs, psp.Exchange{Channel: "sim", Operation: via, TransactionCode: fmt.Sprint(i), Method: "POST",
				URL: "https://psp.example/x", RequestBody: b, ResponseBody: bodies[len(bodies)-1-i], StartedAt: time.Now()})
		}
		err := s.inTx(ctx, func(tx *sqlx.Tx) error {
			if round == 0 {
				if err := insertEvents(ctx, tx, evs); err != nil {
					return err
				}
				return insertExchanges(ctx, tx, xs)
			}
			var w batchWrite
			w.add(insertEventsQuery, insertEventsArgs(evs))
			w.add(insertExchangesQuery, insertExchangesArgs(xs))
			_, err := w.exec(ctx, tx)
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", via, err)
		}
		events, exs = append(events, evs...), append(exs, xs...)
	}
	for _, e := range events {
		var got []byte
		if err := s.db.GetContext(ctx, &got, `SELECT payload FROM outbox WHERE event_id = $1`, e.ID); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, e.Payload) {
			t.Errorf("event %s: payload %.40q…, want %.40q…", e.ID, got, e.Payload)
		}
	}
	for _, x := range exs {
		var got struct{ Req, Resp string }
		if err := s.db.GetContext(ctx, &got, `SELECT request_body AS req, response_body AS resp FROM psp_exchanges
			WHERE operation = $1 AND transaction_code = $2`, x.Operation, x.TransactionCode); err != nil {
			t.Fatal(err)
		}
		if got.Req != x.RequestBody || got.Resp != x.ResponseBody {
			t.Errorf("exchange %s/%s: bodies %.40q…, %.40q…; want %.40q…, %.40q…", x.Operation, x.TransactionCode,
				got.Req, got.Resp, x.RequestBody, x.ResponseBody)
		}
	}
	var n int
	if err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM psp_exchanges`); err != nil || n != 2*len(bodies) {
		t.Fatalf("%d exchanges stored (%v), want %d", n, err, 2*len(bodies))
	}

	bad := psp.Exchange{Channel: "sim", Operation: "bad", Method: "GET", URL: "u", ResponseBody: "ok \xff\xfe", StartedAt: time.Now()}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error { return insertExchanges(ctx, tx, []psp.Exchange{bad}) })
	var pe *pq.Error
	if !errors.As(err, &pe) || pe.Code != "22021" { // character_not_in_repertoire
		t.Fatalf("a body that is not UTF-8: %v; want refused for its encoding", err)
	}
}

// BenchmarkBatchWriteEventsAndExchanges is the write that packing is for:
// n paid events and n status-query exchanges of the sizes a run writes,
// joined into one statement, then rolled back (no commit, so no fsync in
// the figure). Its time includes PostgreSQL's parse and insert.
func BenchmarkBatchWriteEventsAndExchanges(b *testing.B) {
	ctx, s := context.Background(), testStore(b, Config{})
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"schema":"paygate.payment-event/v1","event_id":"payment.paid/T0000000000000001","type":"paid",` +
		`"order_id":"bench-000000000001","transaction_code":"T0000000000000001","channel":"sim","psp_reference":"sim_0000000000000001",` +
		`"amount":{"minor":1999,"currency":"EUR"},"occurred_at":"2026-11-26T07:00:00.000000Z","metadata":{"sku":"A-1","note":"a \"quoted\" note"}}`)
	resp := `{"id":"sim_0000000000000001","merchant":"m_sim","reference":"T0000000000000001","status":"succeeded",` +
		`"amount":1999,"currency":"EUR","created":"2026-11-26T07:00:00Z","updated":"2026-11-26T07:00:01Z","links":{"self":"/v1/payments/sim_0000000000000001"}}`
	for _, n := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				evs, xs := make([]domain.Event, n), make([]psp.Exchange, n)
				for j := range evs {
					id := fmt.Sprintf("%d/%d", i, j)
					evs[j] = domain.Event{ID: id, Topic: "paygate.payments.v1", Key: id, Type: "paid", Payload: payload}
					xs[j] = psp.Exchange{Channel: "sim", Operation: "query", OrderID: id, TransactionCode: id, Method: "GET",
						URL: "http://127.0.0.1:8090/v1/payments/" + id, StatusCode: 200, ResponseBody: resp, StartedAt: time.Now()}
				}
				tx, err := s.db.BeginTxx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				var w batchWrite
				w.add(insertEventsQuery, insertEventsArgs(evs))
				w.add(insertExchangesQuery, insertExchangesArgs(xs))
				if _, err := w.exec(ctx, tx); err != nil {
					b.Fatal(err)
				}
				if err := tx.Rollback(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
