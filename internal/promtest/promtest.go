// Package promtest reads metrics back from a Prometheus registry, for
// tests that assert what a component exports.
package promtest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Gauges gathers g and returns the value of every gauge series, keyed
// "<name>/<first label's value>" ("<name>" for a series without labels).
func Gauges(t testing.TB, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	return values(t, g, func(m *dto.Metric) (float64, bool) {
		return m.GetGauge().GetValue(), m.GetGauge() != nil
	})
}

// Counters is Gauges for the counter series.
func Counters(t testing.TB, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	return values(t, g, func(m *dto.Metric) (float64, bool) {
		return m.GetCounter().GetValue(), m.GetCounter() != nil
	})
}

func values(t testing.TB, g prometheus.Gatherer, value func(*dto.Metric) (float64, bool)) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v, ok := value(m)
			if !ok {
				continue
			}
			key := mf.GetName()
			if ls := m.GetLabel(); len(ls) > 0 {
				key += "/" + ls[0].GetValue()
			}
			got[key] = v
		}
	}
	return got
}

// Equal reports, as test errors, every series got and want disagree on:
// a value that differs, one missing, one not wanted.
func Equal(t testing.TB, got, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s = %v, not wanted", k, v)
		}
	}
}
