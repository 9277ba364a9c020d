package schemas

import "time"

// Event types (ce_type) of reconciliation.
const (
	TypeReconRecord   = "paygate.recon.record"
	TypeReconEnd      = "paygate.recon.end"
	TypeReconMismatch = "paygate.recon.mismatch"
)

// ReconRecord is the value on paygate.reconciliation.v1 (keyed by
// "<channel>/<day>", schema recon-record.json): one record of one side of
// a reconciliation run — a PSP settlement row (written by the settlement
// fetcher) or one of our paid attempts or refunds (written through the
// outbox) — or, with Type "end", the end of that side.
type ReconRecord struct {
	// Type is "record" or "end".
	Type    string `json:"type"`
	RunID   string `json:"run_id"`
	Channel string `json:"channel"`
	// Day is the reconciled business day (YYYY-MM-DD, channel's zone).
	Day string `json:"day"`
	// Side is "ours" or "psp".
	Side string `json:"side"`
	// Seq numbers the side's records from 0 (records only).
	Seq int `json:"seq"`
	// Item is "payment" or "refund"; Reference the transaction code or
	// our refund reference (records only).
	Item         string `json:"item,omitempty"`
	Reference    string `json:"reference,omitempty"`
	PSPReference string `json:"psp_reference,omitempty"`
	Amount       int64  `json:"amount,omitempty"`
	Currency     string `json:"currency,omitempty"`
	// Status is what the side says (succeeded, failed, pending, unknown).
	Status string `json:"status,omitempty"`
	// RecordDay is the business day the record belongs to: the PSP list
	// it was on, or the day we recorded it.
	RecordDay string     `json:"record_day,omitempty"`
	At        *time.Time `json:"at,omitempty"`
	// Count is how many records the side sent (end only).
	Count int `json:"count,omitempty"`
	// PSPDays are the days whose PSP list could be had, and PSPRefunds
	// whether the lists cover refunds (end of the PSP side only).
	PSPDays    []string `json:"psp_days,omitempty"`
	PSPRefunds bool     `json:"psp_refunds,omitempty"`
}

// ReconRecord types and sides.
const (
	ReconTypeRecord = "record"
	ReconTypeEnd    = "end"
	ReconSideOurs   = "ours"
	ReconSidePSP    = "psp"
)

// ReconMismatch is the value on paygate.recon-mismatches.v1 (schema
// recon-mismatch.json): one finding of a reconciliation, published once
// per channel-day, kind and reference.
type ReconMismatch struct {
	Channel string `json:"channel"`
	Day     string `json:"day"`
	// Kind is missing_at_psp, missing_at_gateway, amount_mismatch,
	// currency_mismatch, status_mismatch or duplicate_at_psp.
	Kind string `json:"kind"`
	// Item is "payment" or "refund"; Reference its transaction code or
	// our refund reference.
	Item         string `json:"item"`
	Reference    string `json:"reference"`
	PSPReference string `json:"psp_reference,omitempty"`
	// Ours and PSP are each side's amount (absent where the side has none).
	Ours *ReconAmount `json:"ours,omitempty"`
	PSP  *ReconAmount `json:"psp,omitempty"`
	// PSPStatus is what the PSP lists (absent where it lists nothing).
	PSPStatus string `json:"psp_status,omitempty"`
	Detail    string `json:"detail"`
	// Heal is what paygate does about it: "probing" (a status probe heals
	// a missing_at_gateway payment), "healed" (paid already), "manual"
	// (a person must look), absent for nothing to heal.
	Heal  string `json:"heal,omitempty"`
	RunID string `json:"run_id"`
}

// ReconAmount is an amount of one side of a mismatch.
type ReconAmount struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// ReconRun is a reconciliation run as GET /v1/recon/runs and `paygate
// recon report --format json` show it.
type ReconRun struct {
	RunID     string `json:"run_id"`
	Channel   string `json:"channel"`
	Day       string `json:"day"`
	Timezone  string `json:"timezone"`
	Tolerance int    `json:"tolerance_days"`
	// Status is collecting, done or abandoned.
	Status string `json:"status"`
	// Final says the PSP's lists of the whole window were in: our
	// payments the PSP lacks are missing_at_psp, not held.
	Final      bool            `json:"final"`
	Matched    int             `json:"matched"`
	Straddled  int             `json:"straddled"`
	Held       int             `json:"held"`
	Unmatched  int             `json:"unmatched_refunds"`
	Ours       ReconTotals     `json:"ours"`
	PSP        ReconTotals     `json:"psp"`
	Mismatches int             `json:"mismatch_count"`
	ByKind     map[string]int  `json:"mismatches_by_kind"`
	Findings   []ReconMismatch `json:"mismatches,omitempty"`
	Error      string          `json:"error,omitempty"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
}

// ReconTotals are one side's counts and sums (minor units per currency).
type ReconTotals struct {
	Payments    int              `json:"payments"`
	PaymentSums map[string]int64 `json:"payment_sums"`
	Refunds     int              `json:"refunds"`
	RefundSums  map[string]int64 `json:"refund_sums"`
}
