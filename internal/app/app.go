// Package app wires paygate's concrete parts together: the broker, the
// store, the channels, the ingress, the consumer groups, the relay and the
// simulator, each started only if its role is asked for. cmd/paygate reads
// the environment and calls Start; the end-to-end tests call the same
// Start, so what they test is the wiring the binary runs.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/consumers/callbacks"
	"github.com/paygate/paygate/consumers/payinit"
	"github.com/paygate/paygate/consumers/refunds"
	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/broker"
	"github.com/paygate/paygate/internal/ingress"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/sim"
	"github.com/paygate/paygate/internal/riskcheck"
	"github.com/paygate/paygate/internal/router"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/producers/settlement"
	"github.com/paygate/paygate/producers/sweeper"
	"github.com/paygate/paygate/schemas"
)

// Roles says which parts a process runs.
type Roles struct {
	// Broker starts the embedded broker when Config.Brokers is empty.
	Broker    bool
	Migrate   bool
	Sim       bool
	Ingress   bool
	Payinit   bool
	Callbacks bool
	Relay     bool
	Sweep     bool
	// Refunds runs the refunds group and its pending-refund poller.
	Refunds bool
	// Recon runs the recon consumer group (recon.go).
	Recon bool
}

// All is every role: `paygate dev`.
var All = Roles{Broker: true, Migrate: true, Sim: true, Ingress: true, Payinit: true, Callbacks: true, Relay: true, Sweep: true, Refunds: true, Recon: true}

// App is a running paygate process.
type App struct {
	Config   Config
	Log      *slog.Logger
	Registry *prometheus.Registry
	Store    *store.Store
	Writer   *producers.Writer
	Channels psp.Registry
	Rules    []domain.ChannelRule
	// Brokers are the Kafka addresses in use (the embedded one's if started).
	Brokers []string
	// Kafka is how every Kafka client of this process connects to them.
	Kafka broker.Security
	// Sim is the simulator server, if this process runs it.
	Sim *sim.Server
	// IngressURL is where the ingress's public listener is (PSP
	// callbacks, browser returns), APIURL its API listener (the mall's
	// and finance's signed requests and reads), AdminURL the admin
	// listener (/metrics, /healthz, /readyz, pprof), SimURL the
	// simulator: "" for what this process does not run. Kinds sharing an
	// address share a URL.
	IngressURL, APIURL, AdminURL, SimURL string
	// ConsoleURL is the operator console's, on the admin listener ("" if
	// this process serves none).
	ConsoleURL string
	// Settlement starts reconciliation runs (nil without a store and a writer).
	Settlement *settlement.Fetcher
	// Router is the routing policy and health (nil unless payinit or the
	// ingress runs here).
	Router *router.Router
	// Risk is risk control's rules and outside service (nil unless
	// payinit runs here).
	Risk *riskcheck.Checker

	metrics *consumers.Metrics
	riskM   *riskcheck.Metrics
	// endpoints are the listeners (listeners.go); admin serves the admin
	// routes on the admin one (HandleAdmin adds to it).
	endpoints []*endpoint
	admin     *http.ServeMux
	// sweepTasks are extra periodic jobs the sweeper runs each round.
	sweepTasks map[string]sweeper.Task
	embedded   *broker.Embedded
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	mu         sync.Mutex
	firstErr   error
	stops      []func() error
	// lastStops run after everything else has stopped.
	lastStops []func() error
}

// Start builds and starts the roles; it returns once every listener is
// up, or the first error (having stopped what it started). It runs the
// steps of startSteps in order: each starts one part, for the roles that
// need it.
func Start(ctx context.Context, cfg Config, roles Roles, log *slog.Logger) (_ *App, err error) {
	ctx, cancel := context.WithCancel(ctx)
	a := &App{Config: cfg, Log: log, Registry: newRegistry(), ctx: ctx, cancel: cancel}
	defer func() {
		if err != nil {
			a.cancel()
			_ = a.Wait()
		}
	}()
	a.metrics = consumers.NewMetrics(a.Registry)
	a.admin = a.adminMux(roles)
	a.Brokers = cfg.Brokers
	if a.Kafka, err = cfg.Kafka.Build(); err != nil {
		return nil, err
	}
	b := &boot{roles: roles}
	for _, step := range startSteps {
		if err := step(a, b); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// boot is what one step of Start hands the next.
type boot struct {
	roles Roles
	// simLn is the simulator's listener (roles.Sim).
	simLn net.Listener
	// files are the channels as configured.
	files ChannelsFile
	// zones are each channel's settlement time zone.
	zones map[string]*time.Location
	// ingress is the ingress's server (roles.Ingress).
	ingress *ingress.Server
}

// pipeline reports whether a role of the pipeline runs here: one that
// needs the broker and the database.
func (r Roles) pipeline() bool {
	return r.Ingress || r.Payinit || r.Callbacks || r.Relay || r.Sweep || r.Refunds || r.Recon
}

// startSteps are Start's steps, in order: the broker and the database
// first; the listeners before the channels (with port 0 the real
// addresses are only known once listening, and the channels and PSPs
// need them); the routes served before the consumers start.
var startSteps = []func(*App, *boot) error{
	(*App).startBroker,
	(*App).openStore,
	(*App).startListeners,
	(*App).startChannels,
	(*App).startSim,
	(*App).startIngress,
	(*App).startConsoleStep,
	(*App).startPayinit,
	(*App).startCallbacks,
	(*App).startRefundsStep,
	(*App).startReconStep,
	(*App).startRelay,
	(*App).startSweeper,
	(*App).startPprof,
}

// startBroker starts the embedded broker where no KAFKA_BROKERS is set
// and the roles need one, and creates the topics (roles Broker, Migrate).
func (a *App) startBroker(b *boot) error {
	cfg, roles := a.Config, b.roles
	if len(a.Brokers) == 0 && (roles.pipeline() || roles.Broker) {
		if !roles.Broker {
			return errors.New("KAFKA_BROKERS is not set")
		}
		if cfg.Kafka != (broker.SecurityConfig{}) {
			return errors.New("PAYGATE_KAFKA_TLS and PAYGATE_KAFKA_SASL are for KAFKA_BROKERS; the embedded broker is plaintext")
		}
		e, err := broker.StartEmbedded(cfg.Broker)
		if err != nil {
			return err
		}
		a.embedded = e
		a.Brokers = []string{e.Addr()}
		a.Log.Info("embedded Kafka-protocol broker listening", "addr", e.Addr(), "data_dir", cfg.Broker.DataDir)
	}
	if !(roles.Broker || roles.Migrate) || len(a.Brokers) == 0 {
		return nil
	}
	tc := cfg.Topics
	tc.Security = a.Kafka
	if a.embedded != nil {
		// The embedded broker keeps records in memory: its topics keep
		// them for its retention, not for Kafka's 7 days, or a long run
		// would grow without bound.
		tc.Retention = cfg.Broker.Retention
	}
	return broker.EnsureTopics(a.ctx, a.Brokers, tc)
}

// openStore opens the database for the pipeline's roles, migrates it
// (role Migrate), and starts checking the clock against it.
func (a *App) openStore(b *boot) error {
	roles := b.roles
	if !roles.pipeline() && !roles.Migrate {
		return nil
	}
	sc := a.Config.Store
	sc.CreateDatabase = roles.Migrate
	var err error
	if a.Store, err = store.Open(a.ctx, sc, a.Registry); err != nil {
		return err
	}
	if roles.Migrate {
		if err := a.Store.Migrate(a.ctx); err != nil {
			return err
		}
		a.Log.Info("database migrated", "database", redactURL(sc.URL))
	}
	if roles.pipeline() {
		a.goRun("clock check", a.clockCheck)
	}
	return nil
}

// startListeners listens on every address the roles serve, the
// simulator's included, so that the URLs built from them are known.
func (a *App) startListeners(b *boot) error {
	cfg := a.Config
	if err := a.listen(cfg, b.roles); err != nil { // listeners.go
		return err
	}
	if b.roles.Sim {
		ln, err := net.Listen("tcp", cfg.SimAddr)
		if err != nil {
			return fmt.Errorf("sim: listen %s: %w", cfg.SimAddr, err)
		}
		b.simLn = ln
		a.SimURL = "http://" + ln.Addr().String()
		a.stops = append(a.stops, ln.Close)
	}
	if a.Config.Payinit.PublicURL == "" {
		a.Config.Payinit.PublicURL = a.IngressURL
	}
	return nil
}

// startChannels builds the configured channels (and their settlement
// zones) and the Kafka writer.
func (a *App) startChannels(b *boot) error {
	simURL := a.SimURL
	if simURL == "" {
		simURL = "http://" + a.Config.SimAddr
	}
	var err error
	if b.files, err = loadChannels(a.Config, simURL); err != nil {
		return err
	}
	if a.Channels, a.Rules, err = buildChannels(b.files, psp.NewMetrics(a.Registry)); err != nil {
		return err
	}
	if b.zones, err = channelZones(b.files); err != nil { // recon.go
		return err
	}
	if len(a.Brokers) > 0 {
		if a.Writer, err = producers.NewWriter(producers.WriterConfig{Brokers: a.Brokers, Transport: a.Kafka.Transport()}); err != nil {
			return err
		}
	}
	return nil
}

// startSim serves the simulator PSP (role Sim) for the channels'
// merchants.
func (a *App) startSim(b *boot) error {
	if !b.roles.Sim {
		return nil
	}
	sc := a.Config.Sim
	sc.Merchants = simMerchants(b.files)
	if sc.PublicURL == "" {
		sc.PublicURL = a.SimURL
	}
	a.Sim = sim.NewServer(sc)
	a.serve("sim", b.simLn, a.Sim.Handler())
	return nil
}

// startIngress starts the router (for payinit and the ingress's health
// view) and builds the ingress (role Ingress).
func (a *App) startIngress(b *boot) error {
	if b.roles.Payinit || b.roles.Ingress {
		if err := a.startRouter(b.roles.Payinit); err != nil { // routing.go
			return err
		}
	}
	if !b.roles.Ingress {
		return nil
	}
	w, err := ingress.NewWaiter(a.ctx, a.Config.Store.URL, a.Log)
	if err != nil {
		return fmt.Errorf("ingress: listen for order changes: %w", err)
	}
	ic := a.Config.Ingress
	ic.Now = a.Now
	b.ingress = ingress.New(ic, a.Writer, a.Store, a.Channels, w, a.Log, a.Registry)
	b.ingress.ServeRoutingHealth(a.Router)
	b.ingress.ServeRiskReviews(a.Store)
	return nil
}

// startConsoleStep mounts the console on the admin listener, then serves
// every listener.
func (a *App) startConsoleStep(b *boot) error {
	if err := a.startConsole(b.files); err != nil { // console.go
		return err
	}
	a.serveListeners(b.ingress)
	return nil
}

// startPayinit starts risk control and the payinit group (role Payinit).
func (a *App) startPayinit(b *boot) error {
	if !b.roles.Payinit {
		return nil
	}
	if err := a.startRisk(); err != nil { // risk.go
		return err
	}
	h, err := a.PayinitHandler()
	if err != nil {
		return err
	}
	return a.Consume("payinit", schemas.TopicPayRequests, h.Handle, h.Prepare)
}

// startCallbacks starts the callbacks group (role Callbacks).
func (a *App) startCallbacks(b *boot) error {
	if !b.roles.Callbacks {
		return nil
	}
	h := a.CallbacksHandler()
	return a.Consume("callbacks", schemas.TopicPSPCallbacks, h.Handle, h.Prepare)
}

// startRefundsStep starts the refunds group and its poller (role Refunds).
func (a *App) startRefundsStep(b *boot) error {
	if !b.roles.Refunds {
		return nil
	}
	return a.startRefunds()
}

// startReconStep starts the recon group, and the daily runs' schedule on
// the sweeper (recon.go).
func (a *App) startReconStep(b *boot) error { return a.startRecon(b.roles, b.zones) }

// startRelay starts the outbox relay (role Relay).
func (a *App) startRelay(b *boot) error {
	if !b.roles.Relay {
		return nil
	}
	url := a.Config.Store.URL
	r := producers.NewRelay(producers.RelayConfig{Listen: func(ctx context.Context, channel string, notify func(string)) error {
		return store.Listen(ctx, url, channel, notify, nil)
	}}, a.Store, a.Writer, a.Log.With("component", "relay"), a.Registry)
	a.goRun("relay", r.Run)
	return nil
}

// startSweeper starts the sweeper (role Sweep), with the periodic tasks
// the other steps gave it.
func (a *App) startSweeper(b *boot) error {
	if !b.roles.Sweep {
		return nil
	}
	if a.sweepTasks == nil {
		a.sweepTasks = map[string]sweeper.Task{}
	}
	a.sweepTasks["risk reviews"] = a.riskSweepTask() // risk.go
	sc := a.Config.Sweeper
	if sc.Now == nil {
		sc.Now = a.Now
	}
	sw := sweeper.New(sc, a.Store, a.sweepTasks, a.Log, a.Registry)
	a.goRun("sweeper", sw.Run)
	return nil
}

// startPprof serves net/http/pprof on a listener of its own, if
// PAYGATE_PPROF_ADDR is set.
func (a *App) startPprof(*boot) error {
	addr := a.Config.PprofAddr
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof: listen %s: %w", addr, err)
	}
	a.serveOps("pprof", ln, PprofHandler())
	return nil
}

// PayinitHandler builds the payinit group's handler.
func (a *App) PayinitHandler() (*payinit.Handler, error) {
	var rk payinit.Risk // nil unless risk control runs here
	if a.Risk != nil {
		rk = a.Risk
	}
	pc := a.Config.Payinit
	pc.Rules, pc.Now = a.Rules, a.Now
	return payinit.New(pc, a.Store, a.Channels, a.Router, rk, a.Log)
}

// CallbacksHandler builds the callbacks group's handler. It registers its
// metrics, so call it once per App.
func (a *App) CallbacksHandler() *callbacks.Handler {
	return callbacks.New(a.Config.Callbacks, a.Store, a.Channels, a.Log, a.Registry)
}

// startRefunds runs the refunds group and the poller that follows
// refunds pending at the PSP (Config.Refunds).
func (a *App) startRefunds() error {
	if a.Risk == nil {
		if err := a.startRisk(); err != nil { // risk.go
			return err
		}
	}
	cfg := a.Config.Refunds
	cfg.RiskEvents = riskEvents{a.Risk, a.Store}
	h, err := refunds.New(cfg, a.Store, a.Channels, a.Log, a.Registry)
	if err != nil {
		return err
	}
	if err := a.Consume("refunds", schemas.TopicRefundRequests, h.Handle, nil); err != nil {
		return err
	}
	p, err := refunds.NewPoller(a.Config.Refunds, a.Store, a.Channels, a.Log, a.Registry)
	if err != nil {
		return err
	}
	a.goRun("refund poller", p.Run)
	return nil
}

// Consume runs a consumer group member with handler h until the App
// stops; with p it prepares each batch while the one before is finished
// (consumers.Runner.Pipeline).
func (a *App) Consume(group, topic string, h consumers.Handler, p consumers.Prepare) error {
	c := a.Config.Consumers
	c.Brokers, c.Dialer, c.Group, c.Topic = a.Brokers, a.Kafka.Dialer(), group, topic
	r, err := consumers.NewRunner(c, h, a.Writer, a.Log, a.metrics)
	if err != nil {
		return err
	}
	a.goRun("consumer "+group, r.Pipeline(p).Run)
	return nil
}

// goRun runs fn until the App stops; an error from it stops the App.
// Its database round trips are counted under name ("consumer " left
// off: store.WithCaller).
func (a *App) goRun(name string, fn func(context.Context) error) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := fn(store.WithCaller(a.ctx, strings.TrimPrefix(name, "consumer "))); err != nil {
			a.fail(fmt.Errorf("%s: %w", name, err))
		}
	}()
}

func (a *App) serve(name string, ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
		// The requests' database round trips are counted under name.
		BaseContext: func(net.Listener) context.Context { return store.WithCaller(context.Background(), name) }}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.fail(fmt.Errorf("%s: %w", name, err))
		}
	}()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		<-a.ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	a.Log.Info(name+" listening", "addr", ln.Addr().String())
}

// serveOps serves the ops endpoints until the very end: they go down after
// the consumers have finished their batches (in Wait), so that a member
// shutting down in order still answers its liveness probe.
func (a *App) serveOps(name string, ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.fail(fmt.Errorf("%s: %w", name, err))
		}
	}()
	a.lastStops = append(a.lastStops, func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		<-done
		return err
	})
	a.Log.Info(name+" listening", "addr", ln.Addr().String())
}

func (a *App) fail(err error) {
	a.mu.Lock()
	if a.firstErr == nil {
		a.firstErr = err
	}
	a.mu.Unlock()
	a.Log.Error("component failed, stopping", "err", err)
	a.cancel()
}

// Done is closed when the App stops running: because its context ended,
// Stop was called, or a component failed (Err says which).
func (a *App) Done() <-chan struct{} { return a.ctx.Done() }

// Err returns the first component error, nil while none failed. Once
// Done is closed by a failure, Err is that failure.
func (a *App) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.firstErr
}

// Stop ends the App and waits for it.
func (a *App) Stop() error {
	a.cancel()
	return a.Wait()
}

// Wait blocks until the App's context ends, then shuts down in order:
// listeners and consumers stop (in-flight batches finish or are left
// uncommitted), then the writer, the simulator, the store and the broker
// close. It returns the first component error.
func (a *App) Wait() error {
	<-a.ctx.Done()
	a.wg.Wait()
	if a.Sim != nil {
		a.Sim.Close()
	}
	if a.Writer != nil {
		_ = a.Writer.Close()
	}
	if a.Store != nil {
		_ = a.Store.Close()
	}
	for _, s := range a.stops {
		_ = s()
	}
	if a.embedded != nil {
		a.embedded.Close()
	}
	for _, s := range a.lastStops {
		_ = s()
	}
	return a.Err()
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable>"
	}
	return u.Redacted()
}
