// Package broker is the Kafka plumbing that is neither producing nor
// consuming: the embedded Kafka-protocol broker of `paygate dev` and
// tests (franz-go's kfake, spoken to over TCP like any broker), and topic
// creation.
package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/paygate/paygate/schemas"
)

// EmbeddedConfig configures the embedded broker.
type EmbeddedConfig struct {
	// Addr is host:port to listen on. Default 127.0.0.1:9092; port 0
	// picks a free one.
	Addr string
	// DataDir persists topics and offsets across restarts. Empty keeps
	// everything in memory.
	DataDir string
	// Retention is how long records are kept. Default 24h, so that a long
	// run does not grow without bound.
	Retention time.Duration
}

// Embedded is a running in-process broker.
type Embedded struct {
	c    *kfake.Cluster
	addr string
}

// StartEmbedded starts a one-node kfake cluster on cfg.Addr.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:9092"
	}
	if cfg.Retention == 0 {
		cfg.Retention = 24 * time.Hour
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker addr %q: %w", cfg.Addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("embedded broker port %q: %w", port, err)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(p),
		kfake.ClusterID("paygate-embedded"),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(p)))
		}),
		kfake.BrokerConfigs(map[string]string{
			"log.retention.ms":       strconv.FormatInt(cfg.Retention.Milliseconds(), 10),
			"log.cleaner.backoff.ms": "60000",
			"message.max.bytes":      strconv.Itoa(MaxMessageBytes),
		}),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker on %s: %w", cfg.Addr, err)
	}
	return &Embedded{c: c, addr: c.ListenAddrs()[0]}, nil
}

// Addr is the broker's address for clients.
func (e *Embedded) Addr() string { return e.addr }

// Close stops the broker (persisting state if it has a data directory).
func (e *Embedded) Close() { e.c.Close() }

// MaxMessageBytes is the record batch limit of paygate's topics (and of
// the embedded broker): 8 MiB, well above the largest raw callback.
const MaxMessageBytes = 8 << 20

// TopicConfig says how to create paygate's topics.
type TopicConfig struct {
	// Partitions per topic. Default 8.
	Partitions int
	// ReplicationFactor. Default 1 (the embedded broker has one node;
	// production sets 3).
	ReplicationFactor int
	// Retention of records. Default 7 days (168h).
	Retention time.Duration
	// Security connects to the brokers. Default: plaintext.
	Security Security
}

// EnsureTopics creates every paygate topic (and DLQ) that does not exist.
func EnsureTopics(ctx context.Context, brokers []string, cfg TopicConfig) error {
	if cfg.Partitions == 0 {
		cfg.Partitions = 8
	}
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = 1
	}
	if cfg.Retention == 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	tr := cfg.Security.Transport()
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: tr}
	var topics []kafka.TopicConfig
	for _, t := range schemas.Topics() {
		topics = append(topics, kafka.TopicConfig{
			Topic: t, NumPartitions: cfg.Partitions, ReplicationFactor: cfg.ReplicationFactor,
			ConfigEntries: []kafka.ConfigEntry{
				{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(cfg.Retention.Milliseconds(), 10)},
				// A raw callback (up to the ingress's body limit, base64
				// in JSON, with headers) must fit in one record.
				{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(MaxMessageBytes)},
			},
		})
	}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("create topics on %v: %w", brokers, err)
	}
	for t, e := range resp.Errors {
		if e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t, e)
		}
	}
	return nil
}
