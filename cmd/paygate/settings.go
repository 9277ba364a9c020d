package main

import (
	"fmt"
	"strings"
)

// setting is one environment variable paygate reads: the one list of
// them. `paygate help` prints it (envHelp); a test holds LoadConfig to
// read exactly these variables, docs/configuration.md's table to list
// them with the same defaults, and each default that LoadConfig applies
// itself to be the one written here.
type setting struct {
	// name is the variable.
	name string
	// def is the default as written for people ("" for none).
	def string
	// note says what it is, briefly; for a setting without a default,
	// what happens without it.
	note string
	// by names the component that applies def when the variable is
	// unset, if LoadConfig leaves it to that component ("" when
	// LoadConfig applies it, or there is none).
	by string
}

// settings are every variable, in the order `paygate help` lists them.
// A new setting is added here, read in LoadConfig, and documented in
// docs/configuration.md's table; the tests say what is missing.
var settingList = []setting{
	{name: "DATABASE_URL", def: "postgres://postgres@127.0.0.1:5432/paygate?sslmode=disable"},
	{name: "KAFKA_BROKERS", note: "none: dev starts the embedded broker; required elsewhere"},
	{name: "PAYGATE_KAFKA_TLS", def: "false", note: "true: TLS to KAFKA_BROKERS"},
	{name: "PAYGATE_KAFKA_TLS_CA", note: "the system's CAs; or a PEM file of the CAs to trust"},
	{name: "PAYGATE_KAFKA_TLS_SERVER_NAME", note: "each broker's host; the name its certificate must carry"},
	{name: "PAYGATE_KAFKA_SASL", note: "none; PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
	{name: "PAYGATE_KAFKA_USERNAME", note: "the SASL user"},
	{name: "PAYGATE_KAFKA_PASSWORD", note: "the SASL password"},
	{name: "PAYGATE_HTTP_ADDR", def: "127.0.0.1:8080", note: "the ingress's public listener: PSP callbacks, browser returns"},
	{name: "PAYGATE_API_ADDR", def: "127.0.0.1:8081", note: "the ingress's API listener: the mall's and finance's signed requests and reads; an address equal to another listener's shares it"},
	{name: "PAYGATE_ADMIN_ADDR", def: "127.0.0.1:8082", note: "for dev and ingress, none for other roles: the admin listener, /metrics, /healthz, /readyz, /debug/pprof/",
		by: "cmd/paygate's dev and ingress"},
	{name: "PAYGATE_PUBLIC_URL", def: "http://$PAYGATE_HTTP_ADDR"},
	{name: "PAYGATE_SIM_ADDR", def: "127.0.0.1:8090"},
	{name: "PAYGATE_KAFKA_ADDR", def: "127.0.0.1:9092", note: "embedded broker"},
	{name: "PAYGATE_KAFKA_RETENTION", def: "24h", note: "embedded broker"},
	{name: "PAYGATE_DATA_DIR", def: "./data", note: "embedded broker state"},
	{name: "PAYGATE_CHANNELS_FILE", note: "none: the built-in simulator channels sim and sim2"},
	{name: "PAYGATE_MALL_KEYS", def: "dev-mall:dev-mall-secret"},
	{name: "PAYGATE_RETURN_HOSTS", def: "localhost,127.0.0.1,shop.example,.shop.example"},
	{name: "PAYGATE_PARTITIONS", def: "8"},
	{name: "PAYGATE_REPLICATION_FACTOR", def: "1", note: "of the topics paygate creates; 3 in production"},
	{name: "PAYGATE_METRICS_ADDR", note: "the older name of PAYGATE_ADMIN_ADDR, read when it is unset"},
	{name: "PAYGATE_CONSOLE_USERS", note: "none: no console (dev: dev / dev-console-password); the operator console's accounts, name:role:bcrypt-hash,... (role viewer or operator; paygate console hash-password), served at /console/ on the admin listener"},
	{name: "PAYGATE_CONSOLE_SESSION_TTL", def: "8h", note: "how long a console sign-in lasts", by: "console"},
	{name: "PAYGATE_CONSOLE_INSECURE_COOKIES", def: "false", note: "true: the console's cookies without Secure, for plain HTTP off localhost"},
	{name: "PAYGATE_PPROF_ADDR", note: "none: serve net/http/pprof here too, on a listener of its own"},
	{name: "PAYGATE_SIM_PUBLIC_URL", def: "http://$PAYGATE_SIM_ADDR", note: "the simulator's pay_url base, as browsers reach it", by: "app"},
	{name: "PAYGATE_INGRESS_MAX_INFLIGHT", def: "1024", note: "requests stored at once by the ingress; one more waits for a slot"},
	{name: "PAYGATE_INGRESS_QUEUE_WAIT", def: "1s", note: "how long it waits; then it is answered 503 overloaded, Retry-After: 1", by: "ingress"},
	{name: "PAYGATE_BATCH_SIZE", def: "256"},
	{name: "PAYGATE_PSP_CONCURRENCY", def: "128", note: "PSP calls of one batch in flight at once: Initiate, status queries"},
	{name: "PAYGATE_DB_STATEMENT_CACHE", def: "256", note: "prepared statements kept per database connection; off for a pooler that drops them"},
	{name: "PAYGATE_SIM_LATENCY", def: "0s", note: "added to every answer of the simulator's API, to stand for a PSP far away"},
	{name: "PAYGATE_LOG_FORMAT", def: "json", note: "text for dev", by: "cmd/paygate's logger"},
	{name: "PAYGATE_LOG_LEVEL", def: "info"},
	{name: "PAYGATE_CHECK_EARLIER_ATTEMPTS", def: "true", note: "ask the PSP about open attempts on a repeat pay request"},
	{name: "PAYGATE_SWEEP_INTERVAL", def: "1s", by: "sweeper"},
	{name: "PAYGATE_PROBE_SCHEDULE", def: "1m,5m,15m,1h", note: "delays between status probes of an attempt without callback; the last repeats", by: "sweeper"},
	{name: "PAYGATE_ATTEMPT_TTL", def: "30m", note: "when the PSP gives no expiry", by: "sweeper"},
	{name: "PAYGATE_ORDER_TTL", def: "24h", note: "unpaid orders are closed after it", by: "sweeper"},
	{name: "PAYGATE_REFUND_CONCURRENCY", def: "16", note: "refund calls and queries to PSPs in flight at once"},
	{name: "PAYGATE_REFUND_CALL_TIMEOUT", def: "30s", note: "one refund call or query", by: "refunds"},
	{name: "PAYGATE_REFUND_LEASE", def: "1m", note: "how long a worker holds a refund it calls; more than the call timeout", by: "refunds"},
	{name: "PAYGATE_REFUND_MIN_BACKOFF", def: "1s", note: "the first wait before a refund pending at the PSP is queried again; doubles", by: "refunds"},
	{name: "PAYGATE_REFUND_MAX_BACKOFF", def: "5m", note: "the longest such wait", by: "refunds"},
	{name: "PAYGATE_REFUND_POLL_INTERVAL", def: "1s", note: "how often the poller looks for due refunds", by: "refunds"},
	{name: "PAYGATE_REFUND_POLL_BATCH", def: "100", note: "the most refunds it claims at once"},
	{name: "PAYGATE_RECON_TOLERANCE_DAYS", def: "2", note: "days a payment may straddle midnight before it counts as missing"},
	{name: "PAYGATE_RECON_SCHEDULE", def: "on", note: "the sweeper reconciles every channel with a settlement API daily; off"},
	{name: "PAYGATE_ROUTING_POLICY_FILE", note: "none: policies applied with paygate routing apply; else this file, applied\n" +
		"at start and whenever it changes, a bad one refused and logged"},
	{name: "PAYGATE_ROUTING_SNAPSHOT_EVERY", def: "1m", note: "how often a payinit member snapshots its routing health", by: "payinit"},
	{name: "PAYGATE_RISK_RULES_FILE", note: "none: rules applied with paygate risk apply; else this file, applied at\n" +
		"start and whenever it changes, a bad one refused and logged; no rules: risk control off"},
	{name: "PAYGATE_RISK_SERVICE_URL", note: "none: the outside risk service, asked when the rules have an outside section"},
	{name: "PAYGATE_RISK_SERVICE_KEY", note: "none: id:secret signing the calls to the outside risk service"},
	{name: "PAYGATE_CLOCK_OFFSET", def: "0s", note: "fault injection for tests only: shifts this process's clock (never in production)"},
}

// envHelp is the environment part of `paygate help`, from settings.
func envHelp() string {
	var b strings.Builder
	b.WriteString("Environment (default):\n")
	const indent = "                          " // where a value starts
	for _, s := range settingList {
		v := s.def
		switch {
		case v == "":
			v = "(" + s.note + ")"
		case s.note != "":
			v += " (" + s.note + ")"
		}
		fmt.Fprintf(&b, "  %-23s %s\n", s.name, strings.ReplaceAll(v, "\n", "\n"+indent))
	}
	return b.String()
}
