package app

import (
	"time"

	"github.com/paygate/paygate/consumers/refunds"
	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/broker"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/producers/settlement"
	"github.com/paygate/paygate/producers/sweeper"
)

// Config is paygate's whole configuration, read once from the environment.
// Every field says its variable and default; `paygate help` prints them.
type Config struct {
	// DatabaseURL (DATABASE_URL). Default
	// postgres://postgres@127.0.0.1:5432/paygate?sslmode=disable.
	DatabaseURL string
	// Brokers (KAFKA_BROKERS, comma-separated). Default: none, and `dev`
	// starts the embedded broker; every other role requires it.
	Brokers []string
	// HTTPAddr is where the ingress's public listener is, for PSP
	// callbacks and buyers' browsers (PAYGATE_HTTP_ADDR). Default
	// 127.0.0.1:8080.
	HTTPAddr string
	// APIAddr is where the ingress's API listener is, for the mall's and
	// finance's signed requests and reads (PAYGATE_API_ADDR). Default
	// 127.0.0.1:8081; the same address as another listener shares it.
	// Empty in code: on HTTPAddr.
	APIAddr string
	// AdminAddr is where the admin listener is: /metrics, /healthz,
	// /readyz, /debug/pprof/ and what App.HandleAdmin adds
	// (PAYGATE_ADMIN_ADDR, or its older name PAYGATE_METRICS_ADDR).
	// Default 127.0.0.1:8082 for dev and ingress, none for the other
	// roles (they serve no HTTP then). Empty in code with the ingress
	// role: on HTTPAddr.
	AdminAddr string
	// PublicURL is the ingress's address as PSPs and browsers reach it
	// (PAYGATE_PUBLIC_URL). Default http://<HTTPAddr>.
	PublicURL string
	// SimAddr is where the simulator PSP listens (PAYGATE_SIM_ADDR).
	// Default 127.0.0.1:8090.
	SimAddr string
	// KafkaAddr is where the embedded broker listens (PAYGATE_KAFKA_ADDR).
	// Default 127.0.0.1:9092.
	KafkaAddr string
	// DataDir holds the embedded broker's data (PAYGATE_DATA_DIR).
	// Default ./data.
	DataDir string
	// ChannelsFile is the channels file (PAYGATE_CHANNELS_FILE). Default:
	// none; `dev` and `sim` then use the built-in simulator channels.
	ChannelsFile string
	// MallKeys are the mall's and finance's signing keys
	// (PAYGATE_MALL_KEYS, "id:secret,id:secret2,..."; one id may appear
	// several times during rotation). Default dev-mall:dev-mall-secret.
	MallKeys map[string][]string
	// ReturnHosts is the allow-list of the mall's return URL hosts
	// (PAYGATE_RETURN_HOSTS, comma-separated; ".example.com" admits
	// sub-domains). Default localhost,127.0.0.1,shop.example,.shop.example.
	ReturnHosts domain.HostAllowList
	// Partitions per topic when paygate creates them (PAYGATE_PARTITIONS).
	// Default 8.
	Partitions int
	// BatchSize is the consumers' most messages per batch
	// (PAYGATE_BATCH_SIZE). Default 256.
	BatchSize int
	// LogFormat is text or json (PAYGATE_LOG_FORMAT). Default json, text
	// for dev.
	LogFormat string
	// LogLevel is debug, info, warn or error (PAYGATE_LOG_LEVEL). Default info.
	LogLevel string
	// Kafka is how to connect to KAFKA_BROKERS: PAYGATE_KAFKA_TLS,
	// PAYGATE_KAFKA_TLS_CA, PAYGATE_KAFKA_TLS_SERVER_NAME,
	// PAYGATE_KAFKA_SASL, PAYGATE_KAFKA_USERNAME, PAYGATE_KAFKA_PASSWORD.
	// Default: plaintext, no authentication.
	Kafka broker.SecurityConfig
	// Retention of the embedded broker's records (PAYGATE_KAFKA_RETENTION).
	// Default 24h.
	Retention time.Duration
	// SkipEarlierCheck turns off payinit's check, on a repeat pay
	// request, of whether an earlier attempt already succeeded
	// (PAYGATE_CHECK_EARLIER_ATTEMPTS=false). Default: check.
	SkipEarlierCheck bool
	// Sweeper configures the sweeper: PAYGATE_SWEEP_INTERVAL (1s),
	// PAYGATE_PROBE_SCHEDULE (1m,5m,15m,1h; the last repeats),
	// PAYGATE_ATTEMPT_TTL (30m), PAYGATE_ORDER_TTL (24h).
	Sweeper sweeper.Config
	// Refunds configures the refunds group and its poller:
	// PAYGATE_REFUND_CONCURRENCY (16), PAYGATE_REFUND_CALL_TIMEOUT (30s),
	// PAYGATE_REFUND_LEASE (1m), PAYGATE_REFUND_MIN_BACKOFF (1s),
	// PAYGATE_REFUND_MAX_BACKOFF (5m), PAYGATE_REFUND_POLL_INTERVAL (1s),
	// PAYGATE_REFUND_POLL_BATCH (100).
	Refunds refunds.Config
	// PprofAddr is where the process serves Go's runtime profiles
	// (net/http/pprof, /debug/pprof/) on a listener of their own
	// (PAYGATE_PPROF_ADDR), besides the admin listener. Default: none.
	PprofAddr string
	// IngressMaxInFlight bounds the requests the ingress works on at once
	// on the routes that store something (PAYGATE_INGRESS_MAX_INFLIGHT);
	// one more waits up to IngressQueueWait for a slot
	// (PAYGATE_INGRESS_QUEUE_WAIT), then is answered 503 with
	// Retry-After. Defaults 1024 and 1s.
	IngressMaxInFlight int
	IngressQueueWait   time.Duration
	// SimPublicURL is the simulator's address as browsers reach it, for
	// its pay_url (PAYGATE_SIM_PUBLIC_URL). Default http://<SimAddr>.
	SimPublicURL string
	// SimLatency is added to every answer of the simulator's API
	// (PAYGATE_SIM_LATENCY), to stand for a PSP across the internet.
	// Default 0.
	SimLatency time.Duration
	// PSPConcurrency bounds the PSP calls of one batch in flight at once:
	// payinit's Initiate and the callbacks group's status queries
	// (PAYGATE_PSP_CONCURRENCY). A batch takes about ceil(calls /
	// PSPConcurrency) PSP round trips, so with a PSP 100 ms away one
	// group member confirms at most PSPConcurrency×10 callbacks a second.
	// Default 128.
	PSPConcurrency int
	// StatementCache is how many prepared statements each database
	// connection keeps (PAYGATE_DB_STATEMENT_CACHE; "off" is -1).
	// Default 256.
	StatementCache store.CacheSize
	// DBMaxConns bounds the store's open database connections. Not read
	// from the environment: the tests set it, running many paygates
	// against one server. Default (0): the store's, 16.
	DBMaxConns int
	// ReplicationFactor of the topics paygate creates
	// (PAYGATE_REPLICATION_FACTOR). Default 1; production uses 3.
	ReplicationFactor int
	// Recon configures reconciliation: PAYGATE_RECON_TOLERANCE_DAYS (2).
	Recon settlement.Config
	// ReconSchedulingOff stops the sweeper's daily reconciliation
	// (PAYGATE_RECON_SCHEDULE=off). Default: on.
	ReconSchedulingOff bool
	// RoutingPolicyFile is a routing policy document applied when the
	// process starts and whenever the file changes
	// (PAYGATE_ROUTING_POLICY_FILE). Default: none; policies are applied
	// with `paygate routing apply`.
	RoutingPolicyFile string
	// RoutingPolicy is the policy in force while none is stored: a
	// document (`paygate dev` gives DevRoutingPolicy). Default: none, and
	// then one catch-all segment split by the channels file's weights.
	RoutingPolicy []byte
	// RoutingSnapshotEvery is how often a payinit member snapshots its
	// routing health (PAYGATE_ROUTING_SNAPSHOT_EVERY). Default 1m.
	RoutingSnapshotEvery time.Duration
	// ClockOffset shifts this process's clock (PAYGATE_CLOCK_OFFSET):
	// fault injection, so that a test can run one process with a clock
	// minutes off, as a host whose NTP failed has. Default 0; never set
	// it in production. Every process compares its clock with
	// PostgreSQL's and says when they differ (clockCheck).
	ClockOffset time.Duration
	// Console configures the operator console, served on the admin
	// listener when it has users: PAYGATE_CONSOLE_USERS,
	// PAYGATE_CONSOLE_SESSION_TTL, PAYGATE_CONSOLE_INSECURE_COOKIES.
	Console ConsoleConfig
	// Risk configures risk control (docs/risk.md).
	Risk RiskConfig
}

// RiskConfig configures risk control. Without rules stored (`paygate risk
// apply`) or a rules file, risk control is off: every request is allowed,
// nothing is counted.
type RiskConfig struct {
	// RulesFile is a risk rules document applied when the process starts
	// and whenever the file changes (PAYGATE_RISK_RULES_FILE). Default:
	// none; rules are applied with `paygate risk apply`.
	RulesFile string
	// Rules, if set, is stored as the first version when none is (a
	// built-in document, as RoutingPolicy is for routing).
	Rules []byte
	// ServiceURL is the outside risk service (PAYGATE_RISK_SERVICE_URL).
	// Default: none. The rules' outside section says how it is used.
	ServiceURL string
	// ServiceKeyID and ServiceSecret sign the calls to it
	// (PAYGATE_RISK_SERVICE_KEY=id:secret). Default: unsigned.
	ServiceKeyID, ServiceSecret string
}
