package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/domain/routing"
	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/router"
	"github.com/paygate/paygate/schemas"
)

// adaptivePolicy is sim and sim2 for every payment, split by their
// success rates; a short half-life so that a test sees a recovery within
// seconds rather than the quarter of an hour of the default.
const adaptivePolicy = `{"exploration":0.05,"health":{"half_life":"4s","min_samples":20},
  "segments":[{"name":"default","split":"adaptive","match":{},"candidates":[{"channel":"sim","weight":1},{"channel":"sim2","weight":1}]}]}`

// behave sets a simulator merchant's behaviour over its control endpoint.
func (e *env) behave(merchant, body string) {
	e.t.Helper()
	resp, err := http.Post(e.app.SimURL+"/control/merchants/"+merchant, "application/json", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("control %s %s: %s", merchant, body, resp.Status)
	}
}

// payment reads an order as the mall does.
func (e *env) payment(orderID string) schemas.Payment {
	e.t.Helper()
	code, b := e.do("GET", "/v1/payments/"+orderID, nil, nil)
	if code != http.StatusOK {
		e.t.Fatalf("GET payment %s: %d %s", orderID, code, b)
	}
	var p schemas.Payment
	if err := json.Unmarshal(b, &p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// outcome is where one pay request was routed and how it ended.
type outcome struct {
	channel string
	paid    bool
}

// wave sends n pay requests at once, clicks "success" on every session,
// and waits until each attempt has ended (paid, or declined by the
// simulator's decline rate): routing then has their feedback to come.
func (e *env) wave(prefix string, first, n int) []outcome {
	e.t.Helper()
	out := make([]outcome, n)
	var mu sync.Mutex
	parallel(n, n, func(i int) {
		id := orderID(prefix, first+i)
		a := e.requestPayment(id, 1000+int64(first+i))
		e.pay(a.PayURL, url.Values{"result": {"success"}})
		mu.Lock()
		out[i].channel = a.Channel
		mu.Unlock()
	})
	for i := range out {
		id := orderID(prefix, first+i)
		e.eventually(20*time.Second, "the end of "+id, func() bool {
			p := e.payment(id)
			last := p.Attempts[len(p.Attempts)-1]
			out[i].paid = last.Status == "paid"
			return last.Status == "paid" || last.Status == "failed"
		})
	}
	return out
}

func share(os []outcome, channel string) float64 {
	n := 0
	for _, o := range os {
		if o.channel == channel {
			n++
		}
	}
	return float64(n) / float64(len(os))
}

func paidCount(os []outcome) int {
	n := 0
	for _, o := range os {
		if o.paid {
			n++
		}
	}
	return n
}

// TestRoutingMovesTrafficOffADecliningChannel: sim and sim2 split 50/50;
// sim2's decline rate goes from 5% to 80%. Within a bounded number of
// payments (60 after the change: 6 waves of 10), at least 90% of new
// attempts go to sim; when sim2 recovers, its share comes back; and the
// run's success rate stays within 10 points of an oracle that always
// knew the better channel.
func TestRoutingMovesTrafficOffADecliningChannel(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Routing.Seed = []byte(adaptivePolicy)
	e := startWith(t, cfg, app.All)
	e.behave("m_sim", `{"decline_rate":0.05}`)
	e.behave("m_sim2", `{"decline_rate":0.05}`)
	const w = 10
	var all []outcome
	n := 0
	run := func(waves int) []outcome {
		var got []outcome
		for range waves {
			o := e.wave("RT", n, w)
			n += w
			got = append(got, o...)
		}
		all = append(all, got...)
		return got
	}
	before := run(4)
	t.Logf("both at 5%% declines: sim2's share %.2f", share(before, "sim2"))
	if s := share(before, "sim2"); s < 0.2 || s > 0.8 {
		t.Errorf("two equal channels: sim2's share %.2f, want about half", s)
	}

	e.behave("m_sim2", `{"decline_rate":0.8}`)
	learning := run(6) // the bound: 60 payments to notice
	after := run(6)
	t.Logf("sim2 at 80%% declines: sim2's share %.2f while learning, %.2f after", share(learning, "sim2"), share(after, "sim2"))
	if s := share(after, "sim"); s < 0.9 {
		t.Errorf("60 payments after sim2 turned bad, sim's share of the next 60 is %.2f, want at least 0.9", s)
	}

	// Recovery is the half-life's doing (4 s here, minutes in
	// production): sim2's old declines weigh less as they age, while
	// exploration brings it new outcomes. Traffic is paced so that time
	// passes, as it does between real payments; the bound is 60 s.
	e.behave("m_sim2", `{"decline_rate":0.05}`)
	var recovered float64
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end) && recovered < 0.25; {
		recovered = share(run(3), "sim2")
		time.Sleep(300 * time.Millisecond) // pacing, not waiting for a result
	}
	t.Logf("sim2 recovered: its share of the last 30 payments %.2f", recovered)
	if recovered < 0.25 {
		t.Errorf("sim2 recovered, but its share did not come back (%.2f of the last 30 payments)", recovered)
	}
	// The oracle takes the better channel every time: 95% paid.
	rate := float64(paidCount(all)) / float64(len(all))
	t.Logf("success rate %.3f over %d payments; the oracle's 0.95", rate, len(all))
	if rate < 0.85 {
		t.Errorf("success rate %.3f is more than 10 points under the oracle's 0.95", rate)
	}
	// Every attempt says why it went where it went.
	if missing := e.scalar(`SELECT count(*) FROM attempts WHERE routing IS NULL OR segment <> 'default' OR policy_version <> 1`); missing != 0 {
		t.Errorf("%d attempts without their routing decision", missing)
	}
	if explored := e.scalar(`SELECT count(*) FROM attempts WHERE explore`); explored == 0 {
		t.Error("no attempt was chosen by exploration")
	}
}

// TestFailoverWhenInitiateFails: sim2 answers 503 to every Initiate.
// Every pay request still gets a pay_url from sim, each failover is
// recorded, sim2's breaker opens (and then keeps it from sim2 but for
// probes), and nothing is paid twice.
func TestFailoverWhenInitiateFails(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Routing.Seed = []byte(`{"segments":[{"name":"default","match":{},"candidates":[{"channel":"sim","weight":1},{"channel":"sim2","weight":1}]}]}`)
	e := startWith(t, cfg, app.All)
	oc := e.consume(schemas.TopicPayments, "order-center")
	e.behave("m_sim2", `{"initiate_error_rate":1}`)

	failovers := func() int64 { return e.scalar(`SELECT count(*) FROM attempts WHERE hop > 0`) }
	first := e.wave("FO", 0, 20)
	for _, o := range first {
		if o.channel != "sim" || !o.paid {
			t.Fatalf("a pay request did not get its session from sim, or was not paid: %+v", first)
		}
	}
	n1 := failovers()
	if n1 == 0 {
		t.Fatal("20 pay requests split 50/50 and none failed over from sim2")
	}
	// Each failover is recorded: the failed attempt with why, the new
	// one with the decision that moved it.
	if bad := e.scalar(`SELECT count(*) FROM attempts a WHERE a.hop > 0 AND NOT EXISTS (
	    SELECT 1 FROM attempts f WHERE f.order_id = a.order_id AND f.channel = 'sim2' AND f.initiate_error <> ''
	      AND a.routing->>'previous' = f.transaction_code AND a.routing->>'reason' = 'failover')`); bad != 0 {
		t.Errorf("%d failover attempts do not name the attempt they replaced", bad)
	}
	// `paygate order ID` shows the decisions: the failover's, naming the
	// attempt it replaced.
	var failedOver string
	if err := e.db.QueryRow(`SELECT order_id FROM attempts WHERE hop = 1 LIMIT 1`).Scan(&failedOver); err != nil {
		t.Fatal(err)
	}
	hist, err := e.app.Store.History(context.Background(), failedOver)
	if err != nil {
		t.Fatal(err)
	}
	var routed []string
	for _, h := range hist {
		if h.Kind == "routing" {
			routed = append(routed, h.Detail)
		}
	}
	if len(routed) != 2 || !strings.Contains(routed[0], "segment default: sim2 because weight") ||
		!strings.Contains(routed[1], "sim because failover") || !strings.Contains(routed[1], "failover 1 from T") {
		t.Errorf("the history's routing decisions: %q", routed)
	}
	e.eventually(10*time.Second, "sim2's breaker open", func() bool {
		for _, h := range e.app.Router.Health() {
			if h.Channel == "sim2" && h.Breaker == "open" {
				return true
			}
		}
		return false
	})
	// The routing health endpoint says so too, to a signed request.
	code, body := e.do("GET", "/v1/routing/health", nil, signedRead("GET", "/v1/routing/health", time.Now(), app.DevMallSecret))
	if code != http.StatusOK || !strings.Contains(string(body), `"channel":"sim2","segment":"default"`) || !strings.Contains(string(body), `"breaker":"open"`) {
		t.Errorf("GET /v1/routing/health: %d %s", code, body)
	}
	if code, _ := e.do("GET", "/v1/routing/health", nil, http.Header{}); code != http.StatusUnauthorized {
		t.Errorf("unsigned GET /v1/routing/health: %d, want 401", code)
	}
	second := e.wave("FO", 20, 20)
	n2 := failovers() - n1
	t.Logf("failovers: %d of the first 20, %d of the next 20 once the breaker opened", n1, n2)
	if n2 > 3 {
		t.Errorf("with sim2's breaker open, %d of 20 pay requests still went to sim2 first", n2)
	}
	for _, o := range second {
		if o.channel != "sim" || !o.paid {
			t.Fatalf("second wave: %+v", second)
		}
	}
	evs := oc.waitFor(t, 10*time.Second, "40 paid events", func(evs []event) bool { return countType(evs, schemas.EventPaid) >= 40 })
	if countType(evs, schemas.EventDuplicateDetected) != 0 || countType(evs, schemas.EventPaid) != 40 {
		t.Errorf("paid %d, duplicates %d: want 40 and 0", countType(evs, schemas.EventPaid), countType(evs, schemas.EventDuplicateDetected))
	}
	if n := e.scalar(`SELECT count(*) FROM orders WHERE status = 'paid'`); n != 40 {
		t.Errorf("%d paid orders, want 40", n)
	}
}

// freePort is a TCP address free now on loopback.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestFailoverAfterATimeoutRefundsTheDoublePayment: sim2 creates the
// payment but its answer is lost (a timeout); paygate fails over to sim;
// the buyer pays at sim, and then the payment sim2 made is paid too. One
// paid event, one duplicate_detected, one refund of sim2's payment.
func TestFailoverAfterATimeoutRefundsTheDoublePayment(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.SimAddr = freePort(t)
	simURL := "http://" + cfg.SimAddr
	files := fmt.Sprintf(`{"channels":[
	  {"name":"sim","kind":"sim","enabled":true,"weight":1,"settings":{"base_url":%q,"merchant_id":"m_sim","secrets":["sim-secret"]}},
	  {"name":"sim2","kind":"sim","enabled":true,"weight":1,"settings":{"base_url":%q,"merchant_id":"m_sim2","secrets":["sim2-secret"],"timeout":"500ms"}}]}`, simURL, simURL)
	cfg.ChannelsFile = filepath.Join(t.TempDir(), "channels.json")
	if err := os.WriteFile(cfg.ChannelsFile, []byte(files), 0o600); err != nil {
		t.Fatal(err)
	}
	// sim2 first, sim as the backup.
	cfg.Routing.Seed = []byte(`{"segments":[{"name":"default","split":"priority","match":{},"candidates":[{"channel":"sim2","priority":0,"weight":1},{"channel":"sim","priority":1,"weight":1}]}]}`)
	e := startWith(t, cfg, app.All)
	oc := e.consume(schemas.TopicPayments, "order-center")
	e.behave("m_sim2", `{"initiate_timeout_rate":1}`)

	a := e.requestPayment("TWICE", 4200)
	if a.Channel != "sim" {
		t.Fatalf("the session came from %s, want sim after sim2 timed out", a.Channel)
	}
	p := e.payment("TWICE")
	if len(p.Attempts) != 2 || p.Attempts[0].Channel != "sim2" || p.Attempts[0].Status != "pending" {
		t.Fatalf("attempts %+v: want sim2's still pending (it may exist at sim2), then sim's", p.Attempts)
	}
	e.behave("m_sim2", `{"initiate_timeout_rate":0}`)
	e.pay(a.PayURL, url.Values{"result": {"success"}})
	oc.waitFor(t, 10*time.Second, "paid", func(evs []event) bool { return countType(evs, schemas.EventPaid) == 1 })

	// The buyer also pays the payment sim2 made (a second tab, say).
	var sim2URL string
	for _, lp := range e.app.Sim.Ledger().Payments {
		if lp.MerchantID == "m_sim2" && lp.MerchantRef == p.Attempts[0].TransactionCode {
			sim2URL = simURL + "/pay/" + lp.ID
		}
	}
	if sim2URL == "" {
		t.Fatalf("sim2 has no payment %s: %+v", p.Attempts[0].TransactionCode, e.app.Sim.Ledger().Payments)
	}
	e.pay(sim2URL, url.Values{"result": {"success"}})
	evs := oc.waitFor(t, 15*time.Second, "duplicate detected", func(evs []event) bool {
		return countType(evs, schemas.EventDuplicateDetected) == 1
	})
	if countType(evs, schemas.EventPaid) != 1 {
		t.Fatalf("%d paid events, want 1", countType(evs, schemas.EventPaid))
	}
	e.eventually(20*time.Second, "sim2's payment refunded", func() bool {
		return e.scalar(`SELECT count(*) FROM refunds WHERE transaction_code = $1 AND status = 'succeeded'`, p.Attempts[0].TransactionCode) == 1
	})
	refunds := 0
	for _, rf := range e.app.Sim.Ledger().Refunds {
		if rf.MerchantRef == p.Attempts[0].TransactionCode && rf.Status == "succeeded" {
			refunds++
		}
	}
	if refunds != 1 || e.scalar(`SELECT count(*) FROM refunds`) != 1 {
		t.Fatalf("sim2's books show %d refunds of its payment, paygate %d refunds; want 1 and 1", refunds, e.scalar(`SELECT count(*) FROM refunds`))
	}
}

// healthOf is a router's health by arm.
func healthOf(r *router.Router) map[string]router.HealthRow {
	out := map[string]router.HealthRow{}
	for _, h := range r.Health() {
		h.Share = 0 // drawn; compared apart
		out[h.Channel+"/"+h.Segment] = h
	}
	return out
}

func sameHealth(a, b map[string]router.HealthRow) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y := b[k]
		if (x.SuccessRate == nil) != (y.SuccessRate == nil) || (x.SuccessRate != nil && *x.SuccessRate != *y.SuccessRate) ||
			x.Samples != y.Samples || x.Breaker != y.Breaker || x.Initiates != y.Initiates || x.InitiateFailures != y.InitiateFailures {
			return false
		}
	}
	return true
}

// TestRoutingHealthIsSharedAndSurvivesARestart: a second payinit member
// routes with the same health as the first (they read the same feedback
// in the same order), and a member started after a snapshot holds it too.
func TestRoutingHealthIsSharedAndSurvivesARestart(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Routing.Seed = []byte(adaptivePolicy)
	e := startWith(t, cfg, app.All)
	e.behave("m_sim2", `{"decline_rate":0.7,"initiate_error_rate":0.3}`)

	member := func() *app.App {
		c := cfg
		c.Brokers, c.SimAddr, c.Payinit.PublicURL = e.app.Brokers, strings.TrimPrefix(e.app.SimURL, "http://"), e.app.Config.Payinit.PublicURL
		m := startWith(t, c, app.Roles{Payinit: true})
		return m.app
	}
	second := member()
	e.wave("SH", 0, 30)
	caughtUp := func(a, b *app.App) func() bool {
		return func() bool {
			oa, ob := a.Router.Offsets(), b.Router.Offsets()
			if len(oa) == 0 {
				return false
			}
			for p, o := range oa {
				if ob[p] != o {
					return false
				}
			}
			a.Router.Refresh()
			b.Router.Refresh()
			return true
		}
	}
	// Both members have read the feedback topic as far: the same health.
	var ha, hb map[string]router.HealthRow
	e.eventually(10*time.Second, "both members reading to the same offsets with the same health", func() bool {
		if !caughtUp(e.app, second)() {
			return false
		}
		ha, hb = healthOf(e.app.Router), healthOf(second.Router)
		return sameHealth(ha, hb)
	})
	sim2 := ha["sim2/default"]
	if sim2.Samples == 0 || sim2.SuccessRate == nil {
		t.Fatalf("no health gathered for sim2: %+v", sim2)
	}
	t.Logf("shared health: sim %+v; sim2 %+v", ha["sim/default"], sim2)

	// A snapshot, then a member that starts from it reads on from there
	// and holds the same health as the members that ran all along.
	if err := e.app.Router.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.wave("SH", 30, 10) // feedback after the snapshot
	third := member()
	e.eventually(10*time.Second, "the restarted member caught up with the same health", func() bool {
		return caughtUp(e.app, third)() && sameHealth(healthOf(e.app.Router), healthOf(third.Router))
	})
}

// TestRoutingPolicyReloads: a policy applied while paygate runs takes
// effect without a restart, a bad one is refused and the old one stays,
// and a policy file is applied when it changes.
func TestRoutingPolicyReloads(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Routing.PolicyFile = filepath.Join(t.TempDir(), "policy.json")
	onlySim := `{"segments":[{"name":"default","match":{},"candidates":[{"channel":"sim","weight":1}]}]}`
	if err := os.WriteFile(cfg.Routing.PolicyFile, []byte(onlySim), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startWith(t, cfg, app.All)
	if v := e.app.Router.Policy().Version; v != 1 {
		t.Fatalf("the file was not applied at start: version %d", v)
	}
	if a := e.requestPayment("RL-1", 1000); a.Channel != "sim" {
		t.Fatalf("version 1 routes to sim only, got %s", a.Channel)
	}
	// A policy applied by an operator: only sim2.
	onlySim2 := strings.ReplaceAll(onlySim, `"sim"`, `"sim2"`)
	p, created, err := e.app.Store.ApplyRoutingPolicy(context.Background(), []byte(onlySim2), "ops", "test", "move to sim2", e.app.Router.Validate)
	if err != nil || !created || p.Version != 2 {
		t.Fatalf("apply: %+v %v %v", p, created, err)
	}
	e.eventually(10*time.Second, "version 2 in force", func() bool { return e.app.Router.Policy().Version == 2 })
	if a := e.requestPayment("RL-2", 1000); a.Channel != "sim2" {
		t.Fatalf("version 2 routes to sim2 only, got %s", a.Channel)
	}
	var evidence routing.Decision
	var raw []byte
	if err := e.db.QueryRow(`SELECT routing FROM attempts WHERE order_id = 'RL-2'`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &evidence); err != nil || evidence.PolicyVersion != 2 || evidence.Chosen != "sim2" || evidence.RequestID == "" {
		t.Fatalf("evidence %s (%v)", raw, err)
	}
	// A bad policy is refused with the field named; version 2 stays.
	_, _, err = e.app.Store.ApplyRoutingPolicy(context.Background(), []byte(`{"segments":[{"name":"default","match":{},"candidates":[{"channel":"nowhere","weight":1}]}]}`),
		"ops", "test", "", e.app.Router.Validate)
	if err == nil || !strings.Contains(err.Error(), "segments[0].candidates[0].channel") {
		t.Fatalf("a policy naming an unknown channel: %v", err)
	}
	// The file changes: applied as version 3; then a broken file is
	// refused, counted, and version 3 stays.
	if err := os.WriteFile(cfg.Routing.PolicyFile, []byte(strings.Replace(onlySim, `"weight":1`, `"weight":2`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	e.eventually(10*time.Second, "the changed file in force", func() bool { return e.app.Router.Policy().Version == 3 })
	if err := os.WriteFile(cfg.Routing.PolicyFile, []byte(`{"segments":[`), 0o600); err != nil {
		t.Fatal(err)
	}
	e.eventually(10*time.Second, "the broken file refused", func() bool {
		var buf bytes.Buffer
		metricText(t, e, &buf)
		return strings.Contains(buf.String(), "paygate_routing_policy_reload_errors_total 1") ||
			strings.Contains(buf.String(), "paygate_routing_policy_reload_errors_total 2")
	})
	if v := e.app.Router.Policy().Version; v != 3 {
		t.Fatalf("a broken file changed the policy: version %d", v)
	}
	ps, err := e.app.Store.RoutingPolicies(context.Background(), 10)
	if err != nil || len(ps) != 3 || ps[1].AppliedBy != "ops" || ps[1].Note != "move to sim2" || !strings.HasPrefix(ps[0].AppliedBy, "file ") {
		t.Fatalf("audit trail %+v (%v)", ps, err)
	}
}

// metricText writes the ingress's /metrics to w.
func metricText(t *testing.T, e *env, w *bytes.Buffer) {
	t.Helper()
	code, b := e.do("GET", "/metrics", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	w.Write(b)
}
