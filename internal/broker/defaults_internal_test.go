package broker

import (
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/settings"
)

// The defaults StartEmbedded and EnsureTopics fill in are the ones the
// tags give PAYGATE_KAFKA_ADDR, PAYGATE_KAFKA_RETENTION,
// PAYGATE_PARTITIONS and PAYGATE_REPLICATION_FACTOR (PAYGATE_DATA_DIR's
// ./data is the environment's: in code, empty keeps the broker in memory).
func TestDefaultsAreTheTags(t *testing.T) {
	t.Parallel()
	var e EmbeddedConfig
	e.defaults()
	var tc TopicConfig
	tc.defaults()
	for _, c := range []any{e, tc} {
		if err := settings.CheckDefaults(c); err != nil {
			t.Errorf("%T: %v", c, err)
		}
	}
}

// SecurityFromEnv reads the tags' variables and refuses what cannot
// build, naming the variable.
func TestSecurityFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PAYGATE_KAFKA_TLS": "1", "PAYGATE_KAFKA_TLS_SERVER_NAME": "kafka.internal",
		"PAYGATE_KAFKA_SASL": "PLAIN", "PAYGATE_KAFKA_USERNAME": "u", "PAYGATE_KAFKA_PASSWORD": "p"}
	k, err := SecurityFromEnv(func(n string) string { return env[n] })
	if err != nil || k != (SecurityConfig{TLS: true, ServerName: "kafka.internal", Mechanism: "PLAIN", Username: "u", Password: "p"}) {
		t.Errorf("%+v, %v", k, err)
	}
	for name, value := range map[string]string{"PAYGATE_KAFKA_TLS": "yes please", "PAYGATE_KAFKA_SASL": "GSSAPI"} {
		if _, err := SecurityFromEnv(func(n string) string { return map[string]string{name: value}[n] }); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v", name, value, err)
		}
	}
}
