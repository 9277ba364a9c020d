package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/psp/sim"
	"github.com/paygate/paygate/internal/signature"
	"github.com/paygate/paygate/schemas"
)

// The whole-payment mode (Config.Whole): open-loop signed pay requests
// (POST /v1/payments) at a fixed rate, every send time fixed in advance
// and every latency measured from it; the pay session read from
// paygate.pay-sessions.v1 as the mall reads it (and, for a share of the
// payments, through GET /v1/payments/{id}?wait=); the buyer's click at
// the simulator's pay page, which then sends its callbacks (the webhook,
// and the sync return the buyer's browser follows); the paid event on
// paygate.payments.v1. A share of the payments have a repeat pay request
// (the buyer pressing "pay" twice: the buyer then pays on the page that
// opened last), and a share are abandoned (never clicked).

// payment is one whole payment of the load: its order, its pay requests
// and what became of them.
type payment struct {
	id      string
	amount  int64
	repeat  bool // a second pay request for the order follows the first
	abandon bool // the buyer never clicks
	viaGET  bool // the mall reads the session through GET ?wait, not the topic
	reqs    []*payReq

	mu         sync.Mutex
	sessionIDs []string // ce_ids of the sessions read, in order
	clickSent  bool
	clickReq   *payReq // the request whose session the buyer paid on
	unpayable  bool    // every session read, none to pay on
	clickDone  int64   // the simulator answered the click (unix ns)
	clickErr   string
	returnDone int64 // the gateway answered the browser's return
	returnErr  string
	paidIDs    []string // distinct ce_ids of paid events read
	paidAt     int64    // when the first was read
}

// payReq is one pay request of a payment.
type payReq struct {
	p  *payment
	n  int           // 0: the first, 1: the repeat
	at time.Duration // its slot, from the step's start

	once sync.Once
	req  request
	err  error

	// Under p.mu:
	slot     int64 // its scheduled time (unix ns)
	began    int64 // when its first try started
	accepted int64 // answered 202
	failed   string
	d        delivery
	created  int64  // its session's ce_time
	read     int64  // its session read on the topic
	getRead  int64  // its session read through GET ?wait
	getErr   string // why the GET never gave its session
	kind     string // the session's type: session, rejected, failed
	payURL   string
}

// build signs the pay request once, ahead of its slot (ahead), as the
// mall has it ready before it sends it.
func (r *payReq) build(apiURL string) (request, error) {
	r.once.Do(func() {
		p := r.p
		body, err := json.Marshal(schemas.PayRequest{OrderID: p.id, Amount: p.amount, Currency: "USD", Country: "US", Method: "card",
			Buyer:      schemas.Buyer{ID: "bench-" + p.id},
			ReturnURLs: schemas.ReturnURLs{Success: "https://shop.example/ok", Failure: "https://shop.example/fail", Pending: "https://shop.example/wait"}})
		if err != nil {
			r.err = err
			return
		}
		ts := time.Now().Unix()
		key := p.id
		if r.n > 0 {
			key += "/again" // the buyer's second press: another request
		}
		r.req = request{method: http.MethodPost, url: apiURL + "/v1/payments", body: body, header: http.Header{
			"Content-Type":        {"application/json"},
			"X-Paygate-Key-Id":    {app.DevMallKeyID},
			"X-Paygate-Timestamp": {strconv.FormatInt(ts, 10)},
			"X-Paygate-Signature": {signature.Header([]byte(app.DevMallSecret), ts, body)},
			"Idempotency-Key":     {key},
		}}
	})
	return r.req, r.err
}

// seen says whether the mall has this request's session by the way it
// reads sessions, or knows none will come. Under p.mu.
func (r *payReq) seen() bool {
	if r.failed != "" {
		return true
	}
	if r.p.viaGET && r.n == 0 {
		return r.getRead > 0 || r.getErr != ""
	}
	return r.read > 0
}

// wholeSchedule lays out a step's payments at a constant rate, with
// their repeats, drawn with a fixed seed; the requests are in slot order.
func wholeSchedule(cfg *Config, rate float64, d time.Duration, prefix string) ([]*payment, []*payReq) {
	n := int(rate * d.Seconds())
	rng := rand.New(rand.NewPCG(uint64(n), 23))
	ps := make([]*payment, n)
	var reqs []*payReq
	for i := range ps {
		at := time.Duration(float64(i) / rate * float64(time.Second))
		p := &payment{id: orderID(prefix, i), amount: orderAmount(i)}
		p.repeat = rng.Float64() < cfg.RepeatShare
		p.abandon = rng.Float64() < cfg.AbandonShare
		p.viaGET = !p.repeat && rng.Float64() < cfg.WaitShare
		p.reqs = []*payReq{{p: p, at: at}}
		if p.repeat {
			// The second press, 0.1–1 s after the first.
			again := at + 100*time.Millisecond + time.Duration(rng.Float64()*float64(900*time.Millisecond))
			p.reqs = append(p.reqs, &payReq{p: p, n: 1, at: again})
		}
		ps[i] = p
		reqs = append(reqs, p.reqs...)
	}
	slices.SortStableFunc(reqs, func(a, b *payReq) int { return int(a.at - b.at) })
	return ps, reqs
}

// pool runs requests on connections of its own, one sender per
// connection: an idle sender takes the next job, and a new one starts
// only when all are busy (max at most), as drive's senders do.
type pool struct {
	max  int
	std  bool // net/http's client instead of each sender's own wire
	jobs chan func(*wire)
	mu   sync.Mutex
	n    int
	open sync.WaitGroup // jobs submitted or due later, not finished
	wg   sync.WaitGroup // senders
}

func newPool(max int, std bool) *pool { return &pool{max: max, std: std, jobs: make(chan func(*wire))} }

// submit runs f on a sender, waiting for one if all max are busy.
func (p *pool) submit(f func(*wire)) {
	p.open.Add(1)
	p.dispatch(func(c *wire) { defer p.open.Done(); f(c) })
}

func (p *pool) dispatch(job func(*wire)) {
	select {
	case p.jobs <- job:
		return
	default:
	}
	p.mu.Lock()
	if p.n >= p.max {
		p.mu.Unlock()
		p.jobs <- job
		return
	}
	p.n++
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		var c *wire
		if !p.std {
			c = new(wire)
			defer c.close()
		}
		for j, ok := job, true; ok; j, ok = <-p.jobs {
			j(c)
		}
	}()
}

// later submits f after wait, holding no sender meanwhile; close waits
// for it.
func (p *pool) later(ctx context.Context, wait time.Duration, f func(*wire)) {
	p.open.Add(1)
	go func() {
		defer p.open.Done()
		if sleepCtx(ctx, wait) {
			p.submit(f)
		}
	}()
}

// close waits for every job, those due later included, and stops the
// senders.
func (p *pool) close() {
	p.open.Wait()
	close(p.jobs)
	p.wg.Wait()
}

// exchange sends r on c (wire) when given and r is plain http, else through
// httpClient.
func exchange(ctx context.Context, c *wire, r request) (answer, error) {
	if c != nil && strings.HasPrefix(r.url, "http://") {
		return c.do(ctx, r)
	}
	var body io.Reader
	if r.body != nil {
		body = strings.NewReader(string(r.body))
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return answer{}, err
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), location: resp.Header.Get("Location")}
	if r.keepBody {
		a.body, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	return a, err
}

// wholeRun is the whole-payment mode's state across its steps: the
// payments by order id, which the mall's session reader and the order
// center's paid reader look up.
type wholeRun struct {
	cfg *Config
	t   *target

	mu       sync.RWMutex
	payments map[string]*payment
	foreign  atomic.Int64 // paid events or sessions of orders no step of ours made

	// Per step:
	gw, psp      *pool // to the gateway (pay requests, reads, returns), to the PSP (clicks)
	ctx          context.Context
	tries        tries
	lateStarts   atomic.Int64
	clickErrors  atomic.Int64
	returnErrors atomic.Int64
	getErrors    atomic.Int64
	firstErr     atomic.Value
}

func newWholeRun(cfg *Config, t *target) *wholeRun {
	return &wholeRun{cfg: cfg, t: t, payments: map[string]*payment{}}
}

func (w *wholeRun) register(ps []*payment) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range ps {
		w.payments[p.id] = p
	}
}

func (w *wholeRun) lookup(id string) *payment {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.payments[id]
}

func (w *wholeRun) noteErr(format string, a ...any) {
	w.firstErr.CompareAndSwap(nil, fmt.Sprintf(format, a...))
}

// readTopic reads topic with its own consumer group from the start, and
// hands each record to fn with the time it was read, until stop.
func readTopic(k cluster, group, topic string, fn func(m kafka.Message, now int64)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r := k.reader(group, topic)
	go func() {
		defer close(done)
		defer r.Close()
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				return
			}
			fn(m, time.Now().UnixNano())
			_ = r.CommitMessages(ctx, m) // asynchronous (CommitInterval): cheap
		}
	}()
	return func() { cancel(); <-done }
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// onSession is the mall reading a pay session: the n-th distinct session
// of an order is its n-th pay request's (one partition per order, and a
// request is planned in the order it was sent).
func (w *wholeRun) onSession(m kafka.Message, now int64) {
	p := w.lookup(string(m.Key))
	if p == nil {
		w.foreign.Add(1)
		return
	}
	var s schemas.PaySession
	if err := json.Unmarshal(m.Value, &s); err != nil {
		w.noteErr("pay session of %s: %v", p.id, err)
		return
	}
	id := header(m, schemas.HeaderID)
	created, _ := time.Parse(time.RFC3339Nano, header(m, schemas.HeaderTime))
	p.mu.Lock()
	if slices.Contains(p.sessionIDs, id) { // published again (at least once)
		p.mu.Unlock()
		return
	}
	k := len(p.sessionIDs)
	p.sessionIDs = append(p.sessionIDs, id)
	if k < len(p.reqs) {
		r := p.reqs[k]
		r.read, r.created, r.kind = now, created.UnixNano(), s.Type
		if r.payURL == "" {
			r.payURL = s.PayURL
		}
	}
	click := w.clickDue(p)
	p.mu.Unlock()
	if click != nil {
		w.psp.submit(click)
	}
}

// onPaid is the order center reading the payments topic: an order's paid
// events are told apart by their ce_id, so that one published again is
// not a second payment.
func (w *wholeRun) onPaid(m kafka.Message, now int64) {
	if header(m, schemas.HeaderType) != schemas.TypePaymentPaid {
		return
	}
	p := w.lookup(string(m.Key))
	if p == nil {
		w.foreign.Add(1)
		return
	}
	id := header(m, schemas.HeaderID)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !slices.Contains(p.paidIDs, id) {
		p.paidIDs = append(p.paidIDs, id)
		if len(p.paidIDs) == 1 {
			p.paidAt = now
		}
	}
}

// clickDue decides, once the mall has every session of the payment, on
// which the buyer pays: the newest one that is a session (the page that
// opened last). It returns the click's job, or nil. Under p.mu.
func (w *wholeRun) clickDue(p *payment) func(*wire) {
	if p.abandon || p.clickSent || p.unpayable {
		return nil
	}
	for _, r := range p.reqs {
		if !r.seen() {
			return nil
		}
	}
	for i := len(p.reqs) - 1; i >= 0; i-- {
		if r := p.reqs[i]; r.failed == "" && r.kind == schemas.SessionCreated && r.payURL != "" {
			p.clickSent, p.clickReq = true, r
			payURL := r.payURL
			return func(c *wire) { w.click(c, p, payURL) }
		}
	}
	p.unpayable = true
	return nil
}

// click is the buyer's click at the pay page: result=success, the
// simulator's default callbacks (the webhook, and the sync return in the
// 303, which the browser then follows to the gateway).
func (w *wholeRun) click(c *wire, p *payment, payURL string) {
	a, err := exchange(w.ctx, c, request{method: http.MethodPost, url: payURL, body: []byte("result=success"),
		header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}})
	now := time.Now().UnixNano()
	if err == nil && a.status != http.StatusSeeOther {
		err = fmt.Errorf("the pay page answered %d", a.status)
	}
	p.mu.Lock()
	if err != nil {
		p.clickErr = err.Error()
	} else {
		p.clickDone = now
	}
	p.mu.Unlock()
	if err != nil {
		w.clickErrors.Add(1)
		w.noteErr("click for %s: %v", p.id, err)
		return
	}
	if a.location != "" {
		w.gw.submit(func(c *wire) { w.browserReturn(c, p, a.location) })
	}
}

// browserReturn follows the pay page's redirect back to the gateway, as
// the buyer's browser does; the gateway answers once it knows the
// outcome (or its wait ends) with a redirect to the mall's page.
func (w *wholeRun) browserReturn(c *wire, p *payment, loc string) {
	a, err := exchange(w.ctx, c, request{method: http.MethodGet, url: loc})
	now := time.Now().UnixNano()
	if err == nil && a.status/100 != 3 {
		err = fmt.Errorf("the gateway answered the return %d", a.status)
	}
	p.mu.Lock()
	if err != nil {
		p.returnErr = err.Error()
	} else {
		p.returnDone = now
	}
	p.mu.Unlock()
	if err != nil {
		w.returnErrors.Add(1)
		w.noteErr("browser return for %s: %v", p.id, err)
	}
}

// payRequest sends r (a try of it), as the mall does: a 503 or a network
// error is tried again with the same Idempotency-Key, as delivery.next
// says a PSP retries a webhook.
func (w *wholeRun) payRequest(c *wire, r *payReq) {
	p := r.p
	now := time.Now()
	p.mu.Lock()
	first := r.began == 0
	if first {
		r.began = now.UnixNano()
		if now.Sub(time.Unix(0, r.slot)) > 10*time.Millisecond {
			w.lateStarts.Add(1)
		}
	}
	p.mu.Unlock()
	req, err := r.build(w.t.apiURL)
	var a answer
	if err == nil {
		a, err = exchange(w.ctx, c, req)
		switch {
		case err != nil:
			err = retryable{error: err}
		default:
			err = a.err()
		}
	}
	p.mu.Lock()
	wait, again := r.d.next(err, &w.tries)
	if again && w.ctx.Err() == nil {
		p.mu.Unlock()
		w.gw.later(w.ctx, wait, func(c *wire) { w.payRequest(c, r) })
		return
	}
	var click func(*wire)
	if err != nil {
		r.failed = err.Error()
		click = w.clickDue(p) // the repeat may be payable without it
	} else {
		r.accepted = time.Now().UnixNano()
	}
	p.mu.Unlock()
	if err != nil {
		w.noteErr("pay request for %s: %v", p.id, err)
	}
	if click != nil {
		w.psp.submit(click)
	}
	if err == nil && p.viaGET && r.n == 0 {
		w.gw.submit(func(c *wire) { w.readViaGET(c, r) })
	}
}

// readViaGET is the mall waiting for the session through GET
// /v1/payments/{id}?wait=: the gateway answers once the order's newest
// attempt has its pay_url.
func (w *wholeRun) readViaGET(c *wire, r *payReq) {
	p := r.p
	target := w.t.apiURL + "/v1/payments/" + url.PathEscape(p.id) + "?wait=10s"
	var why string
	for deadline := time.Now().Add(60 * time.Second); w.ctx.Err() == nil; {
		if time.Now().After(deadline) {
			why = "no pay_url in 60 s"
			break
		}
		a, err := exchange(w.ctx, c, signRead(request{method: http.MethodGet, url: target, keepBody: true}))
		if err != nil {
			why = err.Error()
			break
		}
		switch a.status {
		case http.StatusNotFound: // not planned yet, and the wait ended
			continue
		case http.StatusConflict: // refused: its session says why
			p.mu.Lock()
			r.getRead, r.kind = time.Now().UnixNano(), schemas.SessionRejected
			p.mu.Unlock()
			return
		case http.StatusOK:
		default:
			why = fmt.Sprintf("GET %s answered %d", target, a.status)
		}
		if why != "" {
			break
		}
		var pay schemas.Payment
		if err := json.Unmarshal(a.body, &pay); err != nil {
			why = err.Error()
			break
		}
		n := len(pay.Attempts)
		if n == 0 || pay.Attempts[n-1].PayURL == "" {
			if n > 0 && pay.Attempts[n-1].Status == "failed" {
				p.mu.Lock()
				r.getRead, r.kind = time.Now().UnixNano(), schemas.SessionFailed
				click := w.clickDue(p)
				p.mu.Unlock()
				if click != nil {
					w.psp.submit(click)
				}
				return
			}
			continue
		}
		now := time.Now().UnixNano()
		p.mu.Lock()
		r.getRead, r.kind, r.payURL = now, schemas.SessionCreated, pay.Attempts[n-1].PayURL
		click := w.clickDue(p)
		p.mu.Unlock()
		if click != nil {
			w.psp.submit(click)
		}
		return
	}
	if why == "" {
		why = "ended"
	}
	w.getErrors.Add(1)
	w.noteErr("session of %s through GET: %s", p.id, why)
	p.mu.Lock()
	r.getErr = why
	click := w.clickDue(p)
	p.mu.Unlock()
	if click != nil {
		w.psp.submit(click)
	}
}

// signRead signs a read of the API as the mall signs it, now: v2, over
// the method and the request-target (docs/api.md, request signing).
func signRead(r request) request {
	u, err := url.Parse(r.url)
	if err != nil {
		return r // refused as unsigned: the error is the caller's to see
	}
	ts := time.Now().Unix()
	r.header = http.Header{
		"X-Paygate-Key-Id":    {app.DevMallKeyID},
		"X-Paygate-Timestamp": {strconv.FormatInt(ts, 10)},
		"X-Paygate-Signature": {signature.RequestHeader([]byte(app.DevMallSecret), ts,
			signature.Request{Method: r.method, Target: u.RequestURI(), Body: r.body})},
	}
	return r
}

// outstanding counts what the step still waits for: sessions of
// requests sent, clicks unanswered, paid events of payments clicked.
func outstanding(ps []*payment) int {
	n := 0
	for _, p := range ps {
		p.mu.Lock()
		for _, r := range p.reqs {
			if r.failed == "" && (r.read == 0 || !r.seen()) {
				n++
			}
		}
		switch {
		case p.clickSent && p.clickDone == 0 && p.clickErr == "":
			n++
		case p.clickDone > 0 && p.paidAt == 0:
			n++
		}
		p.mu.Unlock()
	}
	return n
}

// drainWhole waits until nothing is outstanding, or nothing more came for
// idle (as drain does for the webhook mode).
func drainWhole(ctx context.Context, ps []*payment, idle time.Duration, logf func(string, ...any)) {
	drainUntil(ctx, func() int { return outstanding(ps) }, idle, 50*time.Millisecond,
		func(n int) { logf("draining: %d sessions, clicks and paid events still to come", n) })
}

// WholeStep is one step of the whole-payment mode at one rate.
type WholeStep struct {
	Rate        float64 `json:"offered_payments_per_s"`
	DurationSec float64 `json:"duration_s"`
	Payments    int     `json:"payments"`
	PayRequests int     `json:"pay_requests"`
	Repeats     int     `json:"repeats"`
	Abandoned   int     `json:"abandoned"`
	ViaGET      int     `json:"read_via_get"`
	// SendErrors are pay requests not accepted after their retries;
	// SendRetries the tries after a first that failed, SendShed those
	// after a 503 with Retry-After.
	SendErrors  int64  `json:"send_errors"`
	SendRetries int64  `json:"send_retries"`
	SendShed    int64  `json:"send_shed"`
	LateStarts  int64  `json:"late_starts"`
	FirstError  string `json:"first_error,omitempty"`
	// AchievedSend is pay requests sent per second over the sends.
	AchievedSend float64 `json:"achieved_send_rate"`
	// Sustained is payments per second carried: the step's payments over
	// the time from the first slot to the last session or paid event read
	// (each payment's moved back by the buyer's delay between its two pay
	// requests, if it has two).
	Sustained  float64 `json:"sustained_payments_per_s"`
	PaidPerSec float64 `json:"paid_per_s"`
	// Stages, each from the slot of the request it is about (the click
	// and the paid event: the request whose session was paid on).
	Accepted       *Latency `json:"accepted_ms"`
	SessionCreated *Latency `json:"session_created_ms"` // its ce_time
	SessionRead    *Latency `json:"session_read_ms"`    // on the topic
	SessionGET     *Latency `json:"session_get_ms"`     // through GET ?wait
	ClickDone      *Latency `json:"click_done_ms"`
	Paid           *Latency `json:"paid_ms"`
	ClickToPaid    *Latency `json:"click_to_paid_ms"`
	ClickToReturn  *Latency `json:"click_to_return_ms"`
	// Sessions read, by type, and those missing (a request accepted, no
	// session read).
	Sessions        map[string]int `json:"sessions"`
	SessionsMissing int            `json:"sessions_missing"`
	Clicked         int            `json:"clicked"`
	Unpayable       int            `json:"unpayable"`
	ClickErrors     int64          `json:"click_errors"`
	ReturnErrors    int64          `json:"return_errors"`
	GETErrors       int64          `json:"get_errors"`
	// Lost: clicked, never paid. Duplicated: paid events with another id
	// for an order already paid. AbandonedPaid: paid, never clicked.
	Lost          int `json:"lost"`
	Duplicated    int `json:"duplicated"`
	AbandonedPaid int `json:"abandoned_paid"`
	// Per payment (every payment of the step, abandoned ones included).
	StatementsPerPayment float64 `json:"statements_per_payment"`
	RoundTripsPerPayment float64 `json:"round_trips_per_payment"`
	// RoundTripsByCaller splits RoundTripsPerPayment by the component
	// that made them (payinit, callbacks, relay, ingress, …).
	RoundTripsByCaller     map[string]float64 `json:"round_trips_per_payment_by_caller,omitempty"`
	TransactionsPerPayment float64            `json:"transactions_per_payment"`
	PSP                    *PSPCalls          `json:"psp_calls,omitempty"`
	PGCeilingRatio         float64            `json:"pg_ceiling_ratio,omitempty"`
	MaxPayinitLag          int64              `json:"max_payinit_lag"`
	MaxCallbacksLag        int64              `json:"max_callbacks_lag"`
	Vacuums                int                `json:"tables_vacuumed_during"`
	CPU                    *CPU               `json:"cpu,omitempty"`
}

// PSPCalls are the PSP's API calls of a step, counted at the simulator.
type PSPCalls struct {
	Initiates int64 `json:"initiates"`
	// EarlyQueries are status queries made before the buyer paid:
	// payinit's earlier-attempt check.
	EarlyQueries int64 `json:"early_queries"`
	// ConfirmQueries are the callbacks group's, after a callback.
	ConfirmQueries int64 `json:"confirm_queries"`
	// PerPayRequest is what the pay-request half costs: initiates and
	// early queries per pay request sent.
	PerPayRequest float64 `json:"per_pay_request"`
	// ConfirmPerPaid is confirm queries per payment paid.
	ConfirmPerPaid float64 `json:"confirm_per_paid"`
}

// WholeWarmup is what the warm-up before the measured steps did.
type WholeWarmup struct {
	Payments   int `json:"payments"`
	Lost       int `json:"lost"`
	Duplicated int `json:"duplicated"`
}

// WholeLone is the lone whole payments, one at a time.
type WholeLone struct {
	// Session is pay request sent → session read on the topic;
	// Created → its ce_time; ClickToPaid the click's answer → paid event.
	Session     *Latency `json:"session_read_ms"`
	Created     *Latency `json:"session_created_ms"`
	ClickToPaid *Latency `json:"click_to_paid_ms"`
}

// runWhole runs the whole-payment mode and fills rep: the mall's and the
// order center's readers started, the warm-up, the lone payments, one
// step per rate until the rates or ctx end, then the verdict.
func runWhole(ctx context.Context, cfg *Config, t *target, rep *Report, db *sql.DB) error {
	runID := strconv.FormatInt(time.Now().Unix()%1_000_000, 36)
	w := newWholeRun(cfg, t)
	stopSessions := readTopic(t.kafka, "bench-mall-"+runID, schemas.TopicPaySessions, w.onSession)
	defer stopSessions()
	stopPaid := readTopic(t.kafka, "bench-order-center-"+runID, schemas.TopicPayments, w.onPaid)
	defer stopPaid()
	rates := cfg.rates()
	ls := newLoadSteps(cfg, t, rep, db, len(rates))
	if cfg.Warmup > 0 {
		if err := w.warmup(ctx, ls, "U"+runID); err != nil {
			return err
		}
	}
	if cfg.Lone > 0 {
		cfg.logf("lone whole payments: %d, one at a time", cfg.Lone)
		l, err := w.lone(ctx, "L"+runID, cfg.Lone)
		if err != nil {
			return err
		}
		rep.WholeLone = l
	}
	ls.begin(ctx)
	for i, rate := range rates {
		st, err := w.loadStep(ctx, ls, i, rate, fmt.Sprintf("W%s-%d", runID, i))
		if err != nil {
			return err
		}
		rep.Whole = append(rep.Whole, *st)
		if ctx.Err() != nil {
			break
		}
	}
	w.verdict(rep, rates)
	return ctx.Err()
}

// warmup runs whole payments at WarmupRate for Warmup before anything is
// measured (the report keeps only their losses and duplicates), then,
// where the harness vacuums (loadSteps), analyzes the database: the steps
// that follow find tables holding data.
func (w *wholeRun) warmup(ctx context.Context, ls *loadSteps, prefix string) error {
	cfg := w.cfg
	cfg.logf("warm-up: %.0f whole payments/s for %s, not measured", cfg.WarmupRate, cfg.Warmup)
	ps, reqs := wholeSchedule(cfg, cfg.WarmupRate, cfg.Warmup, prefix)
	w.register(ps)
	st := w.step(ctx, cfg.WarmupRate, ps, reqs)
	ls.rep.Warmup = &WholeWarmup{Payments: st.Payments, Lost: st.Lost, Duplicated: st.Duplicated}
	if ls.vacuum {
		if _, err := ls.db.ExecContext(ctx, `VACUUM (ANALYZE)`); err != nil {
			return fmt.Errorf("vacuum after the warm-up: %w", err)
		}
	}
	return nil
}

// loadStep runs step i at rate: its payments' schedule (their ids from
// prefix), the pay requests built ahead of their sends, driven and
// measured (step), with what the harness does around a step (loadSteps);
// then the transactions per payment and the PostgreSQL ceiling ratio.
func (w *wholeRun) loadStep(ctx context.Context, ls *loadSteps, i int, rate float64, prefix string) (*WholeStep, error) {
	cfg, t := w.cfg, w.t
	stopVacuum, err := ls.vacuumBefore(ctx, i)
	if err != nil {
		return nil, err
	}
	ps, reqs := wholeSchedule(cfg, rate, cfg.Duration, prefix)
	w.register(ps)
	stopSigning := ahead(ctx, len(reqs), func(k int) time.Duration { return reqs[k].at },
		func(k int) { _, _ = reqs[k].build(t.apiURL) })
	cfg.logf("step %d/%d: %.0f whole payments/s for %s (%d pay requests)", i+1, ls.n, rate, cfg.Duration, len(reqs))
	profiled := ls.loadStarts(ctx, i)
	st := w.step(ctx, rate, ps, reqs)
	if err := profiled(); err != nil {
		return nil, err
	}
	stopSigning()
	st.Vacuums = stopVacuum()
	ls.loadEnds(i)
	st.TransactionsPerPayment = ls.transactionsPer(ctx, st.Payments)
	st.PGCeilingRatio = ls.rep.pgCeilingRatio(st.Sustained)
	return st, nil
}

// verdict judges the warm-up and the steps: the report is OK unless a
// payment was lost, duplicated, paid though abandoned or missed its
// session, or (on a pipeline of the harness's own) a session or paid
// event of an order the run does not know was read; the knee is the
// lowest rate whose session read or click → paid p99 passed 100 ms.
func (w *wholeRun) verdict(rep *Report, rates []float64) {
	rep.OK = rep.Warmup == nil || rep.Warmup.Lost == 0 && rep.Warmup.Duplicated == 0
	for i, s := range rep.Whole {
		if s.Lost > 0 || s.Duplicated > 0 || s.AbandonedPaid > 0 || s.SessionsMissing > 0 {
			rep.OK = false
		}
		if (s.SessionRead.P99 > 100 || s.ClickToPaid.P99 > 100) && rep.Knee100 == 0 {
			rep.Knee100 = rates[i]
		}
	}
	if n := w.foreign.Load(); n > 0 && w.t.sim != nil {
		rep.OK = false // on a pipeline of our own every session and paid event is one of ours
		w.cfg.logf("%d sessions or paid events for orders the run does not know", n)
	}
}

// step drives one schedule of whole payments and waits for their
// outcomes.
func (w *wholeRun) step(ctx context.Context, rate float64, ps []*payment, reqs []*payReq) *WholeStep {
	cfg, t := w.cfg, w.t
	st := &WholeStep{Rate: rate, DurationSec: cfg.Duration.Seconds(), Payments: len(ps), PayRequests: len(reqs), Sessions: map[string]int{}}
	for _, p := range ps {
		switch {
		case p.repeat:
			st.Repeats++
		case p.viaGET:
			st.ViaGET++
		}
		if p.abandon {
			st.Abandoned++
		}
	}
	w.ctx = ctx
	w.gw, w.psp = newPool(cfg.MaxInFlight, cfg.StdClient), newPool(cfg.MaxInFlight, cfg.StdClient)
	w.tries = tries{}
	w.lateStarts.Store(0)
	w.clickErrors.Store(0)
	w.returnErrors.Store(0)
	w.getErrors.Store(0)
	w.firstErr = atomic.Value{}

	before, _ := t.counts()
	var calls0 sim.Calls
	if t.sim != nil {
		calls0 = t.sim.Calls()
	}
	lags := w.watchLags(ctx)
	cpu0 := readCPU(t.gatewayPid())

	start := time.Now().Add(200 * time.Millisecond)
	for _, r := range reqs {
		due := start.Add(r.at)
		if d := time.Until(due); d > 0 && !sleepCtx(ctx, d) {
			break
		}
		r.p.mu.Lock()
		r.slot = due.UnixNano()
		r.p.mu.Unlock()
		w.gw.submit(func(c *wire) { w.payRequest(c, r) })
	}
	ended := time.Now()
	drainWhole(ctx, ps, cfg.DrainTimeout, cfg.logf)
	st.CPU = cpuBetween(cpu0, readCPU(t.gatewayPid()), runtime.NumCPU(), len(ps))
	time.Sleep(time.Second) // late duplicates would show now
	w.psp.close()
	w.gw.close()
	st.MaxPayinitLag, st.MaxCallbacksLag = lags()

	if c, ok := t.counts(); ok && len(ps) > 0 && c.RoundTrips() > 0 {
		st.StatementsPerPayment = float64(c.Statements-before.Statements) / float64(len(ps))
		st.RoundTripsPerPayment = float64(c.RoundTrips()-before.RoundTrips()) / float64(len(ps))
		st.RoundTripsByCaller = map[string]float64{}
		for k, v := range c.ByCaller {
			if d := v - before.ByCaller[k]; d > 0 {
				st.RoundTripsByCaller[k] = float64(d) / float64(len(ps))
			}
		}
	}
	st.SendRetries, st.SendShed, st.LateStarts = w.tries.retries.Load(), w.tries.shed.Load(), w.lateStarts.Load()
	st.ClickErrors, st.ReturnErrors, st.GETErrors = w.clickErrors.Load(), w.returnErrors.Load(), w.getErrors.Load()
	if e, ok := w.firstErr.Load().(string); ok {
		st.FirstError = e
	}
	st.AchievedSend = float64(len(reqs)) / ended.Sub(start).Seconds()
	w.tally(st, ps, start)
	if t.sim != nil {
		c := t.sim.Calls()
		pc := &PSPCalls{Initiates: c.Creates - calls0.Creates, EarlyQueries: c.QueriesUnpaid - calls0.QueriesUnpaid}
		pc.ConfirmQueries = c.Queries - calls0.Queries - pc.EarlyQueries
		if st.PayRequests > 0 {
			pc.PerPayRequest = float64(pc.Initiates+pc.EarlyQueries) / float64(st.PayRequests)
		}
		if n := st.Paid.N; n > 0 {
			pc.ConfirmPerPaid = float64(pc.ConfirmQueries) / float64(n)
		}
		st.PSP = pc
	}
	return st
}

// tally fills the step's stages and counts from its payments.
func (w *wholeRun) tally(st *WholeStep, ps []*payment, start time.Time) {
	var accepted, created, read, viaGET, clicked, paid, clickPaid, clickReturn []time.Duration
	// last is when the step's last outcome was read, each payment's
	// moved back by the buyer's own delay between its pay requests (a
	// repeat's 0.1–1 s), which is the buyer's time, not the pipeline's.
	var last int64
	since := func(at, from int64) time.Duration { return time.Duration(at - from) }
	for _, p := range ps {
		p.mu.Lock()
		var outcome int64
		for _, r := range p.reqs {
			if r.failed != "" {
				st.SendErrors++
				continue
			}
			if r.accepted > 0 {
				accepted = append(accepted, since(r.accepted, r.slot))
			}
			if r.read == 0 {
				st.SessionsMissing++
				continue
			}
			st.Sessions[r.kind]++
			read = append(read, since(r.read, r.slot))
			if r.created > 0 {
				created = append(created, since(r.created, r.slot))
			}
			if r.getRead > 0 {
				viaGET = append(viaGET, since(r.getRead, r.slot))
			}
			outcome = max(outcome, r.read, r.getRead)
		}
		if p.unpayable {
			st.Unpayable++
		}
		if p.clickDone > 0 {
			st.Clicked++
			slot := p.clickReq.slot
			clicked = append(clicked, since(p.clickDone, slot))
			if p.returnDone > 0 {
				clickReturn = append(clickReturn, since(p.returnDone, p.clickDone))
			}
			if p.paidAt == 0 {
				st.Lost++
			} else {
				paid = append(paid, since(p.paidAt, slot))
				clickPaid = append(clickPaid, since(p.paidAt, p.clickDone))
			}
		}
		if len(p.paidIDs) > 1 {
			st.Duplicated += len(p.paidIDs) - 1
		}
		if len(p.paidIDs) > 0 {
			outcome = max(outcome, p.paidAt)
			if !p.clickSent {
				st.AbandonedPaid++
			}
		}
		if outcome > 0 {
			last = max(last, outcome-(p.reqs[len(p.reqs)-1].slot-p.reqs[0].slot))
		}
		p.mu.Unlock()
	}
	st.Accepted, st.SessionCreated, st.SessionRead, st.SessionGET = latency(accepted), latency(created), latency(read), latency(viaGET)
	st.ClickDone, st.Paid, st.ClickToPaid, st.ClickToReturn = latency(clicked), latency(paid), latency(clickPaid), latency(clickReturn)
	st.Paid.Missed = st.Lost
	if last > 0 {
		window := time.Unix(0, last).Sub(start).Seconds()
		st.Sustained = float64(len(ps)) / window
		st.PaidPerSec = float64(len(paid)) / window
	}
}

// watchLags samples the payinit and callbacks groups' lag every 0.5 s
// until the returned function is called, which gives the largest of
// each.
func (w *wholeRun) watchLags(ctx context.Context) func() (payinit, callbacks int64) {
	ctx, cancel := context.WithCancel(ctx)
	kc := w.t.kafka.client(5 * time.Second)
	var pl, cl int64
	done := make(chan struct{})
	parts := w.cfg.Partitions
	if n, err := topicPartitions(ctx, w.t.kafka, schemas.TopicPayRequests); err == nil {
		parts = n
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			if l, err := groupLag(ctx, kc, "payinit", schemas.TopicPayRequests, parts); err == nil {
				pl = max(pl, l)
			}
			if l, err := groupLag(ctx, kc, "callbacks", schemas.TopicPSPCallbacks, parts); err == nil {
				cl = max(cl, l)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() (int64, int64) { cancel(); <-done; return pl, cl }
}

// lone makes n whole payments one at a time: the pay request, its
// session on the topic, the click, the paid event.
func (w *wholeRun) lone(ctx context.Context, prefix string, n int) (*WholeLone, error) {
	w.ctx = ctx
	w.gw, w.psp = newPool(1, w.cfg.StdClient), newPool(1, w.cfg.StdClient)
	defer func() { w.gw.close(); w.psp.close() }()
	var gw, psp wire // to the gateway, to the PSP's pay page
	defer gw.close()
	defer psp.close()
	var session, created, clickPaid []time.Duration
	for i := range n {
		p := &payment{id: orderID(prefix, i), amount: orderAmount(i)}
		r := &payReq{p: p}
		p.reqs = []*payReq{r}
		p.abandon = true // the harness clicks itself, below
		w.register([]*payment{p})
		req, err := r.build(w.t.apiURL)
		if err != nil {
			return nil, err
		}
		sent := time.Now()
		p.mu.Lock()
		r.slot = sent.UnixNano()
		p.mu.Unlock()
		a, err := exchange(ctx, &gw, req)
		if err == nil {
			err = a.err()
		}
		if err != nil {
			return nil, fmt.Errorf("lone pay request %s: %w", p.id, err)
		}
		wait := func(what string, done func() bool) error {
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Microsecond) {
				p.mu.Lock()
				ok := done()
				p.mu.Unlock()
				switch {
				case ok:
					return nil
				case ctx.Err() != nil:
					return ctx.Err()
				case time.Now().After(deadline):
					return fmt.Errorf("lone payment %s: no %s in 30s", p.id, what)
				}
			}
		}
		if err := wait("pay session", func() bool { return r.read > 0 }); err != nil {
			return nil, err
		}
		if r.kind != schemas.SessionCreated {
			return nil, fmt.Errorf("lone payment %s: a %s session", p.id, r.kind)
		}
		session, created = append(session, time.Duration(r.read-r.slot)), append(created, time.Duration(r.created-r.slot))
		p.mu.Lock()
		p.clickSent, p.clickReq = true, r
		p.mu.Unlock()
		w.click(&psp, p, r.payURL)
		p.mu.Lock()
		clickErr := p.clickErr
		p.mu.Unlock()
		if clickErr != "" {
			return nil, fmt.Errorf("lone payment %s: %s", p.id, clickErr)
		}
		if err := wait("paid event", func() bool { return p.paidAt > 0 }); err != nil {
			return nil, err
		}
		clickPaid = append(clickPaid, time.Duration(p.paidAt-p.clickDone))
		time.Sleep(20 * time.Millisecond)
	}
	return &WholeLone{Session: latency(session), Created: latency(created), ClickToPaid: latency(clickPaid)}, nil
}

// errNoWhole is returned for options the whole-payment mode does not take.
var errNoWhole = errors.New("bench: -whole measures whole payments from their pay requests: not with -ingress-only, -stall or -preload")
