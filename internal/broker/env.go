package broker

import "github.com/paygate/paygate/internal/settings"

// SecurityFromEnv reads how to connect to KAFKA_BROKERS from the
// environment (getenv), by SecurityConfig's tags: PAYGATE_KAFKA_TLS,
// PAYGATE_KAFKA_TLS_CA, PAYGATE_KAFKA_TLS_SERVER_NAME, PAYGATE_KAFKA_SASL,
// PAYGATE_KAFKA_USERNAME, PAYGATE_KAFKA_PASSWORD; it checks that they
// build. paygate-bench reads the target's cluster so; paygate reads them
// with the rest of its configuration.
func SecurityFromEnv(getenv func(string) string) (SecurityConfig, error) {
	var k SecurityConfig
	if err := settings.Load(&k, getenv); err != nil {
		return k, err
	}
	_, err := k.Build()
	return k, err
}
