package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
)

// TestDecideHeal is every row of the heal decision: only an undecided
// missing_at_gateway finding is decided, once.
func TestDecideHeal(t *testing.T) {
	t.Parallel()
	gw := func(item domain.ReconItem) domain.Mismatch {
		return domain.Mismatch{Kind: domain.MismatchMissingAtGateway, Item: item, Ref: "T1"}
	}
	tests := []struct {
		name    string
		m       domain.Mismatch
		now     domain.HealState
		attempt domain.AttemptStatus
		held    bool
		want    domain.HealState
		probe   bool
	}{
		{"payment we hold pending: probe", gw(domain.ReconPayment), domain.HealUndecided, domain.AttemptPending, true, domain.HealProbing, true},
		{"payment we hold created: probe", gw(domain.ReconPayment), domain.HealUndecided, domain.AttemptCreated, true, domain.HealProbing, true},
		{"payment we hold failed: probe", gw(domain.ReconPayment), domain.HealUndecided, domain.AttemptFailed, true, domain.HealProbing, true},
		{"payment we hold paid already: healed", gw(domain.ReconPayment), domain.HealUndecided, domain.AttemptPaid, true, domain.HealHealed, false},
		{"payment we do not hold: a person", gw(domain.ReconPayment), domain.HealUndecided, domain.AttemptStatus{}, false, domain.HealManual, false},
		{"refund: a person", gw(domain.ReconRefund), domain.HealUndecided, domain.AttemptPending, true, domain.HealManual, false},
		{"probing already: once", gw(domain.ReconPayment), domain.HealProbing, domain.AttemptPending, true, domain.HealProbing, false},
		{"healed stays healed", gw(domain.ReconPayment), domain.HealHealed, domain.AttemptPaid, true, domain.HealHealed, false},
		{"manual stays manual", gw(domain.ReconPayment), domain.HealManual, domain.AttemptPending, true, domain.HealManual, false},
		{"other kinds: nothing to heal", domain.Mismatch{Kind: domain.MismatchAmount, Item: domain.ReconPayment, Ref: "T1"},
			domain.HealUndecided, domain.AttemptPending, true, domain.HealUndecided, false},
	}
	for _, tc := range tests {
		got, probe := domain.DecideHeal(tc.m, tc.now, tc.attempt, tc.held)
		if got != tc.want || probe != tc.probe {
			t.Errorf("%s: %q, probe %v; want %q, probe %v", tc.name, got, probe, tc.want, tc.probe)
		}
	}
}

func TestParseReconStates(t *testing.T) {
	t.Parallel()
	for _, h := range []domain.HealState{domain.HealUndecided, domain.HealProbing, domain.HealHealed, domain.HealManual} {
		if got, err := domain.ParseHealState(h.String()); err != nil || got != h {
			t.Errorf("ParseHealState(%q) = %q, %v", h, got, err)
		}
	}
	for _, s := range []domain.ReconRunStatus{domain.ReconCollecting, domain.ReconDone, domain.ReconAbandoned} {
		if got, err := domain.ParseReconRunStatus(s.String()); err != nil || got != s {
			t.Errorf("ParseReconRunStatus(%q) = %q, %v", s, got, err)
		}
	}
	if _, err := domain.ParseHealState("healing"); err == nil {
		t.Error("ParseHealState(healing): no error")
	}
	if _, err := domain.ParseReconRunStatus(""); err == nil {
		t.Error(`ParseReconRunStatus(""): no error`)
	}
}

// TestReconRunFinish: a collecting run is done with its result's counts;
// a run done or abandoned is not finished again.
func TestReconRunFinish(t *testing.T) {
	t.Parallel()
	closes := time.Date(2026, 3, 12, 0, 0, 0, 0, time.UTC)
	run := domain.ReconRun{RunID: "r1", Status: domain.ReconCollecting, AsOf: closes, WindowCloses: closes,
		WindowDays: []string{"2026-03-10"}, PSPDays: []string{"2026-03-10"}}
	res := domain.ReconResult{Matched: 5, Straddled: 1, Held: 2, Unmatched: 3,
		Mismatches: []domain.Mismatch{{Kind: domain.MismatchAmount}}, Ours: domain.SideTotals{Payments: 8}}
	done, err := run.Finish(res)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != domain.ReconDone || !done.WindowClosed || done.Matched != 5 || done.Straddled != 1 || done.Held != 2 ||
		done.Unmatched != 3 || done.Mismatches != 1 || done.Ours.Payments != 8 {
		t.Errorf("finished run = %+v", done)
	}
	for _, st := range []domain.ReconRunStatus{domain.ReconDone, domain.ReconAbandoned} {
		r := run
		r.Status = st
		if _, err := r.Finish(res); !errors.Is(err, domain.ErrReconRunNotCollecting) {
			t.Errorf("finish a %s run: %v", st, err)
		}
	}
}
