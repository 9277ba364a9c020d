package app

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/schemas"
)

// The embedded broker holds records in memory, so the topics paygate
// creates on it keep them for its retention (PAYGATE_KAFKA_RETENTION), not
// for the 7 days a real cluster's topics get.
func TestEmbeddedTopicsKeepTheBrokersRetention(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := Start(ctx, Config{KafkaAddr: "127.0.0.1:0", SimAddr: "127.0.0.1:8090", DataDir: t.TempDir(), Retention: 90 * time.Second, Partitions: 1},
		Roles{Broker: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = a.Wait() }()
	c := &kafka.Client{Addr: kafka.TCP(a.Brokers...), Timeout: 5 * time.Second}
	for _, topic := range []string{schemas.TopicPSPCallbacks, schemas.TopicPayments} {
		resp, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"}}}})
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, r := range resp.Resources {
			for _, e := range r.ConfigEntries {
				if e.ConfigName == "retention.ms" {
					got = e.ConfigValue
				}
			}
		}
		if got != "90000" {
			t.Errorf("%s: retention.ms %q, want 90000", topic, got)
		}
	}
}
