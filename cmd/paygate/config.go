package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/settings"
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

// Config is what paygate reads from the environment: internal/app's
// configuration, and what the command itself uses. Every setting's
// variable, default and help are tags on the field it sets
// (internal/settings); `paygate help` lists them (envHelp).
type Config struct {
	app.Config
	// Log configures the logger (newLogger).
	Log LogConfig
	// MetricsAddr is PAYGATE_ADMIN_ADDR's older name: LoadConfig makes it
	// AdminAddr when that is unset.
	MetricsAddr string `env:"PAYGATE_METRICS_ADDR" help:"the older name of PAYGATE_ADMIN_ADDR, read when it is unset"`
}

// LogConfig configures the logger.
type LogConfig struct {
	// Format is text or json. Empty: the subcommand's, text for dev and
	// json for the others (run).
	Format string `env:"PAYGATE_LOG_FORMAT" derived:"json" help:"text for dev"`
	// Level is debug, info, warn or error; an unreadable one is info.
	Level string `env:"PAYGATE_LOG_LEVEL" default:"info" help:"debug, info, warn or error"`
}

// LoadConfig reads the configuration through getenv: every setting by
// its tags, then the defaults worked out from other settings and the
// checks across settings, which tags cannot say.
func LoadConfig(getenv func(string) string) (Config, error) {
	var c Config
	if err := settings.Load(&c, getenv); err != nil {
		return c, err
	}
	if c.AdminAddr == "" {
		c.AdminAddr = c.MetricsAddr // still empty: dev and ingress take defaultAdminAddr
	}
	if c.Payinit.PublicURL == "" {
		c.Payinit.PublicURL = "http://" + c.HTTPAddr
	}
	c.Payinit.PublicURL = strings.TrimRight(c.Payinit.PublicURL, "/")
	c.Sim.PublicURL = strings.TrimRight(c.Sim.PublicURL, "/") // empty: the simulator's listener (app.Start)
	switch c.Log.Format {
	case "", "text", "json":
	default:
		return c, fmt.Errorf("PAYGATE_LOG_FORMAT %q: text or json", c.Log.Format)
	}
	if err := c.Refunds.Check(); err != nil {
		return c, fmt.Errorf("PAYGATE_REFUND_*: %w", err)
	}
	rc := c.Recon // Validate fills in what the environment does not set: check a copy
	if err := rc.Validate(); err != nil {
		return c, err
	}
	if _, err := c.Kafka.Build(); err != nil {
		return c, err
	}
	if u := c.Risk.ServiceURL; u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return c, fmt.Errorf("PAYGATE_RISK_SERVICE_URL %q: an http(s) URL", u)
		}
	}
	return c, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
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
