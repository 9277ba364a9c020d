// Command paygate-bench is paygate's load harness (docs/performance.md,
// `make bench`): open-loop signed PSP webhooks, end to end, against the
// machine's own ceiling. It is a command of its own so that the
// production binary, paygate, carries no load generator; with -split it
// runs the paygate binary found beside its own as the gateway.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/bench"
	"github.com/paygate/paygate/internal/broker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runBench(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "paygate-bench:", err)
		var u usageError
		if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a wrong command line (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg + " (see: paygate-bench -h)" }

const benchUsage = `paygate-bench [flags]: open-loop load of signed PSP webhooks, end to end, against the
machine's own ceiling (see docs/performance.md); with -whole, of whole payments, from the
signed pay request to the paid event. In process by default (fresh database, embedded
broker); -ingress, -brokers and -database target a pipeline running elsewhere.`

// runBench is paygate-bench. It exits 1 (an error) if a paid event was
// lost or duplicated, or a forged order paid.
//
// In order: the command line read (parseArgs), the gateway's log, the
// progress and pprof opened, the run with the command's own profiles of
// its load (loadProfiles), its report printed and written, then its
// verdict.
func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, o, err := parseArgs(args)
	if err != nil {
		return err
	}
	if o.logFile != "" {
		f, err := os.Create(o.logFile)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.Log = f
	}
	cfg.Progress = os.Stderr
	if o.pprofAddr != "" {
		stop := servePprof(o.pprofAddr)
		defer stop()
	}
	cfg.OnLoad = (&loadProfiles{cpu: o.cpuProfile, mem: o.memProfile}).onLoad
	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		if werr := writeReport(rep, args, stdout, o.jsonFile); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return err
	}
	return verdict(cfg, rep)
}

// options are the command's flags that are not bench.Config's fields as
// they stand: read into it (parseArgs), or the command's own.
type options struct {
	sweep, brokers, metrics string
	checkEarlier            bool
	logLevel                string
	jsonFile                string
	cpuProfile, memProfile  string
	logFile, pprofAddr      string
}

// parseArgs reads the command line into the run's Config and the
// command's own options; a wrong one is a usageError. A flag's 0 that
// means none is the Config's negative (zeroMeansNone).
func parseArgs(args []string) (bench.Config, options, error) {
	var cfg bench.Config
	var o options
	fs := newFlagSet(&cfg, &o)
	if err := fs.Parse(args); err != nil {
		return cfg, o, usageError{err.Error()}
	}
	sweep, err := parseSweep(o.sweep)
	if err != nil {
		return cfg, o, err
	}
	cfg.Sweep = sweep
	if (cfg.GatewayCPUProfile != "" || cfg.GatewayHeapProfile != "") && !cfg.Split {
		return cfg, o, usageError{"-gateway-cpuprofile and -gateway-memprofile profile the gateway's own process: they need -split"}
	}
	if err := readTarget(&cfg, o.brokers, o.metrics); err != nil {
		return cfg, o, err
	}
	cfg.SkipEarlierCheck = !o.checkEarlier
	zeroMeansNone(&cfg)
	if err := cfg.LogLevel.UnmarshalText([]byte(o.logLevel)); err != nil {
		return cfg, o, usageError{"-log-level: " + err.Error()}
	}
	return cfg, o, nil
}

// newFlagSet defines the command's flags, into cfg and o.
func newFlagSet(cfg *bench.Config, o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("paygate-bench", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), benchUsage); fs.PrintDefaults() }
	fs.Float64Var(&cfg.Rate, "rate", 1000, "offered webhooks per second (with -whole: payments per second)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "load duration (per sweep step)")
	fs.StringVar(&o.sweep, "sweep", "", "comma-separated rates, one step each (e.g. 500,1000,2000,4000)")
	fs.Float64Var(&cfg.DuplicateShare, "dup", 0.1, "share of duplicate webhooks (the same webhook again 0.5-2s later); 0 for none")
	fs.Float64Var(&cfg.ForgedShare, "forged", 0.02, "share of forged webhooks (bad signature, orders never paid); 0 for none")
	fs.IntVar(&cfg.Preload, "preload", 0, "COPY this many existing paid orders (with attempts) first")
	fs.DurationVar(&cfg.Stall, "stall", 0, "stop the callbacks group this long while the load goes on, then report the drain")
	fs.DurationVar(&cfg.StallAfter, "stall-after", 10*time.Second, "when the stall starts, from the start of the load")
	fs.DurationVar(&cfg.Retention, "retention", 0, "the embedded broker's retention: a backlog older than this is deleted unread, its paid events counted lost (0: the longest of 3m, 3×stall, 3m + 2×duration)")
	fs.BoolVar(&cfg.SkipCeiling, "no-ceiling", false, "skip the PostgreSQL and broker ceiling")
	fs.DurationVar(&cfg.CeilingDuration, "ceiling-duration", 5*time.Second, "how long each ceiling is measured")
	fs.DurationVar(&cfg.StatSettle, "stat-settle", 11*time.Second, "wait for PostgreSQL statistics to settle around each step")
	fs.IntVar(&cfg.Lone, "lone", 20, "lone payments (one at a time) before the load; 0 for none")
	fs.BoolVar(&cfg.IngressOnly, "ingress-only", false, "measure the ingress alone (signature check, durable Kafka write; nothing consumes)")
	fs.BoolVar(&cfg.Split, "split", false, "run the gateway (paygate dev; with -ingress-only, paygate ingress) as its own process; the broker, the simulator and the load stay here")
	fs.BoolVar(&cfg.Whole, "whole", false, "whole payments instead of webhooks: signed pay requests at -rate payments/s, the session read as the mall reads it, the buyer's click at the simulator, the paid event")
	fs.Float64Var(&cfg.RepeatShare, "repeat", 0.05, "with -whole: share of payments whose buyer presses pay twice (a second pay request 0.1-1s later; the buyer pays on the newer page); 0 for none")
	fs.Float64Var(&cfg.AbandonShare, "abandon", 0.05, "with -whole: share of payments never paid (the session read, no click); 0 for none")
	fs.Float64Var(&cfg.WaitShare, "wait-share", 0.1, "with -whole: share of payments whose session is read through GET /v1/payments/{id}?wait= instead of the topic; 0 for none")
	fs.DurationVar(&cfg.Warmup, "warmup", 5*time.Second, "with -whole: whole payments for this long at -warmup-rate before anything is measured, then the database analyzed (an empty table's prepared lookups scan it as it grows); 0 for none")
	fs.Float64Var(&cfg.WarmupRate, "warmup-rate", 200, "with -whole: the warm-up's payments per second")
	fs.BoolVar(&o.checkEarlier, "check-earlier", true, "with -whole: payinit's earlier-attempt check on a repeat pay request (PAYGATE_CHECK_EARLIER_ATTEMPTS; false is the seed system's peak switch)")
	fs.BoolVar(&cfg.PrepareViaPipeline, "prepare-pipeline", false, "in process: prepare every order through the pipeline instead of cloning all but a few")
	fs.IntVar(&cfg.PrepareWorkers, "prepare-workers", 48, "concurrent order preparation")
	fs.DurationVar(&cfg.PSPLatency, "psp-latency", 0, "add this to every answer of the simulator's API, PAYGATE_SIM_LATENCY (a PSP far away)")
	fs.IntVar(&cfg.PSPConcurrency, "psp-concurrency", 0, "in process: the gateway's PSP calls of a batch in flight (0: its default, PAYGATE_PSP_CONCURRENCY)")
	fs.IntVar(&cfg.Partitions, "partitions", 8, "partitions per topic (in process)")
	fs.IntVar(&cfg.BatchSize, "batch", 256, "consumer batch size (in process)")
	fs.IntVar(&cfg.Members, "members", 1, "callbacks group members in process")
	fs.StringVar(&cfg.DatabaseURL, "database", "postgres://postgres@127.0.0.1:5432/paygate_bench?sslmode=disable",
		"in process: this database is dropped and recreated; target: the target's database")
	fs.StringVar(&cfg.IngressURL, "ingress", "", "target mode: the ingress URL (public listener) of a running pipeline")
	fs.StringVar(&cfg.APIURL, "api", "", "target mode: its API listener's URL, for the pay requests that prepare orders (default: the -ingress URL; paygate dev: http://127.0.0.1:8081)")
	fs.StringVar(&o.brokers, "brokers", "", "target mode: its Kafka brokers (comma-separated), reached with PAYGATE_KAFKA_TLS, PAYGATE_KAFKA_SASL... as paygate reaches them")
	fs.StringVar(&o.metrics, "metrics", "", "target mode: the /metrics URLs (comma-separated) of every process of the target that talks to its database, for statements and round trips per event (default: <ingress URL>/metrics; paygate dev serves them on its admin listener, http://127.0.0.1:8082/metrics, which counts all of them)")
	fs.StringVar(&cfg.SimMerchant, "sim-merchant", "m_sim", "target mode: the simulator merchant that signs webhooks")
	fs.StringVar(&cfg.SimSecret, "sim-secret", "sim-secret", "target mode: its secret")
	fs.StringVar(&o.jsonFile, "json", "", "also write the report as JSON to this file")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the load (all steps) to this file")
	fs.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile of the load to this file")
	fs.StringVar(&cfg.GatewayCPUProfile, "gateway-cpuprofile", "", "with -split: write the gateway process's own CPU profile of the first step's load to this file")
	fs.Func("gateway-env", "with -split: NAME=value added to the gateway process's environment, e.g. GOGC=400 (repeatable; not PAYGATE_ settings, DATABASE_URL or KAFKA_BROKERS)", func(s string) error {
		cfg.GatewayEnv = append(cfg.GatewayEnv, s)
		return nil
	})
	fs.StringVar(&cfg.GatewayHeapProfile, "gateway-memprofile", "", "with -split: write the gateway process's heap profile, taken as the first step's sends end, to this file")
	fs.BoolVar(&cfg.StdClient, "std-client", false, "send the load through net/http's client, not each sender's own lean HTTP/1.1 connection")
	fs.IntVar(&cfg.IngressMaxInFlight, "ingress-max-inflight", 0, "the gateway's PAYGATE_INGRESS_MAX_INFLIGHT (0: its default)")
	fs.DurationVar(&cfg.IngressQueueWait, "ingress-queue-wait", 0, "the gateway's PAYGATE_INGRESS_QUEUE_WAIT (0: its default)")
	fs.StringVar(&o.pprofAddr, "pprof", "", "serve net/http/pprof on this address for the whole run (e.g. 127.0.0.1:6060)")
	fs.StringVar(&o.logFile, "log", "", "write the in-process gateway's logs here (default: formatted and discarded)")
	fs.StringVar(&o.logLevel, "log-level", "info", "the in-process gateway's log level")
	return fs
}

// parseSweep reads -sweep's comma-separated rates (nil for none).
func parseSweep(sweep string) ([]float64, error) {
	var rates []float64
	for _, s := range strings.Split(sweep, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		r, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, usageError{fmt.Sprintf("-sweep: %q is not a rate", s)}
		}
		rates = append(rates, r)
	}
	return rates, nil
}

// readTarget reads target mode's brokers and /metrics URLs; the brokers
// are reached as paygate reaches them (PAYGATE_KAFKA_TLS,
// PAYGATE_KAFKA_SASL...).
func readTarget(cfg *bench.Config, brokers, metrics string) error {
	cfg.Brokers = split(brokers)
	cfg.MetricsURLs = split(metrics)
	if len(cfg.Brokers) == 0 {
		return nil
	}
	kc, err := broker.SecurityFromEnv(os.Getenv)
	if err == nil {
		cfg.Kafka, err = kc.Build()
	}
	return err
}

// zeroMeansNone turns the flags' 0, which means none, into the Config's
// negative, where the Config's zero is its default.
func zeroMeansNone(cfg *bench.Config) {
	if cfg.Warmup == 0 {
		cfg.Warmup = -1
	}
	for _, share := range []*float64{&cfg.DuplicateShare, &cfg.RepeatShare, &cfg.AbandonShare, &cfg.WaitShare} {
		if *share == 0 {
			*share = -1
		}
	}
	if cfg.ForgedShare == 0 {
		cfg.ForgedShare = -1
	}
	if cfg.Lone == 0 {
		cfg.Lone = -1
	}
}

// servePprof serves net/http/pprof on addr until stop.
func servePprof(addr string) (stop func()) {
	srv := &http.Server{Addr: addr, Handler: app.PprofHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ListenAndServe() }()
	return func() { srv.Close() }
}

// loadProfiles are the command's own profiles of the load (all steps),
// started and ended by bench.Config.OnLoad: a CPU profile to cpu, and an
// allocation profile to mem, at a finer rate from the load's start.
type loadProfiles struct {
	cpu, mem string
	cpuFile  *os.File
}

func (p *loadProfiles) onLoad(start bool) {
	switch {
	case start && p.cpu != "":
		f, err := os.Create(p.cpu)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			p.cpuFile = f
		}
	case start && p.mem != "":
		runtime.MemProfileRate = 64 << 10 // finer than the default, for the allocation profile
	case !start && p.cpuFile != nil:
		pprof.StopCPUProfile()
		p.cpuFile.Close()
	}
	if !start && p.mem != "" {
		if f, err := os.Create(p.mem); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
}

// writeReport prints the report, with the command line that ran it, and
// writes it as JSON to jsonFile if one is given.
func writeReport(rep *bench.Report, args []string, stdout io.Writer, jsonFile string) error {
	rep.Command = "paygate-bench " + strings.Join(args, " ")
	rep.Print(stdout)
	if jsonFile == "" {
		return nil
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	return os.WriteFile(jsonFile, append(b, '\n'), 0o644)
}

// verdict is the error of a run whose report is not OK, worded for its
// mode.
func verdict(cfg bench.Config, rep *bench.Report) error {
	switch {
	case rep.OK:
		return nil
	case cfg.IngressOnly:
		return fmt.Errorf("bench: accepted callbacks missing from the topic")
	case cfg.Whole:
		return fmt.Errorf("bench: whole payments lost (clicked, never paid) or paid twice, an abandoned one paid, or a session missing")
	}
	return fmt.Errorf("bench: paid events lost or duplicated, or a forged order paid")
}

// split reads a comma-separated list, without spaces or empty items.
func split(v string) []string {
	return strings.FieldsFunc(strings.ReplaceAll(v, " ", ""), func(r rune) bool { return r == ',' })
}
