package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/producers/settlement"
	"github.com/paygate/paygate/schemas"
)

// runRecon is `paygate recon run|import|report`.
func runRecon(ctx context.Context, cfg Config, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError{"recon needs run, import or report"}
	}
	fs := flag.NewFlagSet("recon "+args[0], flag.ContinueOnError)
	channel := fs.String("channel", "", "channel name")
	date := fs.String("date", "", "business day, YYYY-MM-DD in the channel's time zone")
	format := fs.String("format", "table", "table, csv or json")
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait for the run to be matched")
	all := fs.Bool("all", false, "every run, not only the newest of each channel-day")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	if *format != "table" && *format != "csv" && *format != "json" {
		return usageError{fmt.Sprintf("--format %q: table, csv or json", *format)}
	}
	log := newLogger(or(cfg.Log.Format, "text"), or(cfg.Log.Level, "warn"))
	switch args[0] {
	case "run":
		if *channel == "" || *date == "" || fs.NArg() != 0 {
			return usageError{"recon run --channel X --date YYYY-MM-DD"}
		}
		r, err := app.OpenRecon(ctx, cfg.Config, true, log)
		if err != nil {
			return err
		}
		defer r.Close()
		runID, _, err := r.Settlement.Run(ctx, *channel, *date, "")
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "run %s started; waiting for the recon group to match it\n", runID)
		runs, err := waitRun(ctx, r.Store, runID, *wait)
		if err != nil {
			return err
		}
		return printReport(out, runs, *format)
	case "import":
		if *channel == "" || *date == "" || fs.NArg() != 1 {
			return usageError{"recon import --channel X --date YYYY-MM-DD FILE"}
		}
		r, err := app.OpenRecon(ctx, cfg.Config, false, log)
		if err != nil {
			return err
		}
		defer r.Close()
		n, err := importFile(ctx, r, *channel, *date, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "imported %d rows for %s %s\n", n, *channel, *date)
		return nil
	case "report":
		r, err := app.OpenRecon(ctx, cfg.Config, false, log)
		if err != nil {
			return err
		}
		defer r.Close()
		runs, err := r.Store.ReconReport(ctx, store.ReconRunFilter{Channel: *channel, Day: *date, Latest: !*all}, true)
		if err != nil {
			return err
		}
		return printReport(out, runs, *format)
	}
	return usageError{fmt.Sprintf("unknown recon subcommand %q", args[0])}
}

// importFile reads a settlement file and stores it, all or nothing.
func importFile(ctx context.Context, r *app.Recon, channel, day, path string) (int, error) {
	known := false
	for name := range r.Zones {
		known = known || name == channel
	}
	if !known {
		return 0, fmt.Errorf("unknown channel %q", channel)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	loc := r.Zones[channel]
	rows, refunds, err := settlement.ParseFile(strings.NewReader(string(raw)), day, loc)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	in := make([]store.ImportRow, len(rows))
	for i, row := range rows {
		in[i] = store.ImportRow{Line: row.Line, Record: row.Record}
	}
	if err := r.Store.ImportSettlement(ctx, channel, day, refunds, raw, in); err != nil {
		return 0, err
	}
	return len(rows), nil
}

// waitRun polls until the run is matched (or abandoned) and returns it.
func waitRun(ctx context.Context, st *store.Store, runID string, wait time.Duration) ([]schemas.ReconRun, error) {
	deadline := time.Now().Add(wait)
	for {
		runs, err := st.ReconReport(ctx, store.ReconRunFilter{Limit: 1000}, false)
		if err != nil {
			return nil, err
		}
		for _, r := range runs {
			if r.RunID != runID || r.Status == "collecting" {
				continue
			}
			if r.Status == "abandoned" {
				return nil, fmt.Errorf("run %s abandoned: %s", runID, r.Error)
			}
			return st.ReconReport(ctx, store.ReconRunFilter{Channel: r.Channel, Day: r.Day, Latest: true}, true)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("run %s not matched after %s: are the relay and the recon group running?", runID, wait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// printReport writes runs as a table for the terminal, as CSV (one line
// per mismatch, for finance's spreadsheets) or as JSON.
func printReport(out io.Writer, runs []schemas.ReconRun, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if runs == nil {
			runs = []schemas.ReconRun{}
		}
		return enc.Encode(map[string]any{"runs": runs})
	case "csv":
		return schemas.WriteReconCSV(out, runs)
	}
	if len(runs) == 0 {
		_, err := fmt.Fprintln(out, "no reconciliation runs")
		return err
	}
	for i, r := range runs {
		if i > 0 {
			fmt.Fprintln(out)
		}
		state := r.Status
		if r.Status == "done" && !r.Final {
			state = "done, provisional (tolerance window open)"
		}
		fmt.Fprintf(out, "%s %s  run %s  %s  (%s, ±%d days)\n", r.Channel, r.Day, r.RunID, state, r.Timezone, r.Tolerance)
		if r.Error != "" {
			fmt.Fprintf(out, "  error: %s\n", r.Error)
		}
		fmt.Fprintf(out, "  paygate: %d payments %s, %d refunds %s\n", r.Ours.Payments, sums(r.Ours.PaymentSums), r.Ours.Refunds, sums(r.Ours.RefundSums))
		fmt.Fprintf(out, "  PSP:     %d payments %s, %d refunds %s\n", r.PSP.Payments, sums(r.PSP.PaymentSums), r.PSP.Refunds, sums(r.PSP.RefundSums))
		fmt.Fprintf(out, "  matched %d (across midnight %d), held %d, refunds not listed by the PSP %d, mismatches %d\n",
			r.Matched, r.Straddled, r.Held, r.Unmatched, r.Mismatches)
		if len(r.Findings) == 0 {
			continue
		}
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "  KIND\tITEM\tREFERENCE\tPAYGATE\tPSP\tHEAL\tDETAIL")
		for _, m := range r.Findings {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Kind, m.Item, m.Reference, money(m.Ours), money(m.PSP), m.Heal, m.Detail)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func money(a *schemas.ReconAmount) string {
	if a == nil {
		return "-"
	}
	m, err := domain.NewMoney(a.Amount, a.Currency)
	if err != nil {
		return strconv.FormatInt(a.Amount, 10) + " " + a.Currency
	}
	return m.String()
}

func sums(m map[string]int64) string {
	if len(m) == 0 {
		return "(none)"
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, money(&schemas.ReconAmount{Amount: m[c], Currency: c}))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
