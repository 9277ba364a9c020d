package domain

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Reconciliation (DESIGN.md §7): for one channel and one PSP business day,
// our side (paid attempts, succeeded refunds) against the PSP's settled
// list, matched on reference (the transaction code, or our refund
// reference), then compared on status, currency and amount. Reconcile is
// a pure function of its input; the store gathers the input and keeps the
// result.

// MismatchKind is what a reconciliation found wrong about one reference,
// a closed enum.
type MismatchKind struct{ s string }

// The mismatch kinds.
var (
	// MismatchMissingAtPSP: we hold it paid, the PSP lists no such
	// payment, even after the tolerance window (attack, bug, or the PSP's
	// data is incomplete). An alert.
	MismatchMissingAtPSP = MismatchKind{"missing_at_psp"}
	// MismatchMissingAtGateway: the PSP lists a payment we do not hold
	// paid (both callbacks lost). Healed by a status probe.
	MismatchMissingAtGateway = MismatchKind{"missing_at_gateway"}
	// MismatchAmount: both sides have it, in one currency, for different
	// amounts.
	MismatchAmount = MismatchKind{"amount_mismatch"}
	// MismatchCurrency: both sides have it in different currencies.
	MismatchCurrency = MismatchKind{"currency_mismatch"}
	// MismatchStatus: we hold it paid, the PSP lists it as not succeeded.
	MismatchStatus = MismatchKind{"status_mismatch"}
	// MismatchDuplicateAtPSP: the PSP lists one reference more than once.
	MismatchDuplicateAtPSP = MismatchKind{"duplicate_at_psp"}
)

// MismatchKinds lists every kind, in report order.
var MismatchKinds = []MismatchKind{MismatchMissingAtPSP, MismatchMissingAtGateway, MismatchAmount,
	MismatchCurrency, MismatchStatus, MismatchDuplicateAtPSP}

// ParseMismatchKind reads a stored kind.
func ParseMismatchKind(s string) (MismatchKind, error) {
	for _, k := range MismatchKinds {
		if k.s == s {
			return k, nil
		}
	}
	return MismatchKind{}, fmt.Errorf("unknown mismatch kind %q", s)
}

// String is the kind as stored, published and used as a metric label.
func (k MismatchKind) String() string { return k.s }

// ReconItem says what a record is about: a payment or a refund.
type ReconItem struct{ s string }

// The reconciled items.
var (
	ReconPayment = ReconItem{"payment"}
	ReconRefund  = ReconItem{"refund"}
)

// ParseReconItem reads a stored item.
func ParseReconItem(s string) (ReconItem, error) {
	switch s {
	case ReconPayment.s:
		return ReconPayment, nil
	case ReconRefund.s:
		return ReconRefund, nil
	}
	return ReconItem{}, fmt.Errorf("unknown reconciliation item %q", s)
}

// String is the item as stored.
func (i ReconItem) String() string { return i.s }

// ReconRecord is one line of one side: one of our paid attempts or
// succeeded refunds, or one row of the PSP's settled list.
type ReconRecord struct {
	Item ReconItem
	// Ref is the transaction code (payments) or our refund reference.
	Ref          string
	PSPReference string
	Amount       Money
	// Status is what the side says: ours are always PSPSucceeded; a PSP
	// row says what the PSP lists.
	Status PSPStatus
	// Day is the business day (YYYY-MM-DD) the record belongs to: the day
	// of the PSP's list it was on, or the day in the channel's time zone
	// we recorded it paid (refunded).
	Day string
	// At is when the side says it happened (paid, settled, refunded).
	At time.Time
}

// ReconInput is everything one reconciliation of a channel-day looks at.
type ReconInput struct {
	// Day is the reconciled business day, YYYY-MM-DD.
	Day string
	// Ours and PSP hold the records of every day of the window, Day ±
	// the tolerance: a payment that straddles midnight is found on the
	// neighbouring day instead of raising an alarm.
	Ours, PSP []ReconRecord
	// WindowClosed says the PSP's lists up to Day + tolerance are final:
	// only then is one of our records the PSP lacks missing_at_psp;
	// before, it is held.
	WindowClosed bool
	// PSPRefunds says whether the PSP side lists refunds; if not, our
	// refunds are counted but not matched.
	PSPRefunds bool
}

// ReconUnhealed is, for one channel, its missing_at_gateway findings whose
// status probe has not (yet) paid the attempt: how many, and when the
// oldest was found.
type ReconUnhealed struct {
	Channel string
	Count   int
	Oldest  time.Time
}

// Mismatch is one finding about one reference.
type Mismatch struct {
	Kind MismatchKind
	Item ReconItem
	Ref  string
	// Ours and PSP are the records compared (nil where the side has none;
	// for duplicates, PSP is the first row listed).
	Ours, PSP *ReconRecord
	// Detail says in words what differs.
	Detail string
}

// SideTotals are what one side says of the day: how many records and
// their sums per currency, payments and refunds apart.
type SideTotals struct {
	Payments    int
	PaymentSums map[string]int64
	Refunds     int
	RefundSums  map[string]int64
}

func (t *SideTotals) add(r ReconRecord) {
	if t.PaymentSums == nil {
		t.PaymentSums, t.RefundSums = map[string]int64{}, map[string]int64{}
	}
	c := r.Amount.Currency().Code()
	if r.Item == ReconRefund {
		t.Refunds++
		t.RefundSums[c] += r.Amount.Minor()
		return
	}
	t.Payments++
	t.PaymentSums[c] += r.Amount.Minor()
}

// ReconResult is the outcome of one reconciliation of a channel-day.
type ReconResult struct {
	// Ours and PSP total the records of the day itself (not the window).
	Ours, PSP SideTotals
	// Matched counts references of the day found on both sides and
	// agreeing; Straddled those of them the other side has on a
	// neighbouring day.
	Matched, Straddled int
	// Held counts our records of the day the PSP has not listed yet while
	// the window is open: not (yet) a mismatch.
	Held int
	// Unmatched counts our refunds of the day not compared because the
	// PSP side lists no refunds.
	Unmatched int
	// Mismatches are sorted by kind (MismatchKinds order), item, ref.
	Mismatches []Mismatch
}

// ErrBadReconInput is returned for input that is not one channel-day's.
var ErrBadReconInput = errors.New("bad reconciliation input")

type reconKey struct {
	item ReconItem
	ref  string
}

// Reconcile matches our side against the PSP's for in.Day. A reference
// belongs to the day of our record if we have one, else to the day of
// the PSP's first row for it: a payment that straddles midnight is
// reported once, by the run of the day we recorded it. It is a pure
// function: the same input gives the same result, whatever the order of
// the records.
func Reconcile(in ReconInput) (ReconResult, error) {
	if _, err := time.Parse(time.DateOnly, in.Day); err != nil {
		return ReconResult{}, fmt.Errorf("%w: day %q", ErrBadReconInput, in.Day)
	}
	var res ReconResult
	res.Ours, res.PSP = SideTotals{PaymentSums: map[string]int64{}, RefundSums: map[string]int64{}},
		SideTotals{PaymentSums: map[string]int64{}, RefundSums: map[string]int64{}}

	ours := make(map[reconKey]int, len(in.Ours))
	for i, r := range in.Ours {
		if err := validRecord(r); err != nil {
			return ReconResult{}, err
		}
		k := reconKey{r.Item, r.Ref}
		if j, dup := ours[k]; dup {
			return ReconResult{}, fmt.Errorf("%w: our side holds %s %s twice (%s, %s)", ErrBadReconInput, r.Item, r.Ref, in.Ours[j].Day, r.Day)
		}
		ours[k] = i
		if r.Day == in.Day {
			res.Ours.add(r)
		}
	}
	theirs := make(map[reconKey][]int, len(in.PSP))
	for i, r := range in.PSP {
		if err := validRecord(r); err != nil {
			return ReconResult{}, err
		}
		k := reconKey{r.Item, r.Ref}
		theirs[k] = append(theirs[k], i)
		if r.Day == in.Day {
			res.PSP.add(r)
		}
	}
	// Each key with a record of the day, considered once.
	keys := make([]reconKey, 0, len(ours))
	seen := make(map[reconKey]bool, len(ours))
	consider := func(k reconKey) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, r := range in.Ours {
		if r.Day == in.Day {
			consider(reconKey{r.Item, r.Ref})
		}
	}
	for _, r := range in.PSP {
		if r.Day == in.Day {
			consider(reconKey{r.Item, r.Ref})
		}
	}
	for _, k := range keys {
		var o *ReconRecord
		if i, ok := ours[k]; ok {
			o = &in.Ours[i]
		}
		rows := make([]*ReconRecord, 0, 1)
		for _, i := range theirs[k] {
			rows = append(rows, &in.PSP[i])
		}
		slices.SortFunc(rows, func(a, b *ReconRecord) int {
			return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.PSPReference, b.PSPReference), cmp.Compare(a.Day, b.Day))
		})
		// The reference belongs to our record's day, or the first row's.
		home := ""
		if o != nil {
			home = o.Day
		} else {
			home = rows[0].Day
		}
		if home != in.Day {
			continue // reported by the run of its own day
		}
		if k.item == ReconRefund && !in.PSPRefunds {
			res.Unmatched++
			continue
		}
		res.Mismatches = append(res.Mismatches, compare(k, o, rows, in.WindowClosed, &res)...)
	}
	slices.SortFunc(res.Mismatches, func(a, b Mismatch) int {
		return cmp.Or(cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)), cmp.Compare(a.Item.s, b.Item.s), cmp.Compare(a.Ref, b.Ref))
	})
	return res, nil
}

// compare decides one reference of the day.
func compare(k reconKey, o *ReconRecord, rows []*ReconRecord, windowClosed bool, res *ReconResult) []Mismatch {
	var out []Mismatch
	if len(rows) > 1 {
		out = append(out, Mismatch{Kind: MismatchDuplicateAtPSP, Item: k.item, Ref: k.ref, Ours: o, PSP: rows[0],
			Detail: fmt.Sprintf("listed %d times by the PSP (%s)", len(rows), pspRefs(rows))})
	}
	switch {
	case o == nil && len(rows) == 0:
		return out // cannot happen: the key came from one of the sides
	case o == nil:
		if rows[0].Status != PSPSucceeded {
			return out // the PSP lists it as not paid, and we agree
		}
		return append(out, Mismatch{Kind: MismatchMissingAtGateway, Item: k.item, Ref: k.ref, PSP: rows[0],
			Detail: fmt.Sprintf("the PSP settled %s on %s; paygate holds no such %s", rows[0].Amount, rows[0].Day, k.item)})
	case len(rows) == 0:
		if !windowClosed {
			res.Held++
			return out
		}
		return append(out, Mismatch{Kind: MismatchMissingAtPSP, Item: k.item, Ref: k.ref, Ours: o,
			Detail: fmt.Sprintf("paygate holds %s paid on %s; the PSP lists no such %s", o.Amount, o.Day, k.item)})
	}
	p := rows[0]
	switch {
	case p.Status != PSPSucceeded:
		out = append(out, Mismatch{Kind: MismatchStatus, Item: k.item, Ref: k.ref, Ours: o, PSP: p,
			Detail: fmt.Sprintf("paygate holds it succeeded; the PSP lists it %s", p.Status)})
	case p.Amount.Currency() != o.Amount.Currency():
		out = append(out, Mismatch{Kind: MismatchCurrency, Item: k.item, Ref: k.ref, Ours: o, PSP: p,
			Detail: fmt.Sprintf("paygate %s, PSP %s", o.Amount, p.Amount)})
	case p.Amount.Minor() != o.Amount.Minor():
		out = append(out, Mismatch{Kind: MismatchAmount, Item: k.item, Ref: k.ref, Ours: o, PSP: p,
			Detail: fmt.Sprintf("paygate %s, PSP %s", o.Amount, p.Amount)})
	case len(out) == 0:
		res.Matched++
		if p.Day != o.Day {
			res.Straddled++
		}
	}
	return out
}

func validRecord(r ReconRecord) error {
	switch {
	case r.Item != ReconPayment && r.Item != ReconRefund:
		return fmt.Errorf("%w: record %q has no item", ErrBadReconInput, r.Ref)
	case r.Ref == "":
		return fmt.Errorf("%w: record without reference", ErrBadReconInput)
	case r.Amount.IsZero():
		return fmt.Errorf("%w: %s %s has no amount", ErrBadReconInput, r.Item, r.Ref)
	case r.Status == PSPStatus{}:
		return fmt.Errorf("%w: %s %s has no status", ErrBadReconInput, r.Item, r.Ref)
	}
	if _, err := time.Parse(time.DateOnly, r.Day); err != nil {
		return fmt.Errorf("%w: %s %s: day %q", ErrBadReconInput, r.Item, r.Ref, r.Day)
	}
	return nil
}

func pspRefs(rows []*ReconRecord) string {
	s := ""
	for i, r := range rows {
		if i > 0 {
			s += ", "
		}
		ref := r.PSPReference
		if ref == "" {
			ref = "no PSP reference"
		}
		s += ref + " on " + r.Day
	}
	return s
}

func kindRank(k MismatchKind) int {
	for i, x := range MismatchKinds {
		if x == k {
			return i
		}
	}
	return len(MismatchKinds)
}

// BusinessDay returns the calendar date (YYYY-MM-DD) of t in loc.
func BusinessDay(t time.Time, loc *time.Location) string { return t.In(loc).Format(time.DateOnly) }

// DayBounds returns the start and end of the business day (YYYY-MM-DD)
// in loc. A day is not always 24 hours: daylight saving time makes some
// 23 or 25.
func DayBounds(day string, loc *time.Location) (start, end time.Time, err error) {
	start, err = time.ParseInLocation(time.DateOnly, day, loc)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("business day %q: %w", day, err)
	}
	return start, start.AddDate(0, 0, 1), nil
}

// AddDays returns the business day n days after day (n may be negative).
func AddDays(day string, n int) (string, error) {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return "", fmt.Errorf("business day %q: %w", day, err)
	}
	return t.AddDate(0, 0, n).Format(time.DateOnly), nil
}

// ReconWindow is the days a reconciliation of day looks at, with
// tolerance days either side, and when it closes: the end of the last
// day in loc, after which the PSP's lists of the window are final.
func ReconWindow(day string, tolerance int, loc *time.Location) (days []string, closes time.Time, err error) {
	if tolerance < 0 {
		return nil, time.Time{}, fmt.Errorf("%w: negative tolerance %d", ErrBadReconInput, tolerance)
	}
	for n := -tolerance; n <= tolerance; n++ {
		d, err := AddDays(day, n)
		if err != nil {
			return nil, time.Time{}, err
		}
		days = append(days, d)
	}
	_, closes, err = DayBounds(days[len(days)-1], loc)
	return days, closes, err
}
