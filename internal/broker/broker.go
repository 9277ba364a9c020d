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

// EmbeddedConfig configures the embedded broker. Each setting's variable,
// default and help are its tags (internal/settings); StartEmbedded fills
// a zero Addr and Retention with the same defaults, which a test holds to
// the tags.
type EmbeddedConfig struct {
	// Addr is host:port to listen on; port 0 picks a free one.
	Addr string `env:"PAYGATE_KAFKA_ADDR" default:"127.0.0.1:9092" help:"embedded broker"`
	// DataDir persists topics and offsets across restarts. Empty (in
	// code) keeps everything in memory.
	DataDir string `env:"PAYGATE_DATA_DIR" default:"./data" help:"embedded broker state"`
	// Retention is how long records are kept, so that a long run does not
	// grow without bound.
	Retention time.Duration `env:"PAYGATE_KAFKA_RETENTION" default:"24h" help:"embedded broker"`
}

func (c *EmbeddedConfig) defaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:9092"
	}
	if c.Retention == 0 {
		c.Retention = 24 * time.Hour
	}
}

// Embedded is a running in-process broker.
type Embedded struct {
	c    *kfake.Cluster
	addr string
}

// StartEmbedded starts a one-node kfake cluster on cfg.Addr.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	cfg.defaults()
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

// TopicConfig says how to create paygate's topics. Partitions and
// ReplicationFactor are settings: their variables, defaults and help are
// their tags (internal/settings); EnsureTopics fills them in when zero
// with the same defaults, which a test holds to the tags.
type TopicConfig struct {
	// Partitions per topic.
	Partitions int `env:"PAYGATE_PARTITIONS" default:"8" min:"1" help:"partitions per topic paygate creates; how many members of a group can work at once"`
	// ReplicationFactor (the embedded broker has one node; production
	// sets 3).
	ReplicationFactor int `env:"PAYGATE_REPLICATION_FACTOR" default:"1" min:"1" help:"of the topics paygate creates; 3 in production"`
	// Retention of records. Default 7 days (168h); the app gives the
	// embedded broker's topics its retention instead.
	Retention time.Duration
	// Security connects to the brokers. Default: plaintext.
	Security Security
}

func (c *TopicConfig) defaults() {
	if c.Partitions == 0 {
		c.Partitions = 8
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 1
	}
	if c.Retention == 0 {
		c.Retention = 7 * 24 * time.Hour
	}
}

// EnsureTopics creates every paygate topic (and DLQ) that does not exist.
func EnsureTopics(ctx context.Context, brokers []string, cfg TopicConfig) error {
	cfg.defaults()
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
