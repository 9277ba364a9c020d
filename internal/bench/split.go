package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/broker"
	"github.com/paygate/paygate/internal/psp/sim"
	"github.com/paygate/paygate/internal/store"
)

// startSplit runs the gateway as its own process — `paygate dev` (the
// whole pipeline) on a fresh database, or `paygate ingress` for
// Config.IngressOnly — and keeps the broker (an embedded
// one, its topics made here with the run's retention), the simulator (the
// PSP) and the load generator in this one, as they are outside the
// gateway in production. The gateway's heap, CPU and peak RSS are then
// its own: in process, the broker's records, the simulator's payments and
// the harness's orders share its heap and its garbage collector. Not with
// a stall: the callbacks group is the child's.
//
// In order: the database dropped, the simulator, the gateway's files and
// the broker started here (startBeside), the gateway's ports and
// environment, its binary, its process started, then waited for until
// ready. A step that fails stops what the ones before it started.
func startSplit(ctx context.Context, cfg *Config) (*target, error) {
	u, err := freshDatabase(ctx, cfg)
	if err != nil {
		return nil, err
	}
	here, err := startBeside(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		here.stop()
		return nil, err
	}
	httpAddr := "127.0.0.1:" + ports[0]
	env, pprofURL := gatewayEnv(cfg, u.String(), here, httpAddr, ports[1], ports[2])
	exe, err := gatewayBinary(cfg)
	if err != nil {
		here.stop()
		return nil, err
	}
	g := &gatewayProcess{exe: exe, env: env, log: cfg.Log, here: here}
	if err := g.start(cfg.IngressOnly); err != nil {
		here.stop()
		return nil, err
	}
	ingress := "http://" + httpAddr
	if err := g.waitReady(ingress); err != nil {
		return nil, err
	}
	cfg.DatabaseURL = u.String()
	s := here.sim
	t := &target{ingressURL: ingress, apiURL: ingress, kafka: cluster{brokers: []string{here.broker.Addr()}}, dbURL: u.String(), sim: s,
		gateway: g.cmd.Process, metricsURLs: []string{ingress + "/metrics"}, pprofURL: pprofURL, stop: g.stop}
	t.webhook = func(o *order, forged bool) (sim.Webhook, error) { return s.Webhook(o.code, "succeeded", forged) }
	if cfg.IngressOnly { // about payments nobody prepared (runIngressOnly)
		t.webhook = webhookFor(ingress+"/v1/callbacks/"+cfg.Channel, cfg.SimMerchant, []byte(cfg.SimSecret), []byte("forged:"+cfg.SimSecret))
	}
	return t, nil
}

// beside is what split mode runs in the harness's own process, beside
// the gateway's: the simulator (the PSP) and the embedded broker; and the
// directory of the gateway's files (its channels and data).
type beside struct {
	sim    *sim.Server
	simURL string
	simSrv *http.Server
	dir    string
	broker *broker.Embedded
}

// startBeside starts the simulator, writes the gateway's channels file
// (one channel, at that simulator) and starts the broker with the run's
// topics; if one fails it stops the others.
func startBeside(ctx context.Context, cfg *Config) (*beside, error) {
	b := &beside{}
	if err := b.startSim(cfg); err != nil {
		return nil, err
	}
	if err := b.writeChannels(cfg); err != nil {
		b.stop()
		return nil, err
	}
	if err := b.startBroker(ctx, cfg); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

// startSim serves the simulator, with the run's merchant and PSP latency,
// on a port of its own.
func (b *beside) startSim(cfg *Config) error {
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	b.simURL = "http://" + simLn.Addr().String()
	b.sim = sim.NewServer(sim.ServerConfig{Merchants: map[string]string{cfg.SimMerchant: cfg.SimSecret}, PublicURL: b.simURL, Latency: cfg.PSPLatency})
	b.simSrv = &http.Server{Handler: b.sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.simSrv.Serve(simLn) }()
	return nil
}

// writeChannels makes the gateway's directory and writes its channels
// file there: the run's channel, at the simulator.
func (b *beside) writeChannels(cfg *Config) error {
	dir, err := os.MkdirTemp("", "paygate-bench-")
	if err != nil {
		return err
	}
	b.dir = dir
	channels, _ := json.Marshal(map[string]any{"channels": []map[string]any{{
		"name": cfg.Channel, "kind": "sim", "enabled": true, "weight": 1, "methods": []string{"card", "wallet"},
		"settings": map[string]any{"base_url": b.simURL, "merchant_id": cfg.SimMerchant, "secrets": []string{cfg.SimSecret}},
	}}})
	return os.WriteFile(filepath.Join(dir, "channels.json"), channels, 0o600)
}

// startBroker starts the embedded broker and makes the topics with the
// run's partitions and retention.
func (b *beside) startBroker(ctx context.Context, cfg *Config) error {
	kb, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", Retention: cfg.Retention})
	if err != nil {
		return err
	}
	b.broker = kb
	return broker.EnsureTopics(ctx, []string{kb.Addr()}, broker.TopicConfig{Partitions: cfg.Partitions, Retention: cfg.Retention})
}

// stop stops what runs here: the simulator and, if started, the broker.
// Only gatewayProcess.stop removes the gateway's directory: a start that
// fails before the gateway runs leaves it behind.
func (b *beside) stop() {
	b.sim.Close()
	_ = b.simSrv.Close()
	if b.broker != nil {
		b.broker.Close()
	}
}

// gatewayEnv is the gateway process's environment: the database, the
// broker and the simulator here, every listener on httpAddr, the run's
// settings, and pprof on pprofPort if a gateway profile is asked for
// (pprofURL then; else ""); then Config.GatewayEnv.
func gatewayEnv(cfg *Config, dbURL string, here *beside, httpAddr, simPort, pprofPort string) (env map[string]string, pprofURL string) {
	env = map[string]string{
		"DATABASE_URL": dbURL, "KAFKA_BROKERS": here.broker.Addr(),
		// Every listener on one address, as the ingress served them
		// before the split: webhooks, pay requests, /metrics, /readyz.
		"PAYGATE_HTTP_ADDR": httpAddr, "PAYGATE_API_ADDR": httpAddr, "PAYGATE_ADMIN_ADDR": httpAddr,
		"PAYGATE_PUBLIC_URL": "http://" + httpAddr,
		"PAYGATE_SIM_ADDR":   "127.0.0.1:" + simPort,
		"PAYGATE_DATA_DIR":   filepath.Join(here.dir, "data"), "PAYGATE_CHANNELS_FILE": filepath.Join(here.dir, "channels.json"),
		"PAYGATE_PARTITIONS": strconv.Itoa(cfg.Partitions),
		"PAYGATE_BATCH_SIZE": strconv.Itoa(cfg.BatchSize), "PAYGATE_CHECK_EARLIER_ATTEMPTS": strconv.FormatBool(cfg.Whole && !cfg.SkipEarlierCheck),
		"PAYGATE_MALL_KEYS": app.DevMallKeyID + ":" + app.DevMallSecret, "PAYGATE_RETURN_HOSTS": "shop.example",
		"PAYGATE_LOG_FORMAT": "json", "PAYGATE_LOG_LEVEL": cfg.LogLevel.String(),
		// The sweeper would probe the prepared attempts (paid at the
		// simulator, nobody told) and pay them before the load does.
		"PAYGATE_PROBE_SCHEDULE": "240h", "PAYGATE_ATTEMPT_TTL": "480h", "PAYGATE_ORDER_TTL": "720h",
		"PAYGATE_RECON_SCHEDULE": "off",
	}
	if cfg.PSPConcurrency > 0 {
		env["PAYGATE_PSP_CONCURRENCY"] = strconv.Itoa(cfg.PSPConcurrency)
	}
	if cfg.IngressMaxInFlight > 0 {
		env["PAYGATE_INGRESS_MAX_INFLIGHT"] = strconv.Itoa(cfg.IngressMaxInFlight)
	}
	if cfg.IngressQueueWait > 0 {
		env["PAYGATE_INGRESS_QUEUE_WAIT"] = cfg.IngressQueueWait.String()
	}
	if cfg.GatewayCPUProfile != "" || cfg.GatewayHeapProfile != "" {
		env["PAYGATE_PPROF_ADDR"] = "127.0.0.1:" + pprofPort
		pprofURL = "http://127.0.0.1:" + pprofPort
	}
	for _, kv := range cfg.GatewayEnv { // checked by Config.defaults
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env, pprofURL
}

// gatewayBinary is Config.GatewayBinary, or the paygate beside this
// process's executable.
func gatewayBinary(cfg *Config) (string, error) {
	if cfg.GatewayBinary != "" {
		return cfg.GatewayBinary, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(self), "paygate"), nil
}

// gatewayProcess is split mode's gateway: the paygate binary run with its
// environment, its output to the run's log, and what runs beside it here.
type gatewayProcess struct {
	exe  string
	env  map[string]string
	log  io.Writer
	here *beside
	// cmd is the started process; exited receives its end.
	cmd    *exec.Cmd
	exited chan error
}

// command is the paygate command with args, in the gateway's environment.
func (g *gatewayProcess) command(args ...string) *exec.Cmd {
	cmd := exec.Command(g.exe, args...)
	for _, kv := range os.Environ() {
		// Ours replace the caller's: no PAYGATE_ setting of the caller's
		// leaks in, and KAFKA_BROKERS is the harness's broker.
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "PAYGATE_") {
			if _, ours := g.env[k]; ours {
				continue
			}
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range g.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = g.log, g.log
	return cmd
}

// start starts the whole pipeline (`paygate dev`), or for the ingress
// alone the ingress role as production runs it, on a database migrated
// first (`paygate migrate`).
func (g *gatewayProcess) start(ingressOnly bool) error {
	role := "dev"
	if ingressOnly {
		role = "ingress"
		if err := g.command("migrate").Run(); err != nil {
			return fmt.Errorf("bench: migrate the gateway's database (%s migrate): %w", g.exe, err)
		}
	}
	g.cmd = g.command(role)
	if err := g.cmd.Start(); err != nil {
		return fmt.Errorf("bench: start the gateway (%s %s): %w", g.exe, role, err)
	}
	g.exited = make(chan error, 1)
	go func() { g.exited <- g.cmd.Wait() }()
	return nil
}

// waitReady waits up to 90 s for the gateway's /readyz at ingress to
// answer 200. If the gateway exits first, what runs here is stopped; if
// it is not ready in time, the gateway is stopped too (stop).
func (g *gatewayProcess) waitReady(ingress string) error {
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(ingress + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-g.exited:
			g.here.stop()
			return fmt.Errorf("bench: the gateway process exited before it was ready: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			g.stop()
			return fmt.Errorf("bench: the gateway at %s was not ready in 90s", ingress)
		}
	}
}

// stop ends the gateway (SIGTERM, then SIGKILL after 30 s), then what
// runs here, and removes the gateway's directory.
func (g *gatewayProcess) stop() {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(30 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
	g.here.stop()
	_ = os.RemoveAll(g.here.dir)
}

// profileGateway starts the gateway process's profiles of a step's load
// that cfg asks for (split mode): a CPU profile of the sends, a heap
// profile as they end, when past saturation the most is held. wait
// returns once they are written, with the first error.
func profileGateway(ctx context.Context, cfg *Config, t *target) (wait func() error) {
	var waits []func() error
	if t.pprofURL != "" && cfg.GatewayCPUProfile != "" {
		secs := max(1, int(cfg.Duration.Round(time.Second)/time.Second))
		waits = append(waits, gatewayProfile(ctx, t.pprofURL, fmt.Sprintf("profile?seconds=%d", secs), 0, cfg.GatewayCPUProfile))
	}
	if t.pprofURL != "" && cfg.GatewayHeapProfile != "" {
		waits = append(waits, gatewayProfile(ctx, t.pprofURL, "heap", cfg.Duration, cfg.GatewayHeapProfile))
	}
	return func() error {
		var first error
		for _, w := range waits {
			if err := w(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
}

// gatewayProfile fetches one of the gateway process's profiles from its
// pprof endpoint (path and query under /debug/pprof/) after waiting
// delay, and writes it to file; wait returns once it is written (or
// failed, which it reports).
func gatewayProfile(ctx context.Context, pprofURL, what string, delay time.Duration, file string) (wait func() error) {
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			if !sleepCtx(ctx, delay) {
				return ctx.Err()
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, pprofURL+"/debug/pprof/"+what, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("gateway profile %s: %w", what, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("gateway profile %s: %s", what, resp.Status)
			}
			f, err := os.Create(file)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, resp.Body); err != nil {
				f.Close()
				return fmt.Errorf("gateway profile %s: %w", what, err)
			}
			return f.Close()
		}()
	}()
	return func() error { return <-done }
}

// freePorts finds n free TCP ports on 127.0.0.1 (free when asked: another
// process could take one before the gateway does).
func freePorts(n int) ([]string, error) {
	var out []string
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		out = append(out, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	return out, nil
}

// scrapeCounts sums the statement and round-trip counters of the
// /metrics at urls; false unless every one answers with both.
func scrapeCounts(urls []string) (store.Counts, bool) {
	sum := store.Counts{ByCaller: map[string]int64{}}
	for _, u := range urls {
		c, ok := scrapeCountsOf(u)
		if !ok {
			return store.Counts{}, false
		}
		sum.Statements += c.Statements
		sum.Transactions += c.Transactions
		for k, v := range c.ByCaller {
			sum.ByCaller[k] += v
		}
	}
	return sum, true
}

// scrapeCountsOf reads one process's statement and round-trip counters
// from its /metrics.
func scrapeCountsOf(metricsURL string) (store.Counts, bool) {
	resp, err := http.Get(metricsURL)
	if err != nil {
		return store.Counts{}, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return store.Counts{}, false
	}
	var stmts, trips float64
	var seen int
	byCaller := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			continue
		}
		switch name {
		case "paygate_store_statements_total":
			stmts, seen = f, seen+1
		case "paygate_store_round_trips_total":
			trips, seen = f, seen+1
		}
		if c, ok := strings.CutPrefix(name, `paygate_store_round_trips_by_caller_total{caller="`); ok {
			byCaller[strings.TrimSuffix(c, `"}`)] = int64(f)
		}
	}
	if seen != 2 {
		return store.Counts{}, false
	}
	return store.Counts{Statements: int64(stmts), Transactions: int64(trips) - int64(stmts), ByCaller: byCaller}, true
}

// procHWM is a process's peak resident set size (VmHWM), 0 if unknown.
func procHWM(pid int) int64 { return hwm(fmt.Sprintf("/proc/%d/status", pid)) }
