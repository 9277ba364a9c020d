package recon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/promtest"
	"github.com/paygate/paygate/schemas"
)

func example(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../schemas/examples/recon-record", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeStore records what the handler stores and answers with done.
type fakeStore struct {
	got  []domain.ReconMessage
	done []domain.MatchedRun
	err  error
}

func (s *fakeStore) StoreReconMessages(_ context.Context, msgs []domain.ReconMessage, _ domain.MatchPlan) ([]domain.MatchedRun, error) {
	s.got = append(s.got, msgs...)
	return s.done, s.err
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// A record and a side's end decode into domain messages; what is not a
// reconciliation record is rejected for good, and the rest of the batch
// is stored.
func TestHandleDecodesAndRejects(t *testing.T) {
	t.Parallel()
	st := &fakeStore{}
	h := New(st, quiet(), nil)
	batch := []kafka.Message{
		{Value: example(t, "psp-row.json")},
		{Value: []byte(`{"type": "record"}`)},
		{Value: example(t, "psp-end.json")},
		{Value: []byte(`not json`)},
	}
	rejects, err := h.Handle(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(rejects) != 2 || rejects[0].Index != 1 || rejects[1].Index != 3 || !consumers.IsPermanent(rejects[0].Err) {
		t.Fatalf("rejects = %+v, want messages 1 and 3, permanent", rejects)
	}
	want := []domain.ReconMessage{
		{RunID: "rr-sim-2026-03-10-01JDQ6", Side: "psp", Seq: 0, Record: domain.ReconRecord{Item: domain.ReconPayment,
			Ref: "T260310120000123ABCDEFGH", PSPReference: "sp_9f8e7d6c5b4a", Amount: domain.MustMoney(1999, "USD"),
			Status: domain.PSPSucceeded, Day: "2026-03-10", At: time.Date(2026, 3, 10, 12, 0, 1, 0, time.UTC)}},
		{RunID: "rr-sim-2026-03-10-01JDQ6", Side: "psp", End: true, Count: 10000,
			PSPDays: []string{"2026-03-08", "2026-03-09", "2026-03-10", "2026-03-11", "2026-03-12"}},
	}
	// Domain values keep their fields unexported: compare them whole.
	all := cmp.Exporter(func(reflect.Type) bool { return true })
	if d := cmp.Diff(want, st.got, all); d != "" {
		t.Errorf("stored (-want +got):\n%s", d)
	}
}

// A record of a run paygate does not hold fails the batch permanently
// (the runner isolates it); any other store error is retryable.
func TestHandleStoreErrors(t *testing.T) {
	t.Parallel()
	batch := []kafka.Message{{Value: example(t, "psp-row.json")}}
	_, err := New(&fakeStore{err: domain.ErrUnknownReconRun}, quiet(), nil).Handle(context.Background(), batch)
	if !consumers.IsPermanent(err) || !errors.Is(err, domain.ErrUnknownReconRun) {
		t.Errorf("unknown run: %v, want a permanent error", err)
	}
	_, err = New(&fakeStore{err: errors.New("connection refused")}, quiet(), nil).Handle(context.Background(), batch)
	if err == nil || consumers.IsPermanent(err) {
		t.Errorf("store down: %v, want a retryable error", err)
	}
	rejects, err := New(&fakeStore{}, quiet(), nil).Handle(context.Background(), []kafka.Message{{Value: []byte("{}")}})
	if err != nil || len(rejects) != 1 {
		t.Errorf("only bad records: %v, %v; want one rejection and no store call", rejects, err)
	}
}

// A matched run is counted: its new mismatches by kind, its heal probes,
// the run by whether its window closed, and what it holds back.
func TestHandleCountsMatchedRuns(t *testing.T) {
	t.Parallel()
	closes := time.Date(2026, 3, 12, 0, 0, 0, 0, time.UTC)
	run := domain.ReconRun{RunID: "r1", Channel: "sim", Day: "2026-03-10", Status: domain.ReconDone, AsOf: closes, WindowCloses: closes}
	st := &fakeStore{done: []domain.MatchedRun{{Run: run, Result: domain.ReconResult{Matched: 9, Held: 2},
		New: []domain.Mismatch{{Kind: domain.MismatchMissingAtGateway, Item: domain.ReconPayment, Ref: "T1"},
			{Kind: domain.MismatchAmount, Item: domain.ReconPayment, Ref: "T2"}}, Probes: 1}}}
	reg := prometheus.NewRegistry()
	if _, err := New(st, quiet(), reg).Handle(context.Background(), []kafka.Message{{Value: example(t, "psp-end.json")}}); err != nil {
		t.Fatal(err)
	}
	promtest.Equal(t, promtest.Counters(t, reg), map[string]float64{
		`paygate_recon_mismatches_total{channel="sim",kind="missing_at_gateway"}`: 1,
		`paygate_recon_mismatches_total{channel="sim",kind="amount_mismatch"}`:    1,
		`paygate_recon_heal_probes_total{channel="sim"}`:                          1,
		`paygate_recon_runs_total{channel="sim",final="true"}`:                    1,
	})
	promtest.Equal(t, promtest.Gauges(t, reg), map[string]float64{`paygate_recon_held{channel="sim"}`: 2})
}

// A finding's event is published once per channel-day, kind, item and
// reference (its id), keyed by channel and day, with the heal decided.
func TestFoundAndProbeEvents(t *testing.T) {
	t.Parallel()
	run := domain.ReconRun{RunID: "r1", Channel: "sim", Day: "2026-03-10"}
	ours := domain.ReconRecord{Item: domain.ReconPayment, Ref: "T1", PSPReference: "sp_1", Amount: domain.MustMoney(100, "USD")}
	ev, err := found(run, domain.Mismatch{Kind: domain.MismatchMissingAtPSP, Item: domain.ReconPayment, Ref: "T1", Ours: &ours, Detail: "d"}, domain.HealUndecided)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "recon.mismatch/sim/2026-03-10/missing_at_psp/payment/T1" || ev.Key != "sim/2026-03-10" ||
		ev.Topic != schemas.TopicReconMismatches || ev.Type != schemas.TypeReconMismatch {
		t.Errorf("found event %+v", ev)
	}
	if err := schemas.Validate(schemas.ReconMismatchSchema, ev.Payload); err != nil {
		t.Errorf("found event payload: %v", err)
	}
	p, err := probe(run, "T9")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := schemas.DecodeRawCallback(p.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "recon-probe/sim/T9" || p.Key != "sim/T9" || p.Topic != schemas.TopicPSPCallbacks || raw.TransactionCode != "T9" || raw.ID != p.ID {
		t.Errorf("probe %+v (%+v)", p, raw)
	}
}
