package promtest_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/internal/promtest"
)

// Two series of one name differing in their second label keep their own
// values, keyed by every label.
func TestSeriesKeyedByEveryLabel(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "c"}, []string{"group", "outcome"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "g"})
	reg.MustRegister(c, g)
	c.WithLabelValues("payinit", "ok").Add(3)
	c.WithLabelValues("payinit", "dlq").Add(1)
	g.Set(2)
	promtest.Equal(t, promtest.Counters(t, reg), map[string]float64{
		`c_total{group="payinit",outcome="ok"}`:  3,
		`c_total{group="payinit",outcome="dlq"}`: 1,
	})
	promtest.Equal(t, promtest.Gauges(t, reg), map[string]float64{"g": 2})
	if k := promtest.Key("m", "b", "2", "a", "1"); k != `m{a="1",b="2"}` {
		t.Errorf("Key = %s", k)
	}
}
