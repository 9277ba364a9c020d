package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/signature"
)

// ServerConfig configures the simulator. Every field's zero value means
// its documented default, so ServerConfig{Merchants: ...} is a quiet,
// well-behaved PSP; the rates turn on misbehaviour. PublicURL and Latency
// are settings too: their variables and help are their tags
// (internal/settings).
type ServerConfig struct {
	// Merchants maps a merchant id to its shared secret, which signs the
	// merchant's API requests and the simulator's callbacks to it. No
	// default: without merchants every API request is refused (401).
	Merchants map[string]string
	// PublicURL is the base of the pay_url the simulator hands out, such
	// as "http://127.0.0.1:8090". Default: "http://" plus the Host of the
	// request that created the payment; internal/app gives it
	// "http://" plus the simulator's listen address.
	PublicURL string `env:"PAYGATE_SIM_PUBLIC_URL" derived:"http://$PAYGATE_SIM_ADDR" help:"the simulator's pay_url base, as browsers reach it"`
	// CallbackClient sends webhooks (and the second sync return of
	// callbacks=twice). Default: a client with a 5 s timeout that does
	// not follow redirects and keeps up to 64 idle connections per host.
	CallbackClient *http.Client
	// WebhookRetry are the waits between webhook deliveries after a
	// network error or a non-2xx answer; its length is the number of
	// retries. Default (nil): 1s, 2s, 5s, 15s, 30s, 1m. A non-nil empty
	// slice means no retry.
	WebhookRetry []time.Duration
	// CallbackDelay is the wait between the buyer's click and the first
	// webhook delivery. Default (zero) 20 ms; negative means none.
	CallbackDelay time.Duration
	// Tolerance is how far an API request's signed timestamp may be from
	// now, either way. Default 300 s.
	Tolerance time.Duration
	// Latency is added to every API answer, as a PSP across the internet
	// takes: the network round trip and its own processing (tens to
	// hundreds of milliseconds). Default 0: a local simulator answers at
	// once, which hides how many calls a gateway keeps in flight.
	Latency time.Duration `env:"PAYGATE_SIM_LATENCY" default:"0s" min:"0s" help:"added to every answer of the simulator's API, to stand for a PSP far away"`

	// Seed seeds the math/rand source behind the rates, so that a run is
	// reproducible: with the same seed and the same sequence of calls the
	// same payments misbehave. Default 0 (a fixed seed, not a random one).
	Seed int64
	// DeclineRate is the share of payments the bank declines whatever the
	// buyer chose. Default 0, like every rate; rates are in [0, 1] and are
	// drawn once per payment when it is created (APITimeoutRate once per
	// API call, the refund rates once per refund).
	DeclineRate float64
	// DropCallbackRate is the share of payments whose callbacks, both
	// kinds, are lost: the payment completes but nobody is told.
	DropCallbackRate float64
	// DuplicateRate is the share of payments whose callbacks are sent
	// twice (the webhook twice with one event id).
	DuplicateRate float64
	// ReorderRate is the share of payments whose webhook is delivered and
	// acknowledged before the buyer's browser gets the sync return.
	ReorderRate float64
	// BadSignatureRate is the share of payments whose callbacks are signed
	// with a wrong secret (a forgery as the gateway sees it).
	BadSignatureRate float64
	// TamperRate is the share of payments that collect and report,
	// correctly signed, one minor unit more than was asked (tampering or a
	// PSP bug).
	TamperRate float64
	// APITimeoutRate is the share of API calls that take effect but then
	// stall for APITimeout (or until the caller gives up) and answer 504.
	APITimeoutRate float64
	// APITimeout is how long a stalled API call stalls. Default 30 s.
	APITimeout time.Duration
	// RefundPendingRate is the share of refunds that stay pending for
	// RefundPendingFor before they finish; other refunds succeed at once.
	RefundPendingRate float64
	// RefundFailRate is the share of pending refunds that fail when they
	// finish; a failed refund's amount is refundable again.
	RefundFailRate float64
	// RefundPendingFor is how long a pending refund stays pending.
	// Default 2 s.
	RefundPendingFor time.Duration
	// Location is the time zone of the simulator's business days (the
	// settlement list's date). Default UTC.
	Location *time.Location
	// Now is the simulator's clock. Default time.Now. Tests set it to
	// move payments across days and refunds past their pending time.
	Now func() time.Time
}

// Defaults of ServerConfig.
const (
	DefaultCallbackDelay    = 20 * time.Millisecond
	DefaultAPITimeout       = 30 * time.Second
	DefaultRefundPendingFor = 2 * time.Second
	defaultExpiresIn        = 1800 * time.Second
	maxExpiresIn            = 7 * 24 * time.Hour
)

// DefaultWebhookRetry is the default ServerConfig.WebhookRetry.
var DefaultWebhookRetry = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute}

// Validate reports the first invalid field.
func (c ServerConfig) Validate() error {
	for id, secret := range c.Merchants {
		if id == "" || secret == "" {
			return fmt.Errorf("sim server: merchant %q: empty id or secret", id)
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("sim server: PublicURL %q is not an absolute http(s) URL", c.PublicURL)
		}
	}
	rates := []struct {
		name string
		v    float64
	}{
		{"DeclineRate", c.DeclineRate}, {"DropCallbackRate", c.DropCallbackRate},
		{"DuplicateRate", c.DuplicateRate}, {"ReorderRate", c.ReorderRate},
		{"BadSignatureRate", c.BadSignatureRate}, {"TamperRate", c.TamperRate},
		{"APITimeoutRate", c.APITimeoutRate}, {"RefundPendingRate", c.RefundPendingRate},
		{"RefundFailRate", c.RefundFailRate},
	}
	for _, r := range rates {
		if !(r.v >= 0 && r.v <= 1) { // also refuses NaN
			return fmt.Errorf("sim server: %s %v is not in [0, 1]", r.name, r.v)
		}
	}
	for _, d := range c.WebhookRetry {
		if d < 0 {
			return fmt.Errorf("sim server: negative WebhookRetry %s", d)
		}
	}
	if c.Tolerance < 0 || c.Latency < 0 || c.APITimeout < 0 || c.RefundPendingFor < 0 {
		return errors.New("sim server: negative Tolerance, Latency, APITimeout or RefundPendingFor")
	}
	return nil
}

func (c ServerConfig) withDefaults() ServerConfig {
	m := make(map[string]string, len(c.Merchants))
	for k, v := range c.Merchants {
		m[k] = v
	}
	c.Merchants = m
	if c.CallbackClient == nil {
		// Connections to the gateway are kept, as a PSP's webhook sender
		// keeps them: net/http's default keeps 2 idle per host, and at
		// thousands of payments a second most webhooks then dialled anew.
		// Idle ones go before a gateway's 30 s idle limit closes them.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost, tr.IdleConnTimeout = 64, 20*time.Second
		c.CallbackClient = &http.Client{
			Timeout:       5 * time.Second,
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.WebhookRetry == nil {
		c.WebhookRetry = DefaultWebhookRetry
	}
	c.WebhookRetry = slices.Clone(c.WebhookRetry)
	switch {
	case c.CallbackDelay == 0:
		c.CallbackDelay = DefaultCallbackDelay
	case c.CallbackDelay < 0:
		c.CallbackDelay = 0
	}
	if c.Tolerance == 0 {
		c.Tolerance = signature.DefaultTolerance
	}
	if c.APITimeout == 0 {
		c.APITimeout = DefaultAPITimeout
	}
	if c.RefundPendingFor == 0 {
		c.RefundPendingFor = DefaultRefundPendingFor
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Script presets what the simulator does with one payment, in place of
// the random rates (which are then not consulted for it). Faults add to
// what the buyer's pay form asks for: a scripted decline declines a
// "success" click, DropCallbacks silences callbacks=both.
type Script struct {
	// Decline: the bank declines whatever the buyer chose.
	Decline bool
	// DropCallbacks: neither callback is sent.
	DropCallbacks bool
	// Duplicate: every callback that is sent is sent twice.
	Duplicate bool
	// Reorder: the webhook is acknowledged before the sync return.
	Reorder bool
	// BadSignature: callbacks are signed with a wrong secret.
	BadSignature bool
	// Amount, if positive, is collected and reported instead of the
	// payment's amount (unless the pay form names an amount itself).
	Amount int64
	// CallbackDelay, if positive, replaces ServerConfig.CallbackDelay.
	CallbackDelay time.Duration
	// APITimeouts is how many of the next API calls about the payment
	// (creating or querying it, creating or querying one of its refunds)
	// take effect and then stall and answer 504, as with APITimeoutRate.
	APITimeouts int
	// RefundPending keeps the payment's refunds pending for
	// RefundPendingFor; with RefundFail they then fail.
	RefundPending bool
	RefundFail    bool
	// Unsettled leaves the payment out of the settlement list (the PSP's
	// data is incomplete).
	Unsettled bool
}

// Ledger is a copy of the simulator's books, for tests to compare with
// the gateway's view.
type Ledger struct {
	// Payments in creation order.
	Payments []LedgerPayment
	// Refunds in creation order.
	Refunds []LedgerRefund
}

// LedgerPayment is one payment in the Ledger.
type LedgerPayment struct {
	ID          string
	MerchantID  string
	MerchantRef string
	// Status is created, succeeded, failed or expired.
	Status string
	Amount domain.Money
	// PaidAmount is what was collected: the zero Money unless Status is
	// succeeded; it differs from Amount when the amount was changed.
	PaidAmount domain.Money
	CreatedAt  time.Time
	ExpiresAt  time.Time
	// PaidAt is when the payment succeeded or failed (zero while created
	// or expired).
	PaidAt time.Time
	// Unsettled is true when the payment is left out of settlement lists.
	Unsettled bool
}

// LedgerRefund is one refund in the Ledger.
type LedgerRefund struct {
	ID          string
	MerchantID  string
	RefundRef   string
	MerchantRef string
	PaymentID   string
	// Status is pending, succeeded or failed.
	Status     string
	Amount     domain.Money
	Reason     string
	CreatedAt  time.Time
	FinishedAt time.Time
}

// fate is what a payment will do besides what the buyer asks for.
type fate struct {
	decline, drop, duplicate, reorder, badSignature bool
	amount                                          int64 // >0: collect this instead
	delay                                           time.Duration
	unsettled                                       bool
	refundPending, refundFail                       bool
	scripted                                        bool
}

type merchantKey struct{ merchant, ref string }

type payment struct {
	id       string
	merchant string
	req      paymentRequest
	amount   domain.Money
	status   string
	paid     domain.Money
	payURL   string
	token    string
	created  time.Time
	expires  time.Time
	done     time.Time // paid or failed
	fate     fate
	refunds  []*refund
}

type refund struct {
	id       string
	merchant string
	req      refundRequest
	payment  *payment
	amount   domain.Money
	status   string
	fail     bool // a pending refund that will fail
	created  time.Time
	finished time.Time
}

// Server is the simulator PSP: an http.Handler with an in-memory ledger.
// It is safe for concurrent use.
type Server struct {
	cfg    ServerConfig
	mux    *http.ServeMux
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu           sync.Mutex
	closed       bool
	rng          *mrand.Rand
	payments     map[string]*payment
	paymentByRef map[merchantKey]*payment
	order        []*payment
	refunds      []*refund
	refundByRef  map[merchantKey]*refund
	scripts      map[string]*Script
	behaviours   map[string]Behaviour           // by merchant (control.go)
	defects      map[string]SettlementDefect    // by merchant_ref (settlement.go)
	extraRows    map[string][]settlementRowJSON // by merchant (settlement.go)
	calls        Calls                          // under mu
}

// Calls counts the payment calls the simulator's API answered since it
// started, for a load harness to price a payment in PSP calls.
type Calls struct {
	// Creates are payments created (Initiate); a repeated create of the
	// same merchant_ref is not counted.
	Creates int64
	// Queries are status queries answered (Query) about a payment that
	// exists.
	Queries int64
	// QueriesUnpaid are those of Queries about a payment the buyer had
	// not paid or declined yet: no callback had been sent, so a gateway
	// asked of its own accord (payinit's earlier-attempt check, the
	// sweeper's probes), not to confirm a callback.
	QueriesUnpaid int64
}

// Calls returns the API calls counted so far.
func (s *Server) Calls() Calls {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// NewServer returns a simulator configured by cfg. It panics if
// cfg.Validate fails: the config is the caller's constant, and a caller
// that reads it from outside calls Validate first.
func NewServer(cfg ServerConfig) *Server {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:          cfg.withDefaults(),
		ctx:          ctx,
		cancel:       cancel,
		rng:          mrand.New(mrand.NewPCG(uint64(cfg.Seed), 0x5157)),
		payments:     make(map[string]*payment),
		paymentByRef: make(map[merchantKey]*payment),
		refundByRef:  make(map[merchantKey]*refund),
		scripts:      make(map[string]*Script),
		behaviours:   make(map[string]Behaviour),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathControl+"{merchant}", s.getBehaviour)
	mux.HandleFunc("POST "+pathControl+"{merchant}", s.setBehaviour)
	mux.HandleFunc("GET /control/ledger", s.getLedger)
	mux.HandleFunc("POST "+pathPayments, s.api(s.createPayment))
	mux.HandleFunc("GET "+pathPayments, s.api(s.getPayment))
	mux.HandleFunc("POST "+pathRefunds, s.api(s.createRefund))
	mux.HandleFunc("GET "+pathRefunds, s.api(s.getRefund))
	mux.HandleFunc("GET "+pathSettlements, s.api(s.settlements))
	mux.HandleFunc("/api/", s.api(func(w http.ResponseWriter, _ *http.Request, _ string, _ []byte) {
		writeJSON(w, http.StatusNotFound, errorJSON{Error: "no_route", Message: "no such API route"})
	}))
	mux.HandleFunc("GET "+pathPay+"{id}", s.payPage)
	mux.HandleFunc("POST "+pathPay+"{id}", s.pay)
	s.mux = mux
	return s
}

// Handler is the simulator's HTTP handler: the API under /api/v1/ and
// the buyer's pay pages under /pay/.
func (s *Server) Handler() http.Handler { return s.mux }

// Close stops webhook deliveries and retries still pending, ends stalled
// API calls, and waits for the goroutines to return. Payments made after
// Close send no callbacks.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Script presets the behaviour of the payment(s) with merchant_ref
// merchantRef, before or after they are created; it replaces an earlier
// script for that reference.
func (s *Server) Script(merchantRef string, sc Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[merchantRef] = &sc
}

// Ledger returns a copy of the books as of now.
func (s *Server) Ledger() Ledger {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var l Ledger
	for _, p := range s.order {
		s.refresh(p, now)
		lp := LedgerPayment{
			ID: p.id, MerchantID: p.merchant, MerchantRef: p.req.MerchantRef, Status: p.status,
			Amount: p.amount, PaidAmount: p.paid, CreatedAt: p.created, ExpiresAt: p.expires,
			Unsettled: s.fateOf(p).unsettled,
		}
		if p.status == statusSucceeded || p.status == statusFailed {
			lp.PaidAt = p.done
		}
		l.Payments = append(l.Payments, lp)
	}
	for _, rf := range s.refunds {
		l.Refunds = append(l.Refunds, LedgerRefund{
			ID: rf.id, MerchantID: rf.merchant, RefundRef: rf.req.RefundRef, MerchantRef: rf.req.MerchantRef,
			PaymentID: rf.payment.id, Status: rf.status, Amount: rf.amount, Reason: rf.req.Reason,
			CreatedAt: rf.created, FinishedAt: rf.finished,
		})
	}
	return l
}

// draw is one random draw against rate; it always consumes the source,
// so that one rate's value does not shift the draws of the others.
func (s *Server) draw(rate float64) bool { return s.rng.Float64() < rate }

// drawFate decides a payment's misbehaviour at creation; a merchant's
// runtime behaviour (control.go) sets its decline rate. Caller holds mu.
func (s *Server) drawFate(merchant string, amount int64) fate {
	decline := s.cfg.DeclineRate
	if b, ok := s.behaviours[merchant]; ok {
		decline = b.DeclineRate
	}
	f := fate{
		decline:      s.draw(decline),
		drop:         s.draw(s.cfg.DropCallbackRate),
		duplicate:    s.draw(s.cfg.DuplicateRate),
		reorder:      s.draw(s.cfg.ReorderRate),
		badSignature: s.draw(s.cfg.BadSignatureRate),
	}
	if s.draw(s.cfg.TamperRate) {
		f.amount = amount + 1
	}
	return f
}

// fateOf is the payment's effective fate: its script if there is one,
// else what was drawn. Caller holds mu.
func (s *Server) fateOf(p *payment) fate {
	sc := s.scripts[p.req.MerchantRef]
	if sc == nil {
		return p.fate
	}
	return fate{
		decline: sc.Decline, drop: sc.DropCallbacks, duplicate: sc.Duplicate, reorder: sc.Reorder,
		badSignature: sc.BadSignature, amount: sc.Amount, delay: sc.CallbackDelay,
		unsettled: sc.Unsettled, refundPending: sc.RefundPending, refundFail: sc.RefundFail,
		scripted: true,
	}
}

// refresh moves a payment and its refunds on by the clock alone: an
// unpaid payment expires, a pending refund finishes. Caller holds mu.
func (s *Server) refresh(p *payment, now time.Time) {
	if p.status == statusCreated && !now.Before(p.expires) {
		p.status = statusExpired
	}
	for _, rf := range p.refunds {
		if rf.status == statusPending && !now.Before(rf.created.Add(s.cfg.RefundPendingFor)) {
			rf.finished = rf.created.Add(s.cfg.RefundPendingFor)
			rf.status = statusSucceeded
			if rf.fail {
				rf.status = statusFailed
			}
		}
	}
}

// apiHandler handles an authenticated API call of merchant with body.
type apiHandler func(w http.ResponseWriter, r *http.Request, merchant string, body []byte)

// api reads the body (at most maxBody) and checks the request signature
// before handing over; it answers 413 and 401 itself.
func (s *Server) api(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Latency > 0 {
			t := time.NewTimer(s.cfg.Latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeJSON(w, http.StatusRequestEntityTooLarge, errorJSON{Error: "too_large", Message: fmt.Sprintf("body over %d bytes", maxBody)})
				return
			}
			writeJSON(w, http.StatusBadRequest, errorJSON{Error: "bad_request", Message: "cannot read body"})
			return
		}
		merchant := r.Header.Get(headerMerchant)
		secret, ok := s.cfg.Merchants[merchant]
		if !ok {
			writeJSON(w, http.StatusUnauthorized, errorJSON{Error: "unauthorized", Message: "unknown or missing " + headerMerchant})
			return
		}
		err = signature.Verify(r.Header.Get(headerSignature), r.Header.Get(headerTimestamp),
			apiMessage(r.Method, r.RequestURI, body), [][]byte{[]byte(secret)}, s.cfg.Now(), s.cfg.Tolerance)
		if err != nil {
			writeJSON(w, http.StatusUnauthorized, errorJSON{Error: "unauthorized", Message: err.Error()})
			return
		}
		if d := s.Behaviour(merchant).Latency(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		h(w, r, merchant, body)
	}
}

// reply answers an API call, unless the call is to time out: then the
// effect stays, the answer is lost, and the caller waits for a 504.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, merchantRef string, status int, v any) {
	s.mu.Lock()
	stall := s.draw(s.cfg.APITimeoutRate)
	if sc := s.scripts[merchantRef]; merchantRef != "" && sc != nil && sc.APITimeouts > 0 {
		sc.APITimeouts--
		stall = true
	}
	s.mu.Unlock()
	if stall {
		s.stall(w, r)
		return
	}
	writeJSON(w, status, v)
}

// stall holds an API call for APITimeout (or until the caller gives up),
// then answers 504: what took effect stays, its answer is lost.
func (s *Server) stall(w http.ResponseWriter, r *http.Request) {
	t := time.NewTimer(s.cfg.APITimeout)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	case <-s.ctx.Done():
	}
	writeJSON(w, http.StatusGatewayTimeout, errorJSON{Error: "timeout", Message: "the simulator timed out"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only our own types are marshalled
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func badRequest(msg string) errorJSON { return errorJSON{Error: "invalid_request", Message: msg} }

// validRef reports whether s is usable as a merchant or refund reference:
// 1 to 64 printable UTF-8 characters.
func validRef(s string) bool {
	if s == "" || len(s) > 64 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func validCallbackURL(s string) bool {
	if s == "" {
		return true
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// normalize validates a payment request and fills its defaults.
func (req *paymentRequest) normalize() (domain.Money, error) {
	if !validRef(req.MerchantRef) {
		return domain.Money{}, errors.New("merchant_ref must be 1 to 64 printable characters")
	}
	if req.Amount <= 0 {
		return domain.Money{}, errors.New("amount must be a positive integer of minor units")
	}
	amount, err := domain.NewMoney(req.Amount, req.Currency)
	if err != nil {
		return domain.Money{}, fmt.Errorf("currency: %v", err)
	}
	if !validCallbackURL(req.NotifyURL) || !validCallbackURL(req.ReturnURL) {
		return domain.Money{}, errors.New("notify_url and return_url must be absolute http(s) URLs")
	}
	if req.ExpiresInSeconds == 0 {
		req.ExpiresInSeconds = int64(defaultExpiresIn / time.Second)
	}
	if req.ExpiresInSeconds < 0 || req.ExpiresInSeconds > int64(maxExpiresIn/time.Second) {
		return domain.Money{}, fmt.Errorf("expires_in_seconds must be in 1..%d", int64(maxExpiresIn/time.Second))
	}
	return amount, nil
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return prefix + hex.EncodeToString(b[:])
}

func (s *Server) publicBase(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	return "http://" + r.Host
}

// view is a payment as the API shows it. Caller holds mu.
func (p *payment) view() paymentJSON {
	v := paymentJSON{
		ID: p.id, MerchantRef: p.req.MerchantRef, Status: p.status,
		Amount: p.amount.Minor(), Currency: p.amount.Currency().Code(),
		PayURL: p.payURL, Token: p.token, CreatedAt: p.created.UTC(), ExpiresAt: p.expires.UTC(),
	}
	if p.status == statusSucceeded {
		v.PaidAmount = p.paid.Minor()
		at := p.done.UTC()
		v.PaidAt = &at
	}
	return v
}

// createPayment is POST /api/v1/payments, idempotent per (merchant,
// merchant_ref): the same request again answers 200 with the same
// payment, another request under the same reference 409.
func (s *Server) createPayment(w http.ResponseWriter, r *http.Request, merchant string, body []byte) {
	var req paymentRequest
	if err := decodeJSON(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, errorJSON{Error: "malformed_json", Message: err.Error()})
		return
	}
	amount, err := req.normalize()
	if err != nil {
		writeJSON(w, http.StatusBadRequest, badRequest(err.Error()))
		return
	}
	now := s.cfg.Now()
	key := merchantKey{merchant, req.MerchantRef}
	s.mu.Lock()
	if p := s.paymentByRef[key]; p != nil {
		same := p.req == req
		s.refresh(p, now)
		v := p.view()
		s.mu.Unlock()
		if !same {
			s.reply(w, r, req.MerchantRef, http.StatusConflict, errorJSON{Error: "conflict",
				Message: "merchant_ref " + req.MerchantRef + " was used for another payment request"})
			return
		}
		s.reply(w, r, req.MerchantRef, http.StatusOK, v)
		return
	}
	b, controlled := s.behaviours[merchant]
	if controlled && s.draw(b.InitiateErrorRate) {
		s.mu.Unlock()
		writeJSON(w, http.StatusServiceUnavailable, errorJSON{Error: "unavailable", Message: "the simulator is unavailable (initiate_error_rate)"})
		return
	}
	id := newID("sp_")
	p := &payment{
		id: id, merchant: merchant, req: req, amount: amount, status: statusCreated,
		payURL: s.publicBase(r) + pathPay + id, token: newID("tok_"),
		created: now, expires: now.Add(time.Duration(req.ExpiresInSeconds) * time.Second),
		fate: s.drawFate(merchant, amount.Minor()),
	}
	s.payments[id] = p
	s.paymentByRef[key] = p
	s.order = append(s.order, p)
	s.calls.Creates++
	v := p.view()
	timeout := controlled && s.draw(b.InitiateTimeoutRate)
	s.mu.Unlock()
	if timeout {
		s.stall(w, r) // created, but the answer is lost
		return
	}
	s.reply(w, r, req.MerchantRef, http.StatusCreated, v)
}

// getPayment is GET /api/v1/payments?merchant_ref=X.
func (s *Server) getPayment(w http.ResponseWriter, r *http.Request, merchant string, _ []byte) {
	ref := r.URL.Query().Get("merchant_ref")
	if ref == "" {
		writeJSON(w, http.StatusBadRequest, badRequest("merchant_ref is required"))
		return
	}
	now := s.cfg.Now()
	s.mu.Lock()
	p := s.paymentByRef[merchantKey{merchant, ref}]
	var v paymentJSON
	if p != nil {
		s.refresh(p, now)
		v = p.view()
		s.calls.Queries++
		if p.status == statusCreated {
			s.calls.QueriesUnpaid++
		}
	}
	s.mu.Unlock()
	if p == nil {
		s.reply(w, r, ref, http.StatusNotFound, errorJSON{Error: "not_found", Message: "no payment with merchant_ref " + ref})
		return
	}
	s.reply(w, r, ref, http.StatusOK, v)
}

func (rf *refund) view() refundJSON {
	return refundJSON{
		ID: rf.id, RefundRef: rf.req.RefundRef, MerchantRef: rf.req.MerchantRef, PaymentID: rf.payment.id,
		Status: rf.status, Amount: rf.amount.Minor(), Currency: rf.amount.Currency().Code(), CreatedAt: rf.created.UTC(),
	}
}

// createRefund is POST /api/v1/refunds, idempotent per (merchant,
// refund_ref). It refuses (422) to refund a payment that has not
// succeeded, in another currency, or more than was collected minus what
// is refunded or still pending.
func (s *Server) createRefund(w http.ResponseWriter, r *http.Request, merchant string, body []byte) {
	var req refundRequest
	if err := decodeJSON(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, errorJSON{Error: "malformed_json", Message: err.Error()})
		return
	}
	switch {
	case !validRef(req.RefundRef) || !validRef(req.MerchantRef):
		writeJSON(w, http.StatusBadRequest, badRequest("refund_ref and merchant_ref must be 1 to 64 printable characters"))
		return
	case req.Amount <= 0:
		writeJSON(w, http.StatusBadRequest, badRequest("amount must be a positive integer of minor units"))
		return
	}
	now := s.cfg.Now()
	s.mu.Lock()
	status, v := s.refundLocked(merchant, req, now)
	s.mu.Unlock()
	s.reply(w, r, req.MerchantRef, status, v)
}

func (s *Server) refundLocked(merchant string, req refundRequest, now time.Time) (int, any) {
	if rf := s.refundByRef[merchantKey{merchant, req.RefundRef}]; rf != nil {
		if rf.req != req {
			return http.StatusConflict, errorJSON{Error: "conflict", Message: "refund_ref " + req.RefundRef + " was used for another refund request"}
		}
		s.refresh(rf.payment, now)
		return http.StatusOK, rf.view()
	}
	p := s.paymentByRef[merchantKey{merchant, req.MerchantRef}]
	if p == nil {
		return http.StatusNotFound, errorJSON{Error: "not_found", Message: "no payment with merchant_ref " + req.MerchantRef}
	}
	s.refresh(p, now)
	if p.status != statusSucceeded {
		return http.StatusUnprocessableEntity, errorJSON{Error: "payment_not_succeeded",
			Message: fmt.Sprintf("payment %s is %s; only a succeeded payment can be refunded", p.id, p.status)}
	}
	cur := p.paid.Currency().Code()
	if req.Currency != "" && req.Currency != cur {
		return http.StatusUnprocessableEntity, errorJSON{Error: "currency_mismatch",
			Message: fmt.Sprintf("payment %s is in %s, not %s", p.id, cur, req.Currency)}
	}
	refundable := p.paid.Minor()
	for _, o := range p.refunds {
		if o.status != statusFailed {
			refundable -= o.amount.Minor()
		}
	}
	if req.Amount > refundable {
		return http.StatusUnprocessableEntity, errorJSON{Error: "exceeds_refundable",
			Message: fmt.Sprintf("refund of %d exceeds the %d %s still refundable on payment %s", req.Amount, refundable, cur, p.id)}
	}
	f := s.fateOf(p)
	pending, fail := s.draw(s.cfg.RefundPendingRate), s.draw(s.cfg.RefundFailRate)
	if f.scripted {
		pending, fail = f.refundPending, f.refundFail
	}
	rf := &refund{
		id: newID("sr_"), merchant: merchant, req: req, payment: p,
		amount: domain.MustMoney(req.Amount, cur), status: statusSucceeded, created: now, finished: now,
	}
	if pending {
		rf.status, rf.fail, rf.finished = statusPending, fail, time.Time{}
	}
	p.refunds = append(p.refunds, rf)
	s.refunds = append(s.refunds, rf)
	s.refundByRef[merchantKey{merchant, req.RefundRef}] = rf
	return http.StatusCreated, rf.view()
}

// getRefund is GET /api/v1/refunds?refund_ref=X.
func (s *Server) getRefund(w http.ResponseWriter, r *http.Request, merchant string, _ []byte) {
	ref := r.URL.Query().Get("refund_ref")
	if ref == "" {
		writeJSON(w, http.StatusBadRequest, badRequest("refund_ref is required"))
		return
	}
	now := s.cfg.Now()
	s.mu.Lock()
	rf := s.refundByRef[merchantKey{merchant, ref}]
	var v refundJSON
	if rf != nil {
		s.refresh(rf.payment, now)
		v = rf.view()
	}
	s.mu.Unlock()
	if rf == nil {
		s.reply(w, r, "", http.StatusNotFound, errorJSON{Error: "not_found", Message: "no refund with refund_ref " + ref})
		return
	}
	s.reply(w, r, v.MerchantRef, http.StatusOK, v)
}

// settlements is GET /api/v1/settlements?date=YYYY-MM-DD&page=&page_size=:
// the merchant's payments that succeeded on that business day in
// Location, ordered by (paid_at, id), paged by a cursor so that rows
// added meanwhile neither repeat nor shift a page.
func (s *Server) settlements(w http.ResponseWriter, r *http.Request, merchant string, _ []byte) {
	q := r.URL.Query()
	start, err := time.ParseInLocation("2006-01-02", q.Get("date"), s.cfg.Location)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, badRequest("date must be YYYY-MM-DD"))
		return
	}
	end := start.AddDate(0, 0, 1) // not 24h: a business day may have 23 or 25
	size := defaultPageSize
	if ps := q.Get("page_size"); ps != "" {
		size, err = strconv.Atoi(ps)
		if err != nil || size < 1 || size > maxPageSize {
			writeJSON(w, http.StatusBadRequest, badRequest(fmt.Sprintf("page_size must be in 1..%d", maxPageSize)))
			return
		}
	}
	var cursor *pageCursor
	if tok := q.Get("page"); tok != "" {
		c, err := decodePageCursor(tok)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, badRequest(err.Error()))
			return
		}
		cursor = &c
	}
	now := s.cfg.Now()
	s.mu.Lock()
	var rows []settlementRowJSON
	for _, r := range s.settlementRowsLocked(merchant, now) { // settlement.go
		if r.SettledAt.Before(start) || !r.SettledAt.Before(end) {
			continue
		}
		if cursor != nil && !cursor.after(r.SettledAt, r.PaymentID) {
			continue
		}
		rows = append(rows, r)
	}
	s.mu.Unlock()
	slices.SortFunc(rows, func(a, b settlementRowJSON) int {
		if c := a.SettledAt.Compare(b.SettledAt); c != 0 {
			return c
		}
		if a.PaymentID < b.PaymentID {
			return -1
		}
		return 1 // ids are unique
	})
	page := settlementJSON{Rows: rows}
	if len(rows) > size {
		page.Rows = rows[:size]
		last := page.Rows[size-1]
		page.NextPage = pageCursor{paidAt: last.SettledAt, id: last.PaymentID}.encode()
	}
	if page.Rows == nil {
		page.Rows = []settlementRowJSON{}
	}
	s.reply(w, r, "", http.StatusOK, page)
}
