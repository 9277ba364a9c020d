// Package brokertest starts the embedded Kafka-protocol broker for tests.
package brokertest

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/broker"
)

// Start starts an embedded broker on a free port with paygate's topics of
// the given partitions, closed when t ends, and returns it with a context
// for the test, bounded to a minute.
func Start(t testing.TB, partitions int) (context.Context, *broker.Embedded) {
	t.Helper()
	b, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	if err := broker.EnsureTopics(ctx, []string{b.Addr()}, broker.TopicConfig{Partitions: partitions}); err != nil {
		t.Fatal(err)
	}
	return ctx, b
}
