// Package riskcheck runs risk control in a paygate process (DESIGN.md §8,
// docs/risk.md): the risk rules in force (the newest stored version of
// the risk document, kept in force by policydoc as the routing policy
// is), the outside risk service's client, and the metrics. The decisions
// themselves are domain/risk's, taken in payinit's planning transaction
// on counts it locks there.
package riskcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/domain/risk"
	"github.com/paygate/paygate/internal/policydoc"
	"github.com/paygate/paygate/internal/signature"
	"github.com/paygate/paygate/internal/store"
)

// Config configures risk control in a process. RulesFile, ServiceURL and
// ServiceKey are settings: their variables and help are their tags
// (internal/settings). Without rules stored (`paygate risk apply`) or a
// rules file, risk control is off: every request is allowed, nothing is
// counted.
type Config struct {
	// RulesFile, if set, is applied when the process starts and whenever
	// it changes, as the routing policy file is.
	RulesFile string `env:"PAYGATE_RISK_RULES_FILE" help:"none: rules applied with paygate risk apply; else this file, applied at\nstart and whenever it changes, a bad one refused and logged; no rules: risk control off"`
	// Seed, if set, is stored as the first version when none is stored
	// (a built-in document, as the routing policy's seed is).
	Seed []byte
	// ServiceURL is the outside risk service; "" calls none. The rules'
	// "outside" section says whether and how it is used.
	ServiceURL string `env:"PAYGATE_RISK_SERVICE_URL" help:"none: the outside risk service, asked when the rules have an outside section"`
	// ServiceKey, if set, signs each call as the mall signs its calls to
	// paygate (X-Paygate-Key-Id, X-Paygate-Timestamp,
	// X-Paygate-Signature), so that the service can tell it is paygate.
	ServiceKey ServiceKey `env:"PAYGATE_RISK_SERVICE_KEY" secret:"true" help:"none: id:secret signing the calls to the outside risk service"`
	// Concurrency bounds the calls in flight at once. Default 64.
	Concurrency int
	// Member names this process in the audit of a file it applies.
	Member string
	// Poll is how often the newest stored rules are looked up. Default 1s.
	Poll time.Duration
	// Client is the HTTP client of the outside service. Default: one with
	// no overall timeout (each call's is the rules' outside.timeout).
	Client *http.Client
}

// ServiceKey signs the calls to the outside risk service: a key id and
// its secret. Its text (PAYGATE_RISK_SERVICE_KEY) is id:secret.
type ServiceKey struct {
	ID, Secret string
}

// UnmarshalText reads id:secret; an error does not print it.
func (k *ServiceKey) UnmarshalText(b []byte) error {
	id, secret, ok := strings.Cut(string(b), ":")
	if !ok || id == "" || secret == "" {
		return errors.New("not id:secret")
	}
	*k = ServiceKey{ID: id, Secret: secret}
	return nil
}

// Checker is risk control's state in one process; safe for concurrent
// use. It implements payinit.Risk.
type Checker struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	doc     *policydoc.Watcher[*risk.Rules]
	rules   atomic.Pointer[risk.Rules]
	wg      sync.WaitGroup
}

// New builds a checker; Start puts the rules in force.
func New(cfg Config, st policydoc.Store, log *slog.Logger, m *Metrics) (*Checker, error) {
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 64
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment,
			DialContext:  (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}}
	}
	c := &Checker{cfg: cfg, log: log.With("component", "risk"), metrics: m}
	var err error
	c.doc, err = policydoc.New(policydoc.Config[*risk.Rules]{
		Kind: store.DocRisk, Label: "risk rules",
		Parse: risk.Parse,
		InForce: func(version int64, r *risk.Rules) {
			r.Version = version
			c.rules.Store(r)
		},
		File: cfg.RulesFile, Seed: cfg.Seed, Member: cfg.Member, Poll: cfg.Poll,
		ReloadErrors: m.reloadErrors, Version: m.version,
	}, st, c.log)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Start puts the rules in force (the file, the seed, the newest stored
// version) and keeps them so until ctx ends.
func (c *Checker) Start(ctx context.Context) error {
	if err := c.doc.Start(ctx); err != nil {
		return fmt.Errorf("risk rules: %w", err)
	}
	if r := c.rules.Load(); r != nil && r.Outside != nil && c.cfg.ServiceURL == "" {
		c.log.Warn("the risk rules have an outside section, but no PAYGATE_RISK_SERVICE_URL is set: no outside service is asked")
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.doc.Run(ctx)
	}()
	return nil
}

// Wait waits for the background work to end (after Start's ctx ended).
func (c *Checker) Wait() { c.wg.Wait() }

// Validate parses a rules document as it would be put in force.
func (c *Checker) Validate(doc []byte) error { return c.doc.Validate(doc) }

// Rules are the rules in force; nil while none is stored (risk control
// off). The outside section is dropped when no service is configured.
func (c *Checker) Rules() *risk.Rules {
	r := c.rules.Load()
	if r != nil && r.Outside != nil && c.cfg.ServiceURL == "" {
		cp := *r
		cp.Outside = nil
		return &cp
	}
	return r
}

// LargeRefund reports whether a refund of amount is a risk event under
// the rules in force (none: never).
func (c *Checker) LargeRefund(amount domain.Money) bool {
	return c.rules.Load().LargeRefund(amount.Minor(), amount.Currency().Code())
}

// Decided counts decisions by outcome and by matched rule.
func (c *Checker) Decided(as []risk.Assessment) {
	for _, a := range as {
		c.metrics.decisions.WithLabelValues(a.Decision.String()).Inc()
		for _, m := range a.Matched {
			c.metrics.matches.WithLabelValues(m.Rule, a.Decision.String()).Inc()
		}
	}
}

// Metrics are risk control's metrics.
func (c *Checker) Metrics() *Metrics { return c.metrics }

// OutsideRequest is what paygate sends the outside risk service (POST,
// JSON): the pay request as risk control sees it, our score from the
// rules that need no counts (velocity is counted later, in the planning
// transaction) and the rules that matched.
type OutsideRequest struct {
	risk.Request
	RulesVersion int64    `json:"rules_version"`
	Score        int      `json:"score"`
	Matched      []string `json:"matched"`
}

// Ask calls the outside service for each request, concurrently (at most
// Concurrency at once), each within rules.Outside.Timeout. A call that
// fails, times out, answers other than 2xx or unreadably is returned with
// no Answer and its error: the rules' failure policy decides. Nothing is
// asked (all nil) without a service or an outside section.
func (c *Checker) Ask(ctx context.Context, rules *risk.Rules, reqs []risk.Request, pres []risk.Assessment) []*risk.Outside {
	out := make([]*risk.Outside, len(reqs))
	if c.cfg.ServiceURL == "" || rules == nil || rules.Outside == nil {
		return out
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, c.cfg.Concurrency)
	for i := range reqs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = c.ask(ctx, rules, reqs[i], pres[i])
		}()
	}
	wg.Wait()
	return out
}

func (c *Checker) ask(ctx context.Context, rules *risk.Rules, req risk.Request, pre risk.Assessment) *risk.Outside {
	body, _ := json.Marshal(OutsideRequest{Request: req, RulesVersion: rules.Version, Score: pre.Score, Matched: pre.RuleIDs()})
	o := &risk.Outside{URL: c.cfg.ServiceURL, Request: string(body), StartedAt: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, rules.Outside.Timeout)
	defer cancel()
	fail := func(reason string, err error) *risk.Outside {
		o.Error = err.Error()
		o.Latency = time.Since(o.StartedAt)
		o.LatencyMS = float64(o.Latency.Microseconds()) / 1000
		c.metrics.outsideErrors.WithLabelValues(reason).Inc()
		c.metrics.outsideLatency.Observe(o.Latency.Seconds())
		c.log.Warn("outside risk service failed", "order_id", req.OrderID, "reason", reason, "err", err, "latency", o.Latency)
		return o
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.ServiceURL, bytes.NewReader(body))
	if err != nil {
		return fail("request", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	if c.cfg.ServiceKey.Secret != "" {
		ts := time.Now().Unix()
		hr.Header.Set("X-Paygate-Key-Id", c.cfg.ServiceKey.ID)
		hr.Header.Set("X-Paygate-Timestamp", strconv.FormatInt(ts, 10))
		hr.Header.Set("X-Paygate-Signature", signature.Header([]byte(c.cfg.ServiceKey.Secret), ts, body))
	}
	resp, err := c.cfg.Client.Do(hr)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fail("timeout", fmt.Errorf("no answer within %s: %w", rules.Outside.Timeout, err))
		}
		return fail("error", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	o.Status, o.Response = resp.StatusCode, string(b)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fail("timeout", fmt.Errorf("answer not read within %s: %w", rules.Outside.Timeout, err))
		}
		return fail("error", err)
	}
	if resp.StatusCode/100 != 2 {
		return fail("status", fmt.Errorf("answered %s", resp.Status))
	}
	a, err := risk.ParseAnswer(b)
	if err != nil {
		return fail("unreadable", err)
	}
	o.Latency = time.Since(o.StartedAt)
	o.LatencyMS = float64(o.Latency.Microseconds()) / 1000
	o.Answer, o.Decision, o.Points, o.Reason = &a, a.Decision.String(), a.Points, a.Reason
	c.metrics.outsideLatency.Observe(o.Latency.Seconds())
	return o
}

// Metrics are risk control's counters and gauges.
type Metrics struct {
	decisions      *prometheus.CounterVec
	matches        *prometheus.CounterVec
	outsideLatency prometheus.Histogram
	outsideErrors  *prometheus.CounterVec
	reloadErrors   prometheus.Counter
	version        prometheus.Gauge
	reviewsPending prometheus.Gauge
	reviewOldest   prometheus.Gauge
	reviewsExpired prometheus.Counter
}

// NewMetrics registers risk control's metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_risk_decisions_total",
			Help: "Risk decisions on pay requests, by decision (allow, review, deny)."}, []string{"decision"}),
		matches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_risk_rule_matches_total",
			Help: "Risk rules that matched a pay request, by rule id and the decision taken."}, []string{"rule", "decision"}),
		outsideLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "paygate_risk_outside_seconds",
			Help: "Latency of the outside risk service's calls, failed ones included.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		outsideErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_risk_outside_errors_total",
			Help: "Outside risk service calls that failed, by reason (timeout, error, status, unreadable, request); the rules' on_failure decided."},
			[]string{"reason"}),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "paygate_risk_rules_reload_errors_total",
			Help: "Risk rules refused on reload (a bad file, or a stored version that does not validate); the rules in force stay."}),
		version: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paygate_risk_rules_version",
			Help: "The version of the risk rules in force (0: none stored, risk control off)."}),
		reviewsPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paygate_risk_reviews_pending",
			Help: "Pay requests waiting in the risk review queue (set by the sweeper)."}),
		reviewOldest: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paygate_risk_review_oldest_seconds",
			Help: "Age of the oldest pay request in the risk review queue, 0 if none (set by the sweeper)."}),
		reviewsExpired: prometheus.NewCounter(prometheus.CounterOpts{Name: "paygate_risk_reviews_expired_total",
			Help: "Reviews no operator decided in time, ended by their rules' default."}),
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.matches, m.outsideLatency, m.outsideErrors, m.reloadErrors, m.version,
			m.reviewsPending, m.reviewOldest, m.reviewsExpired)
	}
	return m
}

// ReviewQueue sets the review queue's gauges.
func (m *Metrics) ReviewQueue(q store.ReviewQueue) {
	m.reviewsPending.Set(float64(q.Pending))
	m.reviewOldest.Set(q.Oldest.Seconds())
}

// Expired counts reviews ended by their expiry.
func (m *Metrics) Expired(n int) { m.reviewsExpired.Add(float64(n)) }
