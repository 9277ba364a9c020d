package bench

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/pgtest"
)

// TestSmoke runs the harness for a few seconds at a low rate, with a
// short consumer stall, and asserts only what must always hold: no paid
// event lost or duplicated, no forged order paid. No timing assertions.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole pipeline")
	}
	var progress strings.Builder
	rep, err := Run(context.Background(), Config{
		DatabaseURL: pgtest.New(t), Rate: 60, Duration: 3 * time.Second, DuplicateShare: 0.2, ForgedShare: 0.1,
		SkipCeiling: true, Lone: 2, StatSettle: -1, Partitions: 2, Retention: time.Minute,
		Stall: time.Second, StallAfter: time.Second, DrainTimeout: 30 * time.Second, Progress: &progress,
	})
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, progress.String())
	}
	if testing.Verbose() {
		rep.Print(os.Stdout)
	}
	if len(rep.Steps) != 1 {
		t.Fatalf("%d steps", len(rep.Steps))
	}
	s := rep.Steps[0]
	if !rep.OK || s.Lost != 0 || s.Duplicated != 0 || s.ForgedPaid != 0 {
		t.Errorf("lost %d, duplicated %d, forged paid %d", s.Lost, s.Duplicated, s.ForgedPaid)
	}
	if s.First == 0 || s.Duplicates == 0 || s.Forged == 0 || s.SendErrors != 0 {
		t.Errorf("schedule: %d first, %d duplicates, %d forged, %d send errors (%s)", s.First, s.Duplicates, s.Forged, s.SendErrors, s.FirstError)
	}
	if s.E2E.N != s.First {
		t.Errorf("%d e2e latencies for %d payments", s.E2E.N, s.First)
	}
	if s.CPU == nil || s.CPU.Process <= 0 || s.CPU.MachineBusy <= 0 || s.CPU.MachineBusy > float64(s.CPU.Cores) {
		t.Errorf("cpu: %+v", s.CPU)
	}
	// All but the lone payments and two templates were cloned, and were
	// paid all the same (above).
	if rep.PrepareMode != "clone" {
		t.Errorf("prepare mode %q", rep.PrepareMode)
	}
}

// TestIngressOnlySmoke: every callback the ingress accepted is on the
// topic, and the report says so.
func TestIngressOnlySmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the ingress and the broker")
	}
	var progress strings.Builder
	rep, err := Run(context.Background(), Config{
		DatabaseURL: pgtest.New(t), IngressOnly: true, Sweep: []float64{100, 200}, Duration: 2 * time.Second,
		SkipCeiling: true, Partitions: 2, Retention: time.Minute, Progress: &progress,
	})
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, progress.String())
	}
	if testing.Verbose() {
		rep.Print(os.Stdout)
	}
	if !rep.OK || len(rep.IngressOnly) != 2 || len(rep.Steps) != 0 {
		t.Fatalf("ok %v, %d ingress steps, %d pipeline steps", rep.OK, len(rep.IngressOnly), len(rep.Steps))
	}
	for _, s := range rep.IngressOnly {
		if s.SendErrors != 0 || s.Accepted != int64(s.Sent) || s.Stored != s.Accepted || s.NotStored != 0 || s.Answer.N != s.Sent {
			t.Errorf("at %.0f/s: sent %d, accepted %d, stored %d, errors %d (%s)", s.Rate, s.Sent, s.Accepted, s.Stored, s.SendErrors, s.FirstError)
		}
	}
	var out strings.Builder
	rep.Print(&out)
	if !strings.Contains(out.String(), "every accepted callback is on the topic") {
		t.Errorf("report:\n%s", out.String())
	}
}
