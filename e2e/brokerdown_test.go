package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/broker"
	"github.com/paygate/paygate/schemas"
)

// While Kafka is down, the ingress answers a webhook 503 with a clear
// error, so the PSP sends it again; nothing is acknowledged that was not
// stored. Once the broker is back, the same webhook is accepted and is on
// the topic once.
func TestCallbackRefusedWhileKafkaIsDown(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts paygate")
	}
	b, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	cfg := testConfig(t)
	cfg.Brokers = []string{addr}
	e := startWith(t, cfg, app.Roles{Migrate: true, Ingress: true})

	body := []byte(`{"event_id":"evt_down","type":"payment.succeeded","payment_id":"sp_x","merchant_ref":"T1","status":"succeeded","amount":100,"currency":"USD","occurred_at":"2026-11-25T10:00:00Z"}`)
	h := http.Header{"X-Sim-Timestamp": {strconv.FormatInt(time.Now().Unix(), 10)}, "X-Sim-Signature": {"v1=00"}, "Content-Type": {"application/json"}}
	if code, b := e.do("POST", "/v1/callbacks/sim", body, h); code != 200 {
		t.Fatalf("with Kafka up: %d %s", code, b)
	}

	b.Close()
	code, resp := e.do("POST", "/v1/callbacks/sim", body, h)
	var problem struct{ Error string }
	if code != http.StatusServiceUnavailable || json.Unmarshal(resp, &problem) != nil || problem.Error != "unavailable" {
		t.Fatalf("with Kafka down: %d %s; want 503 and error \"unavailable\"", code, resp)
	}

	b, err = broker.StartEmbedded(broker.EmbeddedConfig{Addr: addr}) // a new, empty broker at the same address
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e.eventually(30*time.Second, "the topics on the new broker", func() bool {
		return broker.EnsureTopics(ctx, cfg.Brokers, broker.TopicConfig{Partitions: cfg.Topics.Partitions}) == nil
	})
	e.eventually(30*time.Second, "the webhook accepted again", func() bool {
		code, _ := e.do("POST", "/v1/callbacks/sim", body, h)
		return code == 200
	})
	stored := 0
	for p := range cfg.Topics.Partitions {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: schemas.TopicPSPCallbacks, Partition: p})
		lag, err := r.ReadLag(ctx)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		stored += int(lag)
	}
	if stored != 1 {
		t.Fatalf("%d callbacks on the new broker; want the one accepted", stored)
	}
}
