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
}
