// Package console is paygate's operator console: server-rendered pages
// (html/template, no front-end build; one small charting library, uPlot,
// vendored under static/) over the same store reads and commands the CLI
// uses — an order's history is `paygate order`'s, a replay is `paygate
// dlq replay`'s (internal/dlq), the reconciliation CSV is `paygate recon
// report --format csv`'s — so an action behaves the same whichever door
// it comes through, and every action is audited (audit_log) with who did
// it and when.
//
// It is an http.Handler meant for the admin listener, never the public
// one: accounts come from configuration (PAYGATE_CONSOLE_USERS, bcrypt
// hashes), sessions live in PostgreSQL behind a random token in a
// Secure, HttpOnly, SameSite=Strict cookie, every POST carries the
// session's CSRF token, a viewer reads and an operator acts.
//
// Extension points for pages that other parts will feed: Deps.Health
// (routing's per-channel health, breaker and share, on the Channels
// page) and Deps.Reviews (risk's review queue, with approve and deny, on
// the Reviews page). Both may be nil: the pages say what is not built.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/dlq"
	"github.com/paygate/paygate/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures the console. Users, SessionTTL and InsecureCookies
// are settings: their variables, defaults and help are their tags
// (internal/settings); New fills a zero SessionTTL with the same default,
// which a test holds to the tag.
type Config struct {
	// Users may sign in. Required by New; without them (the variable
	// unset) internal/app serves no console.
	Users Users `env:"PAYGATE_CONSOLE_USERS" secret:"true" help:"none: no console (dev: dev / dev-console-password); the operator console's accounts, name:role:bcrypt-hash,... (role viewer or operator; paygate console hash-password), served at /console/ on the admin listener"`
	// BasePath is where the console is mounted. Default "/console".
	BasePath string
	// SessionTTL is how long a session lasts from sign-in.
	SessionTTL time.Duration `env:"PAYGATE_CONSOLE_SESSION_TTL" default:"8h" min:"1m" help:"how long a console sign-in lasts"`
	// InsecureCookies drops the cookies' Secure attribute, for a console
	// reached over plain HTTP on another host than localhost. Default
	// false: behind TLS, or on localhost, which browsers treat as secure.
	InsecureCookies bool `env:"PAYGATE_CONSOLE_INSECURE_COOKIES" default:"false" help:"true: the console's cookies without Secure, for plain HTTP off localhost"`
	// SampleInterval is how often the Overview's figures are sampled.
	// Default 5s.
	SampleInterval time.Duration
	// Brokers and Transport read the topics' ends and the consumer
	// groups' offsets for the Overview. Without brokers it shows none.
	Brokers   []string
	Transport *kafka.Transport
	// Groups are the consumer groups whose lag the Overview shows, with
	// the topic each reads. Default paygate's: payinit, callbacks,
	// refunds, recon.
	Groups map[string]string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.BasePath == "" {
		c.BasePath = "/console"
	}
	c.BasePath = "/" + strings.Trim(c.BasePath, "/")
	if c.SessionTTL == 0 {
		c.SessionTTL = 8 * time.Hour
	}
	if c.SampleInterval == 0 {
		c.SampleInterval = 5 * time.Second
	}
	if c.Groups == nil {
		c.Groups = DefaultGroups()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// ChannelInfo is a configured channel as the Channels page shows it.
type ChannelInfo struct {
	Name       string
	Kind       string
	Enabled    bool
	Weight     int
	Countries  []string
	Currencies []string
	Methods    []string
	// Capabilities, as the adapter declares them.
	PartialRefund, Settlement, ConfirmByQuery bool
}

// ChannelHealth is routing's view of one channel in one segment of the
// policy in force (a row of GET /v1/routing/health, router.HealthRow).
type ChannelHealth struct {
	Channel string
	Segment string
	// SuccessRate is nil without outcomes.
	SuccessRate      *float64
	Samples          int
	Breaker          string // closed, open, half_open
	BreakerReason    string
	Share            float64
	Pending          int
	Initiates        int
	InitiateFailures int
}

// HealthSource gives routing's health per channel and segment
// (internal/app adapts the router's Health to it). Deps.Health is nil in
// a process that has no router to ask.
type HealthSource func(ctx context.Context) ([]ChannelHealth, error)

// Review is one payment held for an operator by risk.
type Review struct {
	ID          string
	OrderID     string
	Amount      int64
	Currency    string
	Score       float64
	Rules       []string
	RulesVer    string
	CreatedAt   time.Time
	Description string
}

// ReviewQueue is risk's review queue. Approve and Deny decide one review
// as actor did it (and audit it, as dlq.Service does); the console calls
// them from its Reviews page with the operator's CSRF-checked POST.
type ReviewQueue interface {
	Open(ctx context.Context, limit int) ([]Review, error)
	Approve(ctx context.Context, id string, actor store.Actor) error
	Deny(ctx context.Context, id string, actor store.Actor) error
}

// Deps are what the console reads and acts through.
type Deps struct {
	Store *store.Store
	// DLQ lists and replays dead letters; nil without Kafka (the page
	// says so).
	DLQ      *dlq.Service
	Channels []ChannelInfo
	// Health is routing's channel health; nil where no router is at hand.
	Health HealthSource
	// Reviews is risk's review queue; nil until risk provides it.
	Reviews ReviewQueue
	Log     *slog.Logger
}

// Console is the operator console. It is safe for concurrent use.
type Console struct {
	cfg      Config
	base     string
	users    map[string]User
	store    *store.Store
	dlq      *dlq.Service
	channels []ChannelInfo
	health   HealthSource
	reviews  ReviewQueue
	log      *slog.Logger
	pages    map[string]*template.Template
	limit    limiter
	sampler  *sampler
}

// New builds the console.
func New(cfg Config, d Deps) (*Console, error) {
	if len(cfg.Users) == 0 {
		return nil, errors.New("console: no users (PAYGATE_CONSOLE_USERS)")
	}
	if d.Store == nil {
		return nil, errors.New("console: no store")
	}
	cfg.defaults()
	if d.Log == nil {
		d.Log = slog.Default()
	}
	c := &Console{cfg: cfg, base: cfg.BasePath, users: map[string]User{}, store: d.Store, dlq: d.DLQ, channels: d.Channels,
		health: d.Health, reviews: d.Reviews, log: d.Log.With("component", "console"), limit: limiter{failures: map[string][]time.Time{}}}
	for _, u := range cfg.Users {
		c.users[u.Name] = u
	}
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	c.sampler = newSampler(cfg, d.Store, d.DLQ)
	return c, nil
}

// Run samples the Overview's figures until ctx ends.
func (c *Console) Run(ctx context.Context) error {
	return c.sampler.run(ctx, c.log)
}

// Sample takes one sample of the Overview's figures now (Run does it
// every SampleInterval).
func (c *Console) Sample(ctx context.Context) error { return c.sampler.sample(ctx) }

var funcs = template.FuncMap{
	"money": func(amount int64, currency string) string {
		m, err := domain.NewMoney(amount, currency)
		if err != nil {
			return fmt.Sprintf("%d %s", amount, currency)
		}
		return m.String()
	},
	"ts": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "-"
			}
			return v.UTC().Format("2006-01-02 15:04:05")
		case *time.Time:
			if v == nil {
				return "-"
			}
			return v.UTC().Format("2006-01-02 15:04:05")
		}
		return fmt.Sprint(t)
	},
	"age": func(t time.Time) string {
		d := time.Since(t).Round(time.Second)
		switch {
		case d < time.Minute:
			return d.String()
		case d < time.Hour:
			return fmt.Sprintf("%dm", int(d.Minutes()))
		case d < 48*time.Hour:
			return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
		}
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	},
	"pct":   func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"deref": func(f *float64) float64 { return *f },
	"successOf": func(o store.ChannelOutcomes) string {
		n := o.Paid + o.Failed + o.Expired
		if n == 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(o.Paid)/float64(n))
	},
	"q": url.QueryEscape,
	"p": url.PathEscape,
	"join": func(s []string) string {
		if len(s) == 0 {
			return "any"
		}
		return strings.Join(s, ", ")
	},
}

// parsePages parses each page with the layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// view is what every page template gets.
type view struct {
	Title  string
	Nav    string
	Base   string
	User   string
	Role   string
	CSRF   string
	CanAct bool
	Flash  string
	Error  string
	Data   any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page, title string, data any) {
	v := view{Title: title, Nav: page, Base: c.base, Data: data}
	if s := sessionOf(r.Context()); s != nil {
		v.User, v.Role, v.CSRF, v.CanAct = s.Username, s.Role, s.CSRFToken, s.Role == RoleOperator
	}
	if ck, err := r.Cookie("paygate_console_flash"); err == nil {
		if msg, err := url.QueryUnescape(ck.Value); err == nil {
			v.Flash = msg
		}
		http.SetCookie(w, c.cookie("paygate_console_flash", "", -1))
	}
	t := c.pages[page]
	if t == nil {
		http.Error(w, "no page "+page, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", v); err != nil {
		c.log.Error("render", "page", page, "err", err)
	}
}

// flash keeps a message for the next page this browser shows.
func (c *Console) flash(w http.ResponseWriter, msg string) {
	http.SetCookie(w, c.cookie("paygate_console_flash", url.QueryEscape(msg), 60))
}

// fail shows an error page (and logs what the operator should not see).
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, msg string, err error) {
	if err != nil {
		c.log.Error("console request failed", "path", r.URL.Path, "err", err)
		msg += ": " + err.Error()
	}
	c.render(w, r, status, "error", http.StatusText(status), msg)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Handler serves the console under Config.BasePath.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	b := c.base
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET "+b+"/static/", http.StripPrefix(b+"/static/", http.FileServer(http.FS(static))))
	mux.HandleFunc("GET "+b+"/login", c.loginPage)
	mux.HandleFunc("POST "+b+"/login", c.login)
	mux.Handle("POST "+b+"/logout", c.act(RoleViewer, c.logout))
	mux.Handle("GET "+b+"/{$}", c.read(c.overview))
	mux.Handle("GET "+b+"/api/overview", c.api(c.overviewJSON))
	mux.Handle("GET "+b+"/orders", c.read(c.orders))
	mux.Handle("GET "+b+"/orders/{id}", c.read(c.order))
	mux.Handle("GET "+b+"/channels", c.read(c.channelsPage))
	mux.Handle("GET "+b+"/reviews", c.read(c.reviewsPage))
	mux.Handle("POST "+b+"/reviews/{id}/{decision}", c.act(RoleOperator, c.decideReview))
	mux.Handle("GET "+b+"/refunds", c.read(c.refundsPage))
	mux.Handle("GET "+b+"/recon", c.read(c.reconPage))
	mux.Handle("GET "+b+"/recon.csv", c.read(c.reconCSV))
	mux.Handle("GET "+b+"/dlq", c.read(c.dlqPage))
	mux.Handle("GET "+b+"/dlq/{topic}/{partition}/{offset}", c.read(c.dlqRecord))
	mux.Handle("POST "+b+"/dlq/replay", c.act(RoleOperator, c.dlqReplayOne))
	mux.Handle("POST "+b+"/dlq/replay-all", c.act(RoleOperator, c.dlqReplayAll))
	mux.Handle("GET "+b+"/audit", c.read(c.auditPage))
	mux.HandleFunc(b, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, b+"/", http.StatusFound) })
	return headers(mux)
}

// headers sets what every answer of the console carries: no framing, no
// inline script, no caching of operator data, no sniffing.
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		if !strings.Contains(r.URL.Path, "/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// read serves a page to any signed-in user; without a session, the
// browser is sent to the login page (and back after it).
func (c *Console) read(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := c.currentSession(r)
		if err != nil {
			http.Error(w, "console: sessions unavailable", http.StatusServiceUnavailable)
			c.log.Error("session lookup", "err", err)
			return
		}
		if s == nil {
			http.Redirect(w, r, c.base+"/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	})
}

// api is read for JSON: 401 without a session.
func (c *Console) api(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := c.currentSession(r)
		if err != nil || s == nil {
			http.Error(w, `{"error":"unauthenticated"}`, http.StatusUnauthorized)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	})
}

// act guards an action (a POST): a session (401 without), the session's
// CSRF token in the form (403 otherwise), a request from this origin if
// the browser says where it comes from, and the role (403 for a viewer
// where an operator is needed). Refusals are audited.
func (c *Console) act(role string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := c.currentSession(r)
		if err != nil {
			http.Error(w, "console: sessions unavailable", http.StatusServiceUnavailable)
			c.log.Error("session lookup", "err", err)
			return
		}
		action := "console" + strings.TrimPrefix(r.URL.Path, c.base)
		if s == nil {
			c.audit(r, nil, action, "", store.AuditRefused, map[string]any{"why": "not signed in"})
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, s))
		if !sameOrigin(r) {
			c.audit(r, s, action, "", store.AuditRefused, map[string]any{"why": "cross-origin request"})
			c.fail(w, r, http.StatusForbidden, "refused: the request did not come from the console's own pages", nil)
			return
		}
		if !equal(r.PostFormValue("csrf"), s.CSRFToken) {
			c.audit(r, s, action, "", store.AuditRefused, map[string]any{"why": "bad CSRF token"})
			c.fail(w, r, http.StatusForbidden, "refused: the form's CSRF token is missing or wrong (reload the page and try again)", nil)
			return
		}
		if role == RoleOperator && s.Role != RoleOperator {
			c.audit(r, s, action, "", store.AuditRefused, map[string]any{"why": "role " + s.Role + " may not act"})
			c.fail(w, r, http.StatusForbidden, "refused: your role ("+s.Role+") may look but not act; an operator may", nil)
			return
		}
		h(w, r)
	})
}

// sameOrigin checks the Origin header when the browser sends one (every
// browser does on a POST): it must be this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return o == "" // a request without Origin is not a browser's cross-site form
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// audit records a console action; a failure to audit is logged.
func (c *Console) audit(r *http.Request, s *session, action, target, outcome string, detail map[string]any) {
	a := actorOf(r, s)
	if a.Name == "" {
		a.Name = "console:(anonymous)"
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := c.store.Audit(ctx, store.AuditEntry{Actor: a, Action: action, Target: target, Outcome: outcome, Detail: detail}); err != nil {
		c.log.Error("audit failed", "action", action, "actor", a.Name, "err", err)
	}
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	tok := randomToken()
	http.SetCookie(w, c.cookie(loginCookie, tok, 600))
	c.render(w, r, http.StatusOK, "login", "Sign in", map[string]string{"Token": tok, "Next": localNext(c.base, r.URL.Query().Get("next"))})
}

// localNext is where to go after signing in: a path of the console only
// (no open redirect).
func localNext(base, next string) string {
	if !strings.HasPrefix(next, base+"/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return base + "/"
	}
	return next
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	name, password := r.PostFormValue("username"), r.PostFormValue("password")
	ck, err := r.Cookie(loginCookie)
	if err != nil || !equal(ck.Value, r.PostFormValue("csrf")) || !sameOrigin(r) {
		c.audit(r, nil, "login", name, store.AuditRefused, map[string]any{"why": "bad CSRF token"})
		c.fail(w, r, http.StatusForbidden, "refused: the sign-in form expired or did not come from this console; reload it", nil)
		return
	}
	now, addr := c.cfg.Now(), remoteAddr(r)
	if c.limit.blocked(now, "user:"+name, "addr:"+addr) {
		c.audit(r, nil, "login", name, store.AuditRefused, map[string]any{"why": "too many failed sign-ins"})
		c.fail(w, r, http.StatusTooManyRequests, fmt.Sprintf("too many failed sign-ins for this name or from this address; wait %s", failureWindow), nil)
		return
	}
	u, ok := c.checkPassword(name, password)
	if !ok {
		c.limit.fail(now, "user:"+name, "addr:"+addr)
		c.audit(r, nil, "login", name, store.AuditRefused, map[string]any{"why": "wrong name or password"})
		c.render(w, r, http.StatusUnauthorized, "login", "Sign in", map[string]string{"Token": ck.Value,
			"Next": localNext(c.base, r.PostFormValue("next")), "Error": "Wrong name or password."})
		return
	}
	c.limit.reset("user:" + name)
	tok := randomToken()
	sess := store.ConsoleSession{Username: u.Name, Role: u.Role, CSRFToken: randomToken(), ExpiresAt: now.Add(c.cfg.SessionTTL)}
	if err := c.store.CreateSession(r.Context(), tokenHash(tok), sess); err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, "cannot sign in now", err)
		return
	}
	s := &session{ConsoleSession: sess}
	c.audit(r, s, "login", u.Name, store.AuditOK, nil)
	http.SetCookie(w, c.cookie(sessionCookie, tok, int(c.cfg.SessionTTL.Seconds())))
	http.SetCookie(w, c.cookie(loginCookie, "", -1))
	http.Redirect(w, r, localNext(c.base, r.PostFormValue("next")), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r.Context())
	if err := c.store.DeleteSession(r.Context(), s.hash); err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, "cannot sign out now", err)
		return
	}
	c.audit(r, s, "logout", s.Username, store.AuditOK, nil)
	http.SetCookie(w, c.cookie(sessionCookie, "", -1))
	http.Redirect(w, r, c.base+"/login", http.StatusSeeOther)
}
