package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/domain/risk"
	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/riskcheck"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/schemas"
)

// buyerBody is a pay request from a buyer (id, email) for an order.
func buyerBody(orderID string, amount int64, buyer, email string) []byte {
	b, _ := json.Marshal(schemas.PayRequest{
		OrderID: orderID, Amount: amount, Currency: "USD", Country: "US", Method: "card",
		Buyer:      schemas.Buyer{ID: buyer, Email: email, IP: "203.0.113.7"},
		ReturnURLs: schemas.ReturnURLs{Success: "https://shop.example/ok", Failure: "https://shop.example/fail", Pending: "https://shop.example/wait"},
	})
	return b
}

// sendPay posts a signed pay request, with an Idempotency-Key if idem is
// not "".
func (e *env) sendPay(body []byte, idem string) {
	e.t.Helper()
	h := signed(body, time.Now(), app.DevMallSecret)
	if idem != "" {
		h.Set("Idempotency-Key", idem)
	}
	if code, b := e.do("POST", "/v1/payments", body, h); code != http.StatusAccepted {
		e.t.Fatalf("pay request: %d %s", code, b)
	}
}

// planned waits until payinit has decided the order's pay requests (n of
// them) and returns the outcomes.
func (e *env) planned(orderID string, n int) []string {
	e.t.Helper()
	var outs []string
	e.eventually(30*time.Second, fmt.Sprintf("%d pay requests of %s decided", n, orderID), func() bool {
		outs = outs[:0]
		rows, err := e.db.Query(`SELECT outcome || coalesce(':' || nullif(reason, ''), '') FROM pay_requests WHERE order_id = $1 ORDER BY received_at`, orderID)
		if err != nil {
			e.t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var o string
			if err := rows.Scan(&o); err != nil {
				e.t.Fatal(err)
			}
			outs = append(outs, o)
		}
		return len(outs) >= n
	})
	return outs
}

// simPayments counts the simulator's payments of the order's attempts.
func (e *env) simPayments(orderID string) int {
	e.t.Helper()
	codes := map[string]bool{}
	rows, err := e.db.Query(`SELECT transaction_code FROM attempts WHERE order_id = $1`, orderID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			e.t.Fatal(err)
		}
		codes[c] = true
	}
	n := 0
	for _, p := range e.app.Sim.Ledger().Payments {
		if codes[p.MerchantRef] {
			n++
		}
	}
	return n
}

// sessions reads the pay sessions topic.
func sessionsOf(evs []event, orderID string) []schemas.PaySession {
	var out []schemas.PaySession
	for _, ev := range evs {
		var s schemas.PaySession
		if json.Unmarshal(ev.Value, &s) == nil && s.OrderID == orderID {
			out = append(out, s)
		}
	}
	return out
}

// TestRiskDeniesWithoutAnAttemptOrAPSPCall: a blocked buyer's pay request
// is rejected (risk_denied, the rules kept from the mall), leaves no
// attempt and makes no PSP call; its decision is stored with the rules
// version, the matched rules, the score and the inputs, and shows in the
// order's history. Another buyer's request goes through as before.
func TestRiskDeniesWithoutAnAttemptOrAPSPCall(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Risk.Seed = []byte(`{"thresholds":{"review":50,"deny":100},
	  "block":[{"email_domain":"fraud.example","reason":"chargebacks from this domain"}],
	  "limits":[{"id":"usd-max","currency":"USD","max":100000,"points":100}]}`)
	e := startWith(t, cfg, app.All)
	sessions := e.consume(schemas.TopicPaySessions, "mall")

	e.sendPay(buyerBody("RD-1", 1999, "u1", "x@fraud.example"), "")
	e.sendPay(buyerBody("RD-2", 100001, "u2", "y@shop.example"), "")
	ok := buyerBody("RD-3", 1999, "u3", "z@shop.example")
	e.sendPay(ok, "")
	e.waitSession("RD-3", 0)
	for _, id := range []string{"RD-1", "RD-2"} {
		if outs := e.planned(id, 1); outs[0] != "rejected:risk_denied" {
			t.Fatalf("%s: %v", id, outs)
		}
		evs := sessions.waitFor(t, 10*time.Second, "the rejected session of "+id, func(evs []event) bool { return len(sessionsOf(evs, id)) > 0 })
		if s := sessionsOf(evs, id); len(s) != 1 || s[0].Type != schemas.SessionRejected || s[0].Reason != "risk_denied" {
			t.Fatalf("%s: sessions %+v", id, s)
		}
		if n := e.scalar(`SELECT count(*) FROM attempts WHERE order_id = $1`, id); n != 0 {
			t.Fatalf("%s: %d attempts", id, n)
		}
		if n := e.simPayments(id); n != 0 {
			t.Fatalf("%s: the simulator has %d payments", id, n)
		}
		code, b := e.do("GET", "/v1/payments/"+id, nil, nil)
		if code != http.StatusConflict || !strings.Contains(string(b), "risk_denied") || strings.Contains(string(b), "block") || strings.Contains(string(b), "usd-max") {
			t.Fatalf("GET %s: %d %s (the reason, never the rules)", id, code, b)
		}
	}
	if len(e.app.Sim.Ledger().Payments) != 1 {
		t.Fatalf("the simulator has %d payments: only RD-3's", len(e.app.Sim.Ledger().Payments))
	}
	var decision, matched, inputs string
	var version int64
	var score int
	if err := e.db.QueryRow(`SELECT decision, rules_version, score, matched::text, inputs::text FROM risk_decisions WHERE order_id = 'RD-2'`).
		Scan(&decision, &version, &score, &matched, &inputs); err != nil {
		t.Fatal(err)
	}
	if decision != "deny" || version != 1 || score != 100 || !strings.Contains(matched, `"rule": "usd-max"`) || !strings.Contains(inputs, `"amount": 100001`) {
		t.Fatalf("decision %s v%d score %d matched %s inputs %s", decision, version, score, matched, inputs)
	}
	if n := e.scalar(`SELECT count(*) FROM risk_decisions WHERE order_id = 'RD-3' AND decision = 'allow'`); n != 1 {
		t.Fatalf("RD-3's allow is not stored")
	}
	hist, err := e.app.Store.History(context.Background(), "RD-1")
	if err != nil {
		t.Fatal(err)
	}
	var shown bool
	for _, h := range hist {
		shown = shown || (h.Kind == "risk" && strings.Contains(h.Detail, "deny") && strings.Contains(h.Detail, "block.email_domain"))
	}
	if !shown {
		t.Fatalf("the history of RD-1 does not show its risk decision: %+v", hist)
	}
}

// TestRiskReviewApprovedStartsOneAttemptDeniedNone: two pay requests are
// held for review: no attempt, no PSP call. An operator approves one over
// the API: exactly one attempt is routed and initiated, and approving
// again is refused (409), over the API as from the CLI's code path. The
// other is denied: rejected, no attempt. A third is left alone and its
// review ends by the rules' default (deny) when it expires. Each decision
// is audited.
func TestRiskReviewApprovedStartsOneAttemptDeniedNone(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Risk.Seed = []byte(`{"thresholds":{"review":50,"deny":100},"review":{"expires_after":"10m","default":"deny"},
	  "limits":[{"id":"big","currency":"USD","max":5000,"points":60}]}`)
	var skew atomic.Int64 // the sweeper's clock runs ahead by this
	cfg.Sweeper.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	e := startWith(t, cfg, app.All)
	sessions := e.consume(schemas.TopicPaySessions, "mall")

	for _, id := range []string{"RV-1", "RV-2", "RV-3"} {
		e.sendPay(buyerBody(id, 9000, "u-"+id, id+"@shop.example"), "")
	}
	for _, id := range []string{"RV-1", "RV-2", "RV-3"} {
		if outs := e.planned(id, 1); outs[0] != "review" {
			t.Fatalf("%s: %v", id, outs)
		}
	}
	if n := e.scalar(`SELECT count(*) FROM attempts`); n != 0 || len(e.app.Sim.Ledger().Payments) != 0 {
		t.Fatalf("held requests started %d attempts, %d PSP payments", n, len(e.app.Sim.Ledger().Payments))
	}
	if p := e.payment("RV-1"); p.Status != "pending" || len(p.Attempts) != 0 || p.RiskReview != "pending" {
		t.Fatalf("a held order as the mall reads it: %+v", p)
	}
	code, b := e.do("GET", "/v1/risk/reviews", nil, nil)
	if code != http.StatusOK || strings.Count(string(b), `"status":"pending"`) != 3 || strings.Contains(string(b), "big") {
		t.Fatalf("GET /v1/risk/reviews: %d %s", code, b)
	}
	// A repeat request while the review waits is refused.
	e.sendPay(buyerBody("RV-1", 9000, "u-RV-1", "RV-1@shop.example"), "again")
	if outs := e.planned("RV-1", 2); outs[1] != "rejected:risk_review_pending" {
		t.Fatalf("a repeat request during the review: %v", outs)
	}

	decide := func(id, body string) (int, []byte) {
		return e.do("POST", "/v1/risk/reviews/"+id, []byte(body), signed([]byte(body), time.Now(), app.DevMallSecret))
	}
	if code, b := decide("RV-1", `{"decision":"approve","note":"called the buyer","by":"ana"}`); code != http.StatusOK || !strings.Contains(string(b), `"status":"approved"`) {
		t.Fatalf("approve: %d %s", code, b)
	}
	if code, b := decide("RV-1", `{"decision":"approve"}`); code != http.StatusConflict {
		t.Fatalf("approve twice: %d %s", code, b)
	}
	if _, err := e.app.Store.DecideReview(context.Background(), "RV-1", false, store.Actor{Name: "cli:bob@host"}, ""); !errors.Is(err, risk.ErrReviewDecided) {
		t.Fatalf("deny after approval: %v", err)
	}
	if code, _ := decide("RV-9", `{"decision":"deny"}`); code != http.StatusNotFound {
		t.Fatalf("an order without a review: %d", code)
	}
	if code, _ := e.do("POST", "/v1/risk/reviews/RV-2", []byte(`{"decision":"deny"}`), http.Header{"Content-Type": {"application/json"}}); code != http.StatusUnauthorized {
		t.Fatalf("an unsigned decision: %d", code)
	}
	a := e.waitSession("RV-1", 0)
	if p := e.payment("RV-1"); p.RiskReview != "approved" {
		t.Fatalf("an approved order as the mall reads it: %+v", p)
	}
	if code, b := decide("RV-2", `{"decision":"deny","note":"stolen card"}`); code != http.StatusOK || !strings.Contains(string(b), `"status":"denied"`) {
		t.Fatalf("deny: %d %s", code, b)
	}
	evs := sessions.waitFor(t, 10*time.Second, "RV-2 rejected", func(evs []event) bool { return len(sessionsOf(evs, "RV-2")) > 0 })
	if s := sessionsOf(evs, "RV-2"); s[0].Type != schemas.SessionRejected || s[0].Reason != "risk_denied" {
		t.Fatalf("RV-2's session %+v", s)
	}
	// The third expires: the sweeper's clock jumps past its expiry.
	skew.Store(int64(11 * time.Minute))
	e.eventually(10*time.Second, "RV-3's review ended by its expiry", func() bool {
		return e.scalar(`SELECT count(*) FROM risk_reviews WHERE order_id = 'RV-3' AND status = 'denied' AND decided_by = 'timeout'`) == 1
	})
	sessions.waitFor(t, 10*time.Second, "RV-3 rejected", func(evs []event) bool { return len(sessionsOf(evs, "RV-3")) > 0 })
	// Whatever else comes (redeliveries, the relay's rounds), RV-1 has one
	// attempt, at the PSP once; RV-2 and RV-3 none.
	e.await(t, 10*time.Second, "the outbox published", func() bool {
		return e.scalar(`SELECT count(*) FROM outbox WHERE published_at IS NULL`) == 0
	})
	if n := e.scalar(`SELECT count(*) FROM attempts WHERE order_id = 'RV-1'`); n != 1 || e.simPayments("RV-1") != 1 || a.PayURL == "" {
		t.Fatalf("RV-1: %d attempts, %d PSP payments", n, e.simPayments("RV-1"))
	}
	if n := e.scalar(`SELECT count(*) FROM attempts WHERE order_id IN ('RV-2', 'RV-3')`); n != 0 {
		t.Fatalf("denied reviews have %d attempts", n)
	}
	if n := e.scalar(`SELECT count(*) FROM audit_log WHERE action LIKE 'risk.review.%'`); n != 5 {
		t.Fatalf("%d audited review decisions: want 2 done and 3 refused", n)
	}
	if n := e.scalar(`SELECT count(*) FROM audit_log WHERE action = 'risk.review.approve' AND outcome = 'ok' AND actor = 'api:dev-mall/ana'`); n != 1 {
		t.Fatal("the approval is not audited with its operator")
	}
}

// TestRiskVelocityIsExactAcrossMembers: 50 pay requests from one buyer at
// once against a limit of 5 per 10 minutes, decided by two payinit
// members over four partitions: exactly 5 are allowed. Redelivering one
// counts nothing again.
func TestRiskVelocityIsExactAcrossMembers(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Risk.Seed = []byte(`{"thresholds":{"deny":100},"velocity":[{"id":"buyer-5-per-10m","key":"buyer_id","window":"10m","max_count":5,"points":100}]}`)
	e := startWith(t, cfg, app.All)
	c := cfg
	c.Brokers, c.SimAddr, c.Payinit.PublicURL = e.app.Brokers, strings.TrimPrefix(e.app.SimURL, "http://"), e.app.Config.Payinit.PublicURL
	second := startWith(t, c, app.Roles{Payinit: true})

	// Barrier: the second member has joined the group and handles some
	// partitions (other buyers' requests, until one reaches it).
	handled := func(a *app.App) float64 {
		h, _ := consumerCounts(a.Registry)
		return h["payinit"]
	}
	for i := 0; handled(second.app) == 0; i++ {
		id := orderID("VW", i)
		e.sendPay(buyerBody(id, 100, "warm-"+id, ""), "")
		e.planned(id, 1)
		if i > 200 {
			t.Fatal("the second payinit member never got a partition")
		}
	}
	decided := func(a *app.App) float64 {
		mfs, _ := a.Registry.Gather()
		total := 0.0
		for _, mf := range mfs {
			if mf.GetName() == "paygate_risk_decisions_total" {
				for _, m := range mf.GetMetric() {
					total += m.GetCounter().GetValue()
				}
			}
		}
		return total
	}
	before1, before2 := decided(e.app), decided(second.app)
	parallel(50, 50, func(i int) {
		id := orderID("VX", i)
		e.sendPay(buyerBody(id, 1000, "velocity-buyer", ""), id)
	})
	e.eventually(60*time.Second, "50 pay requests decided", func() bool {
		return e.scalar(`SELECT count(*) FROM risk_decisions WHERE inputs->'request'->>'buyer_id' = 'velocity-buyer'`) == 50
	})
	allowed := e.scalar(`SELECT count(*) FROM risk_decisions WHERE inputs->'request'->>'buyer_id' = 'velocity-buyer' AND decision = 'allow'`)
	attempts := e.scalar(`SELECT count(DISTINCT order_id) FROM attempts WHERE order_id LIKE 'VX-%'`)
	counted := e.scalar(`SELECT coalesce(sum(n), 0) FROM risk_counts WHERE key = 'buyer_id:velocity-buyer' AND kind = 'request'`)
	d1, d2 := decided(e.app)-before1, decided(second.app)-before2
	t.Logf("decided by the members: %.0f and %.0f; allowed %d", d1, d2, allowed)
	if allowed != 5 || attempts != 5 || counted != 5 {
		t.Fatalf("against a limit of 5: %d allowed, %d orders with an attempt, %d counted", allowed, attempts, counted)
	}
	if d1 == 0 || d2 == 0 {
		t.Errorf("one member decided all 50 (%.0f, %.0f): the test did not run across members", d1, d2)
	}
	// Redelivery: the same request again (same Idempotency-Key), then a
	// sentinel behind it on the order's partition.
	var again string
	if err := e.db.QueryRow(`SELECT order_id FROM attempts WHERE order_id LIKE 'VX-%' LIMIT 1`).Scan(&again); err != nil {
		t.Fatal(err)
	}
	e.sendPay(buyerBody(again, 1000, "velocity-buyer", ""), again)
	e.sendPay(buyerBody(again, 1000, "sentinel-buyer", ""), "sentinel")
	e.planned(again, 2)
	if n := e.scalar(`SELECT coalesce(sum(n), 0) FROM risk_counts WHERE key = 'buyer_id:velocity-buyer'`); n != 5 {
		t.Fatalf("a redelivered request was counted again: %d", n)
	}
	if n := e.scalar(`SELECT count(*) FROM risk_decisions WHERE inputs->'request'->>'buyer_id' = 'velocity-buyer'`); n != 50 {
		t.Fatalf("a redelivered request was decided again: %d decisions", n)
	}
}

// TestRiskRulesReloadMidRun: pay requests keep coming while new rules are
// applied; each is decided by the version in force when its batch
// began, none is lost, and the new rules take effect without a restart.
// A stored version that no longer validates is refused.
func TestRiskRulesReloadMidRun(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Risk.Seed = []byte(`{"thresholds":{"deny":100}}`)
	e := startWith(t, cfg, app.All)
	var n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a steady stream of requests from a buyer the new rules block
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			i := n.Add(1)
			e.sendPay(buyerBody(orderID("RL", int(i)), 500, "u-stream", "s@later-blocked.example"), "")
		}
	}()
	e.eventually(20*time.Second, "a few requests allowed by version 1", func() bool {
		return e.scalar(`SELECT count(*) FROM risk_decisions WHERE rules_version = 1 AND decision = 'allow'`) >= 5
	})
	v2 := `{"thresholds":{"deny":100},"block":[{"email_domain":"later-blocked.example","reason":"fraud ring"}]}`
	if _, _, err := e.app.Store.ApplyDocument(context.Background(), store.DocRisk, []byte(v2), "ops", "test", "block the ring", e.app.Risk.Validate); err != nil {
		t.Fatal(err)
	}
	e.eventually(10*time.Second, "version 2 in force", func() bool { return e.app.Risk.Rules() != nil && e.app.Risk.Rules().Version == 2 })
	e.eventually(20*time.Second, "a few requests denied by version 2", func() bool {
		return e.scalar(`SELECT count(*) FROM risk_decisions WHERE rules_version = 2 AND decision = 'deny'`) >= 5
	})
	close(stop)
	wg.Wait()
	sent := n.Load()
	e.eventually(30*time.Second, "every request decided", func() bool {
		return e.scalar(`SELECT count(*) FROM pay_requests WHERE order_id LIKE 'RL-%'`) == sent
	})
	if bad := e.scalar(`SELECT count(*) FROM risk_decisions WHERE order_id LIKE 'RL-%' AND
	    NOT ((rules_version = 1 AND decision = 'allow') OR (rules_version = 2 AND decision = 'deny'))`); bad != 0 {
		t.Fatalf("%d decisions not by the rules of their version", bad)
	}
	if n := e.scalar(`SELECT count(*) FROM risk_decisions WHERE order_id LIKE 'RL-%'`); n != sent {
		t.Fatalf("%d decisions for %d requests", n, sent)
	}
	// A bad document is refused with the field named; version 2 stays.
	_, _, err := e.app.Store.ApplyDocument(context.Background(), store.DocRisk, []byte(`{"thresholds":{"deny":100},"velocity":[{"id":"v","key":"phone","window":"1m","max_count":1,"points":1}]}`),
		"ops", "test", "", e.app.Risk.Validate)
	if err == nil || !strings.Contains(err.Error(), "velocity[0].key") {
		t.Fatalf("a bad document: %v", err)
	}
	if v := e.app.Risk.Rules().Version; v != 2 {
		t.Fatalf("version %d in force", v)
	}
}

// fakeRiskService is an outside risk service: it answers as told, and
// records what it was asked.
type fakeRiskService struct {
	mu     sync.Mutex
	mode   string // answer, down, slow
	answer string
	asked  []map[string]any
}

func (f *fakeRiskService) set(mode, answer string) {
	f.mu.Lock()
	f.mode, f.answer = mode, answer
	f.mu.Unlock()
}

func (f *fakeRiskService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	_ = json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	mode, answer := f.mode, f.answer
	f.asked = append(f.asked, req)
	f.mu.Unlock()
	switch mode {
	case "down":
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	case "slow":
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
		_, _ = w.Write([]byte(`{"points":0}`))
	default:
		if r.Header.Get("X-Paygate-Signature") == "" {
			http.Error(w, "unsigned", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(answer))
	}
}

// TestRiskOutsideService: the outside service is asked with the intent and
// our score, its answer and latency are stored as evidence, and its
// answer counts; down, the rules' failure policy decides (closed: deny;
// open: ours stands); slow, the timeout ends the wait.
func TestRiskOutsideService(t *testing.T) {
	t.Parallel()
	fake := &fakeRiskService{mode: "answer", answer: `{"decision":"deny","reason":"device seen in fraud"}`}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cfg := testConfig(t)
	cfg.Risk.ServiceURL, cfg.Risk.ServiceKey = srv.URL, riskcheck.ServiceKey{ID: "paygate", Secret: "risk-secret"}
	closed := `{"thresholds":{"deny":100},"limits":[{"id":"big","currency":"USD","max":5000,"points":10}],"outside":{"timeout":"300ms","on_failure":"closed"}}`
	cfg.Risk.Seed = []byte(closed)
	e := startWith(t, cfg, app.All)
	outside := func(id string) (decision, evidence string) {
		t.Helper()
		e.planned(id, 1)
		if err := e.db.QueryRow(`SELECT decision, coalesce(outside::text, '') FROM risk_decisions WHERE order_id = $1`, id).Scan(&decision, &evidence); err != nil {
			t.Fatal(err)
		}
		return decision, evidence
	}

	e.sendPay(buyerBody("RO-1", 9000, "u1", ""), "")
	if d, ev := outside("RO-1"); d != "deny" || !strings.Contains(ev, "device seen in fraud") || !strings.Contains(ev, `"latency_ms"`) || !strings.Contains(ev, `"status": 200`) {
		t.Fatalf("the service denies: %s %s", d, ev)
	}
	fake.mu.Lock()
	asked := fake.asked[0]
	fake.mu.Unlock()
	if asked["order_id"] != "RO-1" || asked["score"] != 10.0 || asked["buyer_id"] != "u1" {
		t.Fatalf("the service was asked %v: want the intent and our score", asked)
	}
	fake.set("answer", `{"points":0}`)
	e.sendPay(buyerBody("RO-2", 100, "u2", ""), "")
	if d, _ := outside("RO-2"); d != "allow" {
		t.Fatalf("the service has nothing against it: %s", d)
	}
	e.waitSession("RO-2", 0)

	fake.set("down", "")
	e.sendPay(buyerBody("RO-3", 100, "u3", ""), "")
	if d, ev := outside("RO-3"); d != "deny" || !strings.Contains(ev, "503") {
		t.Fatalf("down, fail closed: %s %s", d, ev)
	}
	if n := e.scalar(`SELECT count(*) FROM attempts WHERE order_id = 'RO-3'`); n != 0 {
		t.Fatal("fail closed, and an attempt was made")
	}

	open := strings.Replace(closed, `"closed"`, `"open"`, 1)
	if _, _, err := e.app.Store.ApplyDocument(context.Background(), store.DocRisk, []byte(open), "ops", "test", "fail open", e.app.Risk.Validate); err != nil {
		t.Fatal(err)
	}
	e.eventually(10*time.Second, "fail-open rules in force", func() bool { return e.app.Risk.Rules().Outside.OnFailure == risk.FailOpen })
	e.sendPay(buyerBody("RO-4", 100, "u4", ""), "")
	if d, _ := outside("RO-4"); d != "allow" {
		t.Fatalf("down, fail open: %s", d)
	}
	e.waitSession("RO-4", 0)

	fake.set("slow", "")
	start := time.Now()
	e.sendPay(buyerBody("RO-5", 100, "u5", ""), "")
	d, ev := outside("RO-5")
	var o risk.Outside
	if err := json.Unmarshal([]byte(ev), &o); err != nil {
		t.Fatal(err)
	}
	if d != "allow" || !strings.Contains(o.Error, "300ms") || o.LatencyMS < 250 || o.LatencyMS > 1500 {
		t.Fatalf("slow, fail open: %s, evidence %+v", d, o)
	}
	e.waitSession("RO-5", 0)
	t.Logf("a slow service held the request up %s (timeout 300ms)", time.Since(start).Round(time.Millisecond))
	code, b := e.do("GET", "/metrics", nil, nil)
	if code != http.StatusOK || !strings.Contains(string(b), `paygate_risk_outside_errors_total{reason="timeout"} 1`) ||
		!strings.Contains(string(b), `paygate_risk_outside_errors_total{reason="status"} 2`) {
		t.Fatalf("metrics: %d\n%s", code, grepLines(string(b), "paygate_risk_"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRiskEventsAfterTheMoney: a signed callback with a wrong amount, a
// second payment of a paid order and a large refund each raise a risk
// event for the buyer, once; a velocity rule over events then denies the
// buyer's next pay request.
func TestRiskEventsAfterTheMoney(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Risk.Seed = []byte(`{"thresholds":{"deny":100},
	  "velocity":[{"id":"buyer-events","key":"buyer_id","window":"24h","of":"events","max_count":0,"points":100}],
	  "events":{"large_refund_above":{"USD":5000}}}`)
	e := startWith(t, cfg, app.All)
	session := func(order string, amount int64, buyer string, n int) schemas.Attempt {
		t.Helper()
		e.sendPay(buyerBody(order, amount, buyer, ""), "")
		return e.waitSession(order, n)
	}
	event := func(kind, order string) {
		t.Helper()
		e.eventually(20*time.Second, kind+" of "+order, func() bool {
			return e.scalar(`SELECT count(*) FROM risk_events WHERE kind = $1 AND order_id = $2`, kind, order) == 1
		})
	}
	denied := func(order, buyer string) {
		t.Helper()
		e.sendPay(buyerBody(order, 100, buyer, ""), "")
		if outs := e.planned(order, 1); outs[0] != "rejected:risk_denied" {
			t.Fatalf("%s's next request: %v", buyer, outs)
		}
	}

	// A wrong amount, told by the browser's return and the webhook: one event.
	a := session("AM-1", 2500, "u-tamper", 0)
	e.pay(a.PayURL, url.Values{"result": {"success"}, "amount": {"1"}})
	event("amount_mismatch", "AM-1")
	denied("AM-2", "u-tamper")

	// A second payment of a paid order.
	first := session("DP-1", 3000, "u-dup", 0)
	second := session("DP-1", 3000, "u-dup", 1)
	e.pay(first.PayURL, url.Values{"result": {"success"}})
	e.pay(second.PayURL, url.Values{"result": {"success"}})
	event("duplicate_payment", "DP-1")
	denied("DP-2", "u-dup")

	// A large refund (finance's), and a small one of another buyer.
	big := session("LR-1", 9000, "u-refund", 0)
	e.pay(big.PayURL, url.Values{"result": {"success"}, "callbacks": {"sync"}})
	small := session("LR-9", 9000, "u-small", 0)
	e.pay(small.PayURL, url.Values{"result": {"success"}, "callbacks": {"sync"}})
	for _, id := range []string{"LR-1", "LR-9"} {
		e.eventually(20*time.Second, id+" paid", func() bool {
			return e.scalar(`SELECT count(*) FROM orders WHERE order_id = $1 AND status = 'paid'`, id) == 1
		})
	}
	if code, b := e.requestRefund(refundBody("rf-big", "LR-1", "", 6000, "customer")); code != http.StatusAccepted {
		t.Fatalf("refund: %d %s", code, b)
	}
	if code, b := e.requestRefund(refundBody("rf-small", "LR-9", "", 4000, "customer")); code != http.StatusAccepted {
		t.Fatalf("refund: %d %s", code, b)
	}
	e.waitRefund("rf-big", 20*time.Second)
	e.waitRefund("rf-small", 20*time.Second)
	event("large_refund", "LR-1")
	denied("LR-2", "u-refund")
	e.sendPay(buyerBody("LR-10", 100, "u-small", ""), "")
	if outs := e.planned("LR-10", 1); outs[0] != "accepted" {
		t.Fatalf("a small refund is no event: %v", outs)
	}
	if n := e.scalar(`SELECT count(*) FROM risk_events`); n != 3 {
		t.Fatalf("%d risk events, want 3", n)
	}
	if n := e.scalar(`SELECT coalesce(sum(n), 0) FROM risk_counts WHERE kind <> 'request' AND key LIKE 'buyer_id:%'`); n != 3 {
		t.Fatalf("%d events counted, want 3 (each once, under its buyer's keys)", n)
	}
	hist, err := e.app.Store.History(context.Background(), "AM-1")
	if err != nil {
		t.Fatal(err)
	}
	var shown bool
	for _, h := range hist {
		shown = shown || (h.Kind == "risk_event" && strings.Contains(h.Ref, "amount_mismatch"))
	}
	if !shown {
		t.Fatalf("the history of AM-1 does not show its risk event: %+v", hist)
	}
}
