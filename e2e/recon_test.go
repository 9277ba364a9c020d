package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/psp/sim"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/schemas"
)

// Reconciliation end to end: the fetcher pages through the simulator's
// settlement API, our side goes through the outbox and the relay, both
// travel on paygate.reconciliation.v1 to the recon group, which matches
// them and heals lost callbacks through the callbacks group.
//
// A day of 10,000 payments through the whole pay flow takes minutes on
// two cores, so most of each day is written straight to PostgreSQL (paid
// orders and attempts, as the callbacks group leaves them) and to the
// simulator's list (AddSettlementRows). The payments whose callbacks are
// lost go through the real pipeline: they must be healable.

const simMerchant = "m_sim" // the dev channel "sim"

// reconDay is a day far enough back that its tolerance window has closed
// and the sweeper's daily runs (yesterday and the two days before) do
// not touch it.
func reconDay(back int) string { return time.Now().UTC().AddDate(0, 0, -back).Format(time.DateOnly) }

func dayAt(t *testing.T, day, clock string) time.Time {
	t.Helper()
	at, err := time.Parse(time.DateOnly+" 15:04:05", day+" "+clock)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// paidRow is one payment written straight to the store.
type paidRow struct {
	code   string
	amount int64
	cur    string
	paidAt time.Time
}

// insertPaid writes paid orders and attempts on channel sim, as the
// callbacks group leaves them, in one statement per table.
func (e *env) insertPaid(rows []paidRow) {
	e.t.Helper()
	codes, orders, curs, amounts, ats := make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows)),
		make([]int64, len(rows)), make([]time.Time, len(rows))
	for i, r := range rows {
		codes[i], orders[i], curs[i], amounts[i], ats[i] = r.code, "R-"+r.code, r.cur, r.amount, r.paidAt
	}
	if _, err := e.db.Exec(`INSERT INTO orders (order_id, amount, currency, country, status, paid_attempt, created_at, paid_at)
		SELECT u.o, u.a, u.c, 'US', 'paid', u.t, u.p - interval '1 minute', u.p
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::timestamptz[]) AS u(o, t, a, c, p)`,
		pq.Array(orders), pq.Array(codes), pq.Array(amounts), pq.Array(curs), pq.Array(ats)); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.db.Exec(`INSERT INTO attempts (transaction_code, order_id, channel, amount, currency, status, psp_reference, created_at, paid_at)
		SELECT u.t, u.o, 'sim', u.a, u.c, 'paid', 'sp_' || u.t, u.p - interval '1 minute', u.p
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::timestamptz[]) AS u(o, t, a, c, p)`,
		pq.Array(orders), pq.Array(codes), pq.Array(amounts), pq.Array(curs), pq.Array(ats)); err != nil {
		e.t.Fatal(err)
	}
}

// settle adds rows to the simulator's settlement lists.
func (e *env) settle(rows ...sim.SettlementRow) {
	e.t.Helper()
	if err := e.app.Sim.AddSettlementRows(simMerchant, rows...); err != nil {
		e.t.Fatal(err)
	}
}

func pspRow(r paidRow, settledAt time.Time) sim.SettlementRow {
	return sim.SettlementRow{MerchantRef: r.code, PaymentID: "sp_" + r.code, Amount: domain.MustMoney(r.amount, r.cur), SettledAt: settledAt}
}

// reconcile runs the channel-day and waits for the recon group to match
// it; it returns the newest report of the day.
func (e *env) reconcile(day string) schemas.ReconRun {
	e.t.Helper()
	runID, began, err := e.app.Settlement.Run(context.Background(), "sim", day, "")
	if err != nil || !began {
		e.t.Fatalf("recon run %s: began %v, %v", day, began, err)
	}
	e.eventually(60*time.Second, "run "+runID+" matched", func() bool {
		return e.scalar(`SELECT count(*) FROM recon_runs WHERE run_id = $1 AND status = 'done'`, runID) == 1
	})
	return e.report(day)
}

func (e *env) report(day string) schemas.ReconRun {
	e.t.Helper()
	runs, err := e.app.Store.ReconReport(context.Background(), store.ReconRunFilter{Channel: "sim", Day: day, Latest: true}, true)
	if err != nil || len(runs) != 1 {
		e.t.Fatalf("report of %s: %d runs, %v", day, len(runs), err)
	}
	return runs[0]
}

// comparable is a report without what differs from run to run by nature:
// ids and times.
func comparable(r schemas.ReconRun) schemas.ReconRun {
	r.RunID, r.StartedAt, r.FinishedAt = "", time.Time{}, nil
	r.Findings = slices.Clone(r.Findings)
	for i := range r.Findings {
		r.Findings[i].RunID = ""
	}
	return r
}

func kinds(r schemas.ReconRun) map[string][]string {
	out := map[string][]string{}
	for _, m := range r.Findings {
		out[m.Kind] = append(out[m.Kind], m.Reference)
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

func TestReconcileDayOf10000WithEveryDefect(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	day, clean := reconDay(10), reconDay(14)
	next, _ := domain.AddDays(day, 1)
	want := map[string][]string{}
	var ours []paidRow
	var psp []sim.SettlementRow
	const n = 10_000
	for i := range n {
		r := paidRow{code: fmt.Sprintf("T%s%06d", strings.ReplaceAll(day, "-", ""), i), amount: int64(100 + i%5000), cur: "USD",
			paidAt: dayAt(t, day, "00:00:00").Add(time.Duration(i) * 8 * time.Second)}
		row := pspRow(r, r.paidAt.Add(2*time.Second))
		kind := ""
		switch i % 500 { // 20 of each defect in 10,000
		case 1:
			kind = domain.MismatchMissingAtPSP.String()
		case 2:
			kind, row.Amount = domain.MismatchAmount.String(), domain.MustMoney(r.amount+1, "USD")
		case 3:
			kind, row.Amount = domain.MismatchCurrency.String(), domain.MustMoney(r.amount, "EUR")
		case 4:
			kind, row.Status = domain.MismatchStatus.String(), "failed"
		case 5:
			kind = domain.MismatchDuplicateAtPSP.String()
			dup := row
			dup.PaymentID += "_dup"
			psp = append(psp, dup)
		case 6: // paid at 23:59:59, settled the next day: not an alarm
			r.paidAt = dayAt(t, day, "23:59:59")
			row = pspRow(r, dayAt(t, next, "00:00:05"))
		case 7: // a payment paygate never saw (no attempt: a person looks)
			kind = domain.MismatchMissingAtGateway.String()
			r.code = "X" + r.code[1:]
			row = pspRow(r, r.paidAt)
			psp = append(psp, row)
			want[kind] = append(want[kind], r.code)
			continue
		}
		if kind != "" {
			want[kind] = append(want[kind], r.code)
		}
		ours = append(ours, r)
		if kind != domain.MismatchMissingAtPSP.String() {
			psp = append(psp, row)
		}
	}
	// The clean day: every payment on both sides, some across midnight.
	var cleanOurs []paidRow
	for i := range n {
		r := paidRow{code: fmt.Sprintf("C%s%06d", strings.ReplaceAll(clean, "-", ""), i), amount: int64(1 + i), cur: "JPY",
			paidAt: dayAt(t, clean, "00:00:01").Add(time.Duration(i) * 8 * time.Second)}
		settled := r.paidAt.Add(time.Second)
		if i%1000 == 0 {
			r.paidAt = dayAt(t, clean, "23:59:59")
			settled = r.paidAt.Add(3 * time.Second)
		}
		cleanOurs = append(cleanOurs, r)
		psp = append(psp, pspRow(r, settled))
	}
	setup := time.Now()
	e.insertPaid(append(ours, cleanOurs...))
	e.settle(psp...)

	// Lost callbacks, through the real pipeline: the buyer paid, nobody
	// told paygate. The PSP lists them on the reconciled day.
	const lost = 5
	healable := map[string]string{} // transaction code → order
	for i := range lost {
		order := orderID("RL", i)
		a := e.requestPayment(order, 1999)
		e.app.Sim.DefectSettlement(a.TransactionCode, sim.SettlementDefect{SettledAt: dayAt(t, day, "12:00:00").Add(time.Duration(i) * time.Second)})
		e.pay(a.PayURL, url.Values{"result": {"success"}, "callbacks": {"none"}})
		healable[a.TransactionCode] = order
		want[domain.MismatchMissingAtGateway.String()] = append(want[domain.MismatchMissingAtGateway.String()], a.TransactionCode)
	}
	for _, v := range want {
		slices.Sort(v)
	}
	t.Logf("setup of 2 x %d payments took %s", n, time.Since(setup))
	mismatches := e.consume(schemas.TopicReconMismatches, "test-finance")

	began := time.Now()
	first := e.reconcile(day)
	t.Logf("reconciling %s (%d payments) took %s", day, n, time.Since(began))
	if got := kinds(first); !reflect.DeepEqual(got, want) {
		for k := range want {
			if !slices.Equal(got[k], want[k]) {
				t.Errorf("%s: got %d %v, want %d", k, len(got[k]), head(got[k]), len(want[k]))
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected %s: %v", k, head(got[k]))
			}
		}
	}
	if !first.Final || first.Held != 0 || first.Ours.Payments != n-20 || first.Matched != n-20-5*20 {
		// ours: 10,000 less the 20 unknown to us; matched: ours less the
		// 5 defects of ours (missing, amount, currency, status, duplicate)
		t.Errorf("final %v, held %d, ours %d, matched %d", first.Final, first.Held, first.Ours.Payments, first.Matched)
	}
	if first.Straddled != 20 {
		t.Errorf("straddled = %d, want the 20 payments of 23:59:59", first.Straddled)
	}
	for _, m := range first.Findings {
		wantHeal := ""
		switch {
		case m.Kind == "missing_at_gateway" && healable[m.Reference] != "":
			wantHeal = "probing"
		case m.Kind == "missing_at_gateway":
			wantHeal = "manual"
		}
		if m.Heal != wantHeal && !(wantHeal == "probing" && m.Heal == "healed") {
			t.Errorf("%s %s: heal %q, want %q", m.Kind, m.Reference, m.Heal, wantHeal)
		}
	}

	// The lost-callback payments are healed through the callbacks path:
	// paid, notified, marked healed.
	payments := e.consume(schemas.TopicPayments, "test-order-center")
	e.eventually(30*time.Second, "healed orders paid", func() bool {
		return e.scalar(`SELECT count(*) FROM orders WHERE order_id LIKE 'RL-%' AND status = 'paid'`) == lost
	})
	payments.waitFor(t, 30*time.Second, "paid events of healed orders", func(evs []event) bool {
		n := 0
		for _, ev := range evs {
			if strings.HasPrefix(ev.Payment.OrderID, "RL-") && ev.Payment.Type == schemas.EventPaid {
				n++
			}
		}
		return n == lost
	})
	e.eventually(30*time.Second, "mismatches marked healed", func() bool {
		return e.scalar(`SELECT count(*) FROM recon_mismatches WHERE heal = 'healed'`) == lost
	})

	// Every finding is published once.
	total := 0
	for _, v := range want {
		total += len(v)
	}
	mismatches.waitFor(t, 30*time.Second, "mismatch events", func(evs []event) bool { return len(evs) >= total })

	// Run again: the same report, nothing healed or published twice.
	second := e.reconcile(day)
	firstHealed := comparable(first)
	for i, m := range firstHealed.Findings {
		if m.Heal == "probing" {
			firstHealed.Findings[i].Heal = "healed"
		}
	}
	if got := comparable(second); !reflect.DeepEqual(got, firstHealed) {
		t.Errorf("second run differs:\n got  %+v\n want %+v", summary(got), summary(firstHealed))
	}

	// Crash mid-run: our side written, the PSP's never (the fetcher died
	// between the two). A rerun gives the same report and heals nothing
	// twice; the crashed run is abandoned.
	if _, err := e.app.Store.BeginReconRun(context.Background(), domain.ReconSpec{RunID: "rr-crashed", Channel: "sim", Day: day,
		Location: time.UTC, Tolerance: 2, AsOf: time.Now()}, func(domain.ReconRun, []domain.ReconRecord) ([]domain.Event, error) {
		return nil, nil // crashed before its records reached the outbox
	}); err != nil {
		t.Fatal(err)
	}
	third := e.reconcile(day)
	if got := comparable(third); !reflect.DeepEqual(got, firstHealed) {
		t.Errorf("run after a crash differs:\n got  %+v\n want %+v", summary(got), summary(firstHealed))
	}
	if st := e.scalar(`SELECT count(*) FROM recon_runs WHERE run_id = 'rr-crashed' AND status = 'abandoned'`); st != 1 {
		t.Error("the crashed run was not abandoned")
	}
	if n := e.scalar(`SELECT count(*) FROM outbox WHERE event_id LIKE 'recon-probe/%'`); n != lost {
		t.Errorf("%d heal probes, want %d: healed twice", n, lost)
	}
	if n := e.scalar(`SELECT count(*) FROM outbox WHERE topic = $1`, schemas.TopicReconMismatches); n != int64(total) {
		t.Errorf("%d mismatch events, want %d: published twice", n, total)
	}

	// The clean day: nothing but matches.
	c := e.reconcile(clean)
	if len(c.Findings) != 0 || c.Mismatches != 0 || c.Matched != n || c.Straddled != 10 || c.Ours.Payments != n || c.PSP.Payments != n-10 {
		t.Errorf("clean day: %+v, findings %v", summary(c), c.Findings[:min(5, len(c.Findings))])
	}

	// GET /v1/recon/runs shows the runs.
	code, body := e.do(http.MethodGet, "/v1/recon/runs?channel=sim&latest=true&mismatches=true", nil, nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"missing_at_gateway"`) || !strings.Contains(string(body), clean) {
		t.Errorf("GET /v1/recon/runs: %d %.300s", code, body)
	}
	if code, _ := e.do(http.MethodGet, "/v1/recon/runs?date=yesterday", nil, nil); code != http.StatusBadRequest {
		t.Errorf("GET /v1/recon/runs?date=yesterday: %d, want 400", code)
	}
}

// A payment at 23:59:59 PSP time that the PSP settles the next day is
// held while the window is open, and matched — on its own day, never as
// an alarm on either day — once the PSP's next list is in.
func TestReconcileMidnightStraddle(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	day := reconDay(20)
	next, _ := domain.AddDays(day, 1)
	late := paidRow{code: "TLATE" + strings.ReplaceAll(day, "-", ""), amount: 4200, cur: "USD", paidAt: dayAt(t, day, "23:59:59")}
	lost := paidRow{code: "TLOST" + strings.ReplaceAll(day, "-", ""), amount: 4200, cur: "USD", paidAt: dayAt(t, day, "23:59:59")}
	e.insertPaid([]paidRow{late, lost})
	e.settle(pspRow(late, dayAt(t, next, "00:00:03")))

	r := e.reconcile(day)
	if got := kinds(r); !reflect.DeepEqual(got, map[string][]string{"missing_at_psp": {lost.code}}) {
		t.Errorf("day of the payment: %v, want only the payment the PSP never listed", got)
	}
	if r.Matched != 1 || r.Straddled != 1 {
		t.Errorf("matched %d, straddled %d, want 1, 1", r.Matched, r.Straddled)
	}
	if r = e.reconcile(next); len(r.Findings) != 0 || r.PSP.Payments != 1 {
		t.Errorf("the next day: %v, PSP payments %d: the straddler is reported on its own day only", r.Findings, r.PSP.Payments)
	}
}

func head(s []string) []string { return s[:min(5, len(s))] }

func summary(r schemas.ReconRun) string {
	return fmt.Sprintf("{ours %+v psp %+v matched %d straddled %d held %d mismatches %d by kind %v findings %d}",
		r.Ours, r.PSP, r.Matched, r.Straddled, r.Held, r.Mismatches, r.ByKind, len(r.Findings))
}
