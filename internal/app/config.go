package app

import (
	"errors"
	"time"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/consumers/callbacks"
	"github.com/paygate/paygate/consumers/payinit"
	"github.com/paygate/paygate/consumers/refunds"
	"github.com/paygate/paygate/internal/broker"
	"github.com/paygate/paygate/internal/console"
	"github.com/paygate/paygate/internal/ingress"
	"github.com/paygate/paygate/internal/psp/sim"
	"github.com/paygate/paygate/internal/riskcheck"
	"github.com/paygate/paygate/internal/router"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/producers/settlement"
	"github.com/paygate/paygate/producers/sweeper"
)

// Config is paygate's whole configuration: each component's own Config,
// and the few settings the composition root uses itself. Every setting's
// environment variable, default and help are tags on the field it sets
// (internal/settings reads them; cmd/paygate loads the environment into
// this struct once, and `paygate help` and docs/configuration.md list
// them). A zero field means its default here too: the components fill
// them in (each one's test holds its defaults to its tags), so the tests
// and the load harness can start from Config{}. Fields a component's
// Config has but the environment does not set (clocks, channels, the
// brokers in use) are filled in by Start.
type Config struct {
	// Store is the database: DATABASE_URL, PAYGATE_DB_STATEMENT_CACHE.
	// MaxConns is not read from the environment: the tests set it,
	// running many paygates against one server (default 16).
	// CreateDatabase is set by Start for the migrate role.
	Store store.Config
	// Brokers are Kafka's bootstrap addresses. Empty: `dev` starts the
	// embedded broker; every other role requires them.
	Brokers []string `env:"KAFKA_BROKERS" help:"none: dev starts the embedded broker; required elsewhere"`
	// Kafka is how to connect to Brokers (TLS, SASL).
	Kafka broker.SecurityConfig
	// Broker is the embedded broker's, when `dev` or `broker` starts it.
	Broker broker.EmbeddedConfig
	// Topics says how to create paygate's topics (Partitions,
	// ReplicationFactor); Start sets the rest.
	Topics broker.TopicConfig
	// HTTPAddr is where the ingress's public listener is, for PSP
	// callbacks and buyers' browsers.
	HTTPAddr string `env:"PAYGATE_HTTP_ADDR" default:"127.0.0.1:8080" help:"the ingress's public listener: PSP callbacks, browser returns"`
	// APIAddr is where the ingress's API listener is, for the mall's and
	// finance's signed requests and reads; the same address as another
	// listener shares it. Empty in code: on HTTPAddr.
	APIAddr string `env:"PAYGATE_API_ADDR" default:"127.0.0.1:8081" help:"the ingress's API listener: the mall's and finance's signed requests and reads; an address equal to another listener's shares it"`
	// AdminAddr is where the admin listener is: /metrics, /healthz,
	// /readyz, /debug/pprof/ and what App.HandleAdmin adds. cmd/paygate
	// gives dev and the ingress 127.0.0.1:8082 when neither this nor its
	// older name PAYGATE_METRICS_ADDR is set; the other roles serve no
	// HTTP then. Empty in code with the ingress role: on HTTPAddr.
	AdminAddr string `env:"PAYGATE_ADMIN_ADDR" derived:"127.0.0.1:8082" help:"for dev and ingress, none for other roles: the admin listener, /metrics, /healthz, /readyz, /debug/pprof/"`
	// PprofAddr is where the process serves Go's runtime profiles
	// (net/http/pprof, /debug/pprof/) on a listener of their own,
	// besides the admin listener. Empty: none.
	PprofAddr string `env:"PAYGATE_PPROF_ADDR" help:"none: serve net/http/pprof here too, on a listener of its own"`
	// ChannelsFile is the channels file. Empty: `dev` and `sim` use the
	// built-in simulator channels.
	ChannelsFile string `env:"PAYGATE_CHANNELS_FILE" help:"none: the built-in simulator channels sim and sim2"`
	// Ingress configures the ingress (MallKeys, ReturnHosts, its bound on
	// requests at once); Start sets its clock.
	Ingress ingress.Config
	// Consumers configures every consumer group member's runner
	// (BatchSize); Start sets the brokers, group and topic of each.
	Consumers consumers.Config
	// Payinit configures the payinit group (PublicURL, ReturnHosts, PSP
	// concurrency, the earlier-attempt check); Start sets the channels'
	// rules and the clock, and PublicURL to the ingress's address when it
	// is empty. ReturnHosts is the ingress's variable too: set both.
	Payinit payinit.Config
	// Callbacks configures the callbacks group (its PSP concurrency, the
	// variable payinit's is read from too).
	Callbacks callbacks.Config
	// Refunds configures the refunds group and its poller; Start sets
	// RiskEvents.
	Refunds refunds.Config
	// Sweeper configures the sweeper; Start sets its clock when nil.
	Sweeper sweeper.Config
	// Recon configures reconciliation (Tolerance); Start sets the zones
	// and the channels scheduled.
	Recon settlement.Config
	// ReconSchedulingOff stops the sweeper's daily reconciliation.
	ReconSchedulingOff SwitchedOff `env:"PAYGATE_RECON_SCHEDULE" default:"on" help:"the sweeper reconciles every channel with a settlement API daily; off"`
	// Routing configures the router (PolicyFile, SnapshotEvery; Seed is
	// the policy in force while none is stored: `paygate dev` gives
	// DevRoutingPolicy; without it, one catch-all segment split by the
	// channels file's weights). Start sets the rest; a payinit member
	// snapshots its health every 1m when SnapshotEvery is 0.
	Routing router.Config
	// Risk configures risk control (docs/risk.md): RulesFile, ServiceURL,
	// ServiceKey; Seed, if set, is stored as the first version of the
	// rules when none is.
	Risk riskcheck.Config
	// Console configures the operator console, served on the admin
	// listener when it has users; Start sets its mount path and brokers.
	Console console.Config
	// SimAddr is where the simulator PSP listens.
	SimAddr string `env:"PAYGATE_SIM_ADDR" default:"127.0.0.1:8090" help:"the simulator PSP's listener; without a channels file, the built-in channels' base_url"`
	// Sim configures the simulator PSP (PublicURL, Latency); Start sets
	// its merchants from the channels file, and PublicURL to
	// "http://"+ its listen address when it is empty.
	Sim sim.ServerConfig
	// ClockOffset shifts this process's clock: fault injection, so that a
	// test can run one process with a clock minutes off, as a host whose
	// NTP failed has. Never set it in production. Every process compares
	// its clock with PostgreSQL's and says when they differ (clockCheck).
	ClockOffset time.Duration `env:"PAYGATE_CLOCK_OFFSET" default:"0s" help:"fault injection for tests only: shifts this process's clock (never in production)"`
}

// defaultSnapshotEvery is how often a payinit member snapshots its
// routing health when Config.Routing.SnapshotEvery is 0: the tag's
// default (a test holds them equal).
const defaultSnapshotEvery = time.Minute

// SwitchedOff is a setting written on or off, holding whether it is off,
// so that its zero value is on.
type SwitchedOff bool

// UnmarshalText reads on or off.
func (s *SwitchedOff) UnmarshalText(b []byte) error {
	switch string(b) {
	case "on":
		*s = false
	case "off":
		*s = true
	default:
		return errors.New("on or off")
	}
	return nil
}
