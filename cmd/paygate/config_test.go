package main

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

// The PSP concurrency and the simulator's latency: defaults, values, and
// a message naming the variable for a bad one.
func TestLoadConfigPSPConcurrencyAndSimLatency(t *testing.T) {
	c, err := LoadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Payinit.Concurrency != 128 || c.Callbacks.Concurrency != 128 || c.Sim.Latency != 0 {
		t.Errorf("defaults: concurrency %d, latency %s", c.Payinit.Concurrency, c.Sim.Latency)
	}
	c, err = LoadConfig(env(map[string]string{"PAYGATE_PSP_CONCURRENCY": "32", "PAYGATE_SIM_LATENCY": "80ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Payinit.Concurrency != 32 || c.Callbacks.Concurrency != 32 || c.Sim.Latency != 80*time.Millisecond {
		t.Errorf("set: concurrency %d, latency %s", c.Payinit.Concurrency, c.Sim.Latency)
	}
	for _, tc := range []struct{ name, value string }{
		{"PAYGATE_PSP_CONCURRENCY", "0"},
		{"PAYGATE_PSP_CONCURRENCY", "many"},
		{"PAYGATE_SIM_LATENCY", "-1s"},
		{"PAYGATE_SIM_LATENCY", "soon"},
	} {
		if _, err := LoadConfig(env(map[string]string{tc.name: tc.value})); err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s=%s: %v", tc.name, tc.value, err)
		}
	}
}

// The ingress's bound on requests at once and its wait for a slot: the
// defaults, values, and an error naming the variable for a bad one.
func TestLoadConfigIngressMaxInFlight(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  int
	}{{"", 1024}, {"1", 1}, {"5000", 5000}} {
		c, err := LoadConfig(env(map[string]string{"PAYGATE_INGRESS_MAX_INFLIGHT": tc.value}))
		if err != nil || c.Ingress.MaxInFlight != tc.want {
			t.Errorf("PAYGATE_INGRESS_MAX_INFLIGHT=%q: %d, %v; want %d", tc.value, c.Ingress.MaxInFlight, err, tc.want)
		}
	}
	for _, v := range []string{"0", "-1", "lots"} {
		if _, err := LoadConfig(env(map[string]string{"PAYGATE_INGRESS_MAX_INFLIGHT": v})); err == nil || !strings.Contains(err.Error(), "PAYGATE_INGRESS_MAX_INFLIGHT") {
			t.Errorf("PAYGATE_INGRESS_MAX_INFLIGHT=%q: %v", v, err)
		}
	}
	c, err := LoadConfig(env(map[string]string{"PAYGATE_INGRESS_QUEUE_WAIT": "250ms"}))
	if err != nil || c.Ingress.QueueWait != 250*time.Millisecond {
		t.Errorf("PAYGATE_INGRESS_QUEUE_WAIT=250ms: %s, %v", c.Ingress.QueueWait, err)
	}
	if c, _ := LoadConfig(env(nil)); c.Ingress.QueueWait != time.Second {
		t.Errorf("PAYGATE_INGRESS_QUEUE_WAIT unset: %s; want 1s, the ingress's default (its tag's)", c.Ingress.QueueWait)
	}
	for _, v := range []string{"0s", "-1s", "soon"} {
		if _, err := LoadConfig(env(map[string]string{"PAYGATE_INGRESS_QUEUE_WAIT": v})); err == nil || !strings.Contains(err.Error(), "PAYGATE_INGRESS_QUEUE_WAIT") {
			t.Errorf("PAYGATE_INGRESS_QUEUE_WAIT=%q: %v", v, err)
		}
	}
}

// The prepared-statement cache: on by default, a size, off, and a clear
// error naming the variable for anything else.
func TestLoadConfigStatementCache(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  int
	}{{"", 256}, {"32", 32}, {"off", -1}, {"0", -1}} {
		c, err := LoadConfig(env(map[string]string{"PAYGATE_DB_STATEMENT_CACHE": tc.value}))
		if err != nil || int(c.Store.StatementCache) != tc.want {
			t.Errorf("PAYGATE_DB_STATEMENT_CACHE=%q: %d, %v; want %d", tc.value, c.Store.StatementCache, err, tc.want)
		}
	}
	for _, v := range []string{"-3", "many", "on"} {
		_, err := LoadConfig(env(map[string]string{"PAYGATE_DB_STATEMENT_CACHE": v}))
		if err == nil || !strings.Contains(err.Error(), "PAYGATE_DB_STATEMENT_CACHE") || !strings.Contains(err.Error(), "off") {
			t.Errorf("PAYGATE_DB_STATEMENT_CACHE=%q: %v", v, err)
		}
	}
}

// Kafka's TLS and SASL: read from the environment, and refused at start
// when they cannot work, with the variable to fix.
func TestLoadConfigKafkaSecurity(t *testing.T) {
	c, err := LoadConfig(env(map[string]string{"PAYGATE_KAFKA_TLS": "true", "PAYGATE_KAFKA_TLS_SERVER_NAME": "kafka.internal",
		"PAYGATE_KAFKA_SASL": "SCRAM-SHA-256", "PAYGATE_KAFKA_USERNAME": "paygate", "PAYGATE_KAFKA_PASSWORD": "pw"}))
	if err != nil {
		t.Fatal(err)
	}
	k := c.Kafka
	if !k.TLS || k.ServerName != "kafka.internal" || k.Mechanism != "SCRAM-SHA-256" || k.Username != "paygate" || k.Password != "pw" {
		t.Errorf("read %+v", k)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PAYGATE_KAFKA_TLS": "yes please"}, "PAYGATE_KAFKA_TLS"},
		{map[string]string{"PAYGATE_KAFKA_SASL": "PLAIN", "PAYGATE_KAFKA_USERNAME": "u"}, "PAYGATE_KAFKA_PASSWORD"},
		{map[string]string{"PAYGATE_KAFKA_SASL": "OAUTHBEARER", "PAYGATE_KAFKA_USERNAME": "u", "PAYGATE_KAFKA_PASSWORD": "p"}, "PAYGATE_KAFKA_SASL"},
		{map[string]string{"PAYGATE_KAFKA_TLS_CA": "/nowhere.pem"}, "PAYGATE_KAFKA_TLS=true"},
	} {
		if _, err := LoadConfig(env(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.env, err, tc.want)
		}
	}
}

// The refunds group's settings: defaults, values, a bad value named, and
// a lease no longer than a call refused.
func TestLoadConfigRefunds(t *testing.T) {
	c, err := LoadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Refunds; r.Concurrency != 16 || r.PollBatch != 100 || r.CallTimeout != 30*time.Second || r.Lease != time.Minute {
		t.Errorf("defaults: %+v (the refunds package's, its tags')", r)
	}
	c, err = LoadConfig(env(map[string]string{"PAYGATE_REFUND_CONCURRENCY": "4", "PAYGATE_REFUND_CALL_TIMEOUT": "10s",
		"PAYGATE_REFUND_LEASE": "20s", "PAYGATE_REFUND_MIN_BACKOFF": "2s", "PAYGATE_REFUND_MAX_BACKOFF": "1m",
		"PAYGATE_REFUND_POLL_INTERVAL": "250ms", "PAYGATE_REFUND_POLL_BATCH": "10"}))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Refunds
	if r.Concurrency != 4 || r.CallTimeout != 10*time.Second || r.Lease != 20*time.Second || r.MinBackoff != 2*time.Second ||
		r.MaxBackoff != time.Minute || r.PollInterval != 250*time.Millisecond || r.PollBatch != 10 {
		t.Errorf("set: %+v", r)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PAYGATE_REFUND_CONCURRENCY": "0"}, "PAYGATE_REFUND_CONCURRENCY"},
		{map[string]string{"PAYGATE_REFUND_LEASE": "soon"}, "PAYGATE_REFUND_LEASE"},
		{map[string]string{"PAYGATE_REFUND_CALL_TIMEOUT": "2m"}, "Lease > CallTimeout"},
		{map[string]string{"PAYGATE_REFUND_MIN_BACKOFF": "10m"}, "MinBackoff <= MaxBackoff"},
	} {
		if _, err := LoadConfig(env(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error saying %s", tc.env, err, tc.want)
		}
	}
}

// A true-or-false variable: unset is its default, true/1 and false/0 are
// read, anything else names the variable.
func TestLoadConfigCheckEarlierAttempts(t *testing.T) {
	for v, skip := range map[string]bool{"": false, "true": false, "1": false, "false": true, "0": true} {
		c, err := LoadConfig(env(map[string]string{"PAYGATE_CHECK_EARLIER_ATTEMPTS": v}))
		if err != nil || c.Payinit.SkipEarlierCheck != skip {
			t.Errorf("PAYGATE_CHECK_EARLIER_ATTEMPTS=%q: skip %v, %v; want skip %v", v, c.Payinit.SkipEarlierCheck, err, skip)
		}
	}
	if _, err := LoadConfig(env(map[string]string{"PAYGATE_CHECK_EARLIER_ATTEMPTS": "nope"})); err == nil || !strings.Contains(err.Error(), "PAYGATE_CHECK_EARLIER_ATTEMPTS") {
		t.Errorf("nope: %v", err)
	}
}

// The three listeners' settings: the public one as before, the API one
// apart by default, the admin one unset here (dev and the ingress fill it
// in, defaultAdminAddr) and read under its older name too.
func TestLoadConfigListeners(t *testing.T) {
	for _, tc := range []struct {
		env                map[string]string
		public, api, admin string
	}{
		{nil, "127.0.0.1:8080", "127.0.0.1:8081", ""},
		{map[string]string{"PAYGATE_HTTP_ADDR": "0.0.0.0:80", "PAYGATE_API_ADDR": "0.0.0.0:81", "PAYGATE_ADMIN_ADDR": "0.0.0.0:9100"}, "0.0.0.0:80", "0.0.0.0:81", "0.0.0.0:9100"},
		{map[string]string{"PAYGATE_METRICS_ADDR": "0.0.0.0:9100"}, "127.0.0.1:8080", "127.0.0.1:8081", "0.0.0.0:9100"},
		{map[string]string{"PAYGATE_METRICS_ADDR": "0.0.0.0:9100", "PAYGATE_ADMIN_ADDR": "0.0.0.0:9200"}, "127.0.0.1:8080", "127.0.0.1:8081", "0.0.0.0:9200"},
	} {
		c, err := LoadConfig(env(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		if c.HTTPAddr != tc.public || c.APIAddr != tc.api || c.AdminAddr != tc.admin {
			t.Errorf("%v: public %q, API %q, admin %q; want %q, %q, %q", tc.env, c.HTTPAddr, c.APIAddr, c.AdminAddr, tc.public, tc.api, tc.admin)
		}
	}
}

// The console's settings: accounts as name:role:bcrypt-hash, a session
// length, insecure cookies; anything else is an error at start.
func TestConsoleSettings(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("a-long-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := LoadConfig(env(map[string]string{"PAYGATE_CONSOLE_USERS": "ana:viewer:" + string(h),
		"PAYGATE_CONSOLE_SESSION_TTL": "2h", "PAYGATE_CONSOLE_INSECURE_COOKIES": "true"}))
	if err != nil || len(c.Console.Users) != 1 || c.Console.Users[0].Role != "viewer" || c.Console.SessionTTL != 2*time.Hour || !c.Console.InsecureCookies {
		t.Fatalf("console settings = %+v, %v", c.Console, err)
	}
	for k, v := range map[string]string{"PAYGATE_CONSOLE_USERS": "ana:viewer:secret", "PAYGATE_CONSOLE_SESSION_TTL": "10s",
		"PAYGATE_CONSOLE_INSECURE_COOKIES": "maybe"} {
		if _, err := LoadConfig(env(map[string]string{k: v})); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
}
