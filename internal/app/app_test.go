package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/broker"
	"github.com/paygate/paygate/schemas"
)

// The embedded broker holds records in memory, so the topics paygate
// creates on it keep them for its retention (PAYGATE_KAFKA_RETENTION), not
// for the 7 days a real cluster's topics get.
func TestEmbeddedTopicsKeepTheBrokersRetention(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := Start(ctx, Config{Broker: broker.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Retention: 90 * time.Second},
		SimAddr: "127.0.0.1:8090", Topics: broker.TopicConfig{Partitions: 1}},
		Roles{Broker: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = a.Wait() }()
	c := &kafka.Client{Addr: kafka.TCP(a.Brokers...), Timeout: 5 * time.Second}
	for _, topic := range []string{schemas.TopicPSPCallbacks, schemas.TopicPayments} {
		resp, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"}}}})
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, r := range resp.Resources {
			for _, e := range r.ConfigEntries {
				if e.ConfigName == "retention.ms" {
					got = e.ConfigValue
				}
			}
		}
		if got != "90000" {
			t.Errorf("%s: retention.ms %q, want 90000", topic, got)
		}
	}
}

// A component that fails stops the App at once, and Err names it: what
// runs the App (main, the end-to-end tests) learns of the failure without
// waiting for anything else to go wrong.
func TestAFailingComponentStopsTheApp(t *testing.T) {
	a, err := Start(context.Background(), Config{SimAddr: "127.0.0.1:8090"}, Roles{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Stop() }()
	if err := a.Err(); err != nil {
		t.Fatalf("Err before any failure = %v", err)
	}
	boom := errors.New("boom")
	a.goRun("exploder", func(context.Context) error { return boom })
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the App still runs 5s after a component failed")
	}
	if err := a.Err(); !errors.Is(err, boom) || !strings.Contains(err.Error(), "exploder") {
		t.Errorf("Err = %v, want boom from the exploder", err)
	}
}

// The embedded broker is plaintext without SASL: asking for either with it
// stops the start with what to set instead.
func TestEmbeddedBrokerRefusesKafkaSecurity(t *testing.T) {
	_, err := Start(context.Background(), Config{Broker: broker.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: t.TempDir()}, SimAddr: "127.0.0.1:8090",
		Kafka: broker.SecurityConfig{TLS: true}}, Roles{Broker: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "KAFKA_BROKERS") {
		t.Fatalf("start: %v; want a refusal naming KAFKA_BROKERS", err)
	}
}

// PAYGATE_PPROF_ADDR serves Go's runtime profiles on a listener of its
// own: the index, and a CPU profile (gzip-compressed protobuf) for the
// seconds asked.
func TestPprofOnItsOwnAddress(t *testing.T) {
	addr := freeAddr(t)
	a, err := Start(context.Background(), Config{SimAddr: "127.0.0.1:8090", PprofAddr: addr}, Roles{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Stop() }()
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	if code, b := get("/debug/pprof/"); code != http.StatusOK || !strings.Contains(string(b), "goroutine") {
		t.Errorf("index: %d %.80q", code, b)
	}
	if code, b := get("/debug/pprof/profile?seconds=1"); code != http.StatusOK || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("cpu profile: %d, %d bytes starting %x; want gzip", code, len(b), b[:min(len(b), 2)])
	}
	if code, _ := get("/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the pprof listener: %d, want 404", code)
	}
}

// freeAddr is a 127.0.0.1 address no one listened on when asked.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The ops listener of a role without the ingress outlives its work: after
// SIGTERM (the App's context ends) a member still finishing its batch
// answers /healthz, and the listener closes only once everything else has
// stopped. Kubernetes would otherwise kill a member mid-batch.
func TestOpsListenerOutlivesTheLastBatch(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := Start(ctx, Config{SimAddr: "127.0.0.1:8090", AdminAddr: addr}, Roles{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	finishing, release := make(chan struct{}), make(chan struct{})
	a.goRun("batch", func(ctx context.Context) error {
		<-ctx.Done()
		close(finishing)
		<-release // the batch's last transaction and offset commit
		return nil
	})
	healthz := func() error {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	}
	if err := healthz(); err != nil {
		t.Fatalf("/healthz while running: %v", err)
	}
	cancel()
	<-finishing
	waited := make(chan error, 1)
	go func() { waited <- a.Wait() }()
	// The one pause left in the tests, on purpose: nothing can be seen
	// until the fault it looks for happens (a listener closed on the
	// context's end rather than after the last batch), so it gives that
	// fault 100 ms to happen before the listener is asked again.
	time.Sleep(100 * time.Millisecond)
	if err := healthz(); err != nil {
		t.Fatalf("/healthz while the last batch finishes: %v", err)
	}
	close(release)
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after the batch finished")
	}
	if err := healthz(); err == nil {
		t.Error("/healthz still answers after the App stopped")
	}
}

// HandleAdmin mounts a handler on the admin listener, even once it
// serves: the console's way in. It is on no other listener.
func TestHandleAdmin(t *testing.T) {
	addr := freeAddr(t)
	a, err := Start(context.Background(), Config{SimAddr: "127.0.0.1:8090", AdminAddr: addr}, Roles{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Stop() }()
	if a.AdminURL != "http://"+addr || a.IngressURL != "" || a.APIURL != "" {
		t.Fatalf("admin %q, public %q, API %q", a.AdminURL, a.IngressURL, a.APIURL)
	}
	a.HandleAdmin("GET /console/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("console\n")) }))
	for path, want := range map[string]int{"/console/": 200, "/metrics": 200, "/healthz": 200, "/readyz": 200, "/debug/pprof/": 200, "/v1/payments/A1": 404} {
		resp, err := http.Get(a.AdminURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s on the admin listener: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
