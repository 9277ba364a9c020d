package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/consumers/payinit"
	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/broker"
	"github.com/paygate/paygate/internal/ingress"
	"github.com/paygate/paygate/internal/pgtest"
	"github.com/paygate/paygate/internal/store"
)

// TestSmoke runs the harness for a few seconds at a low rate, with a
// short consumer stall, and asserts only what must always hold: no paid
// event lost or duplicated, no forged order paid. No timing assertions.
func TestSmoke(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts the whole pipeline")
	}
	rep := run(t, Config{
		DatabaseURL: pgtest.New(t), Rate: 60, Duration: 3 * time.Second, DuplicateShare: 0.2, ForgedShare: 0.1,
		SkipCeiling: true, Lone: 2, StatSettle: -1, Partitions: 2, Retention: time.Minute,
		Stall: time.Second, StallAfter: time.Second, DrainTimeout: 30 * time.Second,
	})
	if len(rep.Steps) != 1 {
		t.Fatalf("%d steps", len(rep.Steps))
	}
	s := rep.Steps[0]
	if !rep.OK || s.Lost != 0 || s.Duplicated != 0 || s.ForgedPaid != 0 {
		t.Errorf("lost %d, duplicated %d, forged paid %d", s.Lost, s.Duplicated, s.ForgedPaid)
	}
	if s.First == 0 || s.Duplicates == 0 || s.Forged == 0 || s.SendErrors != 0 {
		t.Errorf("schedule: %d first, %d duplicates, %d forged, %d send errors (%s)", s.First, s.Duplicates, s.Forged, s.SendErrors, s.FirstError)
	}
	if s.E2E.N != s.First {
		t.Errorf("%d e2e latencies for %d payments", s.E2E.N, s.First)
	}
	if s.CPU == nil || s.CPU.Process <= 0 || s.CPU.MachineBusy <= 0 || s.CPU.MachineBusy > float64(s.CPU.Cores) {
		t.Errorf("cpu: %+v", s.CPU)
	}
	// All but the lone payments and two templates were cloned, and were
	// paid all the same (above).
	if rep.PrepareMode != "clone" {
		t.Errorf("prepare mode %q", rep.PrepareMode)
	}
	// The harness vacuums its own database before each step exactly when
	// the server does not.
	switch av := rep.Machine.Autovacuum; {
	case av == "off" && len(rep.Vacuums) != len(rep.Steps):
		t.Errorf("autovacuum off, %d vacuums for %d steps", len(rep.Vacuums), len(rep.Steps))
	case av == "on" && len(rep.Vacuums) != 0:
		t.Errorf("autovacuum on, and the harness vacuumed %d times", len(rep.Vacuums))
	case av != "on" && av != "off":
		t.Errorf("autovacuum %q", av)
	}
}

// TestIngressOnlySmoke: every callback the ingress accepted is on the
// topic, and the report says so: in process, driven through net/http's
// client, and with the ingress in a process of its own (`paygate
// ingress`), driven through the senders' own connections, where the
// ingress's own CPU, memory and CPU profile are reported.
func TestIngressOnlySmoke(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts the ingress and the broker")
	}
	profile := filepath.Join(t.TempDir(), "ingress.cpu")
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"in process", Config{StdClient: true}},
		{"split", Config{Split: true, GatewayBinary: buildPaygate(t), GatewayCPUProfile: profile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.DatabaseURL, cfg.IngressOnly, cfg.Sweep, cfg.Duration = pgtest.New(t), true, []float64{100, 200}, 2*time.Second
			cfg.SkipCeiling, cfg.Partitions, cfg.Retention = true, 2, time.Minute
			rep := run(t, cfg)
			if !rep.OK || len(rep.IngressOnly) != 2 || len(rep.Steps) != 0 {
				t.Fatalf("ok %v, %d ingress steps, %d pipeline steps", rep.OK, len(rep.IngressOnly), len(rep.Steps))
			}
			for _, s := range rep.IngressOnly {
				if s.SendErrors != 0 || s.Accepted != int64(s.Sent) || s.Stored != s.Accepted || s.NotStored != 0 || s.Answer.N != s.Sent {
					t.Errorf("at %.0f/s: sent %d, accepted %d, stored %d, errors %d (%s)", s.Rate, s.Sent, s.Accepted, s.Stored, s.SendErrors, s.FirstError)
				}
			}
			var out strings.Builder
			rep.Print(&out)
			if !strings.Contains(out.String(), "every accepted callback is on the topic") {
				t.Errorf("report:\n%s", out.String())
			}
			if !cfg.Split {
				return
			}
			if c := rep.IngressOnly[0].CPU; c == nil || c.Gateway <= 0 || c.GatewayUSPerHook <= 0 {
				t.Errorf("cpu: %+v; want the ingress process's own", c)
			}
			if rep.Memory == nil || rep.Memory.GatewayProcessHWMBytes <= 0 {
				t.Errorf("memory %+v; want the ingress process's peak", rep.Memory)
			}
			if b, err := os.ReadFile(profile); err != nil || len(b) < 100 || b[0] != 0x1f || b[1] != 0x8b {
				t.Errorf("ingress profile: %d bytes, %v; want a gzip-compressed profile", len(b), err)
			}
		})
	}
}

// TestSplitSmoke runs the gateway as its own process (the paygate binary,
// built here) with the broker, the simulator and the load in the test: no
// paid event lost or duplicated, and the gateway's own memory, CPU,
// statement counts (scraped from its /metrics) and CPU and heap profiles
// (from its PAYGATE_PPROF_ADDR) reported.
func TestSplitSmoke(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds paygate and starts the whole pipeline")
	}
	bin := buildPaygate(t)
	profile, heap := filepath.Join(t.TempDir(), "gateway.cpu"), filepath.Join(t.TempDir(), "gateway.heap")
	rep := run(t, Config{
		DatabaseURL: pgtest.New(t), Split: true, GatewayBinary: bin, Rate: 60, Duration: 3 * time.Second,
		SkipCeiling: true, Lone: 2, StatSettle: -1, Partitions: 2, Retention: time.Minute, DrainTimeout: 30 * time.Second,
		GatewayCPUProfile: profile, GatewayHeapProfile: heap,
	})
	if len(rep.Steps) != 1 {
		t.Fatalf("%d steps", len(rep.Steps))
	}
	s := rep.Steps[0]
	if !rep.OK || s.Lost != 0 || s.Duplicated != 0 || s.ForgedPaid != 0 || s.E2E.N != s.First || s.SendErrors != 0 {
		t.Errorf("ok %v: %d first, %d paid, lost %d, duplicated %d, forged paid %d, send errors %d (%s)",
			rep.OK, s.First, s.E2E.N, s.Lost, s.Duplicated, s.ForgedPaid, s.SendErrors, s.FirstError)
	}
	if rep.PrepareMode != "clone" || rep.Memory == nil || rep.Memory.GatewayProcessHWMBytes <= 0 {
		t.Errorf("prepare %q, memory %+v", rep.PrepareMode, rep.Memory)
	}
	if s.CPU == nil || s.CPU.Gateway <= 0 || s.CPU.GatewayUSPerHook <= 0 || s.CPU.GatewayUSPerHook >= s.CPU.MachineUSPerHook {
		t.Errorf("cpu: %+v", s.CPU)
	}
	if s.StatementsPerEvent <= 0 || s.RoundTripsPerEvent < s.StatementsPerEvent {
		t.Errorf("statements %.3f, round trips %.3f per event: not read from the gateway's /metrics", s.StatementsPerEvent, s.RoundTripsPerEvent)
	}
	for _, f := range []string{profile, heap} {
		if b, err := os.ReadFile(f); err != nil || len(b) < 100 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("gateway profile %s: %d bytes, %v; want a gzip-compressed profile", filepath.Base(f), len(b), err)
		}
	}
	if _, err := Run(context.Background(), Config{DatabaseURL: pgtest.New(t), Split: true, Stall: time.Second}); err == nil {
		t.Error("-split with -stall: no error")
	}
}

// TestTargetSmoke drives a pipeline the harness did not start, as
// `paygate-bench -ingress … -brokers … -database …` does: every order
// prepared through it, no paid event lost or duplicated, and its
// statement counts read from the /metrics it is told of — and reported
// as unknown, not as 0, when that has none.
func TestTargetSmoke(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts the whole pipeline")
	}
	dbURL := pgtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Start(ctx, app.Config{
		Store: store.Config{URL: dbURL}, HTTPAddr: "127.0.0.1:0", SimAddr: "127.0.0.1:0",
		Broker:  broker.EmbeddedConfig{Addr: "127.0.0.1:0", Retention: time.Minute},
		Topics:  broker.TopicConfig{Partitions: 2},
		Ingress: ingress.Config{MallKeys: map[string][]string{app.DevMallKeyID: {app.DevMallSecret}}, ReturnHosts: []string{"shop.example"}},
		Payinit: payinit.Config{ReturnHosts: []string{"shop.example"}},
	}, app.All, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = a.Wait() })
	target := Config{IngressURL: a.IngressURL, Brokers: a.Brokers, DatabaseURL: dbURL, Rate: 40, Duration: 2 * time.Second,
		SkipCeiling: true, Lone: 2, StatSettle: -1, DrainTimeout: 30 * time.Second}

	rep := run(t, target)
	if len(rep.Steps) != 1 || rep.PrepareMode != "pipeline" {
		t.Fatalf("%d steps, prepare mode %q", len(rep.Steps), rep.PrepareMode)
	}
	s := rep.Steps[0]
	if !rep.OK || s.Lost != 0 || s.Duplicated != 0 || s.ForgedPaid != 0 || s.E2E.N != s.First || s.First == 0 || s.SendErrors != 0 {
		t.Errorf("ok %v: %d first, %d paid, lost %d, duplicated %d, forged paid %d, send errors %d (%s)",
			rep.OK, s.First, s.E2E.N, s.Lost, s.Duplicated, s.ForgedPaid, s.SendErrors, s.FirstError)
	}
	if s.StatementsPerEvent <= 0 || s.RoundTripsPerEvent < s.StatementsPerEvent {
		t.Errorf("statements %.3f, round trips %.3f per event: not read from the target's /metrics", s.StatementsPerEvent, s.RoundTripsPerEvent)
	}

	target.MetricsURLs, target.Lone = []string{a.IngressURL + "/healthz"}, -1
	rep = run(t, target)
	if s := rep.Steps[0]; !rep.OK || s.StatementsPerEvent != 0 || s.RoundTripsPerEvent != 0 {
		t.Errorf("ok %v, statements %.3f, round trips %.3f per event from a page without the counters", rep.OK, s.StatementsPerEvent, s.RoundTripsPerEvent)
	}
	var out strings.Builder
	rep.Print(&out)
	if !regexp.MustCompile(`\s-\s+-\s+\d+\.\d{3}\s`).MatchString(out.String()) {
		t.Errorf("unknown statement counts not shown as -:\n%s", out.String())
	}
}

// -gateway-env reaches the gateway's process; a setting of the harness's
// own (PAYGATE_…, the database, the broker), a malformed one, or one
// without a gateway process of its own is refused before anything starts.
func TestGatewayEnv(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds paygate and starts the gateway")
	}
	ctx := context.Background()
	dbURL := pgtest.New(t)
	for _, kv := range []string{"PAYGATE_BATCH_SIZE=1", "DATABASE_URL=postgres://elsewhere/x", "KAFKA_BROKERS=elsewhere:9092", "GOGC", "=1"} {
		if _, err := Run(ctx, Config{DatabaseURL: dbURL, Split: true, GatewayEnv: []string{kv}}); err == nil || !strings.Contains(err.Error(), "-gateway-env") {
			t.Errorf("-gateway-env %q: %v, want it refused", kv, err)
		}
	}
	if _, err := Run(ctx, Config{DatabaseURL: dbURL, GatewayEnv: []string{"GOGC=150"}}); err == nil || !strings.Contains(err.Error(), "needs -split") {
		t.Errorf("-gateway-env in process: %v, want it refused", err)
	}
	cfg := Config{DatabaseURL: dbURL, Split: true, GatewayBinary: buildPaygate(t), GatewayEnv: []string{"GOGC=150", "GOMEMLIMIT=300MiB"},
		Partitions: 2, Retention: time.Minute}
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	tg, err := startSplit(ctx, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", tg.gateway.Pid))
	tg.stop()
	if err != nil {
		t.Fatal(err)
	}
	vars := strings.Split(string(environ), "\x00")
	for _, want := range []string{"GOGC=150", "GOMEMLIMIT=300MiB"} {
		if !slices.Contains(vars, want) {
			t.Errorf("the gateway's environment lacks %s", want)
		}
	}
}

// buildPaygate builds the paygate binary for a split run.
func buildPaygate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "paygate")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/paygate").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// run runs the harness for a test; its progress is shown only on failure
// and the report only with -v.
func run(t *testing.T, cfg Config) *Report {
	t.Helper()
	var progress strings.Builder
	cfg.Progress = &progress
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, progress.String())
	}
	if testing.Verbose() {
		rep.Print(os.Stdout)
	}
	return rep
}
