package psp

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/domain"
)

// Metrics count PSP calls by channel, operation and outcome.
type Metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	verify   *prometheus.CounterVec
}

// NewMetrics creates and registers the PSP metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_psp_calls_total",
			Help: "PSP API calls by channel, operation and outcome (ok, temporary, permanent)."}, []string{"channel", "operation", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paygate_psp_call_seconds",
			Help: "PSP API call latency.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}, []string{"channel", "operation"}),
		verify: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_psp_callbacks_verified_total",
			Help: "Callbacks parsed, by channel and result (ok, bad_signature, stale, malformed)."}, []string{"channel", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.duration, m.verify)
	}
	return m
}

// Instrument wraps a channel so that every operation is measured.
func Instrument(c Channel, m *Metrics) Channel { return &instrumented{Channel: c, m: m} }

type instrumented struct {
	Channel
	m *Metrics
}

func (i *instrumented) observe(op string, start time.Time, err error) {
	outcome := "ok"
	switch {
	case err == nil:
	case IsTemporary(err):
		outcome = "temporary"
	default:
		outcome = "permanent"
	}
	i.m.calls.WithLabelValues(i.Name(), op, outcome).Inc()
	i.m.duration.WithLabelValues(i.Name(), op).Observe(time.Since(start).Seconds())
}

func (i *instrumented) Initiate(ctx context.Context, req InitiateRequest) (s Session, err error) {
	defer func(t time.Time) { i.observe("initiate", t, err) }(time.Now())
	return i.Channel.Initiate(ctx, req)
}

func (i *instrumented) Query(ctx context.Context, code string) (n domain.Notification, err error) {
	defer func(t time.Time) { i.observe("query", t, err) }(time.Now())
	return i.Channel.Query(ctx, code)
}

// QueryByReference measures the wrapped channel's reference query, or its
// plain Query when it needs no reference: wrapping must not hide it.
func (i *instrumented) QueryByReference(ctx context.Context, code, ref string) (n domain.Notification, err error) {
	defer func(t time.Time) { i.observe("query", t, err) }(time.Now())
	return QueryAttempt(ctx, i.Channel, code, ref)
}

func (i *instrumented) Refund(ctx context.Context, req RefundRequest) (r RefundResult, err error) {
	defer func(t time.Time) { i.observe("refund", t, err) }(time.Now())
	return i.Channel.Refund(ctx, req)
}

func (i *instrumented) QueryRefund(ctx context.Context, ref string) (r RefundResult, err error) {
	defer func(t time.Time) { i.observe("query_refund", t, err) }(time.Now())
	return i.Channel.QueryRefund(ctx, ref)
}

// QueryRefundByReference measures the wrapped channel's refund query by
// reference, or its plain QueryRefund: wrapping must not hide it.
func (i *instrumented) QueryRefundByReference(ctx context.Context, q RefundQuery) (r RefundResult, err error) {
	defer func(t time.Time) { i.observe("query_refund", t, err) }(time.Now())
	return QueryRefundOf(ctx, i.Channel, q)
}

func (i *instrumented) SettledPayments(ctx context.Context, day time.Time, page string) (p SettlementPage, err error) {
	defer func(t time.Time) { i.observe("settled_payments", t, err) }(time.Now())
	return i.Channel.SettledPayments(ctx, day, page)
}

func (i *instrumented) ParseCallback(cb domain.Callback) (domain.Notification, error) {
	n, err := i.Channel.ParseCallback(cb)
	i.verified(err)
	return n, err
}

// ParseRefundCallback forwards to the wrapped channel's refund callback
// parser (ErrNotRefundCallback when it has none): wrapping must not hide
// it. A callback that is not about a refund is not counted here; its
// ParseCallback counts it.
func (i *instrumented) ParseRefundCallback(cb domain.Callback) (RefundResult, error) {
	r, err := parseRefund(i.Channel, cb)
	if !errors.Is(err, ErrNotRefundCallback) {
		i.verified(err)
	}
	return r, err
}

func (i *instrumented) verified(err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, ErrBadSignature):
		result = "bad_signature"
	case errors.Is(err, ErrStale):
		result = "stale"
	default:
		result = "malformed"
	}
	i.m.verify.WithLabelValues(i.Name(), result).Inc()
}
