package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/broker/brokertest"
	"github.com/paygate/paygate/internal/console"
	"github.com/paygate/paygate/internal/pgtest"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/schemas"
)

// `paygate dlq list|replay|sizes` against a broker and a database:
// records dead-lettered with their reasons are listed, sent back to their
// topic once with a replay count, and a second run sends nothing.
func TestDLQCommands(t *testing.T) {
	ctx, b := brokertest.Start(t, 2)
	url := pgtest.New(t)
	cfg, err := LoadConfig(func(k string) string {
		return map[string]string{"DATABASE_URL": url, "KAFKA_BROKERS": b.Addr()}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := producers.NewWriter(producers.WriterConfig{Brokers: []string{b.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	dlqTopic := schemas.DLQ(schemas.TopicPSPCallbacks)
	for _, id := range []string{"cb-1", "cb-2"} {
		if err := w.Write(ctx, producers.Message{Topic: dlqTopic, Key: "sim/T" + id, ID: id, Type: "t", Value: []byte(`{"x":1}`),
			Extra: []kafka.Header{{Key: schemas.HeaderDLQReason, Value: []byte("unknown channel \"nope\"")},
				{Key: schemas.HeaderDLQOrigin, Value: []byte(schemas.TopicPSPCallbacks + "/0/7")}}}); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runDLQ(ctx, cfg, args, &out)
		return out.String(), err
	}

	out, err := run("list", schemas.TopicPSPCallbacks)
	if err != nil || strings.Count(out, `unknown channel "nope"`) != 2 || !strings.Contains(out, "cb-1") || !strings.Contains(out, "cb-2") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err = run("replay", schemas.TopicPSPCallbacks); err != nil || !strings.Contains(out, "replayed 2 records from "+dlqTopic) {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	if out, err = run("replay", schemas.TopicPSPCallbacks); err != nil || !strings.HasPrefix(out, "replayed 0 records") {
		t.Fatalf("second replay: %v\n%s", err, out)
	}
	out, err = run("list", schemas.TopicPSPCallbacks)
	if err != nil || strings.Count(out, " by cli:") != 2 {
		t.Errorf("list after the replay shows who replayed: %v\n%s", err, out)
	}
	if out, err = run("sizes"); err != nil || !strings.Contains(strings.Join(strings.Fields(out), " "), dlqTopic+" 2 0") {
		t.Errorf("sizes: %v\n%s", err, out)
	}

	// Both came back to their topic once, with their ids and a replay count.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr()}, Topic: schemas.TopicPSPCallbacks, GroupID: "check", StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	seen := map[string]string{}
	for len(seen) < 2 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		if h[schemas.HeaderDLQReason] != "" || h[schemas.HeaderDLQOrigin] != "" {
			t.Errorf("replayed %s keeps the DLQ's headers: %v", h[schemas.HeaderID], h)
		}
		seen[h[schemas.HeaderID]] = h[schemas.HeaderReplayCount]
	}
	if seen["cb-1"] != "1" || seen["cb-2"] != "1" {
		t.Errorf("replayed ids and counts = %v", seen)
	}

	for _, bad := range [][]string{{"replay"}, {"replay", dlqTopic}, {"replay", "paygate.nope.v1"}, {"list"}, {"replay", schemas.TopicPSPCallbacks, "-record", "x"}, {"purge", "x"}} {
		var u usageError
		if _, err := run(bad...); !errors.As(err, &u) {
			t.Errorf("dlq %v: %v, want a usage error", bad, err)
		}
	}
	if _, err := run("replay", schemas.TopicPSPCallbacks, "-record", "0@99"); err == nil || !strings.Contains(err.Error(), "no such record") {
		t.Errorf("replay of a missing record: %v", err)
	}
}

// `paygate console hash-password` hashes the first line of stdin; the
// hash is one PAYGATE_CONSOLE_USERS takes.
func TestConsoleHashPassword(t *testing.T) {
	var out bytes.Buffer
	if err := runConsole([]string{"hash-password"}, strings.NewReader("correct horse battery\n"), &out); err != nil {
		t.Fatal(err)
	}
	h := strings.TrimSpace(out.String())
	if !strings.HasPrefix(h, "$2a$12$") {
		t.Fatalf("hash %q", h)
	}
	if _, err := console.ParseUsers("alice:operator:" + h); err != nil {
		t.Errorf("the printed hash is refused: %v", err)
	}
	var u usageError
	if err := runConsole([]string{"hash-password"}, strings.NewReader("short\n"), &out); !errors.As(err, &u) {
		t.Errorf("short password: %v", err)
	}
}
