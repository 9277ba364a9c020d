package main

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/broker"
	"github.com/paygate/paygate/internal/console"
	"github.com/paygate/paygate/internal/store"
)

const helpText = `paygate — payment gateway

Subcommands:
  dev               everything in one process: embedded Kafka-protocol broker (unless
                    KAFKA_BROKERS is set), migrations, ingress, consumers, relay, simulator
  ingress           the HTTP ingress
  consume GROUP     a consumer group member: payinit | callbacks | refunds | recon
                    (refunds also runs the poller of refunds pending at the PSP)
  relay             the outbox relay
  migrate           apply database migrations and exit
  sweep             the sweeper: status probes for attempts without callback, closing expired orders
  sim               the simulator PSP
  broker            the embedded Kafka-protocol broker alone, with paygate's topics (PAYGATE_KAFKA_ADDR,
                    PAYGATE_DATA_DIR): for roles run as processes on one machine; not a production Kafka
  order ID          print an order's whole history (requests, attempts with their routing decisions,
                    callbacks, PSP calls, events)
  routing apply [--by NAME] [--note TEXT] FILE
                    validate a routing policy document and make it the policy in force (audited)
  routing show [--version N] | routing history [--limit N]
                    the policy in force (or version N), every knob written out; the versions with who/when
  routing health [--format table|json]
                    per channel and segment: success rate, samples, breaker, share
  routing explain FILE|-
                    which channel a pay request body would be routed to now, and why
  routing backtest --policy FILE --from T1 --to T2 [--seed N] [--bucket 1h] [--format table|json]
                    replay the recorded attempts of [T1, T2) through a policy: success rate against what
                    happened and against an oracle, shares over time, breaker trips
  risk apply [--by NAME] [--note TEXT] FILE | risk show [--version N] | risk history [--limit N]
                    validate a risk rules document and make it the rules in force (audited); the rules
                    in force (or version N), every default written out; the versions with who/when
  risk explain FILE|-
                    the score, the matched rules and the decision a pay request body would get now
                    (counts read, nothing counted, the outside service not asked)
  risk reviews [--decided] [--limit N]
                    the review queue: pay requests held for an operator (--decided: the newest decided)
  risk review ORDER_ID --approve|--deny [--note TEXT] [--by NAME]
                    decide an order's pending review (audited): approve starts its attempt, deny rejects it
  dlq replay TOPIC [-limit N] [-record PARTITION@OFFSET]
                    send the records in TOPIC's DLQ back to TOPIC: each record that is there
                    when it starts, once, up to that end (copies of records that fail again
                    wait for the next run); -limit N sends at most N, -record one record
  dlq list TOPIC [-limit 20]
                    the newest records in TOPIC's DLQ: why each failed, replays, who replayed it
  dlq sizes         records in each DLQ, and how many were never replayed
                    (dlq needs KAFKA_BROKERS and DATABASE_URL; every replay is audited)
  console hash-password
                    read a password from stdin and print its bcrypt hash, for
                    PAYGATE_CONSOLE_USERS (docs/console.md)
  healthcheck [-timeout 3s] URL
                    GET URL (a role's /healthz or /readyz) and exit 0 on a 2xx answer, 1
                    otherwise: for container healthchecks (the image has no shell or curl)
  recon run --channel X --date YYYY-MM-DD [--wait 2m] [--format table|csv|json]
                    reconcile a channel's business day against its PSP's settlement list and
                    print the report once the recon group matched it (needs the relay and the
                    recon group running, as dev does)
  recon import --channel X --date YYYY-MM-DD FILE
                    import a settlement list (CSV) for a channel-day: all of it or nothing
  recon report [--channel X] [--date D] [--all] [--format table|csv|json]
                    the newest run of each channel-day (--all: every run)

`

// LoadConfig reads the configuration through getenv.
func LoadConfig(getenv func(string) string) (app.Config, error) {
	c := app.Config{
		DatabaseURL:  or(getenv("DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/paygate?sslmode=disable"),
		HTTPAddr:     or(getenv("PAYGATE_HTTP_ADDR"), "127.0.0.1:8080"),
		SimAddr:      or(getenv("PAYGATE_SIM_ADDR"), "127.0.0.1:8090"),
		KafkaAddr:    or(getenv("PAYGATE_KAFKA_ADDR"), "127.0.0.1:9092"),
		DataDir:      or(getenv("PAYGATE_DATA_DIR"), "./data"),
		ChannelsFile: getenv("PAYGATE_CHANNELS_FILE"),
		LogFormat:    getenv("PAYGATE_LOG_FORMAT"),
		LogLevel:     or(getenv("PAYGATE_LOG_LEVEL"), "info"),
		ReturnHosts:  split(or(getenv("PAYGATE_RETURN_HOSTS"), "localhost,127.0.0.1,shop.example,.shop.example")),
		Brokers:      split(getenv("KAFKA_BROKERS")),
	}
	c.PublicURL = strings.TrimRight(or(getenv("PAYGATE_PUBLIC_URL"), "http://"+c.HTTPAddr), "/")
	var err error
	if c.Partitions, err = intVar(getenv, "PAYGATE_PARTITIONS", 8); err != nil {
		return c, err
	}
	if c.BatchSize, err = intVar(getenv, "PAYGATE_BATCH_SIZE", 256); err != nil {
		return c, err
	}
	if c.PSPConcurrency, err = intVar(getenv, "PAYGATE_PSP_CONCURRENCY", 128); err != nil {
		return c, err
	}
	if c.IngressMaxInFlight, err = intVar(getenv, "PAYGATE_INGRESS_MAX_INFLIGHT", 1024); err != nil {
		return c, err
	}
	switch v := getenv("PAYGATE_DB_STATEMENT_CACHE"); v {
	case "off", "0":
		c.StatementCache = -1
	default:
		n, err := intVar(getenv, "PAYGATE_DB_STATEMENT_CACHE", store.DefaultStatementCache)
		if err != nil {
			return c, fmt.Errorf("%w, or off", err)
		}
		c.StatementCache = store.CacheSize(n)
	}
	if c.SimLatency, err = time.ParseDuration(or(getenv("PAYGATE_SIM_LATENCY"), "0s")); err != nil || c.SimLatency < 0 {
		return c, fmt.Errorf("PAYGATE_SIM_LATENCY: %q is not a duration of 0 or more", getenv("PAYGATE_SIM_LATENCY"))
	}
	if c.ReplicationFactor, err = intVar(getenv, "PAYGATE_REPLICATION_FACTOR", 1); err != nil {
		return c, err
	}
	c.APIAddr = or(getenv("PAYGATE_API_ADDR"), "127.0.0.1:8081")
	c.AdminAddr = or(getenv("PAYGATE_ADMIN_ADDR"), getenv("PAYGATE_METRICS_ADDR")) // dev and ingress: defaultAdminAddr
	c.PprofAddr = getenv("PAYGATE_PPROF_ADDR")
	if c.Console.Users, err = console.ParseUsers(getenv("PAYGATE_CONSOLE_USERS")); err != nil {
		return c, fmt.Errorf("PAYGATE_CONSOLE_USERS: %w", err)
	}
	if v := getenv("PAYGATE_CONSOLE_SESSION_TTL"); v != "" {
		if c.Console.SessionTTL, err = time.ParseDuration(v); err != nil || c.Console.SessionTTL < time.Minute {
			return c, fmt.Errorf("PAYGATE_CONSOLE_SESSION_TTL=%q: a duration of 1m or more, like 8h", v)
		}
	}
	if c.Console.InsecureCookies, err = boolVar(getenv, "PAYGATE_CONSOLE_INSECURE_COOKIES", false); err != nil {
		return c, err
	}
	c.SimPublicURL = strings.TrimRight(getenv("PAYGATE_SIM_PUBLIC_URL"), "/")
	c.RoutingPolicyFile = getenv("PAYGATE_ROUTING_POLICY_FILE")
	c.Risk.RulesFile = getenv("PAYGATE_RISK_RULES_FILE")
	if v := getenv("PAYGATE_CLOCK_OFFSET"); v != "" {
		if c.ClockOffset, err = time.ParseDuration(v); err != nil {
			return c, fmt.Errorf("PAYGATE_CLOCK_OFFSET=%q: a Go duration like 10m or -10m", v)
		}
	}
	c.Risk.ServiceURL = getenv("PAYGATE_RISK_SERVICE_URL")
	if kv := getenv("PAYGATE_RISK_SERVICE_KEY"); kv != "" {
		id, secret, ok := strings.Cut(kv, ":")
		if !ok || id == "" || secret == "" {
			return c, errors.New("PAYGATE_RISK_SERVICE_KEY: not id:secret")
		}
		c.Risk.ServiceKeyID, c.Risk.ServiceSecret = id, secret
	}
	if u := c.Risk.ServiceURL; u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return c, fmt.Errorf("PAYGATE_RISK_SERVICE_URL %q: an http(s) URL", u)
		}
	}
	if c.Retention, err = time.ParseDuration(or(getenv("PAYGATE_KAFKA_RETENTION"), "24h")); err != nil {
		return c, fmt.Errorf("PAYGATE_KAFKA_RETENTION: %w", err)
	}
	check, err := boolVar(getenv, "PAYGATE_CHECK_EARLIER_ATTEMPTS", true)
	if err != nil {
		return c, err
	}
	c.SkipEarlierCheck = !check
	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"PAYGATE_INGRESS_QUEUE_WAIT", &c.IngressQueueWait},
		{"PAYGATE_SWEEP_INTERVAL", &c.Sweeper.Interval},
		{"PAYGATE_ATTEMPT_TTL", &c.Sweeper.AttemptTTL},
		{"PAYGATE_ORDER_TTL", &c.Sweeper.OrderTTL},
		{"PAYGATE_REFUND_CALL_TIMEOUT", &c.Refunds.CallTimeout},
		{"PAYGATE_REFUND_LEASE", &c.Refunds.Lease},
		{"PAYGATE_REFUND_MIN_BACKOFF", &c.Refunds.MinBackoff},
		{"PAYGATE_REFUND_MAX_BACKOFF", &c.Refunds.MaxBackoff},
		{"PAYGATE_REFUND_POLL_INTERVAL", &c.Refunds.PollInterval},
		{"PAYGATE_ROUTING_SNAPSHOT_EVERY", &c.RoutingSnapshotEvery},
	}
	for _, d := range durations {
		if v := getenv(d.name); v != "" {
			if *d.dst, err = time.ParseDuration(v); err != nil || *d.dst <= 0 {
				return c, fmt.Errorf("%s=%q: a positive duration like 30s", d.name, v)
			}
		}
	}
	if c.Refunds.Concurrency, err = intVar(getenv, "PAYGATE_REFUND_CONCURRENCY", 16); err != nil {
		return c, err
	}
	if c.Refunds.PollBatch, err = intVar(getenv, "PAYGATE_REFUND_POLL_BATCH", 100); err != nil {
		return c, err
	}
	if err := c.Refunds.Check(); err != nil {
		return c, fmt.Errorf("PAYGATE_REFUND_*: %w", err)
	}
	for _, v := range split(getenv("PAYGATE_PROBE_SCHEDULE")) {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("PAYGATE_PROBE_SCHEDULE: %q is not a positive duration", v)
		}
		c.Sweeper.Schedule = append(c.Sweeper.Schedule, d)
	}
	c.MallKeys = map[string][]string{}
	for _, kv := range split(or(getenv("PAYGATE_MALL_KEYS"), "dev-mall:dev-mall-secret")) {
		id, secret, ok := strings.Cut(kv, ":")
		if !ok || id == "" || secret == "" {
			return c, fmt.Errorf("PAYGATE_MALL_KEYS: %q is not id:secret", kv)
		}
		c.MallKeys[id] = append(c.MallKeys[id], secret)
	}
	if c.Kafka, err = broker.SecurityFromEnv(getenv); err != nil {
		return c, err
	}
	if err := loadReconConfig(getenv, &c); err != nil { // recon.go
		return c, err
	}
	switch c.LogFormat {
	case "", "text", "json":
	default:
		return c, fmt.Errorf("PAYGATE_LOG_FORMAT %q: text or json", c.LogFormat)
	}
	return c, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func split(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// boolVar reads true (or 1) and false (or 0); unset is def.
func boolVar(getenv func(string) string, name string, def bool) (bool, error) {
	switch v := getenv(name); v {
	case "":
		return def, nil
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	default:
		return false, fmt.Errorf("%s=%q: true or false", name, v)
	}
}

func intVar(getenv func(string) string, name string, def int) (int, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q: a positive integer", name, v)
	}
	return n, nil
}

func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable>"
	}
	return u.Redacted()
}

// defaultAdminAddr is the admin listener of dev and the ingress when
// neither PAYGATE_ADMIN_ADDR nor PAYGATE_METRICS_ADDR is set; the other
// roles serve no HTTP then (several may run on one host).
const defaultAdminAddr = "127.0.0.1:8082"
