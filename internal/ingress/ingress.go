// Package ingress is paygate's thin HTTP front door (echo): it checks what
// must be checked before anything is accepted (the mall's signature and
// the request's shape), writes pay requests and raw PSP callbacks to
// Kafka, and answers only once Kafka has acknowledged them (acks=all).
// Everything else happens in the consumer groups.
package ingress

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/signature"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/wire"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/schemas"
)

// Publisher writes to Kafka and returns once the broker acknowledged.
type Publisher interface {
	Write(ctx context.Context, msgs ...producers.Message) error
}

// Store is what the ingress reads: the order for GET, the return pages for
// the sync return. Nothing on the way to accepting a request
// reads it: with the database down, pay and refund requests and PSP
// callbacks are still taken into Kafka.
type Store interface {
	Payment(ctx context.Context, orderID string) (schemas.Payment, error)
	ReturnTarget(ctx context.Context, transactionCode string) (store.ReturnTarget, error)
	RefundStore
	ReconStore
}

// Channels finds a configured channel by name.
type Channels interface {
	Channel(name string) (psp.Channel, bool)
}

// Config configures the ingress. Each setting's variable, default and
// help are its tags (internal/settings); New fills a zero field with the
// same default, which a test holds to the tag.
type Config struct {
	// MallKeys maps a key id (X-Paygate-Key-Id) to its active secrets;
	// several secrets per id allow rotation.
	MallKeys Keys `env:"PAYGATE_MALL_KEYS" default:"dev-mall:dev-mall-secret" secret:"true" help:"the mall's and finance's signing keys, id:secret,...; an id may repeat during rotation"`
	// ReturnHosts is the allow-list for the mall's return URLs. payinit
	// checks the same list (payinit.Config.ReturnHosts).
	ReturnHosts domain.HostAllowList `env:"PAYGATE_RETURN_HOSTS" default:"localhost,127.0.0.1,shop.example,.shop.example" help:"hosts the mall's return URLs may name; .example.com admits sub-domains"`
	// Tolerance for signed timestamps, either way. Default 300s.
	Tolerance time.Duration
	// MaxRequestBytes bounds a mall request body. Default 64 KiB.
	MaxRequestBytes int64
	// MaxCallbackBytes bounds a PSP callback body. Default 1 MiB.
	MaxCallbackBytes int64
	// MaxWait bounds ?wait= on GET /v1/payments. Default 30s.
	MaxWait time.Duration
	// ReturnWait is how long the sync return waits for a successful
	// payment to be applied before sending the buyer to the pending page.
	// Default 3s.
	ReturnWait time.Duration
	// MaxInFlight bounds the requests the ingress works on at once on the
	// routes that store something (pay requests, refunds, PSP callbacks
	// and returns); one more waits up to QueueWait for a slot, and is
	// then answered 503 with Retry-After, nothing stored, and its sender
	// tries again.
	MaxInFlight int `env:"PAYGATE_INGRESS_MAX_INFLIGHT" default:"1024" min:"1" help:"requests stored at once by the ingress; one more waits for a slot"`
	// QueueWait is how long a request waits for a slot.
	QueueWait time.Duration `env:"PAYGATE_INGRESS_QUEUE_WAIT" default:"1s" min:"1ns" help:"how long it waits; then it is answered 503 overloaded, Retry-After: 1"`
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.Tolerance == 0 {
		c.Tolerance = signature.DefaultTolerance
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = 64 << 10
	}
	if c.MaxCallbackBytes == 0 {
		c.MaxCallbackBytes = 1 << 20
	}
	if c.MaxWait == 0 {
		c.MaxWait = 30 * time.Second
	}
	if c.ReturnWait == 0 {
		c.ReturnWait = 3 * time.Second
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 1024
	}
	if c.QueueWait == 0 {
		c.QueueWait = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Keys are the mall's and finance's signing keys: a key id to its active
// secrets. Their text (PAYGATE_MALL_KEYS) is id:secret pairs separated
// by commas; an id may repeat, to hold several secrets during rotation;
// a secret may hold ":" but not ",".
type Keys map[string][]string

// UnmarshalText reads id:secret,id:secret2,... An error names the entry
// by its position, not its text, which would print a secret.
func (k *Keys) UnmarshalText(b []byte) error {
	keys := Keys{}
	for i, kv := range strings.Split(string(b), ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		id, secret, ok := strings.Cut(kv, ":")
		if !ok || id == "" || secret == "" {
			return fmt.Errorf("entry %d is not id:secret", i+1)
		}
		keys[id] = append(keys[id], secret)
	}
	*k = keys
	return nil
}

// Server is the ingress.
type Server struct {
	cfg      Config
	pub      Publisher
	store    Store
	channels Channels
	waiter   *Waiter
	log      *slog.Logger
	routing  RoutingHealth // GET /v1/routing/health, if set (routing.go)
	reviews  RiskReviews   // the risk review queue, if set (risk.go)
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	slots    chan struct{} // one per request admitted (admit)
	waiting  atomic.Int64  // requests waiting for a slot
	shed     *prometheus.CounterVec
}

// New builds the ingress and registers its metrics with reg, the
// process's registry (served on the admin listener, by internal/app).
// Handler gives its HTTP handlers.
func New(cfg Config, pub Publisher, st Store, ch Channels, waiter *Waiter, log *slog.Logger, reg *prometheus.Registry) *Server {
	cfg.defaults()
	s := &Server{cfg: cfg, pub: pub, store: st, channels: ch, waiter: waiter, log: log.With("component", "ingress"),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_http_requests_total",
			Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paygate_http_request_seconds",
			Help: "HTTP request latency by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"route"}),
		slots: make(chan struct{}, cfg.MaxInFlight),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_ingress_shed_total",
			Help: "Requests answered 503 overloaded, nothing stored: the ingress held PAYGATE_INGRESS_MAX_INFLIGHT and none came free within PAYGATE_INGRESS_QUEUE_WAIT."}, []string{"route"}),
	}
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "paygate_ingress_in_flight",
		Help: "Requests on the storing routes the ingress is working on now."}, func() float64 { return float64(len(s.slots)) })
	waiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "paygate_ingress_waiting",
		Help: "Requests on the storing routes waiting for one of the ingress's slots."}, func() float64 { return float64(s.waiting.Load()) })
	limit := prometheus.NewGauge(prometheus.GaugeOpts{Name: "paygate_ingress_max_in_flight",
		Help: "PAYGATE_INGRESS_MAX_INFLIGHT: the most requests on the storing routes worked on at once."})
	limit.Set(float64(cfg.MaxInFlight))
	reg.MustRegister(s.requests, s.latency, s.shed, inFlight, waiting, limit)
	return s
}

// Listener is a kind of listener the ingress serves (DESIGN.md §13).
// The admin listener (/metrics, /healthz, /readyz, pprof, the console)
// is internal/app's: every role has one, not only the ingress.
type Listener int

const (
	// Public is the listener PSPs and buyers' browsers reach:
	// POST /v1/callbacks/{channel}, GET|POST /v1/return/{channel}.
	// Nothing on it reads an order or needs a key.
	Public Listener = iota + 1
	// API is the listener the mall and finance reach, every request
	// signed (reads with a v2 signature): POST /v1/payments,
	// GET /v1/payments/{order_id}, POST /v1/refunds,
	// GET /v1/refunds/{refund_id}, GET /v1/recon/runs,
	// GET /v1/routing/health (ServeRoutingHealth),
	// POST /v1/risk/reviews/{order_id} and GET /v1/risk/reviews
	// (ServeRiskReviews).
	API
)

// String is the listener's name in settings and docs.
func (l Listener) String() string {
	switch l {
	case Public:
		return "public"
	case API:
		return "api"
	}
	return fmt.Sprintf("Listener(%d)", int(l))
}

// Handler serves the routes of the given kinds of listener, for one
// address: one kind in production, several where a deployment puts them
// on one address (paygate dev, when configured so). Any other path is
// answered 404, so a route is not reachable on another kind's listener.
// Each call builds a new handler; build each once.
func (s *Server) Handler(kinds ...Listener) http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Use(middleware.Recover(), s.measure)
	for _, k := range kinds {
		switch k {
		case Public:
			e.POST("/v1/callbacks/:channel", s.asyncCallback)
			e.GET("/v1/return/:channel", s.syncReturn)
			e.POST("/v1/return/:channel", s.syncReturn)
		case API:
			e.POST("/v1/payments", s.createPayment)
			e.GET("/v1/payments/:order_id", s.signedRead(s.getPayment))
			e.POST("/v1/refunds", s.createRefund)
			e.GET("/v1/refunds/:refund_id", s.signedRead(s.getRefund))
			e.GET("/v1/recon/runs", s.signedRead(s.reconRuns))
			if s.routing != nil {
				e.GET("/v1/routing/health", s.signedRead(s.routingHealth))
			}
			if s.reviews != nil {
				e.POST("/v1/risk/reviews/:order_id", s.decideReview)
				e.GET("/v1/risk/reviews", s.signedRead(s.listReviews))
			}
		default:
			panic(fmt.Sprintf("ingress: no listener %v", k))
		}
	}
	return e
}

func (s *Server) measure(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		s.requests.WithLabelValues(route, strconv.Itoa(c.Response().Status)).Inc()
		s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
		return nil
	}
}

// apiError is an error answer: status, short code, precise detail.
type apiError struct {
	status int
	code   string
	detail string
}

func (e *apiError) Error() string { return e.code + ": " + e.detail }

func fail(status int, code, detail string) error {
	return &apiError{status: status, code: code, detail: detail}
}

func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var ae *apiError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &he):
		ae = &apiError{status: he.Code, code: strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_")), detail: fmt.Sprint(he.Message)}
	case store.IsRetryable(err):
		// The database is down or overloaded (a read, or a return's
		// look-up): a moment's trouble, not a fault of the request.
		s.log.Warn("request failed: database unavailable", "path", c.Request().URL.Path, "err", err)
		ae = &apiError{status: http.StatusServiceUnavailable, code: "unavailable", detail: "the database cannot be reached just now; retry after 1s"}
	default:
		s.log.Error("request failed", "path", c.Request().URL.Path, "err", err)
		ae = &apiError{status: http.StatusInternalServerError, code: "internal_error", detail: "internal error; nothing was accepted"}
	}
	if ae.status == http.StatusServiceUnavailable && c.Response().Header().Get("Retry-After") == "" {
		// Every 503 says when to come back: overloaded, Kafka or the
		// database unavailable, not ready.
		c.Response().Header().Set("Retry-After", "1")
	}
	_ = c.JSON(ae.status, schemas.Error{Error: ae.code, Detail: ae.detail})
}

// admit takes one of the ingress's MaxInFlight slots for a request that
// will store something, waiting up to QueueWait for one, or answers 503
// when none came free: past what the machine carries, requests would
// otherwise pile up in the process, each with its goroutine, buffers and
// body, and every answer would slow down together. A PSP retries a 5xx
// callback, and the mall retries a pay request with its
// Idempotency-Key; nothing was stored. The wait is what keeps a burst
// from being shed: answered 503 at once, its requests come back as
// retries on top of the load that follows, and an ingress pushed past
// its bound by a moment's backlog stays there (ingress alone, 8,000/s
// offered: 7,993/s taken without a bound; 1,434–2,880/s with 1024
// slots and no wait, nearly all the work spent on requests shed and
// retried). A request waits parked, before the handler's deep calls:
// a small stack and nothing read. The slot is taken before the body is
// read, so a client that trickles its body holds one until the
// server's read timeout.
func (s *Server) admit(c echo.Context) (release func(), err error) {
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	default:
	}
	s.waiting.Add(1)
	t := time.NewTimer(s.cfg.QueueWait)
	defer func() {
		t.Stop()
		s.waiting.Add(-1)
	}()
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	case <-c.Request().Context().Done():
		return nil, fail(http.StatusServiceUnavailable, "overloaded", "the request ended while it waited for the gateway; nothing was stored")
	case <-t.C:
	}
	s.shed.WithLabelValues(c.Path()).Inc()
	c.Response().Header().Set("Retry-After", "1")
	return nil, fail(http.StatusServiceUnavailable, "overloaded",
		fmt.Sprintf("the gateway is at its limit of %d requests at once and none came free within %s; nothing was stored; retry after 1s", cap(s.slots), s.cfg.QueueWait))
}

// readBody reads at most limit bytes; more is a 413.
func readBody(c echo.Context, limit int64) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > limit {
		return nil, fail(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body of %d bytes exceeds %d", r.ContentLength, limit))
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fail(http.StatusBadRequest, "unreadable_body", err.Error())
	}
	if int64(len(b)) > limit {
		return nil, fail(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body exceeds %d bytes", limit))
	}
	return b, nil
}

// authenticate checks the mall's (or finance's) signature (DESIGN.md
// §11) of the request with its raw body: a v2 signature over the method,
// target and body, or for a request with a body (POST), the v1 signature
// over the body alone that the contract has always accepted.
func (s *Server) authenticate(c echo.Context, body []byte) (string, error) {
	r := c.Request()
	h := r.Header
	keyID := h.Get("X-Paygate-Key-Id")
	secrets, ok := s.cfg.MallKeys[keyID]
	if keyID == "" || !ok {
		return "", fail(http.StatusUnauthorized, "unauthenticated", "unknown or missing X-Paygate-Key-Id")
	}
	bs := make([][]byte, len(secrets))
	for i, sec := range secrets {
		bs[i] = []byte(sec)
	}
	req := signature.Request{Method: r.Method, Target: target(r), Body: body}
	if err := signature.VerifyRequest(h.Get("X-Paygate-Signature"), h.Get("X-Paygate-Timestamp"), req, bs, s.cfg.Now(), s.cfg.Tolerance,
		r.Method == http.MethodPost); err != nil {
		return "", fail(http.StatusUnauthorized, "unauthenticated", err.Error())
	}
	return keyID, nil
}

// target is the request-target a v2 signature covers: the path and query
// exactly as the client sent them in the request line. A proxy in front
// that rewrites either breaks the signature, as it should.
func target(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		return r.RequestURI
	}
	return r.URL.RequestURI() // absolute-form, or a request built in a test
}

// signedRead requires a read's v2 signature (over "<timestamp>.GET.
// <path?query>.") before h: an order's amounts, pay URLs and tokens, a
// refund, a reconciliation report are the mall's and finance's alone,
// and the signature of one read opens no other.
func (s *Server) signedRead(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, err := s.authenticate(c, nil); err != nil {
			return err
		}
		return h(c)
	}
}

// idempotencyKey is what a client may send to make its retries of one
// request one request: printable, at most 128 characters.
func idempotencyKey(c echo.Context) (string, error) {
	k := c.Request().Header.Get("Idempotency-Key")
	if len(k) > 128 {
		return "", fail(http.StatusBadRequest, "bad_idempotency_key", "Idempotency-Key is longer than 128 characters")
	}
	for _, r := range k {
		if r < 0x21 || r > 0x7e {
			return "", fail(http.StatusBadRequest, "bad_idempotency_key", "Idempotency-Key must be printable ASCII without spaces")
		}
	}
	return k, nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requireJSON refuses a body that does not say it is JSON: the signed
// endpoints read nothing else, and a form or text body signed by mistake
// is better refused by its type than by a parse error. A charset, if
// given, must be UTF-8 (RFC 8259 §8.1); other parameters are ignored.
func requireJSON(c echo.Context) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct == "" {
		return fail(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type is missing; send Content-Type: application/json")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fail(http.StatusUnsupportedMediaType, "unsupported_media_type", fmt.Sprintf("Content-Type %q cannot be parsed (%v); send application/json", ct, err))
	}
	if mt != echo.MIMEApplicationJSON {
		return fail(http.StatusUnsupportedMediaType, "unsupported_media_type", fmt.Sprintf("Content-Type %s is not accepted here; send application/json", mt))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fail(http.StatusUnsupportedMediaType, "unsupported_media_type", fmt.Sprintf("charset %q is not accepted; JSON is UTF-8: send application/json or application/json; charset=utf-8", cs))
	}
	return nil
}

// signedRequest reads a signed JSON request: its Content-Type, body
// limit, the caller's signature, the message's JSON Schema (which first
// refuses bytes that are not UTF-8 and repeated keys: schemas.CheckJSON),
// then a strict decode into v. It returns the raw body and the signing
// key id.
func (s *Server) signedRequest(c echo.Context, schema string, v any) ([]byte, string, error) {
	if err := requireJSON(c); err != nil {
		return nil, "", err
	}
	body, err := readBody(c, s.cfg.MaxRequestBytes)
	if err != nil {
		return nil, "", err
	}
	keyID, err := s.authenticate(c, body)
	if err != nil {
		return nil, "", err
	}
	if err := schemas.Validate(schema, body); err != nil {
		return nil, "", fail(http.StatusBadRequest, "invalid_request", err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, "", fail(http.StatusBadRequest, "invalid_request", err.Error())
	}
	return body, keyID, nil
}

func (s *Server) createPayment(c echo.Context) error {
	release, err := s.admit(c)
	if err != nil {
		return err
	}
	defer release()
	idem, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	var req schemas.PayRequest
	body, keyID, err := s.signedRequest(c, schemas.PayRequestSchema, &req)
	if err != nil {
		return err
	}
	in, err := wire.PayIntent(req, "", body)
	if err == nil {
		err = in.Validate(s.cfg.ReturnHosts)
	}
	if err != nil {
		return fail(http.StatusBadRequest, "invalid_request", err.Error())
	}
	ctx := c.Request().Context()
	accepted := schemas.PayAccepted{OrderID: req.OrderID, StatusURL: "/v1/payments/" + url.PathEscape(req.OrderID)}
	id := "pay_request/" + newID()
	if idem != "" {
		// Retries of one request carry one message id: payinit plans it
		// once. Whether a key is reused for another body is decided
		// there, against the first body stored under it (not here: the
		// ingress takes requests without the database), and a refused
		// one shows in its order's status and pay session.
		id = "pay_request/" + keyID + "/" + idem
	}
	msg := producers.Message{Topic: schemas.TopicPayRequests, Key: req.OrderID, ID: id, Type: schemas.TypePayRequest, Time: s.cfg.Now(), Value: body}
	if err := s.pub.Write(ctx, msg); err != nil {
		s.log.Error("pay request not accepted: kafka write failed", "order_id", req.OrderID, "err", err)
		return fail(http.StatusServiceUnavailable, "unavailable", "the request could not be stored; retry with the same Idempotency-Key")
	}
	s.log.Info("pay request accepted", "order_id", req.OrderID, "message_id", id)
	return c.JSON(http.StatusAccepted, accepted)
}

func (s *Server) getPayment(c echo.Context) error {
	orderID := c.Param("order_id")
	if err := domain.ValidOrderID(orderID); err != nil {
		return fail(http.StatusBadRequest, "invalid_order_id", err.Error())
	}
	var wait time.Duration
	if w := c.QueryParam("wait"); w != "" {
		d, err := time.ParseDuration(w)
		if err != nil || d < 0 {
			return fail(http.StatusBadRequest, "invalid_wait", fmt.Sprintf("wait=%q is not a duration like 5s", w))
		}
		wait = min(d, s.cfg.MaxWait)
	}
	ctx := c.Request().Context()
	var p schemas.Payment
	var perr error
	load := func() (bool, error) {
		p, perr = s.store.Payment(ctx, orderID)
		var rej *store.RejectedError
		switch {
		case errors.Is(perr, store.ErrNotFound):
			return false, nil
		case errors.As(perr, &rej):
			return true, nil
		case perr != nil:
			return false, perr
		}
		n := len(p.Attempts)
		return n > 0 && (p.Attempts[n-1].PayURL != "" || p.Attempts[n-1].Status != domain.AttemptCreated.String()), nil
	}
	if wait > 0 && s.waiter != nil {
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if err := s.waiter.Until(wctx, orderID, load); err != nil {
			return err
		}
	} else if _, err := load(); err != nil {
		return err
	}
	var rej *store.RejectedError
	switch {
	case errors.Is(perr, store.ErrNotFound):
		return fail(http.StatusNotFound, "not_found", "no order "+orderID+" (a pay request just accepted may still be on its way: use ?wait=5s)")
	case errors.As(perr, &rej):
		return fail(http.StatusConflict, "rejected", rej.Reason)
	case perr != nil:
		return perr
	}
	return c.JSON(http.StatusOK, p)
}

// rawCallback captures the request exactly as received.
func (s *Server) rawCallback(c echo.Context, kind domain.CallbackKind) (schemas.RawCallback, psp.Channel, error) {
	name := c.Param("channel")
	ch, ok := s.channels.Channel(name)
	if !ok {
		return schemas.RawCallback{}, nil, fail(http.StatusNotFound, "unknown_channel", fmt.Sprintf("no channel %q", name))
	}
	body, err := readBody(c, s.cfg.MaxCallbackBytes)
	if err != nil {
		return schemas.RawCallback{}, nil, err
	}
	r := c.Request()
	return schemas.RawCallback{
		ID: "psp_callback/" + newID(), Channel: name, Kind: kind.String(), Method: r.Method, Path: r.URL.Path,
		Query: r.URL.RawQuery, Headers: map[string][]string(r.Header.Clone()), Body: body, ReceivedAt: s.cfg.Now().UTC(),
	}, ch, nil
}

// storeCallback writes a raw callback to Kafka, keyed by what psp.Verify
// says it is about (callbackKey), and returns the notification of a
// verified payment callback (nil for anything else). The verdict decides
// nothing else: the callbacks group judges the stored callback again,
// and its verdict is the one that counts.
func (s *Server) storeCallback(ctx context.Context, raw schemas.RawCallback, ch psp.Channel) (*domain.Notification, error) {
	cb, err := wire.Callback(raw)
	if err != nil {
		return nil, err
	}
	v := psp.Verify(ch, cb)
	b, err := schemas.EncodeRawCallback(raw)
	if err != nil {
		return nil, err
	}
	msg := producers.Message{Topic: schemas.TopicPSPCallbacks, Key: callbackKey(raw.Channel, v), ID: raw.ID, Type: schemas.TypePSPCallback,
		Time: raw.ReceivedAt, Value: b}
	if err := s.pub.Write(ctx, msg); err != nil {
		s.log.Error("callback not accepted: kafka write failed", "channel", raw.Channel, "kind", raw.Kind, "err", err)
		return nil, fail(http.StatusServiceUnavailable, "unavailable", "the callback could not be stored; retry later")
	}
	switch v.Kind {
	case psp.VerdictPayment:
		return &v.Notification, nil
	case psp.VerdictRefused, psp.VerdictNotYet:
		// Stored as evidence all the same; the callbacks group records why.
		s.log.Warn("unverifiable callback stored", "channel", raw.Channel, "kind", raw.Kind, "err", v.Err)
	}
	return nil, nil
}

// callbackKey is the Kafka key of a callback on paygate.psp-callbacks.v1,
// by psp.Verify's verdict, so that everything about one attempt (or one
// refund) lands in one partition and is decided in the order it came:
// <channel>/<transaction code> for a payment's callback (the sweeper's
// probes of the attempt carry the same key), <channel>/refund/<refund
// reference> for a refund's, and <channel>/unverified for one refused or
// not judged yet, which the callbacks group stores as evidence or judges
// again.
func callbackKey(channel string, v psp.Verdict) string {
	switch v.Kind {
	case psp.VerdictPayment:
		return channel + "/" + v.Notification.TransactionCode
	case psp.VerdictRefund:
		return channel + "/refund/" + v.Refund.RefundRef
	}
	return channel + "/unverified"
}

func (s *Server) asyncCallback(c echo.Context) error {
	release, err := s.admit(c)
	if err != nil {
		return err
	}
	defer release()
	raw, ch, err := s.rawCallback(c, domain.CallbackAsync)
	if err != nil {
		return err
	}
	if _, err := s.storeCallback(c.Request().Context(), raw, ch); err != nil {
		return err
	}
	ack := ch.Ack()
	return c.Blob(ack.Status, ack.ContentType, []byte(ack.Body))
}

// syncReturn stores the buyer's return like any callback, then sends the
// browser to the mall's success, failure or pending page.
func (s *Server) syncReturn(c echo.Context) error {
	release, err := s.admit(c)
	if err != nil {
		return err
	}
	raw, ch, err := s.rawCallback(c, domain.CallbackSync)
	if err != nil {
		release()
		return err
	}
	ctx := c.Request().Context()
	n, err := s.storeCallback(ctx, raw, ch)
	release() // the wait for the payment below holds no slot: it stores nothing
	if err != nil {
		return err
	}
	if n == nil {
		return fail(http.StatusBadRequest, "unverified_return", "the payment provider's return could not be verified; the payment's status will follow from the provider")
	}
	var mark uint64
	if s.waiter != nil {
		mark = s.waiter.Mark()
	}
	t, err := s.store.ReturnTarget(ctx, n.TransactionCode)
	if errors.Is(err, store.ErrNotFound) {
		return fail(http.StatusNotFound, "unknown_attempt", "no payment attempt "+n.TransactionCode)
	}
	if err != nil {
		return err
	}
	if n.Status == domain.PSPSucceeded && s.waiter != nil && t.OrderStatus == domain.OrderPending.String() {
		// Read once above, to learn the order: waited on from the mark
		// taken before that read, it is read again only once it changed.
		wctx, cancel := context.WithTimeout(ctx, s.cfg.ReturnWait)
		defer cancel()
		err := s.waiter.UntilChanged(wctx, t.OrderID, mark, func() (bool, error) {
			nt, err := s.store.ReturnTarget(wctx, n.TransactionCode)
			if err == nil {
				t = nt
			}
			return t.OrderStatus != domain.OrderPending.String(), err
		})
		if err != nil && wctx.Err() == nil {
			return err
		}
	}
	target := t.Returns.Pending
	switch {
	case t.OrderStatus != domain.OrderPending.String() && t.AttemptStatus == domain.AttemptPaid.String():
		target = t.Returns.Success
	case n.Status == domain.PSPFailed:
		target = t.Returns.Failure
	}
	if err := s.cfg.ReturnHosts.Allows(target); err != nil {
		// Never an open redirect, even if the allow-list shrank since.
		return fail(http.StatusBadRequest, "return_url_not_allowed", err.Error())
	}
	return c.Redirect(http.StatusSeeOther, target)
}
