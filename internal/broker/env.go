package broker

import "fmt"

// SecurityFromEnv reads how to connect to KAFKA_BROKERS from the
// environment (getenv): PAYGATE_KAFKA_TLS (true/false, 1/0; default
// false), PAYGATE_KAFKA_TLS_CA, PAYGATE_KAFKA_TLS_SERVER_NAME,
// PAYGATE_KAFKA_SASL, PAYGATE_KAFKA_USERNAME, PAYGATE_KAFKA_PASSWORD; it
// checks that they build. paygate and paygate-bench read it alike.
func SecurityFromEnv(getenv func(string) string) (SecurityConfig, error) {
	var k SecurityConfig
	switch v := getenv("PAYGATE_KAFKA_TLS"); v {
	case "", "false", "0":
	case "true", "1":
		k.TLS = true
	default:
		return k, fmt.Errorf("%s=%q: true or false", "PAYGATE_KAFKA_TLS", v)
	}
	k.CAFile, k.ServerName = getenv("PAYGATE_KAFKA_TLS_CA"), getenv("PAYGATE_KAFKA_TLS_SERVER_NAME")
	k.Mechanism = getenv("PAYGATE_KAFKA_SASL")
	k.Username, k.Password = getenv("PAYGATE_KAFKA_USERNAME"), getenv("PAYGATE_KAFKA_PASSWORD")
	_, err := k.Build()
	return k, err
}
