package sweeper

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/schemas"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// fakeStore hands out due probes in rounds of at most limit, records the
// plans made for them and the cutoffs asked for.
type fakeStore struct {
	due     []domain.DueProbe
	planned []planned
	claims  []time.Duration // firstAfter of each call
	cutoffs []time.Time
	err     error
}

type planned struct {
	next  time.Time
	probe domain.Event
}

func (s *fakeStore) ClaimProbes(_ context.Context, _ time.Time, firstAfter, _ time.Duration, limit int,
	plan func(p domain.DueProbe) (time.Time, domain.Event)) (int, error) {
	s.claims = append(s.claims, firstAfter)
	if s.err != nil {
		return 0, s.err
	}
	n := min(limit, len(s.due))
	for _, p := range s.due[:n] {
		next, ev := plan(p)
		s.planned = append(s.planned, planned{next, ev})
	}
	s.due = s.due[n:]
	return n, nil
}

func (s *fakeStore) CloseAbandonedOrders(_ context.Context, cutoff time.Time, _ int) (int, error) {
	s.cutoffs = append(s.cutoffs, cutoff)
	return 0, s.err
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func due(code string, probes int, expires time.Time) domain.DueProbe {
	a := domain.RestoreAttempt(code, "A-"+code, "sim", domain.MustMoney(100, "USD"), domain.AttemptPending, "", "")
	return domain.DueProbe{Attempt: a, Probes: probes, ExpiresAt: expires}
}

// A probe is a status-probe raw callback on the callbacks topic, keyed
// channel/code, with an id per attempt and probe number; the next is due
// after the schedule's next step (the last repeating); a probe at or past
// the attempt's expiry asks to expire it if still unpaid.
func TestPlanProbes(t *testing.T) {
	t.Parallel()
	st := &fakeStore{due: []domain.DueProbe{
		due("T1", 0, t0.Add(time.Hour)),
		due("T2", 1, t0.Add(time.Hour)),
		due("T3", 7, t0), // at its expiry
	}}
	s := New(Config{Schedule: []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute}, Now: func() time.Time { return t0 }},
		st, nil, quiet(), nil)
	s.Round(context.Background())
	if len(st.planned) != 3 {
		t.Fatalf("%d probes planned, want 3", len(st.planned))
	}
	type got struct {
		Next                 time.Time
		ID, Type, Topic, Key string
		Raw                  schemas.RawCallback
	}
	var gots []got
	for _, p := range st.planned {
		raw, err := schemas.DecodeRawCallback(p.probe.Payload)
		if err != nil {
			t.Fatalf("probe %s: %v", p.probe.ID, err)
		}
		gots = append(gots, got{p.next, p.probe.ID, p.probe.Type, p.probe.Topic, p.probe.Key, raw})
	}
	probe := func(id, code string, expire bool) schemas.RawCallback {
		return schemas.RawCallback{ID: id, Channel: "sim", Kind: domain.CallbackStatusProbe.String(), ReceivedAt: t0, TransactionCode: code, ExpireIfUnpaid: expire}
	}
	want := []got{
		{t0.Add(5 * time.Minute), "probe/T1/1", schemas.TypePSPCallback, schemas.TopicPSPCallbacks, "sim/T1", probe("probe/T1/1", "T1", false)},
		{t0.Add(15 * time.Minute), "probe/T2/2", schemas.TypePSPCallback, schemas.TopicPSPCallbacks, "sim/T2", probe("probe/T2/2", "T2", false)},
		{t0.Add(15 * time.Minute), "probe/T3/8", schemas.TypePSPCallback, schemas.TopicPSPCallbacks, "sim/T3", probe("probe/T3/8", "T3", true)},
	}
	if d := cmp.Diff(want, gots); d != "" {
		t.Errorf("probes (-want +got):\n%s", d)
	}
}

// A round claims until a claim comes back short of the batch, closes the
// orders older than OrderTTL, and runs every task; an error is logged and
// the round goes on to the rest.
func TestRoundClaimsUntilShortClosesAndRunsTasks(t *testing.T) {
	t.Parallel()
	st := &fakeStore{}
	for i := range 5 {
		st.due = append(st.due, due("T"+string(rune('A'+i)), 0, t0.Add(time.Hour)))
	}
	ran := map[string]int{}
	tasks := map[string]Task{
		"ok":     func(context.Context) (int, error) { ran["ok"]++; return 1, nil },
		"broken": func(context.Context) (int, error) { ran["broken"]++; return 0, errors.New("down") },
	}
	s := New(Config{Batch: 2, OrderTTL: 24 * time.Hour, Now: func() time.Time { return t0 }}, st, tasks, quiet(), nil)
	s.Round(context.Background())
	if len(st.claims) != 3 || len(st.planned) != 5 {
		t.Errorf("%d claims for %d probes, want 3 claims (2, 2, 1) for 5", len(st.claims), len(st.planned))
	}
	if d := cmp.Diff([]time.Duration{time.Minute, time.Minute, time.Minute}, st.claims); d != "" {
		t.Errorf("first probe after (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]time.Time{t0.Add(-24 * time.Hour)}, st.cutoffs); d != "" {
		t.Errorf("close cutoffs (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]int{"ok": 1, "broken": 1}, ran); d != "" {
		t.Errorf("tasks run (-want +got):\n%s", d)
	}

	// A failing store: the round logs, still closes orders and runs tasks.
	failing := &fakeStore{err: errors.New("database down")}
	New(Config{Now: func() time.Time { return t0 }}, failing, tasks, quiet(), nil).Round(context.Background())
	if len(failing.claims) != 1 || len(failing.cutoffs) != 1 || ran["ok"] != 2 {
		t.Errorf("with the store down: %d claims, %d closes, tasks %v; want one each and the tasks run", len(failing.claims), len(failing.cutoffs), ran)
	}
}

// The defaults are the documented ones.
func TestDefaults(t *testing.T) {
	t.Parallel()
	var c Config
	c.defaults()
	if c.Interval != time.Second || c.AttemptTTL != 30*time.Minute || c.OrderTTL != 24*time.Hour || c.Batch != 500 ||
		!cmp.Equal(c.Schedule, []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour}) || c.Now == nil {
		t.Errorf("defaults = %+v", c)
	}
}
