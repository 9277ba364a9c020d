package bench

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The whole-payment mode's targets (issue 23: 2 cores, synchronous_commit
// on, everything on one machine).
const (
	targetWholeRate     = 2000.0 // whole payments/s sustained for targetRunFor, 0 lost or duplicated
	targetWholeAt       = 1000.0 // the rate the two latencies below are judged at
	targetSessionP99    = 100.0  // ms, pay request → session published, p99
	targetClickPaidP99  = 100.0  // ms, click → paid, p99
	targetTripsPayment  = 0.1    // database round trips per payment under load
	targetPSPPerRequest = 1.0    // PSP calls per pay request
	targetLoneSession   = 10.0   // ms, a lone pay request → its session published
)

// printWhole prints the whole-payment mode's lone payments and steps.
func (r *Report) printWhole(w io.Writer) {
	if wu := r.Warmup; wu != nil {
		fmt.Fprintf(w, "warm-up: %d whole payments before anything was measured, then the database analyzed (%d lost, %d duplicated)\n", wu.Payments, wu.Lost, wu.Duplicated)
	}
	if l := r.WholeLone; l != nil && l.Session.N > 0 {
		fmt.Fprintf(w, "lone whole payments (%d, one at a time): pay request → session read p50 %.1f ms, max %.1f ms (its ce_time p50 %.1f ms); click → paid p50 %.1f ms, max %.1f ms\n",
			l.Session.N, l.Session.P50, l.Session.Max, l.Created.P50, l.ClickToPaid.P50, l.ClickToPaid.Max)
	}
	if len(r.Whole) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\npayments offered/s\tpay requests sent/s\tsustained/s\tpaid/s\tsession p50\tp99\tp99.9 ms\tclick→paid p50\tp99\tp99.9 ms\tlost\tdup\tstmts/pay\ttrips/pay\ttx/pay\tPSP calls/pay request\tµs/payment\t")
	for _, s := range r.Whole {
		stmts, trips := "-", "-"
		if s.RoundTripsPerPayment > 0 {
			stmts, trips = fmt.Sprintf("%.3f", s.StatementsPerPayment), fmt.Sprintf("%.3f", s.RoundTripsPerPayment)
		}
		pspPer, cpu := "-", "-"
		if s.PSP != nil {
			pspPer = fmt.Sprintf("%.3f", s.PSP.PerPayRequest)
		}
		if s.CPU != nil {
			cpu = fmt.Sprintf("%.0f", s.CPU.MachineUSPerHook)
		}
		fmt.Fprintf(tw, "%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%d\t%s\t%s\t%.3f\t%s\t%s\t\n",
			s.Rate, s.AchievedSend, s.Sustained, s.PaidPerSec, s.SessionRead.P50, s.SessionRead.P99, s.SessionRead.P999,
			s.ClickToPaid.P50, s.ClickToPaid.P99, s.ClickToPaid.P999, s.Lost, s.Duplicated, stmts, trips, s.TransactionsPerPayment, pspPer, cpu)
	}
	tw.Flush()
	for _, s := range r.Whole {
		fmt.Fprintf(w, "  at %.0f payments/s for %s: %d payments (%d with a repeat pay request, %d abandoned, %d read through GET ?wait), %d pay requests\n",
			s.Rate, time.Duration(s.DurationSec*float64(time.Second)), s.Payments, s.Repeats, s.Abandoned, s.ViaGET, s.PayRequests)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "    stage, from the request's slot (ms)\tn\tp50\tp99\tp99.9\tmax\t")
		for _, st := range []struct {
			name string
			l    *Latency
		}{
			{"pay request accepted (202)", s.Accepted},
			{"session created (its ce_time)", s.SessionCreated},
			{"session read on the topic", s.SessionRead},
			{"session read through GET ?wait", s.SessionGET},
			{"click done (the pay page answered)", s.ClickDone},
			{"paid event read", s.Paid},
			{"click → paid", s.ClickToPaid},
			{"click → browser return answered", s.ClickToReturn},
		} {
			if st.l == nil || st.l.N == 0 {
				continue
			}
			fmt.Fprintf(tw, "    %s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t\n", st.name, st.l.N, st.l.P50, st.l.P99, st.l.P999, st.l.Max)
		}
		tw.Flush()
		fmt.Fprintf(w, "    sessions: %d session, %d rejected, %d failed, %d missing; %d clicked, %d with no session to pay on; lost %d, duplicated %d, abandoned paid %d\n",
			s.Sessions["session"], s.Sessions["rejected"], s.Sessions["failed"], s.SessionsMissing, s.Clicked, s.Unpayable, s.Lost, s.Duplicated, s.AbandonedPaid)
		fmt.Fprintf(w, "    errors: %d pay requests not accepted (%d retries, %d after a 503 shed), %d late starts (>10 ms), %d clicks, %d browser returns, %d GET reads\n",
			s.SendErrors, s.SendRetries, s.SendShed, s.LateStarts, s.ClickErrors, s.ReturnErrors, s.GETErrors)
		if s.FirstError != "" {
			fmt.Fprintf(w, "    first error: %s\n", s.FirstError)
		}
		if p := s.PSP; p != nil {
			fmt.Fprintf(w, "    PSP calls: %d initiates, %d queries before the buyer paid (the earlier-attempt check), %d confirming queries: %.3f per pay request, %.2f confirming per payment paid\n",
				p.Initiates, p.EarlyQueries, p.ConfirmQueries, p.PerPayRequest, p.ConfirmPerPaid)
		}
		if s.Vacuums > 0 {
			fmt.Fprintf(w, "    the harness vacuumed or analyzed %d tables during the step, as autovacuum would have\n", s.Vacuums)
		}
		if len(s.RoundTripsByCaller) > 0 {
			fmt.Fprintf(w, "    database round trips per payment: %.3f: %s\n", s.RoundTripsPerPayment, byCaller(s.RoundTripsByCaller))
		}
		ratio := ""
		if s.PGCeilingRatio > 0 {
			ratio = fmt.Sprintf("; %.2f× the PostgreSQL ceiling", s.PGCeilingRatio)
		}
		fmt.Fprintf(w, "    lag, largest: payinit %d, callbacks %d%s\n", s.MaxPayinitLag, s.MaxCallbacksLag, ratio)
		printCPUPer(w, "from the first send until all were carried", "payment", s.CPU)
	}
	if len(r.Whole) > 1 {
		k := "not reached"
		if r.Knee100 > 0 {
			k = fmt.Sprintf("%.0f/s", r.Knee100)
		}
		fmt.Fprintf(w, "knee: pay request → session read or click → paid p99 > 100 ms from %s\n", k)
	}
}

// wholeTargets compares the whole-payment mode's report with issue 23's
// targets: the steps', then the lone payments'.
func (r *Report) wholeTargets() []Target {
	var out []Target
	if len(r.Whole) > 0 {
		out = append(out, r.wholeStepTargets()...)
	}
	if l := r.WholeLone; l != nil && l.Session.N > 0 {
		out = append(out, wholeLoneTarget(l))
	}
	return out
}

// wholeStepTargets judges the whole-payment steps (at least one): the
// sustained rate with nothing lost or duplicated, the two latencies, the
// round trips under load and the PSP calls per pay request.
func (r *Report) wholeStepTargets() []Target {
	best, top := bestAndTopWhole(r.Whole)
	out := []Target{wholeRateTarget(best, top)}
	out = append(out, wholeLatencyTargets(r.wholeLatencyStep())...)
	if t, ok := wholeTripsTarget(r.loadedWholeStep(top)); ok {
		out = append(out, t)
	}
	if worst := r.mostPSPCalls(); worst != nil {
		out = append(out, pspTarget(worst))
	}
	return out
}

// bestAndTopWhole finds, among steps (at least one), the highest
// sustained with nothing lost or duplicated and no abandoned payment paid
// (best, nil if none) and the highest sustained (top).
func bestAndTopWhole(steps []WholeStep) (best, top *WholeStep) {
	for i := range steps {
		s := &steps[i]
		if top == nil || s.Sustained > top.Sustained {
			top = s
		}
		if s.Lost == 0 && s.Duplicated == 0 && s.AbandonedPaid == 0 && (best == nil || s.Sustained > best.Sustained) {
			best = s
		}
	}
	return best, top
}

// wholeRateTarget judges the highest sustained rate with nothing lost or
// duplicated (best), for targetRunFor; with none, it reports the highest
// sustained (top).
func wholeRateTarget(best, top *WholeStep) Target {
	t := Target{Name: fmt.Sprintf("≥ %.0f whole payments/s for %s, 0 lost or duplicated", targetWholeRate, targetRunFor)}
	switch {
	case best == nil:
		t.Measured = fmt.Sprintf("payments lost or duplicated in every step; the highest sustained %.0f/s", top.Sustained)
		t.Miss = "payments lost or duplicated"
	default:
		t.Measured = fmt.Sprintf("%.0f/s for %s, 0 lost or duplicated", best.Sustained, time.Duration(best.DurationSec*float64(time.Second)))
		t.Met = best.Sustained >= targetWholeRate*0.99 && best.DurationSec >= targetRunFor.Seconds()
		if best.Sustained < targetWholeRate*0.99 {
			t.Miss = fmt.Sprintf("−%.0f%% in throughput", 100*(1-best.Sustained/targetWholeRate))
		} else if !t.Met {
			t.Miss = fmt.Sprintf("ran %s, not %s", time.Duration(best.DurationSec*float64(time.Second)), targetRunFor)
		}
	}
	return t
}

// wholeLatencyStep is the step the latencies are judged at: the lowest
// offered at least 1,000 payments/s, nil if none was.
func (r *Report) wholeLatencyStep() *WholeStep {
	var at *WholeStep
	for i := range r.Whole {
		if s := &r.Whole[i]; s.Rate >= targetWholeAt*0.99 && (at == nil || s.Rate < at.Rate) {
			at = s
		}
	}
	return at
}

// wholeLatencyTargets judges pay request → session published and click →
// paid at the step at (not judged if nil).
func wholeLatencyTargets(at *WholeStep) []Target {
	var out []Target
	for _, l := range []struct {
		name   string
		target float64
		got    func(s *WholeStep) *Latency
		also   func(s *WholeStep) string
	}{
		{"pay request → session published p99", targetSessionP99, func(s *WholeStep) *Latency { return s.SessionRead },
			func(s *WholeStep) string {
				return fmt.Sprintf("read on the topic; its ce_time, before payinit's commit and the relay, %s", ms(s.SessionCreated.P99))
			}},
		{"click → paid p99", targetClickPaidP99, func(s *WholeStep) *Latency { return s.ClickToPaid }, nil},
	} {
		t := Target{Name: fmt.Sprintf("%s ≤ %.0f ms at %.0f/s", l.name, l.target, targetWholeAt)}
		switch {
		case at == nil:
			t.NotJudged = fmt.Sprintf("no step offered %.0f payments/s or more", targetWholeAt)
		default:
			got := l.got(at)
			t.Measured = fmt.Sprintf("%s at %.0f/s", ms(got.P99), at.Rate)
			if l.also != nil {
				t.Measured += " (" + l.also(at) + ")"
			}
			t.Met = got.N > 0 && got.P99 <= l.target
			if !t.Met {
				t.Miss = fmt.Sprintf("+%.0f%%", 100*(got.P99/l.target-1))
			}
		}
		out = append(out, t)
	}
	return out
}

// loadedWholeStep is the step "under load" is judged at: the highest step
// offered more than the pipeline carried (a step past saturation may
// carry less than one below it), saturated; else the highest sustained
// (top), where a miss is not judged.
func (r *Report) loadedWholeStep(top *WholeStep) (loaded *WholeStep, saturated bool) {
	loaded = top
	for i := range r.Whole {
		if s := &r.Whole[i]; s.Sustained < 0.97*s.Rate && (!saturated || s.Rate > loaded.Rate) {
			loaded, saturated = s, true
		}
	}
	return loaded, saturated
}

// wholeTripsTarget judges payinit's round trips per payment at the loaded
// step; false if they were not counted. A pay request's round trips are
// payinit's (its transactions, the earlier-attempt check's reads); the
// rest of a whole payment (callbacks, relay, the ingress's reads) is the
// webhook half's and the mall's, reported beside them.
func wholeTripsTarget(loaded *WholeStep, saturated bool) (Target, bool) {
	trips, ok := loaded.RoundTripsByCaller["payinit"]
	if !ok {
		return Target{}, false
	}
	t := Target{Name: fmt.Sprintf("≤ %.1f database round trips per payment under load (payinit's)", targetTripsPayment),
		Measured: fmt.Sprintf("%.3f at %.0f/s offered, %.0f/s carried (the whole payment %.3f)", trips, loaded.Rate, loaded.Sustained, loaded.RoundTripsPerPayment),
		Met:      trips <= targetTripsPayment}
	switch {
	case !t.Met && !saturated:
		t.NotJudged = keptUp
	case !t.Met:
		t.Miss = fmt.Sprintf("+%.0f%%", 100*(trips/targetTripsPayment-1))
	}
	return t, true
}

// mostPSPCalls is the step with the most PSP calls per pay request, nil
// if none counted them.
func (r *Report) mostPSPCalls() *WholeStep {
	var worst *WholeStep
	for i := range r.Whole {
		if s := &r.Whole[i]; s.PSP != nil && (worst == nil || s.PSP.PerPayRequest > worst.PSP.PerPayRequest) {
			worst = s
		}
	}
	return worst
}

// pspTarget judges the PSP calls per pay request at the step with the
// most.
func pspTarget(worst *WholeStep) Target {
	p := worst.PSP
	t := Target{Name: "at most one PSP call per pay request",
		Measured: fmt.Sprintf("%.3f at %.0f/s (%d initiates, %d earlier-attempt queries for %d pay requests)",
			p.PerPayRequest, worst.Rate, p.Initiates, p.EarlyQueries, worst.PayRequests),
		Met: p.PerPayRequest <= targetPSPPerRequest}
	if !t.Met {
		t.Miss = fmt.Sprintf("+%.1f%%", 100*(p.PerPayRequest/targetPSPPerRequest-1))
	}
	return t
}

// wholeLoneTarget judges the lone pay requests' median session.
func wholeLoneTarget(l *WholeLone) Target {
	t := Target{Name: fmt.Sprintf("a lone pay request's session published ≤ %.0f ms", targetLoneSession),
		Measured: fmt.Sprintf("p50 %s, max %s (read on the topic)", ms(l.Session.P50), ms(l.Session.Max)), Met: l.Session.P50 <= targetLoneSession}
	if !t.Met {
		t.Miss = fmt.Sprintf("+%.0f%%", 100*(l.Session.P50/targetLoneSession-1))
	}
	return t
}

// byCaller lists round trips per payment by caller, largest first.
func byCaller(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(m[b], m[a]) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.3f", k, m[k])
	}
	return strings.Join(parts, ", ")
}
