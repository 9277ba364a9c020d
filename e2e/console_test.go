package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/console"
)

func consoleUsers(t *testing.T) []console.User {
	h, err := bcrypt.GenerateFromPassword([]byte("operator-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return []console.User{{Name: "ops", Role: console.RoleOperator, PasswordHash: h}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// The console as paygate serves it: on the admin listener only (the
// public and API listeners do not know it), over the real pipeline's
// store — a payment made through the simulator shows there with its whole
// history — and with the Overview reading the real groups' lag.
func TestConsoleOnTheAdminListener(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Console.Users = consoleUsers(t)
	e := startWith(t, cfg, app.All)
	if e.app.ConsoleURL == "" || !strings.HasPrefix(e.app.ConsoleURL, e.app.AdminURL) {
		t.Fatalf("console at %q, admin listener at %s", e.app.ConsoleURL, e.app.AdminURL)
	}
	for _, base := range []string{e.app.IngressURL, e.app.APIURL} {
		resp, err := noRedirect.Get(base + "/console/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s/console/ answered %d: the console is reachable off the admin listener", base, resp.StatusCode)
		}
	}

	at := e.requestPayment("CON-1", 2500)
	e.pay(at.PayURL, url.Values{"result": {"success"}})
	// The sync return pays the order; the webhook, whose headers the page
	// below must show, comes 20 ms after the click: wait for both.
	e.eventually(30*time.Second, "CON-1 paid, its webhook stored", func() bool {
		return e.scalar(`SELECT count(*) FROM orders WHERE order_id = 'CON-1' AND status = 'paid'`) == 1 &&
			e.scalar(`SELECT count(*) FROM callbacks WHERE transaction_code = '`+at.TransactionCode+`' AND kind = 'async'`) == 1
	})

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	get := func(u string) string {
		t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", u, resp.StatusCode, b)
		}
		return string(b)
	}
	page := get(e.app.ConsoleURL + "login")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("login page:\n%s", page)
	}
	resp, err := c.PostForm(e.app.ConsoleURL+"login", url.Values{"csrf": {m[1]}, "username": {"ops"}, "password": {"operator-password"}, "next": {"/console/orders/CON-1"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	order := string(b)
	if resp.StatusCode != http.StatusOK || !strings.Contains(order, `id="order-status">paid<`) {
		t.Fatalf("order page after signing in: %d\n%s", resp.StatusCode, order)
	}
	for _, want := range []string{at.TransactionCode, "psp_initiate", "callback", "event", "X-Sim-Signature"} {
		if !strings.Contains(order, want) {
			t.Errorf("the console's order page lacks %q", want)
		}
	}

	// The Overview's sampler reads the real groups.
	var o console.Overview
	e.eventually(20*time.Second, "the overview sampled the groups", func() bool {
		if err := json.Unmarshal([]byte(get(e.app.ConsoleURL+"api/overview")), &o); err != nil {
			t.Fatal(err)
		}
		return len(o.Lags) == 4 && o.Ended > 0
	})
	if o.SuccessRate == nil || *o.SuccessRate != 1 {
		t.Errorf("success rate = %v, want 1 (one attempt, paid)", o.SuccessRate)
	}
}

// A console given accounts refuses to start on an admin listener that
// the ingress's routes share: it would be in reach of PSPs and buyers.
func TestConsoleRefusesASharedListener(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AdminAddr, cfg.APIAddr = "", ""
	cfg.Console.Users = consoleUsers(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := app.Start(ctx, cfg, app.Roles{Broker: true, Migrate: true, Ingress: true}, logger())
	if err == nil || !strings.Contains(err.Error(), "PAYGATE_ADMIN_ADDR") {
		t.Fatalf("start with the console on the public listener: %v", err)
	}
}

// TestConsoleDecidesRiskReviews: the console's Reviews page lists what
// risk holds, over the real queue; an operator's approve (CSRF-checked)
// starts the held payment once, and is audited as the console's.
func TestConsoleDecidesRiskReviews(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Console.Users = consoleUsers(t)
	cfg.Risk.Seed = []byte(`{"thresholds":{"review":50,"deny":100},"review":{"expires_after":"10m","default":"deny"},
	  "limits":[{"id":"big","currency":"USD","max":5000,"points":60}]}`)
	e := startWith(t, cfg, app.All)
	for _, id := range []string{"CRV-1", "CRV-2"} {
		e.sendPay(buyerBody(id, 9000, "u-"+id, id+"@shop.example"), "")
		if outs := e.planned(id, 1); outs[0] != "review" {
			t.Fatalf("%s: %v", id, outs)
		}
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(e.app.ConsoleURL + "login")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("login page:\n%s", b)
	}
	resp, err = c.PostForm(e.app.ConsoleURL+"login", url.Values{"csrf": {m[1]}, "username": {"ops"}, "password": {"operator-password"}, "next": {"/console/reviews"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "CRV-1") || !strings.Contains(page, "CRV-2") || !strings.Contains(page, "big (&#43;60) (rules v1)") ||
		!strings.Contains(page, "/console/reviews/CRV-1/approve") {
		t.Fatalf("the Reviews page: %d\n%s", resp.StatusCode, page)
	}
	m = csrfField.FindStringSubmatch(page)
	post := func(path string, csrf string) int {
		resp, err := c.PostForm(e.app.ConsoleURL+path, url.Values{"csrf": {csrf}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("reviews/CRV-2/deny", "forged"); code != http.StatusForbidden {
		t.Fatalf("a deny with a wrong CSRF token: %d, want 403", code)
	}
	if code := post("reviews/CRV-1/approve", m[1]); code != http.StatusOK {
		t.Fatalf("approve: %d", code)
	}
	a := e.waitSession("CRV-1", 0)
	if code := post("reviews/CRV-1/approve", m[1]); code != http.StatusConflict {
		t.Fatalf("approving twice: %d, want 409", code)
	}
	e.await(t, 10*time.Second, "the outbox published", func() bool {
		return e.scalar(`SELECT count(*) FROM outbox WHERE published_at IS NULL`) == 0
	})
	if n := e.scalar(`SELECT count(*) FROM attempts WHERE order_id = 'CRV-1'`); n != 1 || a.PayURL == "" || e.simPayments("CRV-1") != 1 {
		t.Fatalf("CRV-1 approved in the console: %d attempts, %d PSP payments", n, e.simPayments("CRV-1"))
	}
	if n := e.scalar(`SELECT count(*) FROM risk_reviews WHERE order_id = 'CRV-2' AND status = 'pending'`); n != 1 {
		t.Fatal("a forged deny decided CRV-2")
	}
	if n := e.scalar(`SELECT count(*) FROM audit_log WHERE action = 'risk.review.approve' AND outcome = 'ok' AND target = 'CRV-1' AND actor LIKE '%ops%'`); n != 1 {
		t.Fatal("the console's approval is not audited with its operator")
	}
}
