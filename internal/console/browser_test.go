package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paygate/paygate/internal/console"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/schemas"
)

// chromium finds the browser: PAYGATE_CHROMIUM, else chromium (Debian's
// package), chromium-browser or google-chrome on the PATH. Without one
// the browser tests skip, saying so, unless they are required
// (PAYGATE_REQUIRE_BROWSER, which .ci/run sets, or CI): then they fail.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PAYGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("PAYGATE_REQUIRE_BROWSER") != "" || os.Getenv("CI") != "" {
		t.Fatal("no Chromium found, and the browser tests are required here (PAYGATE_REQUIRE_BROWSER or CI): apt-get install -y chromium chromium-driver, or set PAYGATE_CHROMIUM")
	}
	t.Skip("SKIPPED: the console's browser tests need Chromium (apt-get install -y chromium chromium-driver, or PAYGATE_CHROMIUM=/path); CI runs them")
	return ""
}

// browser starts a headless Chromium of its own (a fresh profile, nothing
// reached but the test's server) for the test's duration.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancel3)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start the browser: %v", err)
	}
	return ctx
}

// fakeClock moves 5 s per reading, so that the Overview's samples read
// as a run of a minute.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) tick() {
	c.mu.Lock()
	c.t = c.t.Add(5 * time.Second)
	c.mu.Unlock()
}

// An operator, in a real browser: signs in, finds an order by its PSP
// reference and reads its whole history with the raw callback (signature
// and card number masked), replays a dead letter from the console, and
// sees the Overview's live figures and charts drawn by the vendored
// charting library. With PAYGATE_CONSOLE_SCREENSHOTS=DIR it saves a
// screenshot of each page there (make console-screenshots: docs/console/).
func TestConsoleInABrowser(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Now().Add(-time.Minute)}
	q := &queue{}
	e := newEnvWith(t, console.Deps{Reviews: q}, func(c *console.Config) { c.Now = clock.now })
	ctx := browser(t)
	shots := os.Getenv("PAYGATE_CONSOLE_SCREENSHOTS")
	shoot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	e.seedOrder("A1001", "T261125095957123ABCDEFGH", "pay_7Hq2mZ")
	e.seedOrder("A1002", "T261125100002456ABCDEFGH", "pay_8Kx1nQ")
	e.exec(`INSERT INTO refunds (refund_id, body_hash, message_id, order_id, transaction_code, channel, amount, currency, reason, status, call_status, raw, created_at)
		VALUES ('R-A1002-1', '\x00', 'rr-1', 'A1002', 'T261125100002456ABCDEFGH', 'sim', 500, 'USD', 'customer request', 'pending_at_psp', 'ok', '{}', now() - interval '3 hours')`)
	e.deadLetter(schemas.TopicPayRequests, "pay_request/dev-mall/X-17", `invalid pay request: jsonschema: '/amount' does not validate: got number 19.99, want integer`, []byte(`{"order_id":"X-17","amount":19.99,"currency":"USD"}`))
	e.deadLetter(schemas.TopicPSPCallbacks, "cb-unknown", `unknown channel "stripe_eu"`, []byte(`{"id":"cb-unknown","channel":"stripe_eu"}`))
	// A minute of traffic for the Overview: pay requests and callbacks
	// written between samples 5 s apart (on the console's clock).
	for i := range 12 {
		if err := e.con.Sample(e.ctx); err != nil {
			t.Fatal(err)
		}
		clock.tick()
		var msgs []producers.Message
		for j := range 10 + 3*i {
			msgs = append(msgs, producers.Message{Topic: schemas.TopicPayRequests, Key: fmt.Sprint("load-", i, "-", j), ID: fmt.Sprint("m", i, j), Value: []byte(`{}`)})
		}
		for j := range 14 + 2*i + 5*(i%3) {
			msgs = append(msgs, producers.Message{Topic: schemas.TopicPSPCallbacks, Key: fmt.Sprint("load-", i, "-", j), ID: fmt.Sprint("c", i, j), Value: []byte(`{}`)})
		}
		if err := e.w.Write(e.ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.con.Sample(e.ctx); err != nil {
		t.Fatal(err)
	}

	base := e.srv.URL + "/console"
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	if shots != "" {
		do("login page", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(css(`#username`)))
		shoot("login")
	}
	// Sign in: the browser is sent to the login page, and back.
	do("sign in",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(css(`#username`)),
		chromedp.SendKeys(css(`#username`), operatorName),
		chromedp.SendKeys(css(`#password`), operatorPassword),
		chromedp.Submit(css(`#password`)),
		chromedp.WaitVisible(css(`#chart-throughput canvas`)),
	)
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || loc != base+"/" {
		t.Fatalf("after signing in the browser is at %s (%v)", loc, err)
	}
	// The page's script fetched /api/overview and drew it with the
	// vendored uPlot.
	do("overview", chromedp.WaitVisible(css(`body[data-overview-at]`)), chromedp.WaitVisible(css(`#chart-success canvas`)))
	if rate, err := strconv.ParseFloat(text(`#pay-rate`), 64); err != nil || rate <= 0 {
		t.Errorf("overview shows %q pay requests per second, want the sampled rate", text(`#pay-rate`))
	}
	shoot("overview")

	// Find an order by its PSP reference; read its history.
	do("search",
		chromedp.Click(css(`nav a[href$="/orders"]`)),
		chromedp.WaitVisible(css(`#q`)),
		chromedp.SendKeys(css(`#q`), "pay_7Hq2mZ"),
		chromedp.Submit(css(`#q`)),
		chromedp.WaitVisible(css(`#hits`)),
	)
	if hits := text(`#hits`); !strings.Contains(hits, "A1001") || !strings.Contains(hits, "PSP reference") {
		t.Fatalf("search results: %q", hits)
	}
	shoot("orders")
	do("order page", chromedp.Click(css(`#hits a`)), chromedp.WaitVisible(css(`#history`)), chromedp.Click(css(`details.raw summary`)),
		chromedp.WaitVisible(css(`details.raw pre`)))
	history, raw := text(`#history`), text(`details.raw`)
	for _, want := range []string{"pay_request", "attempt", "callback", "psp_initiate", "T261125095957123ABCDEFGH"} {
		if !strings.Contains(history, want) {
			t.Errorf("history lacks %q:\n%s", want, history)
		}
	}
	if !strings.Contains(raw, "v1=012… (masked, 35 characters)") || strings.Contains(raw, "0123456789abcdef") || strings.Contains(raw, "4111111111111111") ||
		!strings.Contains(raw, `"card_number":"***"`) {
		t.Errorf("raw callback not masked as it should be:\n%s", raw)
	}
	shoot("order")

	// Replay a dead letter.
	do("dead letters", chromedp.Click(css(`nav a[href$="/dlq"]`)), chromedp.WaitVisible(css(`#records`)))
	if recs := text(`#records`); !strings.Contains(recs, "pay_request/dev-mall/X-17") || !strings.Contains(recs, "want integer") {
		t.Fatalf("dead letters page: %q", recs)
	}
	shoot("dead-letters")
	do("replay", chromedp.Click(css(`#records button[aria-label^="Replay"]`)), chromedp.WaitVisible(css(`p.flash`)))
	if flash, recs := text(`p.flash`), text(`#records`); !strings.Contains(flash, "Replayed") || !strings.Contains(recs, "by console:alice") {
		t.Errorf("after the replay: flash %q, records %q", flash, recs)
	}
	if got := strings.Join(e.auditOutcomes(), "\n"); !strings.Contains(got, "console:alice dlq.replay_one ok") {
		t.Errorf("audit log:\n%s", got)
	}

	// Approve a risk review.
	do("reviews", chromedp.Click(css(`nav a[href$="/reviews"]`)), chromedp.WaitVisible(css(`#risk`)))
	if rv := text(`#risk`); !strings.Contains(rv, "A1001") || !strings.Contains(rv, "velocity_email_1h") {
		t.Fatalf("reviews page: %q", rv)
	}
	shoot("reviews")
	do("approve", chromedp.Click(css(`#risk form[action$="/approve"] button`)), chromedp.WaitVisible(css(`p.flash`)))
	if flash := text(`p.flash`); !strings.Contains(flash, "approved") {
		t.Errorf("after approving: flash %q", flash)
	}
	q.mu.Lock()
	decided := strings.Join(q.decisions, "; ")
	q.mu.Unlock()
	if decided != "approve rv-1 by console:alice" {
		t.Errorf("the review queue was told %q", decided)
	}

	// The other pages render; a screenshot of each if asked.
	for _, p := range []struct{ name, path, sel string }{
		{"channels", "/channels", "#channels"},
		{"refunds", "/refunds", "#inflight"},
		{"reconciliation", "/recon", "#runs"},
		{"audit-log", "/audit", "#audit"},
	} {
		do(p.name, chromedp.Navigate(base+p.path), chromedp.WaitVisible(css(p.sel)))
		shoot(p.name)
	}
	if a := text(`#audit`); !strings.Contains(a, "dlq.replay_one") {
		t.Errorf("audit page: %q", a)
	}
}
