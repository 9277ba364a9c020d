package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/paygate/paygate/internal/dlq"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/schemas"
)

// runOrder prints an order's whole history: `paygate order ORDER_ID`.
func runOrder(ctx context.Context, cfg Config, args []string, out io.Writer) error {
	if len(args) != 1 {
		return usageError{"order needs one order id"}
	}
	st, err := store.Open(ctx, store.Config{URL: cfg.Store.URL, MaxConns: 2}, nil)
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

// runDLQ is `paygate dlq replay|list|sizes`: the same code (internal/dlq)
// as the console's Dead letters page, audited as the OS user who ran it.
func runDLQ(ctx context.Context, cfg Config, args []string, out io.Writer) error {
	const usage = "dlq replay TOPIC [-limit N] [-record PARTITION@OFFSET] | dlq list TOPIC [-limit N] | dlq sizes"
	if len(args) == 0 || (args[0] != "sizes" && len(args) < 2) {
		return usageError{usage}
	}
	fs := flag.NewFlagSet("dlq "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	limit := fs.Int("limit", 0, "replay: most records to send (0: every one that is in the DLQ now); list: records to show (default 20)")
	record := fs.String("record", "", "replay only the record at PARTITION@OFFSET")
	var topic string
	rest := args[1:]
	if args[0] != "sizes" {
		topic, rest = args[1], args[2:]
	}
	if err := fs.Parse(rest); err != nil || fs.NArg() > 0 {
		return usageError{usage}
	}
	if topic != "" {
		if _, err := dlq.CheckTopic(topic); err != nil {
			return usageError{err.Error()}
		}
	}
	if len(cfg.Brokers) == 0 {
		return errors.New("KAFKA_BROKERS is not set (paygate dev's embedded broker: 127.0.0.1:9092)")
	}
	sec, err := cfg.Kafka.Build()
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, store.Config{URL: cfg.Store.URL, MaxConns: 4, StatementCache: cfg.Store.StatementCache}, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	log := newLogger(or(cfg.Log.Format, "text"), or(cfg.Log.Level, "warn"))
	svc, err := dlq.New(dlq.Config{Brokers: cfg.Brokers, Transport: sec.Transport()}, st, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	switch args[0] {
	case "replay":
		if *record != "" {
			p, o, ok := strings.Cut(*record, "@")
			part, err1 := strconv.Atoi(p)
			off, err2 := strconv.ParseInt(o, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				return usageError{fmt.Sprintf("-record %q: PARTITION@OFFSET, as dlq list shows it", *record)}
			}
			r, err := svc.ReplayOne(ctx, topic, part, off, cliActor())
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "replayed %s %d@%d (message %s) to %s\n", schemas.DLQ(topic), part, off, r.MessageID, topic)
			return nil
		}
		res, err := svc.Replay(ctx, topic, *limit, cliActor())
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "replayed %d records from %s to %s", res.Sent, res.DLQTopic, topic)
		if res.Skipped > 0 {
			fmt.Fprintf(out, "; skipped %d replayed before", res.Skipped)
		}
		if res.Left > 0 {
			fmt.Fprintf(out, "; %d left for the next run (-limit %d)", res.Left, *limit)
		}
		fmt.Fprintln(out)
		return nil
	case "list":
		n := *limit
		if n <= 0 {
			n = 20
		}
		recs, err := svc.List(ctx, topic, n)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "TIME\tRECORD\tREPLAYS\tMESSAGE\tREASON\tREPLAYED")
		for _, r := range recs {
			replayed := "-"
			if r.Replayed != nil {
				replayed = r.Replayed.ReplayedAt.UTC().Format("2006-01-02 15:04:05") + " by " + r.Replayed.Actor
			}
			fmt.Fprintf(w, "%s\t%d@%d\t%d\t%s\t%s\t%s\n", r.Time.UTC().Format("2006-01-02 15:04:05.000"), r.Partition, r.Offset,
				r.ReplayCount, r.MessageID, oneLine(r.Reason, 100), replayed)
		}
		return w.Flush()
	case "sizes":
		sizes, err := svc.Sizes(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "DLQ\tRECORDS\tNOT REPLAYED")
		for _, s := range sizes {
			fmt.Fprintf(w, "%s\t%d\t%d\n", s.DLQTopic, s.Total, s.Pending)
		}
		return w.Flush()
	}
	return usageError{usage}
}

// cliActor is who runs an operator command, for the audit log.
func cliActor() store.Actor {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return store.Actor{Name: "cli:" + or(name, "unknown") + "@" + or(host, "unknown")}
}

// oneLine cuts s to n runes on one line.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
