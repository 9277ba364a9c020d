package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/console"
	"github.com/paygate/paygate/schemas"
)

// Without a session every page sends the browser to the login page and
// every action and API answers 401; a wrong password is refused; an
// action with a wrong or missing CSRF token, or from another origin, is
// refused; a viewer may look but not act; an operator acts. Every
// refusal is in the audit log, with who and why.
func TestAccessIsGuarded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.seedOrder("A1001", "T1001", "pi_1001")
	e.deadLetter(schemas.TopicPayRequests, "m-bad", "bad JSON", []byte(`{"order_id":`))
	anon := e.client()

	for _, p := range []string{"/console/", "/console/orders?q=A1001", "/console/orders/A1001", "/console/dlq", "/console/audit",
		"/console/refunds", "/console/recon", "/console/recon.csv", "/console/channels", "/console/reviews"} {
		code, _, h := anon.get(p)
		if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/login?next=") {
			t.Errorf("GET %s without a session: %d %s, want the login page", p, code, h.Get("Location"))
		}
	}
	if code, _, _ := anon.get("/console/api/overview"); code != http.StatusUnauthorized {
		t.Errorf("API without a session: %d", code)
	}
	if code, _, _ := anon.post("/console/dlq/replay-all", url.Values{"topic": {schemas.TopicPayRequests}, "csrf": {"x"}}); code != http.StatusUnauthorized {
		t.Errorf("replay without a session: %d", code)
	}

	// A login form from elsewhere (no login cookie), then a wrong password.
	if code, _, _ := anon.post("/console/login", url.Values{"csrf": {"forged"}, "username": {operatorName}, "password": {operatorPassword}}); code != http.StatusForbidden {
		t.Errorf("login without the form's token: %d", code)
	}
	_, page, _ := anon.get("/console/login")
	tok := hidden.FindStringSubmatch(page)[1]
	if code, body, _ := anon.post("/console/login", url.Values{"csrf": {tok}, "username": {operatorName}, "password": {"wrong-password"}}); code != http.StatusUnauthorized ||
		!strings.Contains(body, "Wrong name or password") {
		t.Errorf("wrong password: %d", code)
	}

	viewer := e.client()
	vcsrf := viewer.login(viewerName, viewerPassword)
	for _, p := range []string{"/console/", "/console/orders/A1001", "/console/dlq?topic=" + schemas.TopicPayRequests, "/console/audit", "/console/api/overview"} {
		if code, _, _ := viewer.get(p); code != http.StatusOK {
			t.Errorf("viewer GET %s: %d", p, code)
		}
	}
	if _, body, _ := viewer.get("/console/dlq?topic=" + schemas.TopicPayRequests); strings.Contains(body, `action="/console/dlq/replay"`) {
		t.Error("the viewer's dead letters page offers a replay")
	}
	if code, body, _ := viewer.post("/console/dlq/replay-all", url.Values{"topic": {schemas.TopicPayRequests}, "csrf": {vcsrf}}); code != http.StatusForbidden ||
		!strings.Contains(body, "may look but not act") {
		t.Errorf("viewer replay: %d\n%s", code, body)
	}

	op := e.client()
	csrf := op.login(operatorName, operatorPassword)
	for name, form := range map[string]url.Values{
		"no CSRF token":    {"topic": {schemas.TopicPayRequests}},
		"wrong CSRF token": {"topic": {schemas.TopicPayRequests}, "csrf": {vcsrf}},
	} {
		if code, _, _ := op.post("/console/dlq/replay-all", form); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, code)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console/dlq/replay-all", strings.NewReader(url.Values{"topic": {schemas.TopicPayRequests}, "csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if resp, err := op.http.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin replay: %v %v", resp.StatusCode, err)
	}
	// Nothing was replayed by any of that.
	_, body, _ := op.get("/console/dlq?topic=" + schemas.TopicPayRequests)
	if !strings.Contains(body, "m-bad") || strings.Contains(body, " by console:") {
		t.Fatalf("the record was replayed by a refused request:\n%s", body)
	}
	code, _, h := op.post("/console/dlq/replay-all", url.Values{"topic": {schemas.TopicPayRequests}, "csrf": {csrf}})
	if code != http.StatusSeeOther {
		t.Fatalf("operator replay: %d", code)
	}
	_, body, _ = op.get(h.Get("Location"))
	if !strings.Contains(body, "Replayed 1 records from "+schemas.DLQ(schemas.TopicPayRequests)) || !strings.Contains(body, "by console:alice") {
		t.Errorf("after the replay:\n%s", body)
	}

	// Signing out ends the session: its cookie no longer opens anything.
	if code, _, _ := op.post("/console/logout", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther {
		t.Errorf("logout: %d", code)
	}
	if code, _, _ := op.get("/console/"); code != http.StatusSeeOther {
		t.Errorf("after logout: %d", code)
	}

	got := strings.Join(e.auditOutcomes(), "\n")
	for _, want := range []string{
		"console:(anonymous) console/dlq/replay-all refused",
		"console:(anonymous) login refused",
		"console:victor login ok",
		"console:victor console/dlq/replay-all refused",
		"console:alice console/dlq/replay-all refused",
		"console:alice dlq.replay ok",
		"console:alice logout ok",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("audit log lacks %q:\n%s", want, got)
		}
	}
}

// PAYGATE_CONSOLE_USERS: name:role:bcrypt-hash entries; anything else is
// refused with a message that says what is wrong.
func TestParseUsers(t *testing.T) {
	t.Parallel()
	h, err := console.HashPassword("a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	us, err := console.ParseUsers("alice:operator:" + h + ", bob:viewer:" + h)
	if err != nil || len(us) != 2 || us[1].Name != "bob" || us[1].Role != console.RoleViewer {
		t.Fatalf("ParseUsers = %+v, %v", us, err)
	}
	for in, want := range map[string]string{
		"alice:admin:" + h:                         `role "admin"`,
		"alice:operator:plaintext":                 "not a bcrypt hash",
		"alice:" + h:                               "want name:role:bcrypt-hash",
		"a b:viewer:" + h:                          "a name is",
		"alice:viewer:" + h + ",alice:viewer:" + h: "given twice",
	} {
		if _, err := console.ParseUsers(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseUsers(%.30q): %v, want %q", in, err, want)
		}
	}
	if _, err := console.HashPassword("short"); err == nil {
		t.Error("a short password was hashed")
	}
}

// The pages a viewer reads: an order found by buyer email, a dead
// letter's own page with its headers masked, and the reconciliation CSV,
// which is the CLI's (schemas.WriteReconCSV).
func TestReadPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.seedOrder("A2001", "T2001", "pi_2001")
	e.deadLetter(schemas.TopicPSPCallbacks, "cb-9", `unknown channel "x"`, []byte(`{"id":"cb-9","api_key":"sk_live_123"}`))
	v := e.client()
	v.login(viewerName, viewerPassword)

	code, _, h := v.get("/console/orders?q=buyer%40example.com")
	if code != http.StatusOK {
		t.Errorf("search by buyer email: %d %s", code, h.Get("Location"))
	}
	if _, body, _ := v.get("/console/orders?q=buyer%40example.com"); !strings.Contains(body, "A2001") || !strings.Contains(body, "buyer email") {
		t.Errorf("search by buyer email (any case):\n%s", body)
	}
	if code, _, h := v.get("/console/orders?q=A2001"); code != http.StatusSeeOther || h.Get("Location") != "/console/orders/A2001" {
		t.Errorf("an exact order id goes to the order: %d %s", code, h.Get("Location"))
	}
	if code, _, _ := v.get("/console/orders/NOPE-1"); code != http.StatusNotFound {
		t.Errorf("unknown order: %d", code)
	}

	_, body, _ := v.get("/console/dlq?topic=" + schemas.TopicPSPCallbacks)
	m := regexp.MustCompile(`href="(/console/dlq/[^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no record link:\n%s", body)
	}
	code, body, _ = v.get(m[1])
	if code != http.StatusOK || !strings.Contains(body, `unknown channel &#34;x&#34;`) || strings.Contains(body, "sk_live_123") || !strings.Contains(body, `&#34;api_key&#34;:&#34;***&#34;`) {
		t.Errorf("record page: %d\n%s", code, body)
	}

	code, csv, h := v.get("/console/recon.csv")
	if code != http.StatusOK || h.Get("Content-Type") != "text/csv; charset=utf-8" || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") ||
		strings.TrimSpace(csv) != strings.Join(schemas.ReconCSVHeader, ",") {
		t.Errorf("recon CSV: %d %v\n%s", code, h, csv)
	}
}
