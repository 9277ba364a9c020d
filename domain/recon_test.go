package domain_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
)

const reconDay = "2026-03-10"

func at(day, clock string) time.Time {
	t, err := time.Parse(time.DateOnly+" 15:04:05", day+" "+clock)
	if err != nil {
		panic(err)
	}
	return t
}

func ourPay(ref string, minor int64, cur, day string) domain.ReconRecord {
	return domain.ReconRecord{Item: domain.ReconPayment, Ref: ref, PSPReference: "sp_" + ref, Amount: domain.MustMoney(minor, cur),
		Status: domain.PSPSucceeded, Day: day, At: at(day, "12:00:00")}
}

func pspPay(ref string, minor int64, cur, day string) domain.ReconRecord {
	r := ourPay(ref, minor, cur, day)
	r.At = at(day, "12:00:01")
	return r
}

func withStatus(r domain.ReconRecord, st domain.PSPStatus) domain.ReconRecord {
	r.Status = st
	return r
}
func withPSPRef(r domain.ReconRecord, ref string) domain.ReconRecord { r.PSPReference = ref; return r }
func refund(r domain.ReconRecord) domain.ReconRecord                 { r.Item = domain.ReconRefund; return r }

// finding is a mismatch as the tests state it.
type finding struct{ kind, item, ref string }

func findings(ms []domain.Mismatch) []finding {
	out := []finding{}
	for _, m := range ms {
		out = append(out, finding{m.Kind.String(), m.Item.String(), m.Ref})
	}
	return out
}

func TestReconcile(t *testing.T) {
	prev, next, next2, next3 := "2026-03-09", "2026-03-11", "2026-03-12", "2026-03-13"
	pay := func(ref string) finding { return finding{"", "payment", ref} }
	kind := func(k domain.MismatchKind, f finding) finding { f.kind = k.String(); return f }
	tests := []struct {
		name       string
		ours, psp  []domain.ReconRecord
		open       bool // window still open
		refunds    bool
		want       []finding
		matched    int
		straddled  int
		held       int
		unmatched  int
		ourCount   int
		pspCount   int
		pspUSDSums int64
	}{
		{name: "clean day", ours: []domain.ReconRecord{ourPay("T1", 1999, "USD", reconDay), ourPay("T2", 500, "JPY", reconDay)},
			psp:  []domain.ReconRecord{pspPay("T2", 500, "JPY", reconDay), pspPay("T1", 1999, "USD", reconDay)},
			want: []finding{}, matched: 2, ourCount: 2, pspCount: 2, pspUSDSums: 1999},
		{name: "empty day", want: []finding{}},
		{name: "missing at PSP", ours: []domain.ReconRecord{ourPay("T1", 1999, "USD", reconDay)},
			want: []finding{kind(domain.MismatchMissingAtPSP, pay("T1"))}, ourCount: 1},
		{name: "missing at PSP is held while the window is open", ours: []domain.ReconRecord{ourPay("T1", 1999, "USD", reconDay)},
			open: true, want: []finding{}, held: 1, ourCount: 1},
		{name: "missing at gateway", psp: []domain.ReconRecord{pspPay("T9", 700, "EUR", reconDay)},
			want: []finding{kind(domain.MismatchMissingAtGateway, pay("T9"))}, pspCount: 1},
		{name: "missing at gateway is not held by an open window", psp: []domain.ReconRecord{pspPay("T9", 700, "EUR", reconDay)},
			open: true, want: []finding{kind(domain.MismatchMissingAtGateway, pay("T9"))}, pspCount: 1},
		{name: "a PSP row that did not succeed, unknown to us, is agreement",
			psp: []domain.ReconRecord{withStatus(pspPay("T9", 700, "EUR", reconDay), domain.PSPFailed)}, want: []finding{}, pspCount: 1},
		{name: "amount", ours: []domain.ReconRecord{ourPay("T1", 1999, "USD", reconDay)}, psp: []domain.ReconRecord{pspPay("T1", 2000, "USD", reconDay)},
			want: []finding{kind(domain.MismatchAmount, pay("T1"))}, ourCount: 1, pspCount: 1, pspUSDSums: 2000},
		{name: "currency", ours: []domain.ReconRecord{ourPay("T1", 1999, "USD", reconDay)}, psp: []domain.ReconRecord{pspPay("T1", 1999, "EUR", reconDay)},
			want: []finding{kind(domain.MismatchCurrency, pay("T1"))}, ourCount: 1, pspCount: 1},
		{name: "currency wins over amount", ours: []domain.ReconRecord{ourPay("T1", 1999, "USD", reconDay)}, psp: []domain.ReconRecord{pspPay("T1", 1, "EUR", reconDay)},
			want: []finding{kind(domain.MismatchCurrency, pay("T1"))}, ourCount: 1, pspCount: 1},
		{name: "status", ours: []domain.ReconRecord{ourPay("T1", 1999, "USD", reconDay)},
			psp:  []domain.ReconRecord{withStatus(pspPay("T1", 1999, "USD", reconDay), domain.PSPFailed)},
			want: []finding{kind(domain.MismatchStatus, pay("T1"))}, ourCount: 1, pspCount: 1, pspUSDSums: 1999},
		{name: "status wins over amount", ours: []domain.ReconRecord{ourPay("T1", 1999, "USD", reconDay)},
			psp:  []domain.ReconRecord{withStatus(pspPay("T1", 5, "USD", reconDay), domain.PSPPending)},
			want: []finding{kind(domain.MismatchStatus, pay("T1"))}, ourCount: 1, pspCount: 1, pspUSDSums: 5},
		{name: "duplicate row, otherwise equal", ours: []domain.ReconRecord{ourPay("T1", 1999, "USD", reconDay)},
			psp:  []domain.ReconRecord{pspPay("T1", 1999, "USD", reconDay), pspPay("T1", 1999, "USD", reconDay)},
			want: []finding{kind(domain.MismatchDuplicateAtPSP, pay("T1"))}, ourCount: 1, pspCount: 2, pspUSDSums: 3998},
		{name: "two PSP payments under one reference, one with another amount", ours: []domain.ReconRecord{ourPay("T1", 1999, "USD", reconDay)},
			psp: []domain.ReconRecord{withPSPRef(pspPay("T1", 2999, "USD", reconDay), "sp_b"), withPSPRef(pspPay("T1", 1999, "USD", reconDay), "sp_a")},
			// rows are compared in (settled at, PSP reference) order: sp_a first
			want: []finding{kind(domain.MismatchDuplicateAtPSP, pay("T1"))}, ourCount: 1, pspCount: 2, pspUSDSums: 4998},
		{name: "duplicate unknown to us", psp: []domain.ReconRecord{pspPay("T9", 1, "USD", reconDay), pspPay("T9", 1, "USD", reconDay)},
			want: []finding{kind(domain.MismatchMissingAtGateway, pay("T9")), kind(domain.MismatchDuplicateAtPSP, pay("T9"))}, pspCount: 2, pspUSDSums: 2},
		{name: "paid 23:59:59, settled the next day: matched, not an alarm",
			ours: []domain.ReconRecord{ourPay("T1", 1999, "USD", reconDay)}, psp: []domain.ReconRecord{pspPay("T1", 1999, "USD", next)},
			want: []finding{}, matched: 1, straddled: 1, ourCount: 1},
		{name: "settled two days later, still inside the window",
			ours: []domain.ReconRecord{ourPay("T1", 1999, "USD", reconDay)}, psp: []domain.ReconRecord{pspPay("T1", 1999, "USD", next2)},
			want: []finding{}, matched: 1, straddled: 1, ourCount: 1},
		{name: "a straddler with another amount is still compared",
			ours: []domain.ReconRecord{ourPay("T1", 1999, "USD", reconDay)}, psp: []domain.ReconRecord{pspPay("T1", 1998, "USD", next)},
			want: []finding{kind(domain.MismatchAmount, pay("T1"))}, ourCount: 1},
		{name: "PSP row of the day, ours on the day before: the day before reports it",
			ours: []domain.ReconRecord{ourPay("T1", 1999, "USD", prev)}, psp: []domain.ReconRecord{pspPay("T1", 1, "USD", reconDay)},
			want: []finding{}, pspCount: 1, pspUSDSums: 1},
		{name: "PSP row of the day, ours on the next day: matched here",
			ours: []domain.ReconRecord{ourPay("T1", 1999, "USD", next)}, psp: []domain.ReconRecord{pspPay("T1", 1999, "USD", reconDay)},
			want: []finding{}, pspCount: 1, pspUSDSums: 1999},
		{name: "records of other days only: nothing",
			ours: []domain.ReconRecord{ourPay("T1", 1999, "USD", prev), ourPay("T3", 1, "USD", next3)}, psp: []domain.ReconRecord{pspPay("T2", 1, "USD", next)},
			want: []finding{}},
		{name: "refunds not listed by the PSP are counted, not matched",
			ours: []domain.ReconRecord{refund(ourPay("R1", 500, "USD", reconDay))}, want: []finding{}, unmatched: 1},
		{name: "refunds listed by the PSP are matched", refunds: true,
			ours: []domain.ReconRecord{refund(ourPay("R1", 500, "USD", reconDay)), refund(ourPay("R2", 500, "USD", reconDay))},
			psp:  []domain.ReconRecord{refund(pspPay("R1", 400, "USD", reconDay)), refund(pspPay("R3", 1, "USD", reconDay))},
			want: []finding{{"missing_at_psp", "refund", "R2"}, {"missing_at_gateway", "refund", "R3"}, {"amount_mismatch", "refund", "R1"}}},
		{name: "a payment and a refund may share a reference",
			ours: []domain.ReconRecord{ourPay("X", 500, "USD", reconDay), refund(ourPay("X", 500, "USD", reconDay))}, refunds: true,
			psp:  []domain.ReconRecord{pspPay("X", 500, "USD", reconDay), refund(pspPay("X", 500, "USD", reconDay))},
			want: []finding{}, matched: 2, ourCount: 1, pspCount: 1, pspUSDSums: 500},
		{name: "every kind at once, sorted by kind then reference",
			ours: []domain.ReconRecord{ourPay("T5", 1, "USD", reconDay), ourPay("T4", 1, "USD", reconDay), ourPay("T3", 1, "USD", reconDay),
				ourPay("T2", 1, "USD", reconDay), ourPay("T1", 1, "USD", reconDay), ourPay("T0", 1, "USD", reconDay)},
			psp: []domain.ReconRecord{pspPay("T0", 1, "USD", reconDay), pspPay("T1", 2, "USD", reconDay), pspPay("T2", 1, "KWD", reconDay),
				withStatus(pspPay("T3", 1, "USD", reconDay), domain.PSPFailed), pspPay("T4", 1, "USD", reconDay), pspPay("T4", 1, "USD", reconDay),
				pspPay("T6", 1, "USD", reconDay)},
			want: []finding{kind(domain.MismatchMissingAtPSP, pay("T5")), kind(domain.MismatchMissingAtGateway, pay("T6")),
				kind(domain.MismatchAmount, pay("T1")), kind(domain.MismatchCurrency, pay("T2")), kind(domain.MismatchStatus, pay("T3")),
				kind(domain.MismatchDuplicateAtPSP, pay("T4"))},
			matched: 1, ourCount: 6, pspCount: 7, pspUSDSums: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := domain.ReconInput{Day: reconDay, Ours: tt.ours, PSP: tt.psp, WindowClosed: !tt.open, PSPRefunds: tt.refunds}
			res, err := domain.Reconcile(in)
			if err != nil {
				t.Fatal(err)
			}
			if got := findings(res.Mismatches); !slices.Equal(got, tt.want) {
				t.Errorf("mismatches = %v, want %v", got, tt.want)
			}
			got := [...]int{res.Matched, res.Straddled, res.Held, res.Unmatched, res.Ours.Payments, res.PSP.Payments, int(res.PSP.PaymentSums["USD"])}
			want := [...]int{tt.matched, tt.straddled, tt.held, tt.unmatched, tt.ourCount, tt.pspCount, int(tt.pspUSDSums)}
			if got != want {
				t.Errorf("matched, straddled, held, unmatched, ours, psp, psp USD = %v, want %v", got, want)
			}
			// Order of the input never matters.
			slices.Reverse(in.Ours)
			slices.Reverse(in.PSP)
			again, err := domain.Reconcile(in)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(findings(again.Mismatches), findings(res.Mismatches)) || again.Matched != res.Matched || again.Held != res.Held {
				t.Errorf("reversed input gives another result: %v", findings(again.Mismatches))
			}
		})
	}
}

func TestReconcileMismatchCarriesBothSides(t *testing.T) {
	o, p := ourPay("T1", 1999, "USD", reconDay), pspPay("T1", 2000, "USD", reconDay)
	res, err := domain.Reconcile(domain.ReconInput{Day: reconDay, Ours: []domain.ReconRecord{o}, PSP: []domain.ReconRecord{p}, WindowClosed: true})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Mismatches[0]
	if m.Ours == nil || m.PSP == nil || m.Ours.Amount.Minor() != 1999 || m.PSP.Amount.Minor() != 2000 || m.Detail != "paygate 19.99 USD, PSP 20.00 USD" {
		t.Errorf("mismatch = %+v", m)
	}
}

func TestReconcileRefusesBadInput(t *testing.T) {
	good := ourPay("T1", 1, "USD", reconDay)
	bad := []struct {
		name string
		in   domain.ReconInput
	}{
		{"bad day", domain.ReconInput{Day: "10/03/2026"}},
		{"our side twice", domain.ReconInput{Day: reconDay, Ours: []domain.ReconRecord{good, good}}},
		{"no item", domain.ReconInput{Day: reconDay, PSP: []domain.ReconRecord{{Ref: "T", Amount: good.Amount, Status: domain.PSPSucceeded, Day: reconDay}}}},
		{"no reference", domain.ReconInput{Day: reconDay, Ours: []domain.ReconRecord{{Item: domain.ReconPayment, Amount: good.Amount, Status: domain.PSPSucceeded, Day: reconDay}}}},
		{"no amount", domain.ReconInput{Day: reconDay, Ours: []domain.ReconRecord{{Item: domain.ReconPayment, Ref: "T", Status: domain.PSPSucceeded, Day: reconDay}}}},
		{"no status", domain.ReconInput{Day: reconDay, Ours: []domain.ReconRecord{{Item: domain.ReconPayment, Ref: "T", Amount: good.Amount, Day: reconDay}}}},
		{"record without day", domain.ReconInput{Day: reconDay, Ours: []domain.ReconRecord{{Item: domain.ReconPayment, Ref: "T", Amount: good.Amount, Status: domain.PSPSucceeded}}}},
	}
	for _, tt := range bad {
		if _, err := domain.Reconcile(tt.in); !errors.Is(err, domain.ErrBadReconInput) {
			t.Errorf("%s: err = %v, want ErrBadReconInput", tt.name, err)
		}
	}
}

func TestParseMismatchKindAndItem(t *testing.T) {
	for _, k := range domain.MismatchKinds {
		if got, err := domain.ParseMismatchKind(k.String()); err != nil || got != k {
			t.Errorf("ParseMismatchKind(%q) = %v, %v", k, got, err)
		}
	}
	if _, err := domain.ParseMismatchKind("other"); err == nil {
		t.Error("ParseMismatchKind accepted other")
	}
	for _, i := range []domain.ReconItem{domain.ReconPayment, domain.ReconRefund} {
		if got, err := domain.ParseReconItem(i.String()); err != nil || got != i {
			t.Errorf("ParseReconItem(%q) = %v, %v", i, got, err)
		}
	}
	if _, err := domain.ParseReconItem("chargeback"); err == nil {
		t.Error("ParseReconItem accepted chargeback")
	}
}

func TestBusinessDays(t *testing.T) {
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	berlin, _ := time.LoadLocation("Europe/Berlin")
	// 15:30 UTC on the 10th is already the 11th in Tokyo.
	if got := domain.BusinessDay(time.Date(2026, 3, 10, 15, 30, 0, 0, time.UTC), tokyo); got != "2026-03-11" {
		t.Errorf("BusinessDay in Tokyo = %s", got)
	}
	// The day clocks go forward in Berlin has 23 hours.
	start, end, err := domain.DayBounds("2026-03-29", berlin)
	if err != nil || end.Sub(start) != 23*time.Hour {
		t.Errorf("DayBounds(2026-03-29, Berlin) = %s..%s, %v", start, end, err)
	}
	days, closes, err := domain.ReconWindow(reconDay, 2, berlin)
	if err != nil || !slices.Equal(days, []string{"2026-03-08", "2026-03-09", "2026-03-10", "2026-03-11", "2026-03-12"}) ||
		!closes.Equal(time.Date(2026, 3, 13, 0, 0, 0, 0, berlin)) {
		t.Errorf("ReconWindow = %v, %s, %v", days, closes, err)
	}
	if _, _, err := domain.ReconWindow(reconDay, -1, berlin); err == nil {
		t.Error("negative tolerance accepted")
	}
}

// reconDay100k is a day of n payments with a defect every 1000th, and
// the PSP's list of it, shuffled.
func reconDay100k(n int) domain.ReconInput {
	rng := rand.New(rand.NewPCG(1, 2))
	in := domain.ReconInput{Day: reconDay, WindowClosed: true, Ours: make([]domain.ReconRecord, 0, n), PSP: make([]domain.ReconRecord, 0, n)}
	for i := range n {
		ref := fmt.Sprintf("T%023d", i)
		o := ourPay(ref, int64(100+rng.IntN(100000)), "USD", reconDay)
		p := pspPay(ref, o.Amount.Minor(), "USD", reconDay)
		switch i % 1000 {
		case 1:
			p.Amount = domain.MustMoney(o.Amount.Minor()+1, "USD")
		case 2:
			p.Status = domain.PSPFailed
		case 3:
			in.Ours = append(in.Ours, o)
			continue
		case 4:
			in.PSP = append(in.PSP, p)
			continue
		case 5:
			in.PSP = append(in.PSP, p)
		case 6:
			p.Day = "2026-03-11"
		}
		in.Ours, in.PSP = append(in.Ours, o), append(in.PSP, p)
	}
	rng.Shuffle(len(in.PSP), func(i, j int) { in.PSP[i], in.PSP[j] = in.PSP[j], in.PSP[i] })
	return in
}

// BenchmarkReconcile100k matches a day of 100,000 payments (with 500
// defects) and reports the heap it allocates per reconciliation as MB.
func BenchmarkReconcile100k(b *testing.B) {
	in := reconDay100k(100_000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for b.Loop() {
		res, err := domain.Reconcile(in)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Mismatches) != 500 {
			b.Fatalf("%d mismatches, want 500", len(res.Mismatches))
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "MB/op")
}
