package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/crypto/bcrypt"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/console"
)

func newLogger(format, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// roleLogFormat is the log format of every subcommand but dev (text)
// when PAYGATE_LOG_FORMAT is unset: its tag's derived default.
const roleLogFormat = "json"

// run starts the roles and waits for a signal or a component failure.
func run(ctx context.Context, cfg Config, roles app.Roles, defaultFormat string) (*app.App, error) {
	return app.Start(ctx, cfg.Config, roles, newLogger(or(cfg.Log.Format, defaultFormat), cfg.Log.Level))
}

func runDev(ctx context.Context, cfg Config) error {
	if cfg.ChannelsFile == "" && len(cfg.Routing.Seed) == 0 {
		// The built-in simulator channels: both for every payment.
		cfg.Routing.Seed = []byte(app.DevRoutingPolicy)
	}
	if cfg.AdminAddr == "" {
		cfg.AdminAddr = defaultAdminAddr
	}
	consoleLogin := "accounts from PAYGATE_CONSOLE_USERS"
	shared := cfg.AdminAddr == cfg.HTTPAddr || cfg.AdminAddr == cfg.APIAddr
	if len(cfg.Console.Users) == 0 && shared {
		// The console is never served where PSPs or the mall reach; the
		// demo account is not made then (the load harness runs dev so).
		consoleLogin = "not served: the admin listener shares the ingress's address"
	} else if len(cfg.Console.Users) == 0 {
		// A console account for the demo, as there is a mall key.
		h, err := bcrypt.GenerateFromPassword([]byte(app.DevConsolePassword), bcrypt.MinCost)
		if err != nil {
			return err
		}
		cfg.Console.Users = []console.User{{Name: app.DevConsoleUser, Role: console.RoleOperator, PasswordHash: h}}
		consoleLogin = "sign in as " + app.DevConsoleUser + " / " + app.DevConsolePassword
	}
	a, err := run(ctx, cfg, app.All, "text")
	if err != nil {
		return err
	}
	// The curl line signs with the first configured key (the dev key
	// unless PAYGATE_MALL_KEYS says otherwise).
	keyID, secret := app.DevMallKeyID, app.DevMallSecret
	if _, ok := cfg.Ingress.MallKeys[keyID]; !ok {
		for id, secrets := range cfg.Ingress.MallKeys {
			keyID, secret = id, secrets[0]
			break
		}
	}
	fmt.Fprintf(os.Stderr, `
paygate dev is running.
  ingress, public  %[1]s   (PSP callbacks, browser returns)
  ingress, API     %[7]s   (the mall's and finance's signed requests and reads)
  admin            %[8]s   (/metrics, /healthz, /readyz, /debug/pprof/)
  console          %[9]s   (%[10]s)
  simulator PSP    %[2]s
  Kafka broker     %[3]s   (kcat -b %[3]s -t paygate.payments.v1 -C)
  database         %[4]s
  mall key         %[5]s / %[6]s

Start a payment (signed like the mall signs):
  body='{"order_id":"A1001","amount":1999,"currency":"USD","country":"US","method":"card","buyer":{"id":"u42"},"return_urls":{"success":"https://shop.example/ok","failure":"https://shop.example/fail","pending":"https://shop.example/wait"}}'
  ts=$(date +%%s); sig=$(printf '%%s.%%s' "$ts" "$body" | openssl dgst -sha256 -hmac %[6]s -r | cut -d' ' -f1)
  curl -sS -X POST %[7]s/v1/payments -H 'Content-Type: application/json' -H 'X-Paygate-Key-Id: %[5]s' -H "X-Paygate-Timestamp: $ts" -H "X-Paygate-Signature: v1=$sig" -d "$body"
Read it (a read is signed over its method and path too, v2):
  path='/v1/payments/A1001?wait=5s'; ts=$(date +%%s); sig=$(printf '%%s.GET.%%s.' "$ts" "$path" | openssl dgst -sha256 -hmac %[6]s -r | cut -d' ' -f1)
  curl -sS "%[7]s$path" -H 'X-Paygate-Key-Id: %[5]s' -H "X-Paygate-Timestamp: $ts" -H "X-Paygate-Signature: v2=$sig"   # then open the attempt's pay_url and pay

`, a.IngressURL, a.SimURL, a.Brokers[0], redacted(cfg.Store.URL), keyID, secret, a.APIURL, a.AdminURL, or(a.ConsoleURL, "-"), consoleLogin)
	return a.Wait()
}

type role int

const (
	roleIngress role = iota
	rolePayinit
	roleCallbacks
	roleRelay
	roleSweep
	roleRefunds
	roleRecon
)

func runRole(ctx context.Context, cfg Config, r role) error {
	roles := map[role]app.Roles{
		roleIngress:   {Ingress: true},
		rolePayinit:   {Payinit: true},
		roleCallbacks: {Callbacks: true},
		roleRelay:     {Relay: true},
		roleSweep:     {Sweep: true},
		roleRefunds:   {Refunds: true},
		roleRecon:     {Recon: true},
	}[r]
	if r == roleIngress && cfg.AdminAddr == "" {
		cfg.AdminAddr = defaultAdminAddr
	}
	a, err := run(ctx, cfg, roles, roleLogFormat)
	if err != nil {
		return err
	}
	return a.Wait()
}

func runMigrate(ctx context.Context, cfg Config) error {
	a, err := run(ctx, cfg, app.Roles{Migrate: true}, roleLogFormat)
	if err != nil {
		return err
	}
	return a.Stop()
}

// runBroker runs the embedded Kafka-protocol broker alone, as its own
// process (PAYGATE_KAFKA_ADDR, state in PAYGATE_DATA_DIR), with paygate's
// topics: a broker that can be stopped and started apart from the roles
// that use it (the chaos test's), or shared by roles run as processes on
// one machine. Not a production Kafka: one node, no replication.
func runBroker(ctx context.Context, cfg Config) error {
	if len(cfg.Brokers) > 0 {
		return usageError{"broker runs the embedded broker: unset KAFKA_BROKERS"}
	}
	a, err := run(ctx, cfg, app.Roles{Broker: true}, roleLogFormat)
	if err != nil {
		return err
	}
	return a.Wait()
}

func runSim(ctx context.Context, cfg Config) error {
	a, err := run(ctx, cfg, app.Roles{Sim: true}, roleLogFormat)
	if err != nil {
		return err
	}
	return a.Wait()
}
