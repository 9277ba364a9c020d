// Package promtest reads metrics back from a Prometheus registry, for
// tests that assert what a component exports.
//
// A series is keyed as Prometheus writes it: its name and every label,
// sorted by label name, `name{a="x",b="y"}` (just `name` without
// labels), so two series of one name never share a key.
package promtest

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Gauges gathers g and returns the value of every gauge series, keyed
// by Key.
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

// Key is a series' key: name and labels as in the exposition format,
// labels sorted by name (Key("m", "b", "2", "a", "1") is `m{a="1",b="2"}`).
// labels are name, value pairs.
func Key(name string, labels ...string) string {
	ls := make([]*dto.LabelPair, 0, len(labels)/2)
	for i := 0; i+1 < len(labels); i += 2 {
		ls = append(ls, &dto.LabelPair{Name: &labels[i], Value: &labels[i+1]})
	}
	return key(name, ls)
}

func key(name string, ls []*dto.LabelPair) string {
	if len(ls) == 0 {
		return name
	}
	sorted := make([]*dto.LabelPair, len(ls))
	copy(sorted, ls)
	for i := 1; i < len(sorted); i++ { // a handful of labels: insertion sort
		for j := i; j > 0 && sorted[j].GetName() < sorted[j-1].GetName(); j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, l := range sorted {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.GetName())
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.GetValue()))
	}
	b.WriteByte('}')
	return b.String()
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
			got[key(mf.GetName(), m.GetLabel())] = v
		}
	}
	return got
}

// Equal reports, as a test error showing the difference, every series
// got and want disagree on: a value that differs, one missing, one not
// wanted.
func Equal(t testing.TB, got, want map[string]float64) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("series differ (-want +got):\n%s", d)
	}
}
