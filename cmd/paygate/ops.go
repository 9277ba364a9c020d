package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/schemas"
)

// runOrder prints an order's whole history: `paygate order ORDER_ID`.
func runOrder(ctx context.Context, cfg app.Config, args []string, out io.Writer) error {
	if len(args) != 1 {
		return usageError{"order needs one order id"}
	}
	st, err := store.Open(ctx, store.Config{URL: cfg.DatabaseURL, MaxConns: 2}, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	hist, err := st.History(ctx, args[0])
	if err != nil {
		return err
	}
	if len(hist) == 0 {
		return fmt.Errorf("nothing is known about order %q", args[0])
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tWHAT\tREFERENCE\tDETAIL")
	for _, h := range hist {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", h.At.UTC().Format("2006-01-02 15:04:05.000"), h.Kind, h.Ref, h.Detail)
	}
	return w.Flush()
}

// runDLQ replays dead-lettered messages to the topic they came from:
// `paygate dlq replay TOPIC [-limit N] [-wait 5s]`. It reads the topic's
// DLQ with its own consumer group, so a message is replayed once; run it
// after fixing what made the messages fail.
func runDLQ(ctx context.Context, cfg app.Config, args []string, out io.Writer) error {
	if len(args) < 2 || args[0] != "replay" {
		return usageError{"dlq replay TOPIC [-limit N] [-wait 5s]"}
	}
	topic := args[1]
	fs := flag.NewFlagSet("dlq replay", flag.ContinueOnError)
	limit := fs.Int("limit", 1000, "most messages to replay")
	wait := fs.Duration("wait", 5*time.Second, "stop after this long without a message")
	if err := fs.Parse(args[2:]); err != nil {
		return usageError{err.Error()}
	}
	if len(cfg.Brokers) == 0 {
		return errors.New("KAFKA_BROKERS is not set")
	}
	known := false
	for _, t := range schemas.Topics() {
		known = known || t == topic
	}
	if !known || strings.HasSuffix(topic, ".dlq") {
		return usageError{fmt.Sprintf("%q is not a paygate topic (name the source topic, not its .dlq)", topic)}
	}
	sec, err := cfg.Kafka.Build()
	if err != nil {
		return err
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Dialer: sec.Dialer(), GroupID: "paygate-dlq-replay", Topic: schemas.DLQ(topic),
		StartOffset: kafka.FirstOffset, CommitInterval: 0, MaxWait: time.Second})
	defer r.Close()
	w := &kafka.Writer{Addr: kafka.TCP(cfg.Brokers...), Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 2 * time.Millisecond, Transport: sec.Transport()}
	defer w.Close()
	n := 0
	for n < *limit {
		fctx, cancel := context.WithTimeout(ctx, *wait)
		m, err := r.FetchMessage(fctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				break // caught up
			}
			return fmt.Errorf("read %s: %w", schemas.DLQ(topic), err)
		}
		var headers []kafka.Header
		for _, h := range m.Headers {
			if h.Key != schemas.HeaderDLQReason && h.Key != schemas.HeaderDLQOrigin {
				headers = append(headers, h)
			}
		}
		if err := w.WriteMessages(ctx, kafka.Message{Topic: topic, Key: m.Key, Value: m.Value, Headers: headers}); err != nil {
			return fmt.Errorf("replay to %s: %w", topic, err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			return fmt.Errorf("commit %s: %w", schemas.DLQ(topic), err)
		}
		n++
	}
	fmt.Fprintf(out, "replayed %d messages from %s to %s\n", n, schemas.DLQ(topic), topic)
	return nil
}
