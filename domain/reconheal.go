package domain

import (
	"errors"
	"fmt"
)

// ReconRunStatus is where a reconciliation run is, a closed enum:
// collecting → done, or collecting → abandoned.
type ReconRunStatus struct{ s string }

// The run statuses.
var (
	// ReconCollecting: the run's records are coming in.
	ReconCollecting = ReconRunStatus{"collecting"}
	// ReconDone: both sides were complete and the run was matched.
	ReconDone = ReconRunStatus{"done"}
	// ReconAbandoned: the run cannot complete (its PSP list could not be
	// had) or a younger run of its channel-day was matched first.
	ReconAbandoned = ReconRunStatus{"abandoned"}
)

var reconRunStatuses = []ReconRunStatus{ReconCollecting, ReconDone, ReconAbandoned}

// ParseReconRunStatus reads a stored status.
func ParseReconRunStatus(s string) (ReconRunStatus, error) {
	for _, st := range reconRunStatuses {
		if st.s == s {
			return st, nil
		}
	}
	return ReconRunStatus{}, fmt.Errorf("unknown reconciliation run status %q", s)
}

// String is the status as stored and reported.
func (s ReconRunStatus) String() string { return s.s }

// ErrReconRunNotCollecting is returned for a run finished or abandoned
// that something tries to finish or abandon again.
var ErrReconRunNotCollecting = errors.New("reconciliation run is not collecting")

// Finish is run r matched with result res: done, with the result's
// counts. Only a collecting run can be finished.
func (r ReconRun) Finish(res ReconResult) (ReconRun, error) {
	if r.Status != ReconCollecting {
		return r, fmt.Errorf("finish run %s (%s): %w", r.RunID, r.Status, ErrReconRunNotCollecting)
	}
	r.Status = ReconDone
	r.WindowClosed = r.WindowComplete()
	r.Matched, r.Straddled, r.Held, r.Unmatched = res.Matched, res.Straddled, res.Held, res.Unmatched
	r.Mismatches = len(res.Mismatches)
	r.Ours, r.PSP = res.Ours, res.PSP
	return r, nil
}

// HealState is what paygate does about a missing_at_gateway finding, a
// closed enum decided once per finding (DecideHeal): never probed again
// once probing, healed or left to a person.
type HealState struct{ s string }

// The heal states.
var (
	// HealUndecided: nothing decided yet (and, for findings of other
	// kinds, nothing to heal).
	HealUndecided = HealState{""}
	// HealProbing: a status probe is out for the attempt.
	HealProbing = HealState{"probing"}
	// HealHealed: the attempt is paid now.
	HealHealed = HealState{"healed"}
	// HealManual: a person must look (a refund, or an attempt paygate
	// does not hold).
	HealManual = HealState{"manual"}
)

var healStates = []HealState{HealUndecided, HealProbing, HealHealed, HealManual}

// ParseHealState reads a stored heal state.
func ParseHealState(s string) (HealState, error) {
	for _, h := range healStates {
		if h.s == s {
			return h, nil
		}
	}
	return HealState{}, fmt.Errorf("unknown heal state %q", s)
}

// String is the state as stored and published.
func (h HealState) String() string { return h.s }

// DecideHeal decides what to do about finding m, whose stored heal state
// is now: a missing_at_gateway payment whose attempt paygate holds
// (attempt, held) is healed if the attempt is paid, else probed; one it
// does not hold, or a refund, is left to a person. A finding of another
// kind, or one decided before, keeps its state. probe says whether a
// status probe must be sent.
func DecideHeal(m Mismatch, now HealState, attempt AttemptStatus, held bool) (next HealState, probe bool) {
	if m.Kind != MismatchMissingAtGateway || now != HealUndecided {
		return now, false
	}
	switch {
	case m.Item != ReconPayment || !held:
		return HealManual, false
	case attempt == AttemptPaid:
		return HealHealed, false
	default:
		return HealProbing, true
	}
}
