package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/pgtest"
	"github.com/paygate/paygate/schemas"
)

// TestWholeSmoke runs the whole-payment mode for two seconds at a low
// rate, with every path taken (repeats, abandoned payments, sessions read
// through GET ?wait, the earlier-attempt check on), and asserts only
// what must always hold: nothing lost, paid twice or missing, each
// payment's counts adding up. No timing assertions.
func TestWholeSmoke(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts the whole pipeline")
	}
	rep := run(t, Config{
		DatabaseURL: pgtest.New(t), Whole: true, Rate: 30, Duration: 2 * time.Second,
		RepeatShare: 0.2, AbandonShare: 0.2, WaitShare: 0.3,
		SkipCeiling: true, Lone: 2, StatSettle: -1, Partitions: 2, Retention: time.Minute, DrainTimeout: 30 * time.Second,
		Warmup: time.Second, WarmupRate: 10,
	})
	if len(rep.Whole) != 1 || len(rep.Steps) != 0 {
		t.Fatalf("%d whole steps, %d webhook steps", len(rep.Whole), len(rep.Steps))
	}
	s := rep.Whole[0]
	if !rep.OK || s.Lost != 0 || s.Duplicated != 0 || s.AbandonedPaid != 0 || s.SessionsMissing != 0 {
		t.Errorf("ok %v: lost %d, duplicated %d, abandoned paid %d, sessions missing %d (%s)",
			rep.OK, s.Lost, s.Duplicated, s.AbandonedPaid, s.SessionsMissing, s.FirstError)
	}
	if s.Payments != 60 || s.Repeats == 0 || s.Abandoned == 0 || s.ViaGET == 0 || s.PayRequests != s.Payments+s.Repeats {
		t.Errorf("schedule: %d payments, %d repeats, %d abandoned, %d via GET, %d pay requests", s.Payments, s.Repeats, s.Abandoned, s.ViaGET, s.PayRequests)
	}
	if s.SendErrors != 0 || s.ClickErrors != 0 || s.ReturnErrors != 0 || s.GETErrors != 0 {
		t.Errorf("errors: %d sends, %d clicks, %d returns, %d GETs (%s)", s.SendErrors, s.ClickErrors, s.ReturnErrors, s.GETErrors, s.FirstError)
	}
	// Every pay request got its session (the buyer pays after both of a
	// repeat's were read, so none is refused as paid), and every payment
	// not abandoned was paid on one of them, once.
	if s.Sessions["session"] != s.PayRequests || s.Clicked != s.Payments-s.Abandoned || s.Paid.N != s.Clicked ||
		s.ClickToPaid.N != s.Clicked || s.Unpayable != 0 {
		t.Errorf("sessions %v for %d pay requests; %d clicked, %d paid, %d unpayable, of %d payments not abandoned",
			s.Sessions, s.PayRequests, s.Clicked, s.Paid.N, s.Unpayable, s.Payments-s.Abandoned)
	}
	if s.SessionGET.N != s.ViaGET || s.Accepted.N != s.PayRequests || s.SessionRead.N != s.PayRequests || s.ClickToReturn.N != s.Clicked {
		t.Errorf("stages: %d read via GET of %d, %d accepted, %d read of %d, %d returns of %d clicks",
			s.SessionGET.N, s.ViaGET, s.Accepted.N, s.SessionRead.N, s.PayRequests, s.ClickToReturn.N, s.Clicked)
	}
	// One Initiate per pay request; the check asks about an earlier
	// attempt at most once per repeat; every paid payment was confirmed.
	if p := s.PSP; p == nil || p.Initiates != int64(s.PayRequests) || p.EarlyQueries > int64(s.Repeats) || p.ConfirmQueries < int64(s.Paid.N) {
		t.Errorf("PSP calls %+v for %d pay requests, %d repeats, %d paid", s.PSP, s.PayRequests, s.Repeats, s.Paid.N)
	}
	if s.RoundTripsPerPayment <= 0 || s.StatementsPerPayment <= 0 || s.CPU == nil || s.CPU.MachineUSPerHook <= 0 {
		t.Errorf("per payment: %.3f statements, %.3f round trips, cpu %+v", s.StatementsPerPayment, s.RoundTripsPerPayment, s.CPU)
	}
	if l := rep.WholeLone; l == nil || l.Session.N != 2 || l.ClickToPaid.N != 2 {
		t.Errorf("lone whole payments: %+v", l)
	}
	if wu := rep.Warmup; wu == nil || wu.Payments != 10 || wu.Lost != 0 {
		t.Errorf("warm-up: %+v", wu)
	}
	var out strings.Builder
	rep.Print(&out)
	for _, want := range []string{"targets (issue 23)", "click → paid", "at most one PSP call per pay request", "result: OK"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func message(key, id, typ string, v any) kafka.Message {
	b, _ := json.Marshal(v)
	return kafka.Message{Key: []byte(key), Value: b, Headers: []kafka.Header{{Key: schemas.HeaderID, Value: []byte(id)},
		{Key: schemas.HeaderType, Value: []byte(typ)}, {Key: schemas.HeaderTime, Value: []byte(time.Now().Format(time.RFC3339Nano))}}}
}

// TestWholeBookkeeping: a paid event published again (its ce_id) is one
// payment, another id for the same order a duplicate; an order's sessions
// go to its pay requests in order, a session published again counts
// once; the buyer pays once every session is read, on the newest page,
// and an abandoned payment is never clicked.
func TestWholeBookkeeping(t *testing.T) {
	w := newWholeRun(&Config{}, &target{})
	w.psp = newPool(1, true)
	p := &payment{id: "A", repeat: true}
	p.reqs = []*payReq{{p: p}, {p: p, n: 1}}
	q := &payment{id: "B", abandon: true}
	q.reqs = []*payReq{{p: q}}
	w.register([]*payment{p, q})

	w.onSession(message("A", "pay_session/T1", schemas.TypePaySession, schemas.PaySession{Type: "session", OrderID: "A", PayURL: "http://psp/pay/1"}), 1)
	w.onSession(message("A", "pay_session/T1", schemas.TypePaySession, schemas.PaySession{Type: "session", OrderID: "A", PayURL: "http://psp/pay/1"}), 2)
	if p.clickSent || len(p.sessionIDs) != 1 || p.reqs[0].payURL != "http://psp/pay/1" {
		t.Fatalf("after the first session (twice): clicked %v, sessions %v", p.clickSent, p.sessionIDs)
	}
	p.mu.Lock()
	p.reqs[1].read, p.reqs[1].kind, p.reqs[1].payURL = 3, "session", "http://psp/pay/2"
	if c := w.clickDue(p); c == nil || p.clickReq != p.reqs[1] {
		t.Errorf("with both sessions read: click %v on %+v; want the newer page", c != nil, p.clickReq)
	}
	p.mu.Unlock()

	w.onSession(message("B", "pay_session/T3", schemas.TypePaySession, schemas.PaySession{Type: "session", OrderID: "B", PayURL: "http://psp/pay/3"}), 4)
	if q.clickSent || q.reqs[0].read != 4 {
		t.Errorf("abandoned: clicked %v, session read at %d", q.clickSent, q.reqs[0].read)
	}

	paid := func(key, id string) {
		w.onPaid(message(key, id, schemas.TypePaymentPaid, map[string]string{"type": "paid"}), 10)
	}
	paid("A", "payment.paid/A")
	paid("A", "payment.paid/A")
	w.onPaid(message("A", "payment.failed/T1", schemas.TypePaymentFailed, map[string]string{"type": "failed"}), 11)
	if len(p.paidIDs) != 1 || p.paidAt != 10 {
		t.Errorf("paid ids %v at %d; want one", p.paidIDs, p.paidAt)
	}
	paid("A", "payment.paid/A#2")
	paid("Z", "payment.paid/Z")
	st := &WholeStep{Sessions: map[string]int{}}
	p.clickDone = 5
	w.tally(st, []*payment{p, q}, time.Unix(0, 0))
	if st.Duplicated != 1 || st.Lost != 0 || st.AbandonedPaid != 0 || st.Clicked != 1 || w.foreign.Load() != 1 {
		t.Errorf("duplicated %d, lost %d, abandoned paid %d, clicked %d, foreign %d", st.Duplicated, st.Lost, st.AbandonedPaid, st.Clicked, w.foreign.Load())
	}
}

// The whole-payment targets are judged where issue 23 puts them: the
// latencies at the lowest step offered 1,000/s or more; the round trips
// under load at the highest step past saturation (which may carry less
// than one below it), payinit's own; PSP calls per pay request at their
// worst; the throughput at the best step with nothing lost.
func TestWholeTargets(t *testing.T) {
	step := func(rate, sustained, sessP99, paidP99, payinitTrips, psp float64) WholeStep {
		return WholeStep{Rate: rate, Sustained: sustained, DurationSec: 15, SessionRead: &Latency{N: 1, P99: sessP99},
			SessionCreated: &Latency{N: 1, P99: sessP99 / 2}, ClickToPaid: &Latency{N: 1, P99: paidP99},
			RoundTripsPerPayment: 4, RoundTripsByCaller: map[string]float64{"payinit": payinitTrips},
			PSP: &PSPCalls{PerPayRequest: psp}}
	}
	rep := Report{Whole: []WholeStep{step(500, 500, 30, 30, 2, 1), step(1000, 995, 124, 90, 0.4, 1.05), step(1250, 1235, 270, 250, 0.12, 1.0),
		step(1500, 1117, 6000, 3000, 0.034, 1.0)}, WholeLone: &WholeLone{Session: &Latency{N: 20, P50: 3.8, Max: 9}}}
	got := map[string]Target{}
	for _, tg := range rep.targets() {
		got[tg.Name] = tg
	}
	check := func(prefix, want string) {
		t.Helper()
		for name, tg := range got {
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			verdict := tg.Miss
			switch {
			case tg.Met:
				verdict = "met"
			case tg.NotJudged != "":
				verdict = "not judged"
			}
			if verdict != want {
				t.Errorf("%s: %q (%s); want %q", name, verdict, tg.Measured, want)
			}
			return
		}
		t.Errorf("no target %q in %v", prefix, got)
	}
	check("≥ 2000 whole payments/s", "−38% in throughput")
	check("pay request → session published", "+24%")
	check("click → paid", "met")
	check("≤ 0.1 database round trips", "met") // 0.034 at 1,500/s offered, not 0.12 at 1,250
	check("at most one PSP call", "+5.0%")
	check("a lone pay request", "met")
}
