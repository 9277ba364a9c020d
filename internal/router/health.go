package router

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/domain/routing"
)

// Metrics are the router's counters (the gauges of health are collected
// from the view at scrape time: Router is a prometheus.Collector).
type Metrics struct {
	decisions    *prometheus.CounterVec
	failovers    *prometheus.CounterVec
	feedback     *prometheus.CounterVec
	reloadErrors prometheus.Counter
	version      prometheus.Gauge
}

// NewMetrics registers the router's counters with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_routing_decisions_total",
			Help: "Routing decisions, by segment, chosen channel and reason (pin, weight, priority, score, exploration, control, probe, all_open, failover)."},
			[]string{"segment", "channel", "reason"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_routing_failovers_total",
			Help: "Pay requests moved to another channel because Initiate failed, by segment and the channels from and to."},
			[]string{"segment", "from", "to"}),
		feedback: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_routing_feedback_total",
			Help: "Routing feedback folded into this process's health, by outcome (unreadable: skipped)."},
			[]string{"outcome"}),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "paygate_routing_policy_reload_errors_total",
			Help: "Routing policies refused on reload (a bad file, or a stored version naming a channel no longer configured); the policy in force stays."}),
		version: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paygate_routing_policy_version",
			Help: "The version of the routing policy in force (0: the default, none stored)."}),
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.failovers, m.feedback, m.reloadErrors, m.version)
	}
	return m
}

// HealthRow is one channel in one segment of the policy in force: what
// GET /v1/routing/health and `paygate routing health` show.
type HealthRow struct {
	Channel string `json:"channel"`
	Segment string `json:"segment"`
	// SuccessRate is the discounted success rate, nil without outcomes.
	SuccessRate *float64 `json:"success_rate"`
	// Samples counts the resolved outcomes behind it (the last window).
	Samples int `json:"samples"`
	// Breaker is closed, open or half_open; BreakerReason why it opened.
	Breaker       string     `json:"breaker"`
	BreakerReason string     `json:"breaker_reason,omitempty"`
	OpenUntil     *time.Time `json:"open_until,omitempty"`
	// Share is the channel's current share of the segment's traffic.
	Share float64 `json:"share"`
	// Pending counts the started attempts whose outcome is still to come;
	// Abandoned the discounted abandonments, kept apart from the rate.
	Pending   int     `json:"pending"`
	Abandoned float64 `json:"abandoned"`
	// Initiates and InitiateFailures are within the breaker's window.
	Initiates        int `json:"initiates"`
	InitiateFailures int `json:"initiate_failures"`
}

// Health is every candidate of every segment of the policy in force, with
// its health and share now.
func (r *Router) Health() []HealthRow {
	r.refreshIfStale()
	p, v := r.policy.Load(), r.view.Load()
	var rows []HealthRow
	for _, seg := range p.Segments {
		shares, err := routing.Shares(p, seg.Name, v)
		if err != nil {
			continue
		}
		for _, sc := range shares {
			st := v.Arm(sc.Channel, seg.Name)
			row := HealthRow{Channel: sc.Channel, Segment: seg.Name, Samples: st.Resolved, Breaker: st.Breaker.State.String(),
				BreakerReason: st.Breaker.Reason, Share: math.Round(sc.Propensity*1e4) / 1e4, Pending: st.Pending,
				Abandoned: math.Round(st.Abandoned*100) / 100, Initiates: st.Breaker.Requests, InitiateFailures: st.Breaker.Failures}
			if st.SuccessRate >= 0 {
				sr := math.Round(st.SuccessRate*1e4) / 1e4
				row.SuccessRate = &sr
			}
			if st.Breaker.State == routing.BreakerOpen && !st.Breaker.Until.IsZero() {
				u := st.Breaker.Until.UTC()
				row.OpenUntil = &u
			}
			rows = append(rows, row)
		}
	}
	return rows
}

var (
	descSuccess = prometheus.NewDesc("paygate_routing_success_ratio",
		"Discounted success rate of a channel in a segment (paid over paid, declined and Initiate failures; abandoned apart); absent without outcomes.",
		[]string{"segment", "channel"}, nil)
	descSamples = prometheus.NewDesc("paygate_routing_samples",
		"Resolved outcomes behind the success ratio (the last window).", []string{"segment", "channel"}, nil)
	descBreaker = prometheus.NewDesc("paygate_routing_breaker_state",
		"A channel's breaker in a segment: 0 closed, 1 half-open, 2 open.", []string{"segment", "channel"}, nil)
	descShare = prometheus.NewDesc("paygate_routing_share",
		"A channel's current share of a segment's traffic.", []string{"segment", "channel"}, nil)
	descPending = prometheus.NewDesc("paygate_routing_pending",
		"Started attempts whose outcome has not come back yet (delayed feedback).", []string{"segment", "channel"}, nil)
)

// Describe implements prometheus.Collector.
func (r *Router) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSuccess, descSamples, descBreaker, descShare, descPending} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the health of the policy's
// channels, from the current view.
func (r *Router) Collect(ch chan<- prometheus.Metric) {
	for _, h := range r.Health() {
		if h.SuccessRate != nil {
			ch <- prometheus.MustNewConstMetric(descSuccess, prometheus.GaugeValue, *h.SuccessRate, h.Segment, h.Channel)
		}
		state := 0.0
		switch h.Breaker {
		case routing.BreakerHalfOpen.String():
			state = 1
		case routing.BreakerOpen.String():
			state = 2
		}
		ch <- prometheus.MustNewConstMetric(descSamples, prometheus.GaugeValue, float64(h.Samples), h.Segment, h.Channel)
		ch <- prometheus.MustNewConstMetric(descBreaker, prometheus.GaugeValue, state, h.Segment, h.Channel)
		ch <- prometheus.MustNewConstMetric(descShare, prometheus.GaugeValue, h.Share, h.Segment, h.Channel)
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(h.Pending), h.Segment, h.Channel)
	}
}
