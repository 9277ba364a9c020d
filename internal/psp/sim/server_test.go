package sim

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

var usd1999 = domain.MustMoney(1999, "USD")

// clock is a settable clock for ServerConfig.Now and ChannelConfig.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

func TestInitiateIdempotent(t *testing.T) {
	e := newEnv(t, ServerConfig{})
	first := e.initiate("T1", usd1999)
	if !strings.HasPrefix(first.PSPReference, "sp_") || first.PayURL != e.api.URL+"/pay/"+first.PSPReference || first.Token == "" {
		t.Fatalf("session = %+v", first)
	}
	if d := time.Until(first.ExpiresAt); d < 29*time.Minute || d > 31*time.Minute {
		t.Errorf("ExpiresAt in %s, want the default 30 min", d)
	}
	again := e.initiate("T1", usd1999)
	if again.PSPReference != first.PSPReference || again.PayURL != first.PayURL || again.Token != first.Token || !again.ExpiresAt.Equal(first.ExpiresAt) {
		t.Errorf("same request again = %+v, want the same session %+v", again, first)
	}

	conflicts := []struct {
		name string
		edit func(*psp.InitiateRequest)
	}{
		{"amount", func(r *psp.InitiateRequest) { r.Amount = domain.MustMoney(2000, "USD") }},
		{"currency", func(r *psp.InitiateRequest) { r.Amount = domain.MustMoney(1999, "EUR") }},
		{"notify url", func(r *psp.InitiateRequest) { r.NotifyURL = "https://other.example/cb" }},
	}
	for _, c := range conflicts {
		t.Run(c.name, func(t *testing.T) {
			req := e.initiateRequest("T1", usd1999)
			c.edit(&req)
			_, err := e.ch.Initiate(t.Context(), req)
			var ae *APIError
			if !errors.Is(err, psp.ErrDeclined) || !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Code != "conflict" {
				t.Errorf("Initiate = %v, want ErrDeclined wrapping a 409 conflict", err)
			}
			if psp.IsTemporary(err) {
				t.Errorf("a conflict is permanent, got temporary")
			}
		})
	}
	if l := e.srv.Ledger(); len(l.Payments) != 1 || l.Payments[0].Status != "created" || !l.Payments[0].Amount.Equal(usd1999) {
		t.Errorf("ledger = %+v, want one created payment of 19.99 USD", l.Payments)
	}
}

// TestCallsCounted: a create is counted once however often it is
// repeated; a status query is counted, and apart when the buyer had not
// paid yet (a gateway asking of its own accord, not confirming a
// callback); a query about an unknown payment is not.
func TestCallsCounted(t *testing.T) {
	e := newEnv(t, ServerConfig{})
	s := e.initiate("T1", usd1999)
	e.initiate("T1", usd1999)
	if _, err := e.ch.Query(t.Context(), "T1"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := e.pay(s.PayURL, url.Values{"result": {"success"}, "callbacks": {"none"}}); code != http.StatusOK {
		t.Fatalf("pay: %d", code)
	}
	if _, err := e.ch.Query(t.Context(), "T1"); err != nil {
		t.Fatal(err)
	}
	_, _ = e.ch.Query(t.Context(), "T-unknown")
	if got, want := e.srv.Calls(), (Calls{Creates: 1, Queries: 2, QueriesUnpaid: 1}); got != want {
		t.Errorf("calls %+v; want %+v", got, want)
	}
}

// TestPayCallbacks pays through the form and checks what reaches the
// gateway: the webhook at the notify URL, the sync return in the 303.
func TestPayCallbacks(t *testing.T) {
	cases := []struct {
		name      string
		form      url.Values
		wantHooks int
		wantSync  bool
		wantGets  int // sync returns the simulator requests itself
		status    domain.PSPStatus
		amount    int64
		badSig    bool
	}{
		{name: "success both", form: url.Values{"result": {"success"}}, wantHooks: 1, wantSync: true, status: domain.PSPSucceeded, amount: 1999},
		{name: "decline", form: url.Values{"result": {"decline"}}, wantHooks: 1, wantSync: true, status: domain.PSPFailed, amount: 1999},
		{name: "async only", form: url.Values{"result": {"success"}, "callbacks": {"async"}}, wantHooks: 1, status: domain.PSPSucceeded, amount: 1999},
		{name: "sync only", form: url.Values{"result": {"success"}, "callbacks": {"sync"}}, wantSync: true, status: domain.PSPSucceeded, amount: 1999},
		{name: "none", form: url.Values{"result": {"success"}, "callbacks": {"none"}}, status: domain.PSPSucceeded, amount: 1999},
		{name: "twice", form: url.Values{"result": {"success"}, "callbacks": {"twice"}}, wantHooks: 2, wantSync: true, wantGets: 1, status: domain.PSPSucceeded, amount: 1999},
		{name: "amount tampered", form: url.Values{"result": {"success"}, "amount": {"1"}}, wantHooks: 1, wantSync: true, status: domain.PSPSucceeded, amount: 1},
		{name: "bad signature", form: url.Values{"result": {"success"}, "signature": {"bad"}}, wantHooks: 1, wantSync: true, badSig: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, ServerConfig{})
			s := e.initiate("T-"+strings.ReplaceAll(c.name, " ", "-"), usd1999)
			code, loc, body := e.pay(s.PayURL, c.form)

			parse := func(kind string, cb domain.Callback) domain.Notification {
				t.Helper()
				n, err := e.ch.ParseCallback(cb)
				if c.badSig {
					if !errors.Is(err, psp.ErrBadSignature) {
						t.Errorf("%s callback with a bad signature: %v, want ErrBadSignature", kind, err)
					}
					return n
				}
				if err != nil {
					t.Fatalf("%s callback: %v", kind, err)
				}
				want := domain.Notification{TransactionCode: "T-" + strings.ReplaceAll(c.name, " ", "-"), PSPReference: s.PSPReference,
					Status: c.status, Amount: domain.MustMoney(c.amount, "USD")}
				if n.TransactionCode != want.TransactionCode || n.PSPReference != want.PSPReference ||
					n.Status != want.Status || !n.Amount.Equal(want.Amount) {
					t.Errorf("%s notification = %+v, want %+v", kind, n, want)
				}
				return n
			}

			if c.wantSync {
				if code != http.StatusSeeOther || !strings.HasPrefix(loc, e.returns.srv.URL+"/v1/return/sim?") {
					t.Fatalf("pay = %d Location %q, want 303 to the return URL", code, loc)
				}
				cb := syncCallback(t, loc)
				if cb.Query.Get("shop") != "1" {
					t.Errorf("the return URL's own parameter was lost: %q", loc)
				}
				if n := parse("sync", cb); n.EventID != "" {
					t.Errorf("sync EventID = %q, want none", n.EventID)
				}
			} else if code != http.StatusOK || !strings.Contains(body, "Payment done") {
				t.Fatalf("pay = %d %q, want 200 payment done", code, body)
			}

			hooks := e.hooks.wait(t, c.wantHooks)
			var eventID string
			for i, h := range hooks {
				if h.Method != http.MethodPost || h.Path != "/v1/callbacks/sim" || h.Headers.Get(headerMerchant) != testMerchant {
					t.Errorf("webhook %d: %s %s merchant %q", i, h.Method, h.Path, h.Headers.Get(headerMerchant))
				}
				n := parse("async", h)
				if c.badSig {
					continue
				}
				if !strings.HasPrefix(n.EventID, "evt_") || (eventID != "" && n.EventID != eventID) {
					t.Errorf("webhook %d event id %q, first %q: want evt_ and one id for duplicates", i, n.EventID, eventID)
				}
				eventID = n.EventID
				if d := time.Since(n.OccurredAt); d < 0 || d > time.Minute {
					t.Errorf("OccurredAt %s is not now", n.OccurredAt)
				}
			}
			e.hooks.quiet(t, c.wantHooks, e.srv)
			e.returns.wait(t, c.wantGets)
			e.returns.quiet(t, c.wantGets, e.srv)
			for _, g := range e.returns.received() {
				if c.badSig {
					continue
				}
				parse("reloaded sync", g) // the reload carries the same signed parameters
			}
		})
	}
}

// TestPayReverse: with order=reverse the webhook is acknowledged before
// the browser gets its answer.
func TestPayReverse(t *testing.T) {
	e := newEnv(t, ServerConfig{})
	s := e.initiate("T-rev", usd1999)
	code, loc, _ := e.pay(s.PayURL, url.Values{"result": {"success"}, "order": {"reverse"}})
	if got := len(e.hooks.received()); got != 1 {
		t.Fatalf("webhooks received before the pay answer = %d, want 1", got)
	}
	if code != http.StatusSeeOther || loc == "" {
		t.Fatalf("pay = %d %q, want 303", code, loc)
	}
	if _, err := e.ch.ParseCallback(syncCallback(t, loc)); err != nil {
		t.Errorf("sync return: %v", err)
	}
	e.hooks.quiet(t, 1, e.srv)
}

// TestPayNormalOrder: without reverse the browser is answered while the
// gateway has not acknowledged the webhook yet.
func TestPayNormalOrder(t *testing.T) {
	e := newEnv(t, ServerConfig{})
	release := make(chan struct{})
	e.hooks.hold = func() { <-release }
	s := e.initiate("T-normal", usd1999)
	code, _, _ := e.pay(s.PayURL, url.Values{"result": {"success"}})
	close(release)
	if code != http.StatusSeeOther {
		t.Fatalf("pay = %d, want 303 while the webhook is held", code)
	}
	e.hooks.wait(t, 1)
}

func TestPayRefused(t *testing.T) {
	clk := &clock{t: time.Now()}
	e := newEnv(t, ServerConfig{Now: clk.Now})
	paid := e.initiate("T-paid", usd1999)
	if code, _, _ := e.pay(paid.PayURL, url.Values{"result": {"success"}}); code != http.StatusSeeOther {
		t.Fatalf("first pay = %d", code)
	}
	declined := e.initiate("T-declined", usd1999)
	e.pay(declined.PayURL, url.Values{"result": {"decline"}})
	expiring := e.initiate("T-expiring", usd1999)
	fresh := e.initiate("T-fresh", usd1999)

	cases := []struct {
		name   string
		url    string
		form   url.Values
		before func()
		want   int
	}{
		{"paid again", paid.PayURL, url.Values{"result": {"success"}}, nil, http.StatusConflict},
		{"declined then paid", declined.PayURL, url.Values{"result": {"success"}}, nil, http.StatusConflict},
		{"unknown payment", e.api.URL + "/pay/sp_nope", url.Values{"result": {"success"}}, nil, http.StatusNotFound},
		{"no result", fresh.PayURL, url.Values{}, nil, http.StatusBadRequest},
		{"bad callbacks", fresh.PayURL, url.Values{"result": {"success"}, "callbacks": {"often"}}, nil, http.StatusBadRequest},
		{"bad amount", fresh.PayURL, url.Values{"result": {"success"}, "amount": {"19.99"}}, nil, http.StatusBadRequest},
		{"negative delay", fresh.PayURL, url.Values{"result": {"success"}, "delay_ms": {"-1"}}, nil, http.StatusBadRequest},
		{"expired", expiring.PayURL, url.Values{"result": {"success"}}, func() { clk.Add(31 * time.Minute) }, http.StatusGone},
	}
	for _, c := range cases {
		if c.before != nil {
			c.before()
		}
		if code, _, body := e.pay(c.url, c.form); code != c.want {
			t.Errorf("%s: pay = %d %q, want %d", c.name, code, body, c.want)
		}
	}
	if l := e.srv.Ledger(); l.Payments[0].Status != "succeeded" || l.Payments[1].Status != "failed" || l.Payments[2].Status != "expired" {
		t.Errorf("ledger statuses %s %s %s, want succeeded failed expired", l.Payments[0].Status, l.Payments[1].Status, l.Payments[2].Status)
	}
}

// TestSecondAttemptPaysAgain: the same order paid through a second
// attempt is a second PSP transaction, as the gateway's duplicate
// payment detection needs.
func TestSecondAttemptPaysAgain(t *testing.T) {
	e := newEnv(t, ServerConfig{})
	a := e.initiate("T-order1-a", usd1999)
	b := e.initiate("T-order1-b", usd1999)
	e.pay(a.PayURL, url.Values{"result": {"success"}, "callbacks": {"async"}})
	e.pay(b.PayURL, url.Values{"result": {"success"}, "callbacks": {"async"}})
	hooks := e.hooks.wait(t, 2)
	refs := map[string]bool{}
	for _, h := range hooks {
		n, err := e.ch.ParseCallback(h)
		if err != nil || n.Status != domain.PSPSucceeded {
			t.Fatalf("webhook: %+v %v", n, err)
		}
		refs[n.PSPReference] = true
	}
	if len(refs) != 2 || a.PSPReference == b.PSPReference {
		t.Errorf("two attempts gave PSP references %v, want two distinct", refs)
	}
}

func TestWebhookRetry(t *testing.T) {
	e := newEnv(t, ServerConfig{WebhookRetry: []time.Duration{5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}})
	e.hooks.answer(500, 503, 404)
	s := e.initiate("T-retry", usd1999)
	e.pay(s.PayURL, url.Values{"result": {"success"}, "callbacks": {"async"}})
	hooks := e.hooks.wait(t, 4)
	e.hooks.quiet(t, 4, e.srv) // the 4th got 200: no more
	for i, h := range hooks {
		if string(h.Body) != string(hooks[0].Body) {
			t.Errorf("delivery %d body differs from the first", i)
		}
		if _, err := e.ch.ParseCallback(h); err != nil {
			t.Errorf("delivery %d: %v", i, err)
		}
	}
}

func TestWebhookRetryGivesUp(t *testing.T) {
	e := newEnv(t, ServerConfig{WebhookRetry: []time.Duration{time.Millisecond, time.Millisecond}})
	e.hooks.answer(500, 500, 500, 500, 500)
	s := e.initiate("T-giveup", usd1999)
	e.pay(s.PayURL, url.Values{"result": {"success"}, "callbacks": {"async"}})
	e.hooks.wait(t, 3)
	e.hooks.quiet(t, 3, e.srv) // one delivery and two retries
}

// TestCloseStopsRetries: Close ends pending retries promptly.
func TestCloseStopsRetries(t *testing.T) {
	e := newEnv(t, ServerConfig{WebhookRetry: []time.Duration{time.Hour}})
	e.hooks.answer(500)
	s := e.initiate("T-close", usd1999)
	e.pay(s.PayURL, url.Values{"result": {"success"}, "callbacks": {"async"}})
	e.hooks.wait(t, 1)
	done := make(chan struct{})
	go func() { e.srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not return while a retry was waiting")
	}
	// After Close a payment completes but sends nothing.
	s2 := e.initiate("T-after-close", usd1999)
	e.pay(s2.PayURL, url.Values{"result": {"success"}, "callbacks": {"async"}})
	e.hooks.quiet(t, 1, e.srv)
}

// TestRates: each rate at 1 makes every payment misbehave in its way.
func TestRates(t *testing.T) {
	cases := []struct {
		name  string
		cfg   ServerConfig
		check func(t *testing.T, e *env, code int, loc string, early int)
	}{
		{"decline", ServerConfig{DeclineRate: 1}, func(t *testing.T, e *env, code int, loc string, early int) {
			n, err := e.ch.ParseCallback(e.hooks.wait(t, 1)[0])
			if err != nil || n.Status != domain.PSPFailed {
				t.Errorf("webhook = %+v %v, want failed", n, err)
			}
		}},
		{"drop", ServerConfig{DropCallbackRate: 1}, func(t *testing.T, e *env, code int, loc string, early int) {
			if code != http.StatusOK || loc != "" {
				t.Errorf("pay = %d %q, want 200 without redirect", code, loc)
			}
			e.hooks.quiet(t, 0, e.srv)
			if l := e.srv.Ledger(); l.Payments[0].Status != "succeeded" {
				t.Errorf("the payment is %s, want succeeded though nobody was told", l.Payments[0].Status)
			}
		}},
		{"duplicate", ServerConfig{DuplicateRate: 1}, func(t *testing.T, e *env, code int, loc string, early int) {
			h := e.hooks.wait(t, 2)
			a, errA := e.ch.ParseCallback(h[0])
			b, errB := e.ch.ParseCallback(h[1])
			if errA != nil || errB != nil || a.EventID != b.EventID {
				t.Errorf("duplicates %+v %v / %+v %v, want one event twice", a, errA, b, errB)
			}
			e.returns.wait(t, 1)
		}},
		{"reorder", ServerConfig{ReorderRate: 1}, func(t *testing.T, e *env, code int, loc string, early int) {
			if early != 1 {
				t.Errorf("webhooks acknowledged before the pay answer = %d, want 1", early)
			}
		}},
		{"bad signature", ServerConfig{BadSignatureRate: 1}, func(t *testing.T, e *env, code int, loc string, early int) {
			if _, err := e.ch.ParseCallback(e.hooks.wait(t, 1)[0]); !errors.Is(err, psp.ErrBadSignature) {
				t.Errorf("webhook: %v, want ErrBadSignature", err)
			}
			if _, err := e.ch.ParseCallback(syncCallback(t, loc)); !errors.Is(err, psp.ErrBadSignature) {
				t.Errorf("sync return: %v, want ErrBadSignature", err)
			}
		}},
		{"amount change", ServerConfig{TamperRate: 1}, func(t *testing.T, e *env, code int, loc string, early int) {
			n, err := e.ch.ParseCallback(e.hooks.wait(t, 1)[0])
			if err != nil || n.Amount.Equal(usd1999) || n.Amount.Currency() != usd1999.Currency() {
				t.Errorf("webhook = %+v %v, want another USD amount, correctly signed", n, err)
			}
			q, err := e.ch.Query(t.Context(), "T-rate")
			if err != nil || !q.Amount.Equal(n.Amount) {
				t.Errorf("Query = %+v %v, want the collected %s", q, err, n.Amount)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.cfg)
			s := e.initiate("T-rate", usd1999)
			code, loc, _ := e.pay(s.PayURL, url.Values{"result": {"success"}})
			c.check(t, e, code, loc, len(e.hooks.received()))
		})
	}
}

// TestSeedReproducible: one seed, one sequence of fates; a script
// overrides the rates for its payment.
func TestSeedReproducible(t *testing.T) {
	run := func(seed int64, script bool) []string {
		e := newEnv(t, ServerConfig{Seed: seed, DeclineRate: 0.5})
		if script {
			e.srv.Script("T-3", Script{Decline: true})
			e.srv.Script("T-4", Script{})
		}
		for i := range 12 {
			code := "T-" + string(rune('0'+i%10)) + strings.Repeat("x", i/10)
			s := e.initiate(code, usd1999)
			e.pay(s.PayURL, url.Values{"result": {"success"}, "callbacks": {"none"}})
		}
		var st []string
		for _, p := range e.srv.Ledger().Payments {
			st = append(st, p.Status)
		}
		return st
	}
	a, b := run(7, false), run(7, false)
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Errorf("seed 7 twice: %v and %v", a, b)
	}
	if !strings.Contains(strings.Join(a, ","), "failed") || !strings.Contains(strings.Join(a, ","), "succeeded") {
		t.Errorf("DeclineRate 0.5 over 12 payments gave %v", a)
	}
	s := run(7, true)
	if s[3] != "failed" || s[4] != "succeeded" {
		t.Errorf("scripted T-3 %s (want failed), T-4 %s (want succeeded)", s[3], s[4])
	}
}

func TestScriptAmountAndUnsettled(t *testing.T) {
	e := newEnv(t, ServerConfig{})
	e.srv.Script("T-s", Script{Amount: 1000, Unsettled: true, DropCallbacks: true})
	s := e.initiate("T-s", usd1999)
	e.pay(s.PayURL, url.Values{"result": {"success"}})
	n, err := e.ch.Query(t.Context(), "T-s")
	if err != nil || n.Status != domain.PSPSucceeded || n.Amount.Minor() != 1000 {
		t.Fatalf("Query = %+v %v, want succeeded 10.00 USD", n, err)
	}
	page, err := e.ch.SettledPayments(t.Context(), time.Now().UTC(), "")
	if err != nil || len(page.Rows) != 0 {
		t.Errorf("settlements = %+v %v, want the unsettled payment left out", page, err)
	}
	e.hooks.quiet(t, 0, e.srv)
}

func TestPayPage(t *testing.T) {
	e := newEnv(t, ServerConfig{})
	s := e.initiate("T-page", usd1999)
	resp, err := http.Get(s.PayURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	page := string(body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(page, `value="success"`) || !strings.Contains(page, `value="decline"`) || !strings.Contains(page, "19.99 USD") {
		t.Errorf("pay page %d %q:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}
	if r, err := http.Get(e.api.URL + "/pay/sp_unknown"); err != nil || r.StatusCode != http.StatusNotFound {
		t.Errorf("unknown pay page: %v %v", r.StatusCode, err)
	}
}
