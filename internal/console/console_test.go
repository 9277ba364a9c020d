package console_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/crypto/bcrypt"

	"github.com/paygate/paygate/internal/broker/brokertest"
	"github.com/paygate/paygate/internal/console"
	"github.com/paygate/paygate/internal/dlq"
	"github.com/paygate/paygate/internal/pgtest"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/schemas"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Test accounts: an operator and a viewer. bcrypt at its lowest cost, so
// that the tests do not spend a core on hashing.
const (
	operatorName, operatorPassword = "alice", "alice-password-1"
	viewerName, viewerPassword     = "victor", "victor-password-1"
)

func users(t testing.TB) []console.User {
	t.Helper()
	var entries []string
	for _, u := range [][3]string{{operatorName, console.RoleOperator, operatorPassword}, {viewerName, console.RoleViewer, viewerPassword}} {
		h, err := bcrypt.GenerateFromPassword([]byte(u[2]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, u[0]+":"+u[1]+":"+string(h))
	}
	us, err := console.ParseUsers(strings.Join(entries, ","))
	if err != nil {
		t.Fatal(err)
	}
	return us
}

// env is a console over a real database and broker, served by httptest.
type env struct {
	t       *testing.T
	ctx     context.Context
	db      *sql.DB
	st      *store.Store
	w       *producers.Writer
	brokers []string
	con     *console.Console
	srv     *httptest.Server
}

func newEnv(t *testing.T, edit ...func(*console.Config)) *env {
	t.Helper()
	return newEnvWith(t, console.Deps{}, edit...)
}

// newEnvWith is newEnv with deps' Health and Reviews.
func newEnvWith(t *testing.T, deps console.Deps, edit ...func(*console.Config)) *env {
	t.Helper()
	ctx, b := brokertest.Start(t, 2)
	e := &env{t: t, ctx: ctx, brokers: []string{b.Addr()}}
	url := pgtest.New(t)
	var err error
	if e.db, err = sql.Open("postgres", url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	if e.st, err = store.Open(ctx, store.Config{URL: url, MaxConns: 4}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.st.Close() })
	if e.w, err = producers.NewWriter(producers.WriterConfig{Brokers: e.brokers}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.w.Close() })
	d, err := dlq.New(dlq.Config{Brokers: e.brokers}, e.st, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	cfg := console.Config{Users: users(t), Brokers: e.brokers, SampleInterval: time.Hour}
	for _, f := range edit {
		f(&cfg)
	}
	e.con, err = console.New(cfg,
		console.Deps{Store: e.st, DLQ: d, Log: quiet, Health: deps.Health, Reviews: deps.Reviews, Channels: []console.ChannelInfo{
			{Name: "sim", Kind: "sim", Enabled: true, Weight: 1, ConfirmByQuery: true},
			{Name: "sim2", Kind: "sim", Enabled: true, Currencies: []string{"EUR"}, ConfirmByQuery: true},
		}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", e.con.Handler())
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.db.ExecContext(e.ctx, q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// seedOrder stores a paid order as the pipeline leaves one: its pay
// request, its attempt, the PSP's signed callback (as the ingress records
// it) and the PSP exchanges, and an event.
func (e *env) seedOrder(orderID, code, pspRef string) {
	e.t.Helper()
	e.exec(`INSERT INTO orders (order_id, amount, currency, country, method, description, buyer, status, paid_attempt, paid_at)
		VALUES ($1, 1999, 'USD', 'US', 'card', 'Phone case', '{"id":"u42","email":"Buyer@Example.com"}', 'paid', $2, now())`, orderID, code)
	e.exec(`INSERT INTO attempts (transaction_code, order_id, channel, amount, currency, status, psp_reference, pay_url, paid_at)
		VALUES ($1, $2, 'sim', 1999, 'USD', 'paid', $3, 'http://127.0.0.1:8090/pay/x', now())`, code, orderID, pspRef)
	e.exec(`INSERT INTO pay_requests (message_id, order_id, body, outcome, transaction_code) VALUES ($1, $2, '{}', 'accepted', $3)`,
		"pay_request/dev-mall/"+orderID, orderID, code)
	raw, _ := json.Marshal(schemas.RawCallback{ID: "cb-" + code, Channel: "sim", Kind: "async", Method: "POST", Path: "/v1/callbacks/sim",
		Headers:    map[string][]string{"Content-Type": {"application/json"}, "X-Sim-Signature": {"v1=0123456789abcdef0123456789abcdef"}, "X-Sim-Timestamp": {"1764064800"}},
		Body:       []byte(`{"event_id":"ev1","type":"payment.succeeded","merchant_ref":"` + code + `","payment_id":"` + pspRef + `","amount":1999,"currency":"USD","card_number":"4111111111111111"}`),
		ReceivedAt: time.Now().UTC()})
	e.exec(`INSERT INTO callbacks (message_id, channel, kind, received_at, raw, transaction_code, psp_reference, notified_status, confirmed_status, outcome)
		VALUES ($1, 'sim', 'async', now(), $2, $3, $4, 'succeeded', 'succeeded', 'paid')`, "cb-"+code, raw, code, pspRef)
	e.exec(`INSERT INTO psp_exchanges (channel, operation, order_id, transaction_code, method, url, request_body, status_code, response_body, started_at, duration_ms)
		VALUES ('sim', 'initiate', $1, $2, 'POST', 'http://127.0.0.1:8090/v1/payments', '{"merchant_ref":"x","secret":"***"}', 201, '{"payment_id":"p1"}', now(), 3.5)`, orderID, code)
}

// deadLetter writes a record to a topic's DLQ as the runner does.
func (e *env) deadLetter(topic, id, reason string, value []byte) {
	e.t.Helper()
	if err := e.w.Write(e.ctx, producers.Message{Topic: schemas.DLQ(topic), Key: "k-" + id, ID: id, Type: "t", Value: value,
		Extra: []kafka.Header{{Key: schemas.HeaderDLQReason, Value: []byte(reason)}, {Key: schemas.HeaderDLQOrigin, Value: []byte(topic + "/0/1")}}}); err != nil {
		e.t.Fatal(err)
	}
}

// client is a browser without a browser: a cookie jar, no redirects
// followed unless asked.
type client struct {
	e    *env
	http *http.Client
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) get(path string) (int, string, http.Header) {
	c.e.t.Helper()
	resp, err := c.http.Get(c.e.srv.URL + path)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (c *client) post(path string, form url.Values) (int, string, http.Header) {
	c.e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.e.srv.URL)
	resp, err := c.http.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

var hidden = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// login signs in and returns the session's CSRF token.
func (c *client) login(name, password string) string {
	c.e.t.Helper()
	_, page, _ := c.get("/console/login")
	m := hidden.FindStringSubmatch(page)
	if m == nil {
		c.e.t.Fatalf("login page without a CSRF token:\n%s", page)
	}
	code, body, h := c.post("/console/login", url.Values{"csrf": {m[1]}, "username": {name}, "password": {password}, "next": {"/console/"}})
	if code != http.StatusSeeOther || h.Get("Location") != "/console/" {
		c.e.t.Fatalf("login as %s: %d %s\n%s", name, code, h.Get("Location"), body)
	}
	_, page, _ = c.get("/console/")
	m = hidden.FindStringSubmatch(page)
	if m == nil {
		c.e.t.Fatalf("overview without a CSRF token:\n%s", page)
	}
	return m[1]
}

func (e *env) auditOutcomes() []string {
	e.t.Helper()
	log, err := e.st.AuditLog(e.ctx, 0, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for i := len(log) - 1; i >= 0; i-- {
		out = append(out, log[i].Actor.Name+" "+log[i].Action+" "+log[i].Outcome)
	}
	return out
}
