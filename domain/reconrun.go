package domain

import (
	"errors"
	"time"
)

// ErrUnknownReconRun is returned for a record of a run paygate does not
// hold: a message from elsewhere, never to be retried.
var ErrUnknownReconRun = errors.New("unknown reconciliation run")

// ReconSpec is a reconciliation run to begin (the store's BeginReconRun).
type ReconSpec struct {
	RunID     string
	Channel   string
	Day       string // YYYY-MM-DD in Location
	Location  *time.Location
	Tolerance int // days either side of Day
	// AsOf is the run's clock (whether the window has closed is judged
	// at it).
	AsOf time.Time
	// Slot is the scheduler's slot ("daily", "final"), "" for a run asked
	// for by hand. A slot already done, or being collected by a run
	// younger than StaleAfter, is not begun again.
	Slot       string
	StaleAfter time.Duration
}

// ReconRun is a stored run as the matcher and reports see it.
type ReconRun struct {
	RunID        string
	Channel      string
	Day          string
	Timezone     string
	Tolerance    int
	Slot         string
	Status       ReconRunStatus
	AsOf         time.Time
	WindowCloses time.Time
	WindowDays   []string
	PSPDays      []string
	PSPRefunds   bool
	Error        string
	// The result, once done.
	WindowClosed bool
	Matched      int
	Straddled    int
	Held         int
	Unmatched    int
	Mismatches   int
	Ours, PSP    SideTotals
	StartedAt    time.Time
	FinishedAt   *time.Time
}

// ReconSideOurs and ReconSidePSP name the two sides of a run.
const (
	ReconSideOurs = "ours"
	ReconSidePSP  = "psp"
)

// ReconMessage is one record of paygate.reconciliation.v1 as the recon
// group hands it to the store: a record of one side, or that side's end.
type ReconMessage struct {
	RunID  string
	Side   string
	Seq    int
	Record ReconRecord
	// End marks the side's last message: Count records were sent.
	End   bool
	Count int
	// PSPDays and PSPRefunds (PSP side's end only): the days whose list
	// could be had, and whether the lists include refunds.
	PSPDays    []string
	PSPRefunds bool
}

// MatchPlan is what the recon group decides while the store matches a
// complete run in its transaction.
type MatchPlan struct {
	// Match reconciles a complete run.
	Match func(run ReconRun, ours, psp []ReconRecord) (ReconResult, error)
	// Found is the event that publishes a mismatch found for the first
	// time on its channel-day, with what is done to heal it.
	Found func(run ReconRun, m Mismatch, heal HealState) (Event, error)
	// Probe is the status probe that heals a missing_at_gateway payment
	// whose attempt paygate holds unpaid.
	Probe func(run ReconRun, transactionCode string) (Event, error)
}

// MatchedRun is a run the store matched.
type MatchedRun struct {
	Run    ReconRun
	Result ReconResult
	// New are the mismatches found for the first time; Probes the status
	// probes sent.
	New    []Mismatch
	Probes int
}

// WindowComplete reports whether the PSP lists of every day of the
// window up to the reconciled day + tolerance could be had.
func (r ReconRun) WindowComplete() bool {
	return !r.AsOf.Before(r.WindowCloses) && containsAll(r.PSPDays, r.WindowDays)
}

func containsAll(have, want []string) bool {
	set := make(map[string]bool, len(have))
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}
