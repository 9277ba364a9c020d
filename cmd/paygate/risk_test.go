package main

import (
	"bytes"
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/schemas"
)

// `paygate risk apply|show|history|explain`: rules are validated, stored
// once, shown with every default, audited; explain scores a body on the
// counts as they are and changes nothing.
func TestRiskApplyShowHistoryExplain(t *testing.T) {
	url, getenv := routingConfig(t, nil)
	cfg, err := LoadConfig(getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var out bytes.Buffer
	run := func(args ...string) error {
		out.Reset()
		return runRisk(ctx, cfg, args, strings.NewReader(payBodyForExplain), &out)
	}
	if err := run("show"); err != nil || !strings.Contains(out.String(), "risk control is off") {
		t.Fatalf("show before any rules: %v %s", err, out.String())
	}
	if err := run("explain", "-"); err != nil || !strings.Contains(out.String(), "risk control is off") {
		t.Fatalf("explain without rules: %v %s", err, out.String())
	}
	bad := writeTemp(t, "bad.json", `{"thresholds":{"deny":100},"velocity":[{"id":"v","key":"phone","window":"10m","max_count":1,"points":1}]}`)
	if err := run("apply", bad); err == nil || !strings.Contains(err.Error(), "velocity[0].key") {
		t.Fatalf("a bad document: %v", err)
	}
	good := writeTemp(t, "r.json", `{"thresholds":{"review":50,"deny":100},
	  "velocity":[{"id":"buyer-2-per-10m","key":"buyer_id","window":"10m","max_count":2,"points":60}],
	  "limits":[{"id":"big","currency":"USD","max":100000,"points":100}]}`)
	if err := run("apply", "--by", "rita", "--note", "first rules", good); err != nil || !strings.Contains(out.String(), "version 1 applied by rita") {
		t.Fatalf("apply: %v %s", err, out.String())
	}
	if err := run("apply", good); err != nil || !strings.Contains(out.String(), "unchanged: version 1") {
		t.Fatalf("apply again: %v %s", err, out.String())
	}
	if err := run("show"); err != nil || !strings.Contains(out.String(), `"expires_after": "30m0s"`) || !strings.Contains(out.String(), "version 1, applied by rita") {
		t.Fatalf("show: %v %s", err, out.String())
	}
	if err := run("history"); err != nil || !strings.Contains(out.String(), "first rules") {
		t.Fatalf("history: %v %s", err, out.String())
	}
	// Two requests of the buyer counted already: a third is held.
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO risk_counts (key, kind, currency, bucket, n, amount) VALUES ('buyer_id:u42', 'request', 'USD', $1, 2, 3998)`,
		time.Now().UTC().Truncate(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := run("explain", "-"); err != nil || !strings.Contains(out.String(), "REVIEW, score 60") ||
		!strings.Contains(out.String(), "buyer_id:u42: 3 requests in 10m0s; at most 2") {
		t.Fatalf("explain: %v\n%s", err, out.String())
	}
	var n int
	if err := db.QueryRow(`SELECT (SELECT sum(n) FROM risk_counts) + (SELECT count(*) FROM risk_decisions) + (SELECT count(*) FROM risk_reviews)`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("explain changed something: %d %v", n, err)
	}
}

const payBodyForExplain = `{"order_id":"E1","amount":1999,"currency":"USD","country":"US","buyer":{"id":"u42"},
  "return_urls":{"success":"https://shop.example/ok","failure":"https://shop.example/fail","pending":"https://shop.example/wait"}}`

// `paygate risk reviews|review`: the queue, and a decision taken once,
// audited as the OS user.
func TestRiskReviewCommand(t *testing.T) {
	url, getenv := routingConfig(t, nil)
	cfg, err := LoadConfig(getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// A held request, as payinit stores it.
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`INSERT INTO orders (order_id, amount, currency, country, status) VALUES ('H1', 1999, 'USD', 'US', 'pending')`,
		`INSERT INTO pay_requests (message_id, order_id, body, outcome) VALUES ('m1', 'H1', convert_to('` + strings.ReplaceAll(payBodyForExplain, "E1", "H1") + `', 'UTF8'), 'review')`,
		`INSERT INTO risk_decisions (message_id, order_id, decision, rules_version, score, matched, inputs, keys)
		 VALUES ('m1', 'H1', 'review', 1, 60, '[{"rule":"big","points":60,"detail":"x"}]', '{}', '{}')`,
		`INSERT INTO risk_reviews (order_id, message_id, status, expires_at, default_decision) VALUES ('H1', 'm1', 'pending', now() + interval '1 hour', 'deny')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	run := func(args ...string) error {
		out.Reset()
		return runRisk(ctx, cfg, args, nil, &out)
	}
	if err := run("reviews"); err != nil || !strings.Contains(out.String(), "H1") || !strings.Contains(out.String(), "big") {
		t.Fatalf("reviews: %v %s", err, out.String())
	}
	if err := run("review", "H1"); err == nil {
		t.Fatal("review without --approve or --deny")
	}
	if err := run("review", "H1", "--approve", "--note", "known buyer"); err != nil || !strings.Contains(out.String(), "approved") {
		t.Fatalf("approve: %v %s", err, out.String())
	}
	if err := run("review", "H1", "--deny"); err == nil || !strings.Contains(err.Error(), "was approved") {
		t.Fatalf("deny after approval: %v", err)
	}
	var topic, id string
	if err := db.QueryRow(`SELECT topic, event_id FROM outbox`).Scan(&topic, &id); err != nil || topic != schemas.TopicPayRequests || id != domain.ReleasePrefix+"1" {
		t.Fatalf("the release: %s %s %v", topic, id, err)
	}
	log, err := st.AuditLog(ctx, 0, 10)
	if err != nil || len(log) != 2 || log[1].Outcome != store.AuditOK || !strings.HasPrefix(log[1].Actor.Name, "cli:") || log[0].Outcome != store.AuditRefused {
		t.Fatalf("audit %+v %v", log, err)
	}
	if err := run("reviews", "--decided"); err != nil || !strings.Contains(out.String(), "known buyer") {
		t.Fatalf("decided reviews: %v %s", err, out.String())
	}
}
