package e2e

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/schemas"
)

// TestAClockTenMinutesOff: the ingress runs on a host whose clock is ten
// minutes ahead. It says so (paygate_clock_skew_seconds, an error in its
// log); the mall's signed requests are refused with a clear 401; the
// simulator's callbacks it takes are stored as stale and change nothing,
// and the sweeper's status probe — on a process with the right time —
// pays the order all the same: nothing is lost. With its clock fixed, the
// ingress accepts again.
func TestAClockTenMinutesOff(t *testing.T) {
	t.Parallel()
	public, api := freePort(t), freePort(t)
	cfg := testConfig(t)
	cfg.Payinit.PublicURL = "http://" + public
	cfg.Sweeper.Interval = 200 * time.Millisecond
	cfg.Sweeper.Schedule = []time.Duration{time.Second}
	gw := startWith(t, cfg, app.Roles{Broker: true, Migrate: true, Sim: true, Payinit: true, Callbacks: true, Relay: true, Sweep: true})

	ingressCfg := func(offset time.Duration) app.Config {
		c := cfg
		c.Brokers, c.SimAddr = gw.app.Brokers, strings.TrimPrefix(gw.app.SimURL, "http://")
		c.HTTPAddr, c.APIAddr, c.AdminAddr, c.ClockOffset = public, api, "", offset
		return c
	}
	ctx, cancel := context.WithCancel(context.Background())
	skewed, err := app.Start(ctx, ingressCfg(10*time.Minute), app.Roles{Ingress: true}, logger())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	gauge := func(reg prometheus.Gatherer) float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "paygate_clock_skew_seconds" && len(mf.GetMetric()) == 1 {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return 0
	}
	gw.eventually(10*time.Second, "the skewed ingress measured its clock", func() bool { return gauge(skewed.Registry) > 590 })
	if g := gauge(gw.app.Registry); g > 5 || g < -5 {
		t.Errorf("the gateway's own clock measured %v s off", g)
	}

	// The mall signs with the right time: refused, and told why.
	body := payBody("CLK-1", 1999)
	req, _ := http.NewRequest("POST", "http://"+api+"/v1/payments", bytes.NewReader(body))
	req.Header = signed(body, time.Now(), app.DevMallSecret)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(b.String(), "tolerance") {
		t.Fatalf("a signed pay request at a skewed ingress: %d %s; want 401 naming the tolerance", resp.StatusCode, b.String())
	}

	// The mall produces its pay request straight to Kafka instead; the
	// buyer pays; the callbacks reach the skewed ingress.
	w, err := producers.NewWriter(producers.WriterConfig{Brokers: gw.app.Brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Write(context.Background(), producers.Message{Topic: schemas.TopicPayRequests, Key: "CLK-1", ID: "clk/CLK-1", Type: schemas.TypePayRequest, Value: body}); err != nil {
		t.Fatal(err)
	}
	var payURL, code string
	gw.eventually(20*time.Second, "CLK-1's session", func() bool {
		return gw.db.QueryRow(`SELECT pay_url, transaction_code FROM attempts WHERE order_id = 'CLK-1' AND pay_url <> ''`).Scan(&payURL, &code) == nil
	})
	sr, err := noRedirect.PostForm(payURL, url.Values{"result": {"success"}})
	if err != nil {
		t.Fatal(err)
	}
	sr.Body.Close()
	// The callbacks are stored, judged stale, and change nothing; the
	// sweeper's probe pays the order.
	gw.eventually(30*time.Second, "CLK-1 paid by the sweeper's probe", func() bool {
		return gw.scalar(`SELECT count(*) FROM orders WHERE order_id = 'CLK-1' AND status = 'paid'`) == 1
	})
	// A callback refused at its signature is not read further: it is
	// stored without a transaction code (this database holds CLK-1's only).
	defer func() {
		rows, _ := gw.db.Query(`SELECT kind, coalesce(transaction_code, '-'), coalesce(outcome, '-'), rejected FROM callbacks`)
		for rows != nil && rows.Next() {
			var k, c, o, r string
			_ = rows.Scan(&k, &c, &o, &r)
			t.Logf("callback %s %s %s %q", k, c, o, r)
		}
	}()
	gw.eventually(10*time.Second, "the simulator's webhook stored as stale", func() bool {
		return gw.scalar(`SELECT count(*) FROM callbacks WHERE kind IN ('async', 'sync') AND rejected ILIKE '%outside tolerance%'`) == 1
	})
	if n := gw.scalar(`SELECT count(*) FROM callbacks WHERE kind IN ('async', 'sync') AND rejected = ''`); n != 0 {
		t.Fatalf("%d callbacks from the skewed ingress were taken as verified", n)
	}
	if n := gw.scalar(`SELECT count(*) FROM callbacks WHERE transaction_code = $1 AND kind = 'status_probe' AND outcome = 'paid'`, code); n != 1 {
		t.Fatalf("%d probes paid %s, want 1", n, code)
	}
	if n := gw.scalar(`SELECT count(*) FROM outbox WHERE event_id = 'payment.paid/CLK-1'`); n != 1 {
		t.Fatalf("%d paid events", n)
	}

	// The clock fixed (the process restarted with the right time): the
	// mall's requests go in again.
	cancel()
	_ = skewed.Wait()
	fixed, err := app.Start(context.Background(), ingressCfg(0), app.Roles{Ingress: true}, logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fixed.Stop() })
	body2 := payBody("CLK-2", 1999)
	req, _ = http.NewRequest("POST", "http://"+api+"/v1/payments", bytes.NewReader(body2))
	req.Header = signed(body2, time.Now(), app.DevMallSecret)
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("with the clock fixed: %d", resp.StatusCode)
	}
}
