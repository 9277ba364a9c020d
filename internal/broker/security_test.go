package broker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/internal/broker"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/schemas"
)

// tlsCluster starts a Kafka-protocol broker that takes only TLS
// connections (a certificate for 127.0.0.1 from a CA of the test's own)
// authenticated with SASL, and returns its address and the CA's PEM file.
func tlsCluster(t *testing.T) (addr, caFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "paygate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}}),
		kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "paygate", "s3cret"),
		kfake.Superuser("PLAIN", "plain-user", "plain-pass"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0], caFile
}

// Over TLS with SASL, paygate's clients create the topics, write and
// consume through a group; a wrong password, no TLS or another CA get
// nothing through.
func TestSecurityTLSAndSASL(t *testing.T) {
	addr, caFile := tlsCluster(t)
	brokers := []string{addr}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	build := func(c broker.SecurityConfig) broker.Security {
		t.Helper()
		s, err := c.Build()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	sec := build(broker.SecurityConfig{TLS: true, CAFile: caFile, Mechanism: "SCRAM-SHA-512", Username: "paygate", Password: "s3cret"})
	if err := broker.EnsureTopics(ctx, brokers, broker.TopicConfig{Partitions: 2, Security: sec}); err != nil {
		t.Fatalf("create topics over TLS and SCRAM: %v", err)
	}
	w, err := producers.NewWriter(producers.WriterConfig{Brokers: brokers, Transport: sec.Transport(), WriteTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Write(ctx, producers.Message{Topic: schemas.TopicPayRequests, Key: "A1", ID: "m1", Type: "t", Value: []byte("over tls")}); err != nil {
		t.Fatalf("write over TLS and SCRAM: %v", err)
	}

	got := make(chan string, 1)
	r, err := consumers.NewRunner(consumers.Config{Brokers: brokers, Dialer: sec.Dialer(), Group: "secure", Topic: schemas.TopicPayRequests,
		SessionTimeout: 6 * time.Second}, func(_ context.Context, batch []kafka.Message) ([]consumers.Rejection, error) {
		for _, m := range batch {
			got <- string(m.Value)
		}
		return nil, nil
	}, w, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	select {
	case v := <-got:
		if v != "over tls" {
			t.Fatalf("consumed %q", v)
		}
	case <-ctx.Done():
		t.Fatal("nothing consumed over TLS and SCRAM")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("runner: %v", err)
	}

	plain := build(broker.SecurityConfig{TLS: true, CAFile: caFile, Mechanism: "plain", Username: "plain-user", Password: "plain-pass"})
	if err := write(ctx, brokers, plain); err != nil {
		t.Errorf("write over TLS and PLAIN: %v", err)
	}
	for name, s := range map[string]broker.Security{
		"a wrong password": build(broker.SecurityConfig{TLS: true, CAFile: caFile, Mechanism: "SCRAM-SHA-512", Username: "paygate", Password: "guess"}),
		"no SASL":          build(broker.SecurityConfig{TLS: true, CAFile: caFile}),
		"no TLS":           build(broker.SecurityConfig{Mechanism: "SCRAM-SHA-512", Username: "paygate", Password: "s3cret"}),
		"the system's CAs": build(broker.SecurityConfig{TLS: true, Mechanism: "SCRAM-SHA-512", Username: "paygate", Password: "s3cret"}),
	} {
		err := write(ctx, brokers, s)
		if err == nil {
			t.Errorf("with %s, a write went through", name)
		}
	}
}

func write(ctx context.Context, brokers []string, s broker.Security) error {
	w, err := producers.NewWriter(producers.WriterConfig{Brokers: brokers, Transport: s.Transport(), WriteTimeout: 3 * time.Second})
	if err != nil {
		return err
	}
	defer w.Close()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return w.Write(wctx, producers.Message{Topic: schemas.TopicPayRequests, Key: "A2", ID: "m2", Type: "t", Value: []byte("x")})
}

// A configuration that cannot work is refused with what to set.
func TestSecurityConfigRefused(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    broker.SecurityConfig
		want string
	}{
		{broker.SecurityConfig{Mechanism: "GSSAPI", Username: "u", Password: "p"}, "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
		{broker.SecurityConfig{Mechanism: "PLAIN", Username: "u"}, "PAYGATE_KAFKA_PASSWORD"},
		{broker.SecurityConfig{Username: "u", Password: "p"}, "need PAYGATE_KAFKA_SASL"},
		{broker.SecurityConfig{CAFile: "/etc/ssl/certs/ca-certificates.crt"}, "need PAYGATE_KAFKA_TLS=true"},
		{broker.SecurityConfig{TLS: true, CAFile: bad}, "no PEM certificate"},
		{broker.SecurityConfig{TLS: true, CAFile: filepath.Join(t.TempDir(), "missing.pem")}, "PAYGATE_KAFKA_TLS_CA"},
	} {
		if _, err := tc.c.Build(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error saying %q", tc.c, err, tc.want)
		}
	}
	if s, err := (broker.SecurityConfig{}).Build(); err != nil || s.TLS != nil || s.SASL != nil {
		t.Errorf("the zero config: %+v, %v; want plaintext", s, err)
	}
}
