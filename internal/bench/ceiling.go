package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// Ceiling is what the machine does without paygate's logic.
type Ceiling struct {
	// PGPaymentWrites is transactions per second of the minimal payment
	// write — insert a dedupe row, update the order, insert an outbox
	// row, one transaction each, one statement per row — at
	// PGConnections connections on scratch tables.
	PGPaymentWrites float64 `json:"pg_payment_writes_per_s"`
	PGConnections   int     `json:"pg_connections"`
	// BrokerProduce and BrokerConsume are messages per second of
	// callback-sized records through kafka-go (acks=all, 2 ms batches,
	// murmur2 keys; one consumer group reader).
	BrokerProduce float64 `json:"broker_produce_per_s"`
	BrokerConsume float64 `json:"broker_consume_per_s"`
	RecordBytes   int     `json:"record_bytes"`
}

const ceilingSchema = `
DROP TABLE IF EXISTS bench_ceiling_dedupe, bench_ceiling_orders, bench_ceiling_outbox;
CREATE TABLE bench_ceiling_dedupe (message_id text PRIMARY KEY, received_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE bench_ceiling_orders (order_id text PRIMARY KEY, amount bigint NOT NULL, status text NOT NULL,
    paid_attempt text, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE bench_ceiling_outbox (id bigserial PRIMARY KEY, event_id text NOT NULL UNIQUE, key text NOT NULL,
    payload bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), published_at timestamptz);
INSERT INTO bench_ceiling_orders (order_id, amount, status)
    SELECT 'C-' || i, 1999, 'pending' FROM generate_series(0, 199999) AS i;
ANALYZE bench_ceiling_orders;`

// pgCeiling measures the minimal payment write at conns connections for d.
func pgCeiling(ctx context.Context, dbURL string, conns int, d time.Duration) (float64, error) {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	if _, err := db.ExecContext(ctx, ceilingSchema); err != nil {
		return 0, fmt.Errorf("ceiling tables: %w", err)
	}
	defer db.ExecContext(context.Background(), `DROP TABLE IF EXISTS bench_ceiling_dedupe, bench_ceiling_orders, bench_ceiling_outbox`)
	payload := make([]byte, 230)
	var next, done atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1)
				id := strconv.FormatInt(i, 10)
				err := func() error {
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					defer tx.Rollback()
					if _, err := tx.ExecContext(ctx, `INSERT INTO bench_ceiling_dedupe (message_id) VALUES ($1) ON CONFLICT DO NOTHING`, "m-"+id); err != nil {
						return err
					}
					if _, err := tx.ExecContext(ctx, `UPDATE bench_ceiling_orders SET status = 'paid', paid_attempt = $2, updated_at = now() WHERE order_id = $1`,
						"C-"+strconv.FormatInt(i%200000, 10), "tc-"+id); err != nil {
						return err
					}
					if _, err := tx.ExecContext(ctx, `INSERT INTO bench_ceiling_outbox (event_id, key, payload) VALUES ($1, $2, $3)`, "e-"+id, id, payload); err != nil {
						return err
					}
					return tx.Commit()
				}()
				if err != nil {
					if ctx.Err() == nil {
						firstErr.CompareAndSwap(nil, err)
					}
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return 0, fmt.Errorf("ceiling write: %w", e)
	}
	return float64(done.Load()) / time.Since(start).Seconds(), nil
}

// brokerCeiling produces callback-sized records to a scratch topic for d
// from several writers, then reads them back with one group reader.
func brokerCeiling(ctx context.Context, k cluster, partitions int, d time.Duration, recordBytes int) (produce, consume float64, err error) {
	topic := fmt.Sprintf("paygate.bench-ceiling.%d", time.Now().UnixNano())
	c := k.client(10 * time.Second)
	if _, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}}); err != nil {
		return 0, 0, fmt.Errorf("create %s: %w", topic, err)
	}
	defer c.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	w := &kafka.Writer{Addr: kafka.TCP(k.brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 2 * time.Millisecond, BatchSize: 500, BatchBytes: 4 << 20, Transport: k.sec.Transport()}
	defer w.Close()
	value := make([]byte, recordBytes)
	var n atomic.Int64
	var firstErr atomic.Value
	pctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	// As the ingress does: many concurrent synchronous writers of a few
	// messages, which the writer batches.
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msgs := make([]kafka.Message, 8)
			for i := 0; pctx.Err() == nil; i++ {
				for j := range msgs {
					msgs[j] = kafka.Message{Key: []byte(strconv.Itoa(g*1_000_000 + i*8 + j)), Value: value}
				}
				if err := w.WriteMessages(pctx, msgs...); err != nil {
					if pctx.Err() == nil {
						firstErr.CompareAndSwap(nil, err)
					}
					return
				}
				n.Add(int64(len(msgs)))
			}
		}()
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return 0, 0, fmt.Errorf("produce: %w", e)
	}
	total := n.Load()
	produce = float64(total) / time.Since(start).Seconds()

	r := k.reader(topic, topic)
	defer r.Close()
	cctx, ccancel := context.WithTimeout(ctx, d+30*time.Second)
	defer ccancel()
	var first time.Time
	var read int64
	for read < total {
		if _, err := r.FetchMessage(cctx); err != nil {
			return produce, 0, fmt.Errorf("consume (%d of %d read): %w", read, total, err)
		}
		if read == 0 {
			first = time.Now() // the group join is not the broker's rate
		}
		read++
	}
	return produce, float64(read-1) / time.Since(first).Seconds(), nil
}
