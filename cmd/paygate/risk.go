package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/paygate/paygate/domain/risk"
	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/wire"
	"github.com/paygate/paygate/schemas"
)

const riskUsage = "risk apply [--by NAME] [--note TEXT] FILE | show [--version N] | history [--limit N] | explain FILE|- | " +
	"reviews [--decided] [--limit N] | review ORDER_ID --approve|--deny [--note TEXT] [--by NAME]"

// runRisk is `paygate risk ...` (docs/risk.md).
func runRisk(ctx context.Context, cfg Config, args []string, stdin io.Reader, out io.Writer) error {
	if len(args) == 0 {
		return usageError{riskUsage}
	}
	cmd := args[0]
	rest := args[1:]
	c := &riskCmd{ctx: ctx, stdin: stdin, out: out}
	if cmd == "review" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return usageError{"risk review ORDER_ID --approve|--deny [--note TEXT] [--by NAME]"}
		}
		c.orderID, rest = rest[0], rest[1:]
	}
	fs := flag.NewFlagSet("risk "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.by, "by", "", "who (default: the OS user)")
	fs.StringVar(&c.note, "note", "", "why, for the audit trail")
	fs.Int64Var(&c.version, "version", 0, "a stored version (default: the one in force)")
	fs.IntVar(&c.limit, "limit", 20, "most entries to list")
	fs.BoolVar(&c.decided, "decided", false, "the newest decided reviews instead of the pending ones")
	fs.BoolVar(&c.approve, "approve", false, "approve the review: the held pay request is routed and initiated")
	fs.BoolVar(&c.deny, "deny", false, "deny the review: the held pay request is rejected (risk_denied)")
	if err := fs.Parse(rest); err != nil {
		return usageError{fmt.Sprintf("risk %s: %v", cmd, err)}
	}
	c.args = fs.Args()
	run, ok := riskCommands[cmd]
	if !ok {
		return usageError{fmt.Sprintf("unknown risk command %q: %s", cmd, riskUsage)}
	}
	log := newLogger(or(cfg.Log.Format, "text"), or(cfg.Log.Level, "warn"))
	r, err := app.OpenRisk(ctx, cfg.Config, log)
	if err != nil {
		return err
	}
	defer r.Close()
	c.r = r
	return run(c)
}

// riskCmd is one `paygate risk` command: its flags and arguments, and
// the risk control it works on.
type riskCmd struct {
	ctx                    context.Context
	r                      *app.Risk
	stdin                  io.Reader
	out                    io.Writer
	args                   []string
	orderID, by, note      string
	version                int64
	limit                  int
	decided, approve, deny bool
}

// riskCommands are the risk subcommands.
var riskCommands = map[string]func(*riskCmd) error{
	"apply":   (*riskCmd).apply,
	"show":    (*riskCmd).show,
	"history": (*riskCmd).history,
	"explain": (*riskCmd).explain,
	"reviews": (*riskCmd).reviews,
	"review":  (*riskCmd).review,
}

func (c *riskCmd) apply() error {
	if len(c.args) != 1 {
		return usageError{"risk apply [--by NAME] [--note TEXT] FILE"}
	}
	doc, err := os.ReadFile(c.args[0])
	if err != nil {
		return err
	}
	d, created, err := c.r.Store.ApplyDocument(c.ctx, store.DocRisk, doc, or(c.by, osUser()), "cli "+c.args[0], c.note, c.r.Checker.Validate)
	if err != nil {
		return err
	}
	if !created {
		fmt.Fprintf(c.out, "unchanged: version %d (applied by %s at %s) is already this document\n", d.Version, d.AppliedBy, d.AppliedAt.UTC().Format(time.RFC3339))
		return nil
	}
	fmt.Fprintf(c.out, "risk rules version %d applied by %s; every payinit member takes it within a few seconds\n", d.Version, d.AppliedBy)
	return nil
}

func (c *riskCmd) show() error {
	d, err := c.r.Store.LatestDocument(c.ctx, store.DocRisk)
	if c.version != 0 {
		d, err = c.r.Store.DocumentVersion(c.ctx, store.DocRisk, c.version)
	}
	if errors.Is(err, store.ErrNotFound) {
		if c.version != 0 {
			return fmt.Errorf("risk rules version %d: not stored", c.version)
		}
		fmt.Fprintln(c.out, "# no risk rules were ever applied: risk control is off (every pay request allowed, nothing counted)")
		return nil
	}
	if err != nil {
		return err
	}
	rules, err := risk.Parse(d.Document)
	if err != nil {
		return fmt.Errorf("stored version %d: %w", d.Version, err)
	}
	doc, err := rules.Document()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "# version %d, applied by %s at %s (%s)\n%s\n", d.Version, d.AppliedBy, d.AppliedAt.UTC().Format(time.RFC3339), d.Source, doc)
	return nil
}

func (c *riskCmd) history() error {
	ds, err := c.r.Store.Documents(c.ctx, store.DocRisk, c.limit)
	if err != nil {
		return err
	}
	return printDocumentHistory(c.out, ds)
}

func (c *riskCmd) explain() error {
	if len(c.args) != 1 {
		return usageError{"risk explain FILE|- (a pay request body, as POST /v1/payments takes)"}
	}
	body, err := readBodyArg(c.args[0], c.stdin)
	if err != nil {
		return err
	}
	return explainRisk(c.ctx, c.r, body, c.out)
}

func (c *riskCmd) reviews() error {
	rs, err := c.r.Store.Reviews(c.ctx, !c.decided, c.limit)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ORDER\tREVIEW\tSTATUS\tHELD AT\tEXPIRES (THEN)\tSCORE\tRULES\tDECIDED")
	for _, rv := range rs {
		var rules []string
		for _, m := range rv.Matched {
			rules = append(rules, m.Rule)
		}
		dec := "-"
		if rv.DecidedAt != nil {
			dec = rv.DecidedBy + " at " + rv.DecidedAt.UTC().Format("2006-01-02 15:04:05")
			if rv.Note != "" {
				dec += ": " + oneLine(rv.Note, 60)
			}
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s (%s)\t%d\t%s\t%s\n", rv.OrderID, rv.ID, rv.Status, rv.CreatedAt.UTC().Format("2006-01-02 15:04:05"),
			rv.ExpiresAt.UTC().Format("2006-01-02 15:04:05"), rv.Default, rv.Score, strings.Join(rules, ","), dec)
	}
	return w.Flush()
}

func (c *riskCmd) review() error {
	if c.approve == c.deny || len(c.args) != 0 {
		return usageError{"risk review ORDER_ID --approve|--deny [--note TEXT] [--by NAME]"}
	}
	actor := cliActor()
	if c.by != "" {
		actor.Name += "/" + c.by
	}
	rv, err := c.r.Store.DecideReview(c.ctx, c.orderID, c.approve, actor, c.note)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("order %s has no risk review", c.orderID)
	case errors.Is(err, risk.ErrReviewDecided):
		return fmt.Errorf("the review of %s was %s by %s: nothing done", c.orderID, rv.Status, rv.DecidedBy)
	case err != nil:
		return err
	}
	if c.approve {
		fmt.Fprintf(c.out, "review %d of %s approved: the pay request goes to payinit as %s, to be routed and initiated\n", rv.ID, c.orderID, rv.ReleaseID)
	} else {
		fmt.Fprintf(c.out, "review %d of %s denied: the pay request is rejected (risk_denied)\n", rv.ID, c.orderID)
	}
	return nil
}

// explainRisk prints the decision the rules in force would take on a pay
// request body now: the counts are read as they are, nothing is counted,
// stored or asked of the outside service.
func explainRisk(ctx context.Context, r *app.Risk, body []byte, out io.Writer) error {
	if err := schemas.Validate(schemas.PayRequestSchema, body); err != nil {
		return err
	}
	var req schemas.PayRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("pay request: %w", err)
	}
	in, err := wire.PayIntent(req, "explain", body)
	if err != nil {
		return err
	}
	d, err := r.Store.LatestDocument(ctx, store.DocRisk)
	if errors.Is(err, store.ErrNotFound) {
		fmt.Fprintln(out, "no risk rules were ever applied: risk control is off, every pay request is allowed")
		return nil
	}
	if err != nil {
		return err
	}
	rules, err := risk.Parse(d.Document)
	if err != nil {
		return fmt.Errorf("stored version %d: %w", d.Version, err)
	}
	rules.Version = d.Version
	now := time.Now()
	rr := in.RiskRequest()
	tally, err := r.Store.RiskCounts(ctx, rules.Probes(rr, now))
	if err != nil {
		return err
	}
	a := rules.Assess(rr, tally, nil, now)
	printAssessment(out, rules, a)
	if rules.Outside != nil {
		fmt.Fprintf(out, "(the outside service is not asked here; in payinit it would be, within %s, on failure: %s)\n", rules.Outside.Timeout, rules.Outside.OnFailure)
	}
	return nil
}

func printAssessment(out io.Writer, rules *risk.Rules, a risk.Assessment) {
	review := "no review"
	if rules.Thresholds.Review > 0 {
		review = fmt.Sprintf("review from %d", rules.Thresholds.Review)
	}
	fmt.Fprintf(out, "rules version %d: %s, score %d (%s, deny from %d)\n", a.RulesVersion, strings.ToUpper(a.Decision.String()), a.Score, review, rules.Thresholds.Deny)
	if a.Decision == risk.Review {
		def := "deny"
		if a.ReviewDefault == risk.Allow {
			def = "approve"
		}
		fmt.Fprintf(out, "held for review until %s, then %s\n", a.ReviewExpires.UTC().Format(time.RFC3339), def)
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "RULE\tPOINTS\tWHAT IT SAW")
	for _, m := range a.Matched {
		fmt.Fprintf(w, "%s\t%d\t%s\n", m.Rule, m.Points, m.Detail)
	}
	if len(a.Inputs.Counts) > 0 {
		fmt.Fprintln(w, "\nCOUNT\tKEY\tWINDOW\tN (AMOUNT)")
		for _, c := range a.Inputs.Counts {
			amount := ""
			if c.Currency != "" {
				amount = fmt.Sprintf(" (%d %s)", c.Amount, c.Currency)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d%s\n", c.Rule, c.Key, c.Window, c.N, amount)
		}
	}
	_ = w.Flush()
	if a.Inputs.IPCountry != "" {
		fmt.Fprintf(out, "IP country: %s\n", a.Inputs.IPCountry)
	}
}
