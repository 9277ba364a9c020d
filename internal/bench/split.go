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
func startSplit(ctx context.Context, cfg *Config) (*target, error) {
	u, err := freshDatabase(ctx, cfg)
	if err != nil {
		return nil, err
	}
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	simURL := "http://" + simLn.Addr().String()
	s := sim.NewServer(sim.ServerConfig{Merchants: map[string]string{cfg.SimMerchant: cfg.SimSecret}, PublicURL: simURL, Latency: cfg.PSPLatency})
	simSrv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = simSrv.Serve(simLn) }()
	stopSim := func() { s.Close(); _ = simSrv.Close() }

	dir, err := os.MkdirTemp("", "paygate-bench-")
	if err != nil {
		stopSim()
		return nil, err
	}
	channels, _ := json.Marshal(map[string]any{"channels": []map[string]any{{
		"name": cfg.Channel, "kind": "sim", "enabled": true, "weight": 1, "methods": []string{"card", "wallet"},
		"settings": map[string]any{"base_url": simURL, "merchant_id": cfg.SimMerchant, "secrets": []string{cfg.SimSecret}},
	}}})
	if err := os.WriteFile(filepath.Join(dir, "channels.json"), channels, 0o600); err != nil {
		stopSim()
		return nil, err
	}
	kb, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", Retention: cfg.Retention})
	if err != nil {
		stopSim()
		return nil, err
	}
	// stopHere stops what runs in this process: the simulator and the broker.
	stopHere := func() { stopSim(); kb.Close() }
	kafkaAddr := kb.Addr()
	if err := broker.EnsureTopics(ctx, []string{kafkaAddr}, broker.TopicConfig{Partitions: cfg.Partitions, Retention: cfg.Retention}); err != nil {
		stopHere()
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		stopHere()
		return nil, err
	}
	httpAddr := "127.0.0.1:" + ports[0]
	env := map[string]string{
		"DATABASE_URL": u.String(), "KAFKA_BROKERS": kafkaAddr,
		// Every listener on one address, as the ingress served them
		// before the split: webhooks, pay requests, /metrics, /readyz.
		"PAYGATE_HTTP_ADDR": httpAddr, "PAYGATE_API_ADDR": httpAddr, "PAYGATE_ADMIN_ADDR": httpAddr,
		"PAYGATE_PUBLIC_URL": "http://" + httpAddr,
		"PAYGATE_SIM_ADDR":   "127.0.0.1:" + ports[1],
		"PAYGATE_DATA_DIR":   filepath.Join(dir, "data"), "PAYGATE_CHANNELS_FILE": filepath.Join(dir, "channels.json"),
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
	var pprofURL string
	if cfg.GatewayCPUProfile != "" || cfg.GatewayHeapProfile != "" {
		env["PAYGATE_PPROF_ADDR"] = "127.0.0.1:" + ports[2]
		pprofURL = "http://127.0.0.1:" + ports[2]
	}
	for _, kv := range cfg.GatewayEnv { // checked by Config.defaults
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	exe := cfg.GatewayBinary
	if exe == "" {
		self, err := os.Executable()
		if err != nil {
			stopHere()
			return nil, err
		}
		exe = filepath.Join(filepath.Dir(self), "paygate")
	}
	command := func(args ...string) *exec.Cmd {
		cmd := exec.Command(exe, args...)
		for _, kv := range os.Environ() {
			// Ours replace the caller's: no PAYGATE_ setting of the caller's
			// leaks in, and KAFKA_BROKERS is the harness's broker.
			if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "PAYGATE_") {
				if _, ours := env[k]; ours {
					continue
				}
				cmd.Env = append(cmd.Env, kv)
			}
		}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stdout, cmd.Stderr = cfg.Log, cfg.Log
		return cmd
	}
	// The whole pipeline, or for the ingress alone the ingress role as
	// production runs it, on a database migrated first.
	role := "dev"
	if cfg.IngressOnly {
		role = "ingress"
		if err := command("migrate").Run(); err != nil {
			stopHere()
			return nil, fmt.Errorf("bench: migrate the gateway's database (%s migrate): %w", exe, err)
		}
	}
	cmd := command(role)
	if err := cmd.Start(); err != nil {
		stopHere()
		return nil, fmt.Errorf("bench: start the gateway (%s %s): %w", exe, role, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		stopHere()
		_ = os.RemoveAll(dir)
	}
	ingress := "http://" + httpAddr
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(ingress + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			stopHere()
			return nil, fmt.Errorf("bench: the gateway process exited before it was ready: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("bench: the gateway at %s was not ready in 90s", ingress)
		}
	}
	cfg.DatabaseURL = u.String()
	t := &target{ingressURL: ingress, apiURL: ingress, kafka: cluster{brokers: []string{kafkaAddr}}, dbURL: u.String(), sim: s,
		gateway: cmd.Process, metricsURLs: []string{ingress + "/metrics"}, pprofURL: pprofURL, stop: stop}
	t.webhook = func(o *order, forged bool) (sim.Webhook, error) { return s.Webhook(o.code, "succeeded", forged) }
	if cfg.IngressOnly { // about payments nobody prepared (runIngressOnly)
		t.webhook = webhookFor(ingress+"/v1/callbacks/"+cfg.Channel, cfg.SimMerchant, []byte(cfg.SimSecret), []byte("forged:"+cfg.SimSecret))
	}
	return t, nil
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
