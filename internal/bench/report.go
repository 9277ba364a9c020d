package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is a run's outcome; it is also the -json document.
type Report struct {
	Mode        string    `json:"mode"` // in-process or target
	StartedAt   time.Time `json:"started_at"`
	Machine     Machine   `json:"machine"`
	Command     string    `json:"command,omitempty"`
	Ceiling     *Ceiling  `json:"ceiling,omitempty"`
	Preloaded   int       `json:"preloaded_orders"`
	PrepareMode string    `json:"prepare_mode"` // pipeline or clone
	// Vacuums is how long the harness's VACUUM (ANALYZE) of its own
	// database took before each step, on a server without autovacuum.
	Vacuums     []float64     `json:"vacuum_seconds_before_steps,omitempty"`
	PrepareSec  float64       `json:"prepare_seconds"`
	PreparedPS  float64       `json:"prepared_orders_per_s"`
	Lone        *Latency      `json:"lone_payment_ms,omitempty"`
	Steps       []Step        `json:"steps"`
	IngressOnly []IngressStep `json:"ingress_only,omitempty"`
	// Whole and WholeLone are the whole-payment mode's steps and lone
	// payments (Config.Whole), in place of Steps and Lone.
	Whole     []WholeStep `json:"whole,omitempty"`
	WholeLone *WholeLone  `json:"whole_lone,omitempty"`
	// Warmup is the whole-payment mode's warm-up (Config.Warmup).
	Warmup *WholeWarmup `json:"warmup,omitempty"`
	// Knee50 and Knee100 are the lowest swept rates whose e2e p99
	// exceeded 50 ms and 100 ms (0: none did); in the whole-payment mode
	// Knee100 is the lowest whose pay request → session read or click →
	// paid p99 exceeded 100 ms.
	Knee50  float64 `json:"knee_p99_50ms_rate,omitempty"`
	Knee100 float64 `json:"knee_p99_100ms_rate,omitempty"`
	Memory  *Memory `json:"memory,omitempty"`
	// OK is false if any paid event was lost or duplicated, or a forged
	// order was paid.
	OK bool `json:"ok"`
	// Targets compares the run with issue 7's targets, and says by how
	// much each measured one was missed.
	Targets []Target `json:"targets,omitempty"`
}

// Machine is where the run ran.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPU       string `json:"cpu"`
	MemBytes  int64  `json:"mem_bytes"`
	Go        string `json:"go"`
	Postgres  string `json:"postgres"`
	LoadAvg   string `json:"loadavg_before"`
	Broker    string `json:"broker"`
	SyncCommt string `json:"synchronous_commit"`
	// Autovacuum is the server's autovacuum setting. Off, nothing
	// refreshes the planner's statistics during a run, and PostgreSQL
	// keeps a generic plan it chose while a table was nearly empty.
	Autovacuum string `json:"autovacuum"`
}

// Latency percentiles in milliseconds.
type Latency struct {
	N      int     `json:"n"`
	P50    float64 `json:"p50"`
	P99    float64 `json:"p99"`
	P999   float64 `json:"p999"`
	Max    float64 `json:"max"`
	Missed int     `json:"missing,omitempty"`
}

func latency(ds []time.Duration) *Latency {
	if len(ds) == 0 {
		return &Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := int(p * float64(len(s)-1))
		return float64(s[i]) / 1e6
	}
	return &Latency{N: len(s), P50: q(0.5), P99: q(0.99), P999: q(0.999), Max: float64(s[len(s)-1]) / 1e6}
}

// Step is one load step at one rate.
type Step struct {
	Rate        float64 `json:"offered_rate"`
	DurationSec float64 `json:"duration_s"`
	Sent        int     `json:"webhooks_sent"`
	First       int     `json:"first_deliveries"`
	Duplicates  int     `json:"duplicates"`
	Forged      int     `json:"forged"`
	SendErrors  int64   `json:"send_errors"` // webhooks not delivered after their retries
	SendRetries int64   `json:"send_retries"`
	// SendShed is how many of the retries followed a 503 with
	// Retry-After: the ingress full, no place free within its wait.
	SendShed   int64  `json:"send_shed"`
	FirstError string `json:"first_send_error,omitempty"`
	LateStarts int64  `json:"late_starts"`
	// Vacuums is how many tables the harness vacuumed or analyzed during
	// the step, as autovacuum would have (a server without autovacuum; see
	// Report.Vacuums).
	Vacuums      int     `json:"tables_vacuumed_during"`
	AchievedSend float64 `json:"achieved_send_rate"`
	// Sustained is webhooks per second the pipeline carried: webhooks
	// sent divided by the time from the first scheduled send to the last
	// paid event read.
	Sustained  float64  `json:"sustained_rate"`
	PaidPerSec float64  `json:"paid_events_per_s"`
	E2E        *Latency `json:"e2e_ms"`
	Ingress    *Latency `json:"ingress_ms"`
	IngressSvc *Latency `json:"ingress_service_ms"`
	Lost       int      `json:"lost"`
	Duplicated int      `json:"duplicated"`
	ForgedPaid int      `json:"forged_paid"`
	// Statements and RoundTrips per paid event, from the gateway's store
	// (in-process); Transactions per paid event from pg_stat_database.
	StatementsPerEvent   float64       `json:"statements_per_event"`
	RoundTripsPerEvent   float64       `json:"round_trips_per_event"`
	TransactionsPerEvent float64       `json:"transactions_per_event"`
	PGCeilingRatio       float64       `json:"pg_ceiling_ratio,omitempty"`
	Lag                  []lagSample   `json:"callbacks_lag"`
	MaxLag               int64         `json:"max_lag"`
	Stall                *StallOutcome `json:"stall,omitempty"`
	// CPU from the first send until every paid event was read: the
	// drain after the sends included (see CPU).
	CPU *CPU `json:"cpu,omitempty"`
}

// StallOutcome is what a consumer stall did.
type StallOutcome struct {
	StallSec   float64 `json:"stall_s"`
	Backlog    int64   `json:"backlog_at_resume"`
	DrainSec   float64 `json:"drain_s"`
	DrainRate  float64 `json:"drain_rate"`
	DrainRatio float64 `json:"drain_over_arrival"`
	Drained    bool    `json:"drained"`
}

// Print writes the report as a table.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\npaygate-bench — %s, %d CPUs (%s), %.1f GiB, %s, PostgreSQL %s (synchronous_commit=%s, autovacuum=%s), broker %s\n",
		r.Mode, r.Machine.CPUs, r.Machine.CPU, float64(r.Machine.MemBytes)/(1<<30), r.Machine.Go, r.Machine.Postgres, r.Machine.SyncCommt, r.Machine.Autovacuum, r.Machine.Broker)
	fmt.Fprintf(w, "load average before: %s\n", r.Machine.LoadAvg)
	if r.Command != "" {
		fmt.Fprintf(w, "command: %s\n", r.Command)
	}
	if c := r.Ceiling; c != nil {
		fmt.Fprintf(w, "\nceiling  PostgreSQL minimal payment write (3 statements, 1 tx) at %d conns: %.0f/s\n", c.PGConnections, c.PGPaymentWrites)
		fmt.Fprintf(w, "         broker (kafka-go, acks=all, %d B records): produce %.0f/s, consume %.0f/s\n", c.RecordBytes, c.BrokerProduce, c.BrokerConsume)
	}
	if r.Preloaded > 0 {
		fmt.Fprintf(w, "preloaded orders: %d\n", r.Preloaded)
	}
	if r.PrepareMode != "" {
		fmt.Fprintf(w, "prepared orders (%s): %.0f/s (%.1fs)\n", r.PrepareMode, r.PreparedPS, r.PrepareSec)
	}
	if len(r.Vacuums) > 0 {
		fmt.Fprintf(w, "autovacuum is off on this server: VACUUM (ANALYZE) of the bench database before each step, outside the measured window (%s s), and during one every minute the tables autovacuum would take, at its pace\n",
			strings.Trim(fmt.Sprintf("%.1f", r.Vacuums), "[]"))
	}
	if l := r.Lone; l != nil && l.N > 0 {
		fmt.Fprintf(w, "lone payment, end to end (%d, one at a time): p50 %.1f ms, max %.1f ms\n", l.N, l.P50, l.Max)
	}
	if len(r.IngressOnly) > 0 {
		printIngressOnly(w, r.IngressOnly)
	}
	if r.WholeLone != nil || len(r.Whole) > 0 {
		r.printWhole(w)
		r.printEnd(w)
		return
	}
	if len(r.Steps) == 0 {
		r.printEnd(w)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\noffered/s\tsent/s\tsustained/s\tpaid/s\te2e p50\tp99\tp99.9\tmax ms\tingress p50\tp99 ms\tlost\tdup\tforged paid\tstmts/ev\ttrips/ev\ttx/ev\tmax lag\tvs PG ceiling\t")
	for _, s := range r.Steps {
		ratio := "-"
		if s.PGCeilingRatio > 0 {
			ratio = fmt.Sprintf("%.2f×", s.PGCeilingRatio)
		}
		// The statement counters are the gateway's own: a target whose
		// /metrics do not have them leaves both unknown, not 0.
		stmts, trips := "-", "-"
		if s.RoundTripsPerEvent > 0 {
			stmts, trips = fmt.Sprintf("%.3f", s.StatementsPerEvent), fmt.Sprintf("%.3f", s.RoundTripsPerEvent)
		}
		fmt.Fprintf(tw, "%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%.0f\t%.1f\t%.1f\t%d\t%d\t%d\t%s\t%s\t%.3f\t%d\t%s\t\n",
			s.Rate, s.AchievedSend, s.Sustained, s.PaidPerSec, s.E2E.P50, s.E2E.P99, s.E2E.P999, s.E2E.Max, s.Ingress.P50, s.Ingress.P99,
			s.Lost, s.Duplicated, s.ForgedPaid, stmts, trips, s.TransactionsPerEvent, s.MaxLag, ratio)
	}
	tw.Flush()
	for _, s := range r.Steps {
		fmt.Fprintf(w, "  at %.0f/s: %d webhooks (%d first, %d duplicates, %d forged), %d send errors (%d retries, %d after a 503 shed), %d late starts (>10 ms), ingress service p99 %.1f ms\n",
			s.Rate, s.Sent, s.First, s.Duplicates, s.Forged, s.SendErrors, s.SendRetries, s.SendShed, s.LateStarts, s.IngressSvc.P99)
		if s.FirstError != "" {
			fmt.Fprintf(w, "    first send error: %s\n", s.FirstError)
		}
		if s.Vacuums > 0 {
			fmt.Fprintf(w, "    the harness vacuumed or analyzed %d tables during the step, as autovacuum would have\n", s.Vacuums)
		}
		if st := s.Stall; st != nil {
			fmt.Fprintf(w, "    stall %.0fs: backlog %d at resume, drained in %.1fs at %.0f/s = %.1f× the arrival rate%s\n",
				st.StallSec, st.Backlog, st.DrainSec, st.DrainRate, st.DrainRatio, map[bool]string{false: " (NOT drained)", true: ""}[st.Drained])
		}
		fmt.Fprintf(w, "    callbacks lag: %s\n", lagLine(s.Lag))
		printCPU(w, "from the first send until all were carried", s.CPU)
	}
	if len(r.Steps) > 1 {
		k := func(v float64) string {
			if v == 0 {
				return "not reached"
			}
			return fmt.Sprintf("%.0f/s", v)
		}
		fmt.Fprintf(w, "knee: e2e p99 > 50 ms from %s; > 100 ms from %s\n", k(r.Knee50), k(r.Knee100))
	}
	r.printEnd(w)
}

func (r *Report) printEnd(w io.Writer) {
	issue := "issue 7"
	if len(r.Whole) > 0 || r.WholeLone != nil {
		issue = "issue 23"
	}
	printTargets(w, issue, r.Targets)
	if m := r.Memory; m != nil && m.GatewayProcessHWMBytes > 0 {
		fmt.Fprintf(w, "memory: gateway process VmHWM %s (the broker apart, in the harness's process)\n", mib(m.GatewayProcessHWMBytes))
	} else if m != nil {
		fmt.Fprintf(w, "memory: VmHWM %s (whole process); heap at peak %s = gateway %s + broker %s + simulator %s + harness %s; gateway RSS est. %s\n",
			mib(m.VmHWMBytes), mib(m.HeapInuseBytes), mib(m.GatewayHeapBytes), mib(m.BrokerHeapBytes), mib(m.SimHeapBytes), mib(m.HarnessHeapBytes), mib(m.GatewayRSSEstimate))
	}
	switch {
	case len(r.Whole) > 0 && r.OK:
		fmt.Fprintln(w, "result: OK — no payment lost (clicked, never paid) or paid twice, no abandoned one paid, no session missing")
	case len(r.Whole) > 0:
		fmt.Fprintln(w, "result: FAILED — a payment lost or paid twice, an abandoned one paid, or a session missing")
	case r.OK && len(r.Steps) == 0:
		fmt.Fprintln(w, "result: OK — every accepted callback is on the topic")
	case r.OK:
		fmt.Fprintln(w, "result: OK — no paid event lost or duplicated, no forged order paid")
	case len(r.Steps) == 0:
		fmt.Fprintln(w, "result: FAILED — accepted callbacks missing from the topic")
	default:
		fmt.Fprintln(w, "result: FAILED — paid events lost or duplicated, or a forged order paid")
	}
}

// printCPU prints c, measured over span, per webhook.
func printCPU(w io.Writer, span string, c *CPU) { printCPUPer(w, span, "webhook", c) }

// printCPUPer prints c, measured over span, per unit (what c's per-item
// figures divide by: a webhook, a payment).
func printCPUPer(w io.Writer, span, unit string, c *CPU) {
	if c == nil {
		return
	}
	gw, gwPer := "", ""
	if c.Gateway > 0 {
		gw = fmt.Sprintf("gateway process %.2f, ", c.Gateway)
		gwPer = fmt.Sprintf(" (the gateway's %.0f µs)", c.GatewayUSPerHook)
	}
	fmt.Fprintf(w, "    cpu %s: %.2f of %d cores busy (%sthis process %.2f, PostgreSQL %.2f), %.0f µs of machine CPU per %s%s\n",
		span, c.MachineBusy, c.Cores, gw, c.Process, c.Postgres, c.MachineUSPerHook, unit, gwPer)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// lagLine shows up to 20 samples of the lag.
func lagLine(ls []lagSample) string {
	if len(ls) == 0 {
		return "-"
	}
	step := max(1, len(ls)/20)
	var b strings.Builder
	for i := 0; i < len(ls); i += step {
		fmt.Fprintf(&b, "%.0fs:%d ", ls[i].At, ls[i].Lag)
	}
	return b.String()
}
