// Package bench is paygate's load harness (`paygate-bench`, cmd/paygate-bench): it measures
// what one machine carries end to end, against that machine's own
// ceiling measured in the same run.
//
// A run: (1) the ceiling — raw PostgreSQL throughput of the minimal
// payment write at 32 connections on scratch tables, and the broker's raw
// produce and consume rates with kafka-go; (2) prepare — orders with
// attempts at the simulator, made through the real pipeline (signed pay
// requests at the ingress, sessions from payinit, the buyer's click at the
// simulator with callbacks=none, so nobody is told yet); (3) load —
// OPEN-LOOP: signed async webhooks at a constant arrival rate, each send
// time fixed in advance, every latency measured from the scheduled time
// (a late sender does not hide queueing: no coordinated omission), with
// a share of duplicates (the same webhook again later) and forgeries
// (bad signature, for orders never paid); a separate kafka-go consumer
// group reads paygate.payments.v1 as the order center would, and the
// end-to-end latency of an order is the time its paid event is read minus
// the scheduled time of its first webhook.
//
// In-process mode (the default) runs the pipeline with internal/app on a
// fresh database and the embedded broker, and runs the callbacks group
// itself so that it can stall it. Target mode drives a pipeline running
// elsewhere (Config.IngressURL, Brokers, DatabaseURL).
package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lib/pq"
	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/consumers/callbacks"
	"github.com/paygate/paygate/consumers/payinit"
	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/broker"
	"github.com/paygate/paygate/internal/ingress"
	"github.com/paygate/paygate/internal/psp/sim"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/schemas"
)

// Config configures a run. Zero values mean the documented defaults.
type Config struct {
	// Rate is the offered load in webhooks per second (first deliveries,
	// duplicates and forgeries together). Default 1000.
	Rate float64
	// Duration of the load at Rate. Default 30s.
	Duration time.Duration
	// Sweep, if set, replaces Rate: one step per rate, each for Duration.
	Sweep []float64
	// DuplicateShare is the share of webhooks that repeat an earlier one
	// (same bytes, 0.5–2 s later). Default 0.1; negative means none.
	DuplicateShare float64
	// ForgedShare is the share of webhooks with a bad signature, for
	// orders that are never paid. Default 0.02; negative means none.
	ForgedShare float64
	// Preload inserts this many existing (paid) orders with their
	// attempts by COPY before the run (in-process only). Default 0.
	Preload int
	// Stall stops the callbacks group this long, StallAfter into the
	// load, while the load goes on; the report gives the drain rate after
	// (in-process only). Default 0: no stall.
	Stall time.Duration
	// StallAfter default 10s.
	StallAfter time.Duration
	// SkipCeiling skips the ceiling measurements.
	SkipCeiling bool
	// CeilingDuration is how long each ceiling is measured. Default 5s.
	CeilingDuration time.Duration
	// IngressOnly measures the ingress alone: signed webhooks at Rate
	// (or each Sweep rate), each answered after its durable Kafka write,
	// with nothing consuming them; no orders are prepared. The report's
	// IngressOnly replaces Steps.
	IngressOnly bool
	// Split runs the gateway (`paygate dev`: the pipeline; with
	// IngressOnly, `paygate ingress` alone) as a child process, and the
	// broker (embedded), the simulator and the load here (startSplit).
	// Not with Stall.
	Split bool
	// GatewayBinary is the paygate binary Split runs. Default: the
	// paygate beside this process's executable (make bench builds both
	// into bin/).
	GatewayBinary string
	// GatewayEnv is added to the environment of the gateway's process
	// (Split): the Go runtime's settings, say (GOGC=400, GOMEMLIMIT=200MiB,
	// GODEBUG=…), to measure them on the gateway alone. It cannot set
	// PAYGATE_ variables, DATABASE_URL or KAFKA_BROKERS: the harness's own
	// options do that.
	GatewayEnv []string
	// Whole measures whole payments instead of the webhook half: signed
	// pay requests at Rate (or each Sweep rate) payments per second, the
	// session read as the mall reads it, the buyer's click at the
	// simulator, the paid event (whole.go). Not with IngressOnly, Stall
	// or Preload.
	Whole bool
	// RepeatShare is the share of whole payments whose buyer presses
	// "pay" twice: a second pay request for the order 0.1–1 s after the
	// first; the buyer pays on the page that opened last. Default 0.05;
	// negative means none.
	RepeatShare float64
	// AbandonShare is the share of whole payments never paid: the
	// session is read, nobody clicks. Default 0.05; negative means none.
	AbandonShare float64
	// WaitShare is the share of whole payments (without a repeat) whose
	// session the mall reads through GET /v1/payments/{id}?wait=, not
	// from the topic. Default 0.1; negative means none.
	WaitShare float64
	// Warmup, in the whole-payment mode, is how long whole payments run at
	// WarmupRate before anything is measured (then the database is
	// analyzed, before the lone payments and the first step), so that the
	// measured steps find tables holding data: on a fresh, empty database
	// PostgreSQL settles a prepared lookup on a plan made for a table of a
	// few rows (a sequential scan) and keeps it as the table grows, which a
	// gateway in service, whose tables hold data, does not see. Default
	// 5s; negative means none.
	Warmup time.Duration
	// WarmupRate is the warm-up's whole payments per second. Default 200.
	WarmupRate float64
	// SkipEarlierCheck turns payinit's earlier-attempt check off
	// (PAYGATE_CHECK_EARLIER_ATTEMPTS=false, the seed system's peak
	// switch) in the whole-payment mode, where it is on by default, as in
	// production. The webhook mode always runs without it: its prepared
	// attempts are paid at the simulator, and a check would pay them.
	SkipEarlierCheck bool
	// PrepareViaPipeline prepares every order through the pipeline (pay
	// request, payinit, the buyer's click), as target mode always does.
	// Default false: in process, the lone payments and two templates go
	// through the pipeline and the other orders are cloned from them
	// (prepareByClone), because payinit prepares only a few hundred
	// orders a second and a long run needs millions.
	PrepareViaPipeline bool
	// PrepareWorkers bounds concurrent order preparation. Default 48.
	PrepareWorkers int
	// MaxInFlight bounds webhooks in flight; a send that finds it full
	// waits (and its latency, from the schedule, shows it). Default 4096.
	MaxInFlight int
	// StdClient drives the load through net/http's client instead of
	// each sender's own lean connection (wire): its cost, on the same
	// cores as the gateway, is then part of what is measured.
	StdClient bool
	// DrainTimeout is how long to wait, after the load, for a paid event
	// when none has been read for that long (drain): a paid event still
	// missing then is lost. Default 60s.
	DrainTimeout time.Duration
	// StatSettle is how long to let PostgreSQL backends flush their
	// statistics before reading pg_stat_database (PostgreSQL 15 flushes
	// an idle backend's within 10 s). Default 11s; negative: do not wait
	// (transactions per event are then approximate).
	StatSettle time.Duration
	// Lone measures this many payments one at a time before the load (a
	// lone payment's end-to-end latency). Default 20; negative: none.
	Lone int

	// DatabaseURL: in-process, the server to create the bench database on
	// (its database name is used, default paygate_bench, dropped and
	// recreated); in target mode, the target's database (read only for
	// statistics and the ceiling's scratch tables). Default
	// postgres://postgres@127.0.0.1:5432/paygate_bench?sslmode=disable.
	DatabaseURL string
	// IngressURL selects target mode: the running ingress's public
	// listener (webhooks). Brokers are then required.
	IngressURL string
	// APIURL is, in target mode, the ingress's API listener (the pay
	// requests and reads that prepare orders). Default: IngressURL, for
	// a target that serves both on one address.
	APIURL string
	// MetricsURLs are, in target mode, the /metrics of every process of
	// the target that talks to its database: their statement and
	// round-trip counters are summed for the report's per-event figures.
	// Default: <IngressURL>/metrics, right for a target that serves its
	// admin listener on the ingress's address; `paygate dev` with its
	// default listeners needs -metrics http://127.0.0.1:8082/metrics.
	// A target split into roles needs the /metrics of each, or the
	// figures are partial.
	MetricsURLs []string
	// Brokers of the target (target mode), and how to connect to them
	// (PAYGATE_KAFKA_TLS, PAYGATE_KAFKA_SASL...: docs/configuration.md).
	Brokers []string
	Kafka   broker.Security
	// SimMerchant and SimSecret sign webhooks in target mode (the
	// simulator runs elsewhere). Defaults m_sim and sim-secret, the dev
	// channel's.
	SimMerchant, SimSecret string
	// Channel the orders are pinned to. Default sim.
	Channel string
	// PSPLatency is added to every answer of the in-process simulator's
	// API (app.Config.Sim.Latency). Default 0.
	PSPLatency time.Duration
	// PSPConcurrency is the gateway's PSP calls of a batch in flight
	// (app.Config's Payinit.Concurrency and Callbacks.Concurrency).
	// Default: the gateway's.
	PSPConcurrency int
	// Partitions of the in-process topics. Default 8.
	Partitions int
	// BatchSize of the in-process consumers. Default 256.
	BatchSize int
	// Members is how many callbacks group members run in process (each
	// takes its share of the partitions and runs its own batches).
	// Default 1, as app.Start runs.
	Members int
	// Retention of the embedded broker's records: a backlog older than
	// this is deleted unread, and its paid events are counted lost.
	// Default the longest of 3m, 3×Stall and 3m + 2×Duration, so that a
	// step that falls behind is measured, not cut short by the broker.
	Retention time.Duration
	// Log receives the in-process gateway's logs (JSON at LogLevel).
	// Default io.Discard: formatted, then dropped, as a log shipper
	// would take them.
	Log io.Writer
	// LogLevel of the gateway. Default info, as in production.
	LogLevel slog.Level
	// Progress receives the harness's own progress lines. Default io.Discard.
	Progress io.Writer
	// OnLoad, if set, is called when the load of a step starts and with
	// nil when it ends (the command starts and stops its profiles there).
	OnLoad func(start bool)
	// GatewayCPUProfile, in split mode, is where the gateway process's
	// own CPU profile of the first step's load is written (taken from its
	// PAYGATE_PPROF_ADDR). Empty: none.
	GatewayCPUProfile string
	// GatewayHeapProfile, in split mode, is where the gateway process's
	// heap profile is written, taken as the first step's sends end.
	GatewayHeapProfile string
	// IngressMaxInFlight and IngressQueueWait are the gateway's
	// PAYGATE_INGRESS_MAX_INFLIGHT and PAYGATE_INGRESS_QUEUE_WAIT.
	// Default: the gateway's.
	IngressMaxInFlight int
	IngressQueueWait   time.Duration
}

// defaults fills in the documented defaults of c's zero fields and
// refuses what cannot run, in this order: the offered load, the
// whole-payment mode, the shares of duplicates and forgeries, the phases'
// timings, the pipeline, the output, then the rates, the gateway's
// environment and target mode.
func (c *Config) defaults() error {
	c.defaultLoad()
	if err := c.defaultWhole(); err != nil {
		return err
	}
	if c.DuplicateShare+c.ForgedShare >= 0.9 {
		return fmt.Errorf("bench: duplicate share %v + forged share %v leave too few payments", c.DuplicateShare, c.ForgedShare)
	}
	c.defaultPhases()
	c.defaultPipeline()
	c.defaultOutput()
	if err := c.checkRates(); err != nil {
		return err
	}
	if err := c.checkGatewayEnv(); err != nil {
		return err
	}
	return c.checkTarget()
}

// defaultLoad fills in the offered load: its rate, duration and shares of
// duplicates and forgeries (negative: none).
func (c *Config) defaultLoad() {
	if c.Rate == 0 {
		c.Rate = 1000
	}
	if c.Duration == 0 {
		c.Duration = 30 * time.Second
	}
	if c.DuplicateShare == 0 {
		c.DuplicateShare = 0.1
	}
	if c.ForgedShare == 0 {
		c.ForgedShare = 0.02
	}
	c.DuplicateShare, c.ForgedShare = max(c.DuplicateShare, 0), max(c.ForgedShare, 0)
}

// defaultWhole fills in the whole-payment mode's shares (negative: none)
// and warm-up, and refuses a share of more than all and the options the
// mode does not take.
func (c *Config) defaultWhole() error {
	for _, share := range []*float64{&c.RepeatShare, &c.AbandonShare, &c.WaitShare} {
		switch {
		case *share == 0 && share == &c.WaitShare:
			*share = 0.1
		case *share == 0:
			*share = 0.05
		case *share > 1:
			return fmt.Errorf("bench: a share of %v is more than all", *share)
		}
		*share = max(*share, 0)
	}
	if c.Whole && (c.IngressOnly || c.Stall > 0 || c.Preload > 0) {
		return errNoWhole
	}
	if c.Warmup == 0 {
		c.Warmup = 5 * time.Second
	}
	if c.WarmupRate == 0 {
		c.WarmupRate = 200
	}
	return nil
}

// defaultPhases fills in the timings and bounds of a run's phases: the
// stall, the ceiling, the preparation, the load, the drain, the
// statistics' settling and the lone payments.
func (c *Config) defaultPhases() {
	if c.StallAfter == 0 {
		c.StallAfter = 10 * time.Second
	}
	if c.CeilingDuration == 0 {
		c.CeilingDuration = 5 * time.Second
	}
	if c.PrepareWorkers == 0 {
		c.PrepareWorkers = 48
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 4096
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 60 * time.Second
	}
	if c.StatSettle == 0 {
		c.StatSettle = 11 * time.Second
	}
	if c.Lone == 0 {
		c.Lone = 20
	}
}

// defaultPipeline fills in the pipeline's settings: its database, the
// simulator merchant, the channel, the topics, the consumers and the
// embedded broker's retention (after Duration's and Stall's).
func (c *Config) defaultPipeline() {
	if c.DatabaseURL == "" {
		c.DatabaseURL = "postgres://postgres@127.0.0.1:5432/paygate_bench?sslmode=disable"
	}
	if c.SimMerchant == "" {
		c.SimMerchant = "m_sim"
	}
	if c.SimSecret == "" {
		c.SimSecret = "sim-secret"
	}
	if c.Channel == "" {
		c.Channel = "sim"
	}
	if c.Partitions == 0 {
		c.Partitions = 8
	}
	if c.BatchSize == 0 {
		c.BatchSize = 256
	}
	if c.Members == 0 {
		c.Members = 1
	}
	if c.Retention == 0 {
		c.Retention = max(3*time.Minute, 3*c.Stall, 3*time.Minute+2*c.Duration)
	}
}

// defaultOutput sends the gateway's logs and the harness's progress
// nowhere unless told.
func (c *Config) defaultOutput() {
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// checkRates refuses a rate, or a sweep's, that is not positive.
func (c *Config) checkRates() error {
	for _, r := range append([]float64{c.Rate}, c.Sweep...) {
		if r <= 0 {
			return fmt.Errorf("bench: rate %v must be positive", r)
		}
	}
	return nil
}

// checkGatewayEnv refuses GatewayEnv without a gateway process of its own
// (Split), and a variable that is not NAME=value or is one of the
// harness's own settings.
func (c *Config) checkGatewayEnv() error {
	for _, kv := range c.GatewayEnv {
		if !c.Split {
			return errors.New("bench: -gateway-env sets the gateway's own process's environment: it needs -split")
		}
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || k == "DATABASE_URL" || k == "KAFKA_BROKERS" || strings.HasPrefix(k, "PAYGATE_") {
			return fmt.Errorf("bench: -gateway-env %q: want NAME=value, and not one of the harness's own settings (PAYGATE_…, DATABASE_URL, KAFKA_BROKERS)", kv)
		}
	}
	return nil
}

// checkTarget refuses target mode (IngressURL) without its brokers, and
// with the options that need the in-process pipeline.
func (c *Config) checkTarget() error {
	if c.IngressURL != "" {
		if len(c.Brokers) == 0 {
			return errors.New("bench: target mode (-ingress) needs -brokers")
		}
		if c.Stall > 0 || c.Preload > 0 {
			return errors.New("bench: -stall and -preload need the in-process pipeline")
		}
	}
	return nil
}

// target is the pipeline under load, wherever it runs.
type target struct {
	ingressURL string // the public listener: webhooks
	apiURL     string // the API listener: pay requests and reads
	kafka      cluster
	dbURL      string
	// in-process only
	app       *app.App
	callbacks *stallable
	// sim is the simulator the harness can clone payments into: the
	// in-process pipeline's, or (split) the harness's own.
	sim *sim.Server
	// split only: the gateway process, its /metrics and its pprof
	gateway     *os.Process
	metricsURLs []string
	pprofURL    string
	// webhook builds the signed webhook for an order's attempt.
	webhook func(o *order, forged bool) (sim.Webhook, error)
	stop    func()
}

// counts reads the gateway's own statement counts (in-process only).
func (t *target) counts() (store.Counts, bool) {
	switch {
	case t.app != nil:
		return t.app.Store.Counts(), true
	case len(t.metricsURLs) > 0:
		return scrapeCounts(t.metricsURLs)
	}
	return store.Counts{}, false
}

// rates are the steps' rates: Sweep's, or Rate alone.
func (c *Config) rates() []float64 {
	if len(c.Sweep) == 0 {
		return []float64{c.Rate}
	}
	return c.Sweep
}

func (c *Config) logf(format string, a ...any) {
	fmt.Fprintf(c.Progress, "bench: "+format+"\n", a...)
}

// startInProcess recreates the bench database and starts the pipeline
// without its callbacks group, which the harness runs (stallable).
func startInProcess(ctx context.Context, cfg *Config) (*target, error) {
	u, err := freshDatabase(ctx, cfg)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewJSONHandler(cfg.Log, &slog.HandlerOptions{Level: cfg.LogLevel}))
	returnHosts := []string{"shop.example"}
	acfg := app.Config{
		Store: store.Config{URL: u.String()}, HTTPAddr: "127.0.0.1:0", SimAddr: "127.0.0.1:0",
		Broker:    broker.EmbeddedConfig{Addr: "127.0.0.1:0", Retention: cfg.Retention},
		Topics:    broker.TopicConfig{Partitions: cfg.Partitions},
		Ingress:   ingress.Config{MallKeys: map[string][]string{app.DevMallKeyID: {app.DevMallSecret}}, ReturnHosts: returnHosts, MaxInFlight: cfg.IngressMaxInFlight, QueueWait: cfg.IngressQueueWait},
		Consumers: consumers.Config{BatchSize: cfg.BatchSize},
		Payinit:   payinit.Config{ReturnHosts: returnHosts, SkipEarlierCheck: !cfg.Whole || cfg.SkipEarlierCheck, Concurrency: cfg.PSPConcurrency},
		Callbacks: callbacks.Config{Concurrency: cfg.PSPConcurrency},
		Sim:       sim.ServerConfig{Latency: cfg.PSPLatency},
	}
	// No sweeper: it would probe the prepared attempts (paid at the
	// simulator, nobody told) and pay them before the load does.
	roles := app.Roles{Broker: true, Migrate: true, Sim: true, Ingress: true, Payinit: !cfg.IngressOnly, Relay: !cfg.IngressOnly}
	actx, cancel := context.WithCancel(ctx)
	a, err := app.Start(actx, acfg, roles, log)
	if err != nil {
		cancel()
		return nil, err
	}
	cfg.DatabaseURL = u.String()
	if cfg.IngressOnly {
		t := &target{ingressURL: a.IngressURL, apiURL: a.APIURL, kafka: cluster{brokers: a.Brokers, sec: a.Kafka}, dbURL: u.String(), app: a,
			webhook: webhookFor(a.IngressURL+"/v1/callbacks/"+cfg.Channel, cfg.SimMerchant, []byte(cfg.SimSecret), []byte("forged:"+cfg.SimSecret))}
		t.stop = func() {
			cancel()
			_ = a.Wait()
		}
		return t, nil
	}
	h := a.CallbacksHandler()
	cb := &stallable{cfg: consumers.Config{Brokers: a.Brokers, Group: "callbacks", Topic: schemas.TopicPSPCallbacks, BatchSize: cfg.BatchSize},
		handler: h.Handle, prepare: h.Prepare, dlq: a.Writer, log: log, parent: actx, members: cfg.Members}
	if err := cb.start(); err != nil {
		cancel()
		_ = a.Wait()
		return nil, err
	}
	t := &target{ingressURL: a.IngressURL, apiURL: a.APIURL, kafka: cluster{brokers: a.Brokers, sec: a.Kafka}, dbURL: u.String(), app: a, callbacks: cb, sim: a.Sim}
	t.webhook = func(o *order, forged bool) (sim.Webhook, error) {
		return a.Sim.Webhook(o.code, "succeeded", forged)
	}
	t.stop = func() {
		cb.pause()
		cancel()
		_ = a.Wait()
	}
	return t, nil
}

// freshDatabase drops the bench database (Config.DatabaseURL's name,
// paygate_bench if none) and returns its URL; the pipeline creates and
// migrates it.
func freshDatabase(ctx context.Context, cfg *Config) (*url.URL, error) {
	u, err := url.Parse(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("bench: database URL: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || name == "postgres" {
		name = "paygate_bench"
		u.Path = "/" + name
	}
	admin := *u
	admin.Path = "/postgres"
	db, err := sql.Open("postgres", admin.String())
	if err != nil {
		return nil, err
	}
	_, err = db.ExecContext(ctx, `DROP DATABASE IF EXISTS `+pq.QuoteIdentifier(name)+` WITH (FORCE)`)
	db.Close()
	if err != nil {
		return nil, fmt.Errorf("bench: drop database %s: %w", name, err)
	}
	return u, nil
}

// startTarget points at a pipeline running elsewhere; webhooks are signed
// with the simulator merchant's secret, as that simulator would.
func startTarget(cfg *Config) *target {
	t := &target{ingressURL: strings.TrimRight(cfg.IngressURL, "/"), apiURL: strings.TrimRight(cfg.APIURL, "/"),
		kafka: cluster{brokers: cfg.Brokers, sec: cfg.Kafka}, dbURL: cfg.DatabaseURL, metricsURLs: cfg.MetricsURLs, stop: func() {}}
	if t.apiURL == "" {
		t.apiURL = t.ingressURL
	}
	if len(t.metricsURLs) == 0 {
		t.metricsURLs = []string{t.ingressURL + "/metrics"}
	}
	t.webhook = webhookFor(t.ingressURL+"/v1/callbacks/"+cfg.Channel, cfg.SimMerchant, []byte(cfg.SimSecret), []byte("forged:"+cfg.SimSecret))
	return t
}

// stallable is the callbacks group member the harness runs, so that it
// can stop it (the stall) and start it again.
type stallable struct {
	cfg     consumers.Config
	handler consumers.Handler
	prepare consumers.Prepare
	dlq     consumers.DeadLetterWriter
	log     *slog.Logger
	parent  context.Context
	members int

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *stallable) start() error {
	// Its round trips count as the callbacks group's, as they would in
	// the gateway's own member (app.Consume).
	ctx, cancel := context.WithCancel(store.WithCaller(s.parent, "callbacks"))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range max(s.members, 1) {
		r, err := consumers.NewRunner(s.cfg, s.handler, s.dlq, s.log, nil)
		if err != nil {
			cancel()
			return err
		}
		r.Pipeline(s.prepare)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(ctx); err != nil {
				s.log.Error("bench: callbacks consumer failed", "err", err)
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	s.mu.Lock()
	s.cancel, s.done = cancel, done
	s.mu.Unlock()
	return nil
}

// pause stops the member and waits until it has left the group.
func (s *stallable) pause() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel = nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// topicPartitions is the number of partitions of topic.
func topicPartitions(ctx context.Context, k cluster, topic string) (int, error) {
	c := k.client(10 * time.Second)
	defer c.Transport.(*kafka.Transport).CloseIdleConnections()
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, err
	}
	for _, t := range md.Topics {
		if t.Name == topic && t.Error == nil {
			return len(t.Partitions), nil
		}
	}
	return 0, fmt.Errorf("topic %s not found", topic)
}

// gatewayPid is the gateway process's pid in split mode, else 0.
func (t *target) gatewayPid() int {
	if t.gateway == nil {
		return 0
	}
	return t.gateway.Pid
}

// cluster is a Kafka cluster as the harness's own clients reach it.
type cluster struct {
	brokers []string
	sec     broker.Security
}

func (k cluster) client(timeout time.Duration) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(k.brokers...), Timeout: timeout, Transport: k.sec.Transport()}
}

// reader is a group reader of topic with the harness's settings.
func (k cluster) reader(group, topic string) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{Brokers: k.brokers, Dialer: k.sec.Dialer(), GroupID: group, Topic: topic,
		StartOffset: kafka.FirstOffset, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond,
		QueueCapacity: 1000, CommitInterval: time.Second, HeartbeatInterval: time.Second})
}
