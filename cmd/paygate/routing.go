package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/domain/routing"
	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/schemas"
)

const routingUsage = "routing apply [--by NAME] [--note TEXT] FILE | show [--version N] | history [--limit N] | " +
	"health [--format table|json] | explain FILE|- | backtest --policy FILE --from T1 --to T2 [--seed N] [--bucket 1h] [--format table|json]"

// runRouting is `paygate routing ...` (docs/routing.md).
func runRouting(ctx context.Context, cfg Config, args []string, stdin io.Reader, out io.Writer) error {
	if len(args) == 0 {
		return usageError{routingUsage}
	}
	c := &routingCmd{ctx: ctx, stdin: stdin, out: out}
	fs := flag.NewFlagSet("routing "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.by, "by", "", "who applies the policy (default: the OS user)")
	fs.StringVar(&c.note, "note", "", "why, for the audit trail")
	fs.Int64Var(&c.version, "version", 0, "a stored version (default: the one in force)")
	fs.IntVar(&c.limit, "limit", 20, "most versions to list")
	fs.StringVar(&c.format, "format", "table", "table or json")
	fs.StringVar(&c.policyFile, "policy", "", "the policy document to replay")
	fs.StringVar(&c.from, "from", "", "start of the window (RFC 3339, or YYYY-MM-DD)")
	fs.StringVar(&c.to, "to", "", "end of the window, excluded (RFC 3339, or YYYY-MM-DD)")
	fs.Uint64Var(&c.seed, "seed", 1, "the replay's random seed: the same seed gives the same report")
	fs.DurationVar(&c.bucket, "bucket", time.Hour, "time bucket of the outcome model and the shares")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{fmt.Sprintf("routing %s: %v", args[0], err)}
	}
	c.args = fs.Args()
	if c.format != "table" && c.format != "json" {
		return usageError{fmt.Sprintf("--format %q: table or json", c.format)}
	}
	log := newLogger(or(cfg.Log.Format, "text"), or(cfg.Log.Level, "warn"))
	cmd := args[0]
	run, ok := routingCommands[cmd]
	if !ok {
		return usageError{fmt.Sprintf("unknown routing command %q: %s", cmd, routingUsage)}
	}
	feedback := cmd == "health" || cmd == "explain" // they need the health the feedback topic gives
	r, err := app.OpenRouting(ctx, cfg.Config, feedback, log)
	if err != nil {
		return err
	}
	defer r.Close()
	c.r = r
	return run(c)
}

// routingCmd is one `paygate routing` command: its flags and arguments,
// and the routing it works on.
type routingCmd struct {
	ctx                                    context.Context
	r                                      *app.Routing
	stdin                                  io.Reader
	out                                    io.Writer
	args                                   []string
	by, note, format, policyFile, from, to string
	version                                int64
	limit                                  int
	seed                                   uint64
	bucket                                 time.Duration
}

// routingCommands are the routing subcommands.
var routingCommands = map[string]func(*routingCmd) error{
	"apply":    (*routingCmd).apply,
	"show":     (*routingCmd).show,
	"history":  (*routingCmd).history,
	"health":   (*routingCmd).health,
	"explain":  (*routingCmd).explain,
	"backtest": (*routingCmd).backtest,
}

func (c *routingCmd) apply() error {
	if len(c.args) != 1 {
		return usageError{"routing apply [--by NAME] [--note TEXT] FILE"}
	}
	doc, err := os.ReadFile(c.args[0])
	if err != nil {
		return err
	}
	who := c.by
	if who == "" {
		who = osUser()
	}
	p, created, err := c.r.Store.ApplyRoutingPolicy(c.ctx, doc, who, "cli "+c.args[0], c.note, c.r.Router.Validate)
	if err != nil {
		return err
	}
	if !created {
		fmt.Fprintf(c.out, "unchanged: version %d (applied by %s at %s) is already this document\n", p.Version, p.AppliedBy, p.AppliedAt.UTC().Format(time.RFC3339))
		return nil
	}
	fmt.Fprintf(c.out, "routing policy version %d applied by %s; every payinit member takes it within a few seconds\n", p.Version, p.AppliedBy)
	return nil
}

func (c *routingCmd) show() error {
	p := c.r.Router.Policy()
	header := "version 0: the default (no policy was ever applied)"
	if c.version != 0 {
		sp, err := c.r.Store.RoutingPolicyVersion(c.ctx, c.version)
		if err != nil {
			return fmt.Errorf("routing policy version %d: %w", c.version, err)
		}
		if p, err = routing.Parse(sp.Document, nil); err != nil {
			return err
		}
		p.Version = sp.Version
	}
	if p.Version != 0 {
		sp, err := c.r.Store.RoutingPolicyVersion(c.ctx, p.Version)
		if err != nil {
			return err
		}
		header = fmt.Sprintf("version %d, applied by %s at %s (%s)", sp.Version, sp.AppliedBy, sp.AppliedAt.UTC().Format(time.RFC3339), sp.Source)
	}
	doc, err := p.Document()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "# %s\n%s\n", header, doc)
	return nil
}

func (c *routingCmd) history() error {
	ps, err := c.r.Store.RoutingPolicies(c.ctx, c.limit)
	if err != nil {
		return err
	}
	return printDocumentHistory(c.out, ps)
}

func (c *routingCmd) health() error {
	rows := c.r.Router.Health()
	if c.format == "json" {
		return json.NewEncoder(c.out).Encode(map[string]any{"policy_version": c.r.Router.Policy().Version, "channels": rows})
	}
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "# policy version %d\n", c.r.Router.Policy().Version)
	fmt.Fprintln(w, "SEGMENT\tCHANNEL\tSUCCESS\tSAMPLES\tPENDING\tABANDONED\tBREAKER\tINITIATES (FAILED)\tSHARE")
	for _, h := range rows {
		sr := "-"
		if h.SuccessRate != nil {
			sr = fmt.Sprintf("%.1f%%", 100**h.SuccessRate)
		}
		br := h.Breaker
		if h.BreakerReason != "" {
			br += " (" + h.BreakerReason + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%.1f\t%s\t%d (%d)\t%.1f%%\n", h.Segment, h.Channel, sr, h.Samples, h.Pending, h.Abandoned, br,
			h.Initiates, h.InitiateFailures, 100*h.Share)
	}
	return w.Flush()
}

func (c *routingCmd) explain() error {
	if len(c.args) != 1 {
		return usageError{"routing explain FILE|- (a pay request body, as POST /v1/payments takes)"}
	}
	body, err := readBodyArg(c.args[0], c.stdin)
	if err != nil {
		return err
	}
	in, err := explainIntent(body)
	if err != nil {
		return err
	}
	usable := domain.UsableBy(c.r.Rules, in)
	req := routing.Request{Country: in.Country, Currency: in.Amount.Currency().Code(), Method: in.Method, Bank: in.Bank,
		Amount: in.Amount.Minor(), Channel: in.Channel}
	d, err := c.r.Router.Decide(req, usable)
	if err != nil {
		return err
	}
	printDecision(c.out, d)
	return nil
}

func (c *routingCmd) backtest() error {
	if c.policyFile == "" || c.from == "" || c.to == "" || len(c.args) != 0 {
		return usageError{"routing backtest --policy FILE --from T1 --to T2 [--seed N] [--bucket 1h] [--format table|json]"}
	}
	doc, err := os.ReadFile(c.policyFile)
	if err != nil {
		return err
	}
	p, err := routing.Parse(doc, nil) // a policy may name channels not configured here: they have no records
	if err != nil {
		return err
	}
	t1, err := parseWhen(c.from)
	if err != nil {
		return usageError{"--from: " + err.Error()}
	}
	t2, err := parseWhen(c.to)
	if err != nil {
		return usageError{"--to: " + err.Error()}
	}
	var recs []routing.Record
	if err := c.r.Store.RoutingRecords(c.ctx, t1, t2, func(rec routing.Record) error { recs = append(recs, rec); return nil }); err != nil {
		return err
	}
	rep, err := routing.Backtest(recs, routing.BacktestConfig{Policy: p, Seed: c.seed, Bucket: c.bucket})
	if err != nil {
		return fmt.Errorf("backtest %s to %s: %w", t1.Format(time.RFC3339), t2.Format(time.RFC3339), err)
	}
	if c.format == "json" {
		return writeBacktestJSON(c.out, rep)
	}
	printBacktest(c.out, rep)
	return nil
}

func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return or(os.Getenv("USER"), "unknown")
}

// explainIntent reads a pay request body as the ingress does.
func explainIntent(body []byte) (domain.PayIntent, error) {
	if err := schemas.Validate(schemas.PayRequestSchema, body); err != nil {
		return domain.PayIntent{}, err
	}
	var req schemas.PayRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return domain.PayIntent{}, fmt.Errorf("pay request: %w", err)
	}
	amount, err := domain.NewMoney(req.Amount, req.Currency)
	if err != nil {
		return domain.PayIntent{}, fmt.Errorf("pay request: %w", err)
	}
	return domain.PayIntent{OrderID: req.OrderID, Amount: amount, Country: req.Country, Method: req.Method, Bank: req.Bank, Channel: req.Channel}, nil
}

func printDecision(out io.Writer, d routing.Decision) {
	fmt.Fprintf(out, "policy version %d, segment %s (%s split", d.PolicyVersion, d.Segment, d.Split)
	if d.Algorithm != (routing.Algorithm{}) {
		fmt.Fprintf(out, ", %s", d.Algorithm)
	}
	fmt.Fprintf(out, ")\nchosen: %s, because: %s (chance %.1f%%)", d.Chosen, d.Reason, 100*d.Propensity)
	if len(d.Failover) > 0 {
		fmt.Fprintf(out, "; fails over to %s", strings.Join(d.Failover, ", then "))
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "CANDIDATE\tWEIGHT\tPRIORITY\tSUCCESS\tSAMPLES\tBREAKER\tSCORE\tCHANCE\tEXCLUDED")
	for _, c := range d.Candidates {
		sr := "-"
		if c.SuccessRate >= 0 {
			sr = fmt.Sprintf("%.1f%%", 100*c.SuccessRate)
		}
		score := "-"
		if c.Score != 0 {
			score = fmt.Sprintf("%.3f", c.Score)
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%d\t%s\t%s\t%.1f%%\t%s\n", c.Channel, c.Weight, c.Priority, sr, c.Resolved, c.Breaker, score, 100*c.Propensity, c.Excluded)
	}
	_ = w.Flush()
}

// parseWhen reads RFC 3339 or a UTC day.
func parseWhen(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: RFC 3339 (2026-12-07T10:00:00Z) or a day (2026-12-07)", s)
}

func pct(f float64) string {
	if math.IsNaN(f) {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*f)
}

func printBacktest(out io.Writer, rep routing.BacktestReport) {
	fmt.Fprintf(out, "backtest of %q (%s), %s to %s\n", rep.PolicyLabel, or(rep.Algorithm, "-"), rep.From.UTC().Format(time.RFC3339), rep.To.UTC().Format(time.RFC3339))
	fmt.Fprintf(out, "pay requests %d; covered %.1f%% (%d with no record of the chosen channel, left out)\n", rep.Requests, 100*rep.Coverage, rep.Unsupported)
	fmt.Fprintf(out, "success rate: what happened %s [%s, %s]; this policy %s expected, %s drawn [%s, %s]\n",
		pct(rep.Actual.Rate), pct(rep.Actual.Low), pct(rep.Actual.High), pct(rep.Expected), pct(rep.Simulated.Rate), pct(rep.Simulated.Low), pct(rep.Simulated.High))
	fmt.Fprintf(out, "oracle (best channel per segment and hour): %s; by its lower bound %s; regret %.0f payments (%.0f against the lower bound)\n",
		pct(rep.Oracle), pct(rep.OracleLower), rep.Regret, rep.RegretLower)
	fmt.Fprintf(out, "replay on explored attempts: %s over %d; inverse-propensity estimate: %s over %d\n", pct(rep.Replay.Rate), rep.Replay.N, pct(rep.IPS), rep.IPSMatched)
	if len(rep.Trips) > 0 {
		fmt.Fprint(out, "breaker trips:")
		for arm, n := range rep.Trips {
			fmt.Fprintf(out, " %s %d", arm, n)
		}
		fmt.Fprintln(out)
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\nBUCKET\tCHANNEL\tPOLICY SHARE\tACTUAL SHARE")
	for _, s := range rep.Shares {
		fmt.Fprintf(w, "%s\t%s\t%.1f%%\t%.1f%%\n", s.Bucket.Format("2006-01-02 15:04"), s.Channel, 100*s.Policy, 100*s.Actual)
	}
	fmt.Fprintln(w, "\nBUCKET\tSEGMENT\tCHANNEL\tATTEMPTS\tPAID\tINITIATE FAILED\tRATE [95%]")
	for _, c := range rep.Cells {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%s [%s, %s]\n", c.Bucket.Format("2006-01-02 15:04"), c.Segment, c.Channel, c.N, c.Paid, c.InitiateFailed,
			pct(c.Rate), pct(c.Low), pct(c.High))
	}
	_ = w.Flush()
}

func writeBacktestJSON(out io.Writer, rep routing.BacktestReport) error {
	num := func(f float64) any {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		return f
	}
	iv := func(i routing.Interval) map[string]any {
		return map[string]any{"n": i.N, "successes": i.Successes, "rate": num(i.Rate), "low": num(i.Low), "high": num(i.High)}
	}
	trips := map[string]int{}
	for arm, n := range rep.Trips {
		trips[arm.String()] = n
	}
	var shares, cells []map[string]any
	for _, s := range rep.Shares {
		shares = append(shares, map[string]any{"bucket": s.Bucket, "channel": s.Channel, "policy": s.Policy, "actual": s.Actual})
	}
	for _, c := range rep.Cells {
		cells = append(cells, map[string]any{"bucket": c.Bucket, "segment": c.Segment, "channel": c.Channel, "attempts": c.N, "paid": c.Paid,
			"initiate_failed": c.InitiateFailed, "rate": num(c.Rate), "low": num(c.Low), "high": num(c.High)})
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{
		"policy": rep.PolicyLabel, "algorithm": rep.Algorithm, "from": rep.From, "to": rep.To,
		"requests": rep.Requests, "unsupported": rep.Unsupported, "coverage": rep.Coverage,
		"actual": iv(rep.Actual), "simulated": iv(rep.Simulated), "expected": num(rep.Expected),
		"oracle": num(rep.Oracle), "oracle_lower": num(rep.OracleLower), "regret": num(rep.Regret), "regret_lower": num(rep.RegretLower),
		"replay": iv(rep.Replay), "ips": num(rep.IPS), "ips_matched": rep.IPSMatched, "breaker_trips": trips,
		"shares": shares, "cells": cells,
	})
}

// readBodyArg reads a request body named on the command line: a file, or
// standard input for "-" (at most 1 MiB).
func readBodyArg(arg string, stdin io.Reader) ([]byte, error) {
	if arg == "-" {
		return io.ReadAll(io.LimitReader(stdin, 1<<20))
	}
	return os.ReadFile(arg)
}

// printDocumentHistory is a versioned document's audit trail, newest
// first (`paygate routing history`, `paygate risk history`).
func printDocumentHistory(out io.Writer, ds []store.Document) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "VERSION\tAPPLIED AT\tBY\tSOURCE\tSHA256\tNOTE")
	for _, d := range ds {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", d.Version, d.AppliedAt.UTC().Format(time.RFC3339), d.AppliedBy, d.Source, d.SHA256[:12], d.Note)
	}
	return w.Flush()
}
