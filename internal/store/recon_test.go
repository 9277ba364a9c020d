package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/pgtest"
	"github.com/paygate/paygate/internal/store"
)

const rday = "2026-03-10"

func reconDB(t testing.TB) (*store.Store, *sql.DB) {
	t.Helper()
	url := pgtest.New(t)
	s, err := store.Open(context.Background(), store.Config{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return s, db
}

// paid writes n paid attempts T0..Tn-1 of 1000 USD paid at noon of rday,
// and a pending attempt P1 (the buyer paid, the callbacks were lost).
func paid(t testing.TB, db *sql.DB, n int) {
	t.Helper()
	for _, q := range []string{
		`INSERT INTO orders (order_id, amount, currency, country, status, paid_attempt, paid_at)
		 SELECT 'O' || i, 1000, 'USD', 'US', 'paid', 'T' || i, '2026-03-10 12:00:00Z' FROM generate_series(0, $1 - 1) i`,
		`INSERT INTO attempts (transaction_code, order_id, channel, amount, currency, status, psp_reference, paid_at)
		 SELECT 'T' || i, 'O' || i, 'sim', 1000, 'USD', 'paid', 'sp_' || i, '2026-03-10 12:00:00Z' FROM generate_series(0, $1 - 1) i`,
	} {
		if _, err := db.Exec(q, n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := db.Exec(`INSERT INTO orders (order_id, amount, currency, country, status) VALUES ('OP', 500, 'USD', 'US', 'pending');
		INSERT INTO attempts (transaction_code, order_id, channel, amount, currency, status) VALUES ('P1', 'OP', 'sim', 500, 'USD', 'pending')`); err != nil {
		t.Fatal(err)
	}
}

func ev(id string) domain.Event {
	return domain.Event{ID: id, Type: "t", Topic: "paygate.test", Key: "k", Payload: []byte("{}")}
}

// testPlan matches with domain.Reconcile and writes marker events.
var testPlan = domain.MatchPlan{
	Match: func(run domain.ReconRun, ours, psp []domain.ReconRecord) (domain.ReconResult, error) {
		return domain.Reconcile(domain.ReconInput{Day: run.Day, Ours: ours, PSP: psp, WindowClosed: run.WindowComplete()})
	},
	Found: func(run domain.ReconRun, m domain.Mismatch, heal domain.HealState) (domain.Event, error) {
		return ev("found/" + run.Day + "/" + m.Kind.String() + "/" + m.Ref), nil
	},
	Probe: func(run domain.ReconRun, code string) (domain.Event, error) { return ev("probe/" + code), nil },
}

// begin starts a run and returns our side as messages.
func begin(t testing.TB, s *store.Store, runID string) []domain.ReconMessage {
	t.Helper()
	var msgs []domain.ReconMessage
	ok, err := s.BeginReconRun(context.Background(), domain.ReconSpec{RunID: runID, Channel: "sim", Day: rday, Location: time.UTC,
		Tolerance: 1, AsOf: time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)},
		func(run domain.ReconRun, recs []domain.ReconRecord) ([]domain.Event, error) {
			for i, r := range recs {
				msgs = append(msgs, domain.ReconMessage{RunID: run.RunID, Side: domain.ReconSideOurs, Seq: i, Record: r})
			}
			msgs = append(msgs, domain.ReconMessage{RunID: run.RunID, Side: domain.ReconSideOurs, End: true, Count: len(recs)})
			return nil, nil
		})
	if err != nil || !ok {
		t.Fatalf("begin %s: %v, %v", runID, ok, err)
	}
	return msgs
}

func pspMsgs(runID string, recs []domain.ReconRecord) []domain.ReconMessage {
	var msgs []domain.ReconMessage
	for i, r := range recs {
		msgs = append(msgs, domain.ReconMessage{RunID: runID, Side: domain.ReconSidePSP, Seq: i, Record: r})
	}
	return append(msgs, domain.ReconMessage{RunID: runID, Side: domain.ReconSidePSP, End: true, Count: len(recs),
		PSPDays: []string{"2026-03-09", rday, "2026-03-11"}})
}

func pspRec(ref string, minor int64) domain.ReconRecord {
	return domain.ReconRecord{Item: domain.ReconPayment, Ref: ref, PSPReference: "sp_" + ref, Amount: domain.MustMoney(minor, "USD"),
		Status: domain.PSPSucceeded, Day: rday, At: time.Date(2026, 3, 10, 12, 0, 1, 0, time.UTC)}
}

func TestReconRunMatchesOnceHealsOnce(t *testing.T) {
	t.Parallel()
	s, db := reconDB(t)
	ctx := context.Background()
	paid(t, db, 3)
	psp := []domain.ReconRecord{pspRec("T0", 1000), pspRec("T1", 999), pspRec("P1", 500), pspRec("X9", 1)} // T2 missing
	msgs := append(begin(t, s, "r1"), pspMsgs("r1", psp)...)

	// Half the records: nothing is matched yet.
	if done, err := s.StoreReconMessages(ctx, msgs[:3], testPlan); err != nil || len(done) != 0 {
		t.Fatalf("half a run: %v, %v", done, err)
	}
	done, err := s.StoreReconMessages(ctx, msgs[3:], testPlan)
	if err != nil || len(done) != 1 {
		t.Fatalf("rest of the run: %d matched, %v", len(done), err)
	}
	d := done[0]
	if len(d.New) != 4 || d.Probes != 1 || d.Result.Matched != 1 {
		t.Errorf("new %d, probes %d, matched %d; want 4, 1, 1", len(d.New), d.Probes, d.Result.Matched)
	}
	// Redelivery of the whole run: a no-op.
	if done, err := s.StoreReconMessages(ctx, msgs, testPlan); err != nil || len(done) != 0 {
		t.Fatalf("redelivered run: %v, %v", done, err)
	}
	var events int
	_ = db.QueryRow(`SELECT count(*) FROM outbox`).Scan(&events)
	if events != 5 {
		t.Errorf("%d outbox events, want 4 findings and 1 probe", events)
	}

	// A second run of the day: same findings, nothing new, no probe.
	msgs2 := append(begin(t, s, "r2"), pspMsgs("r2", psp)...)
	done, err = s.StoreReconMessages(ctx, msgs2, testPlan)
	if err != nil || len(done) != 1 || len(done[0].New) != 0 || done[0].Probes != 0 {
		t.Fatalf("second run: %+v, %v", done, err)
	}
	ms, err := s.ReconMismatches(ctx, "r2")
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, m := range ms {
		got += m.Kind + ":" + m.Ref + ":" + m.Heal + " "
	}
	if want := "missing_at_psp:T2: missing_at_gateway:P1:probing missing_at_gateway:X9:manual amount_mismatch:T1: "; got != want {
		t.Errorf("mismatches of r2 = %q, want %q", got, want)
	}
	_ = db.QueryRow(`SELECT count(*) FROM outbox`).Scan(&events)
	if events != 5 {
		t.Errorf("%d outbox events after the second run, want still 5", events)
	}

	// P1 is the one finding not healed yet: X9 is left to a person, the
	// other kinds have nothing to heal.
	if un, err := s.ReconUnhealed(ctx); err != nil || len(un) != 1 || un[0].Channel != "sim" || un[0].Count != 1 ||
		time.Since(un[0].Oldest) > time.Minute || time.Since(un[0].Oldest) < 0 {
		t.Fatalf("unhealed before the probe paid P1: %+v, %v", un, err)
	}

	// The probe pays P1: healed, and P1 stays out of our side of later runs.
	if _, err := db.Exec(`UPDATE attempts SET status = 'paid', paid_at = '2026-03-10 12:30:00Z' WHERE transaction_code = 'P1'`); err != nil {
		t.Fatal(err)
	}
	if n, err := s.MarkReconHealed(ctx); err != nil || n["sim"] != 1 {
		t.Fatalf("MarkReconHealed = %v, %v", n, err)
	}
	if un, err := s.ReconUnhealed(ctx); err != nil || len(un) != 0 {
		t.Fatalf("unhealed after P1 was healed: %+v, %v", un, err)
	}
	ours := begin(t, s, "r3")
	if len(ours) != 4 { // T0, T1, T2 and the end: not P1
		t.Errorf("our side of r3 has %d messages, want 4", len(ours))
	}
	if done, err := s.StoreReconMessages(ctx, append(ours, pspMsgs("r3", psp)...), testPlan); err != nil || len(done) != 1 || len(done[0].Result.Mismatches) != 4 {
		t.Fatalf("third run: %+v, %v", done, err)
	}

	// Records of a run nobody began are refused for good.
	if _, err := s.StoreReconMessages(ctx, pspMsgs("nope", nil), testPlan); !errors.Is(err, domain.ErrUnknownReconRun) {
		t.Errorf("unknown run: %v", err)
	}
	runs, err := s.ReconRuns(ctx, store.ReconRunFilter{Channel: "sim", Day: rday, Latest: true})
	if err != nil || len(runs) != 1 || runs[0].RunID != "r3" || !runs[0].WindowClosed || runs[0].Ours.Payments != 3 {
		t.Errorf("latest run = %+v, %v", runs, err)
	}
}

func TestBeginReconRunSlotOnce(t *testing.T) {
	t.Parallel()
	s, _ := reconDB(t)
	spec := domain.ReconSpec{Channel: "sim", Day: rday, Location: time.UTC, Tolerance: 1, AsOf: time.Now(), Slot: "daily", StaleAfter: time.Hour}
	none := func(domain.ReconRun, []domain.ReconRecord) ([]domain.Event, error) { return nil, nil }
	spec.RunID = "a"
	if ok, err := s.BeginReconRun(context.Background(), spec, none); err != nil || !ok {
		t.Fatalf("first: %v, %v", ok, err)
	}
	spec.RunID = "b"
	if ok, err := s.BeginReconRun(context.Background(), spec, none); err != nil || ok {
		t.Fatalf("slot taken, began anyway: %v, %v", ok, err)
	}
	if err := s.AbandonReconRun(context.Background(), "a", "PSP down"); err != nil {
		t.Fatal(err)
	}
	spec.RunID = "c"
	if ok, err := s.BeginReconRun(context.Background(), spec, none); err != nil || !ok {
		t.Fatalf("after the first was abandoned: %v, %v", ok, err)
	}
}

func TestImportSettlementReplacesWhole(t *testing.T) {
	t.Parallel()
	s, _ := reconDB(t)
	ctx := context.Background()
	rows := []store.ImportRow{{Line: 2, Record: pspRec("T1", 100)}, {Line: 3, Record: pspRec("T1", 100)}}
	if err := s.ImportSettlement(ctx, "sim", rday, false, []byte("x"), rows); err != nil {
		t.Fatal(err)
	}
	if err := s.ImportSettlement(ctx, "sim", rday, true, []byte("y"), rows[:1]); err != nil {
		t.Fatal(err)
	}
	recs, refunds, ok, err := s.ImportedSettlement(ctx, "sim", rday)
	if err != nil || !ok || !refunds || len(recs) != 1 || recs[0].Ref != "T1" || recs[0].Day != rday {
		t.Errorf("imported = %+v, %v, %v, %v", recs, refunds, ok, err)
	}
	if _, _, ok, err := s.ImportedSettlement(ctx, "sim", "2026-03-11"); ok || err != nil {
		t.Errorf("a day never imported: %v, %v", ok, err)
	}
}

// BenchmarkReconcile100kStored reconciles a stored day of 100,000 paid
// attempts against a PSP list of as many rows, as the recon group does:
// our side collected from PostgreSQL, both sides stored in batches of
// 5,000, matched and the result stored. It reports the peak heap of the
// process during a run (MB-peak) and the bytes allocated per run (MB/op).
func BenchmarkReconcile100kStored(b *testing.B) {
	const n = 100_000
	s, db := reconDB(b)
	paid(b, db, n)
	psp := make([]domain.ReconRecord, n)
	for i := range psp {
		psp[i] = pspRec(fmt.Sprintf("T%d", i), 1000)
	}
	psp[7] = pspRec("T7", 1001)
	ctx := context.Background()
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("bench-%d", i)
		msgs := append(begin(b, s, id), pspMsgs(id, psp)...)
		matched := 0
		for j := 0; j < len(msgs); j += 5000 {
			done, err := s.StoreReconMessages(ctx, msgs[j:min(j+5000, len(msgs))], testPlan)
			if err != nil {
				b.Fatal(err)
			}
			matched += len(done)
		}
		if matched != 1 {
			b.Fatalf("run %s not matched", id)
		}
	}
	b.StopTimer()
	close(stop)
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "MB/op")
	b.ReportMetric(float64(peak.Load())/(1<<20), "MB-peak")
	var left int
	_ = db.QueryRow(`SELECT count(*) FROM recon_items`).Scan(&left)
	if left != 0 {
		b.Errorf("%d records left after matching", left)
	}
}
