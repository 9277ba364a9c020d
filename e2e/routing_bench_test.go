package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/schemas"
)

// BenchmarkPayinitRouting is payinit's throughput, pay request on the
// topic to session stored, with routing by the channels' static weights
// against adaptive routing between sim and sim2 (Thompson sampling over
// the shared health): the real pipeline, PostgreSQL, the simulator over
// HTTP. pay_requests/s is what compares; the machine's load matters, so
// compare within one run.
//
//	go test ./e2e -run '^$' -bench PayinitRouting -benchtime 2000x
func BenchmarkPayinitRouting(b *testing.B) {
	for _, tc := range []struct{ name, policy string }{
		{"static-weights", ""},
		{"adaptive", `{"exploration":0.05,"segments":[{"name":"default","split":"adaptive","match":{},"candidates":[{"channel":"sim","weight":1},{"channel":"sim2","weight":1}]}]}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := testConfig(b)
			cfg.Store.MaxConns = 0                          // the process's default: it runs alone
			cfg.Payinit.PublicURL = "http://127.0.0.1:8080" // no ingress: where PSPs would call back
			if tc.policy != "" {
				cfg.Routing.Seed = []byte(tc.policy)
			}
			ctx, cancel := context.WithCancel(context.Background())
			a, err := app.Start(ctx, cfg, app.Roles{Broker: true, Migrate: true, Sim: true, Payinit: true, Relay: true}, logger())
			if err != nil {
				cancel()
				b.Fatal(err)
			}
			defer func() { cancel(); _ = a.Wait() }()
			db, err := sql.Open("postgres", cfg.Store.URL)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			w, err := producers.NewWriter(producers.WriterConfig{Brokers: a.Brokers})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			msgs := make([]producers.Message, b.N)
			for i := range msgs {
				id := fmt.Sprintf("BENCH-%s-%06d", tc.name, i)
				msgs[i] = producers.Message{Topic: schemas.TopicPayRequests, Key: id, ID: "bench/" + id, Type: schemas.TypePayRequest, Value: payBody(id, 1999)}
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < len(msgs); i += 500 {
				if err := w.Write(context.Background(), msgs[i:min(i+500, len(msgs))]...); err != nil {
					b.Fatal(err)
				}
			}
			deadline := time.Now().Add(5 * time.Minute)
			for {
				var n int
				if err := db.QueryRow(`SELECT count(*) FROM attempts WHERE status = 'pending' AND pay_url <> ''`).Scan(&n); err != nil {
					b.Fatal(err)
				}
				if n >= b.N {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("%d of %d sessions after 5 minutes", n, b.N)
				}
				time.Sleep(20 * time.Millisecond) // polling a count, not waiting for nothing
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pay_requests/s")
		})
	}
}
