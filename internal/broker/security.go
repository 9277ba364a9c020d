package broker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// SecurityConfig is how a Kafka cluster wants to be connected to, as the
// environment says it (docs/configuration.md; each field's variable,
// default and help are its tags, read by internal/settings). The zero
// value is plaintext without authentication: the embedded broker, or a
// cluster on a private network.
type SecurityConfig struct {
	// TLS turns TLS on.
	TLS bool `env:"PAYGATE_KAFKA_TLS" default:"false" help:"true: TLS to KAFKA_BROKERS"`
	// CAFile is a PEM bundle of the certificate authorities to trust.
	// Default: the system's.
	CAFile string `env:"PAYGATE_KAFKA_TLS_CA" help:"the system's CAs; or a PEM file of the CAs to trust"`
	// ServerName overrides the name checked in the brokers' certificates.
	// Default: each broker's host.
	ServerName string `env:"PAYGATE_KAFKA_TLS_SERVER_NAME" help:"each broker's host; the name its certificate must carry"`
	// Mechanism is the SASL mechanism: PLAIN, SCRAM-SHA-256 or
	// SCRAM-SHA-512. Default: none.
	Mechanism string `env:"PAYGATE_KAFKA_SASL" help:"none; PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"`
	// Username and Password are the SASL credentials.
	Username string `env:"PAYGATE_KAFKA_USERNAME" help:"the SASL user"`
	Password string `env:"PAYGATE_KAFKA_PASSWORD" secret:"true" help:"the SASL password"`
}

// Security is a SecurityConfig made ready: what every Kafka client of
// paygate connects with. The zero value is plaintext, no SASL.
type Security struct {
	TLS  *tls.Config    // nil: plaintext
	SASL sasl.Mechanism // nil: no authentication
}

// Build checks the configuration and loads what it names.
func (c SecurityConfig) Build() (Security, error) {
	var s Security
	if c.TLS {
		s.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return s, fmt.Errorf("PAYGATE_KAFKA_TLS_CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return s, fmt.Errorf("PAYGATE_KAFKA_TLS_CA: no PEM certificate in %s", c.CAFile)
			}
			s.TLS.RootCAs = pool
		}
	} else if c.CAFile != "" || c.ServerName != "" {
		return s, errors.New("PAYGATE_KAFKA_TLS_CA and PAYGATE_KAFKA_TLS_SERVER_NAME need PAYGATE_KAFKA_TLS=true")
	}
	if c.Mechanism == "" {
		if c.Username != "" || c.Password != "" {
			return s, errors.New("PAYGATE_KAFKA_USERNAME and PAYGATE_KAFKA_PASSWORD need PAYGATE_KAFKA_SASL")
		}
		return s, nil
	}
	if c.Username == "" || c.Password == "" {
		return s, fmt.Errorf("PAYGATE_KAFKA_SASL=%s needs PAYGATE_KAFKA_USERNAME and PAYGATE_KAFKA_PASSWORD", c.Mechanism)
	}
	switch m := strings.ToUpper(c.Mechanism); m {
	case "PLAIN":
		s.SASL = plain.Mechanism{Username: c.Username, Password: c.Password}
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		alg := scram.SHA256
		if m == "SCRAM-SHA-512" {
			alg = scram.SHA512
		}
		mech, err := scram.Mechanism(alg, c.Username, c.Password)
		if err != nil {
			return s, fmt.Errorf("PAYGATE_KAFKA_SASL=%s: %w", m, err)
		}
		s.SASL = mech
	default:
		return s, fmt.Errorf("PAYGATE_KAFKA_SASL=%q: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.Mechanism)
	}
	return s, nil
}

// Transport is a kafka-go Transport (for Client and the producers'
// Writer) that connects with s.
func (s Security) Transport() *kafka.Transport {
	return &kafka.Transport{TLS: s.TLS, SASL: s.SASL}
}

// Dialer is a kafka-go Dialer (for Readers) that connects with s; its
// other settings are kafka-go's defaults.
func (s Security) Dialer() *kafka.Dialer {
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: s.TLS, SASLMechanism: s.SASL}
}
