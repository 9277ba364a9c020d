package settlement

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/domain"
)

// FileRow is one row of a settlement file, with its line number.
type FileRow struct {
	Line   int
	Record domain.ReconRecord
}

// ErrBadFile wraps every problem of a settlement file; the message names
// the line.
var ErrBadFile = errors.New("malformed settlement file")

// ParseFile reads a PSP's settlement list of one business day (day, in
// loc) from CSV (docs/reconciliation.md): a header line naming the
// columns, in any order —
//
//	transaction_code  required: our reference (the PSP's merchant reference)
//	amount            major units as the PSP writes them ("19.99", "500" for JPY), exact;
//	amount_minor      or integer minor units (one of the two is required)
//	currency          required, ISO 4217
//	psp_reference     optional: the PSP's id of the payment
//	status            optional: succeeded (default), failed, pending
//	settled_at        required: RFC 3339, or "YYYY-MM-DD hh:mm:ss" in loc
//	type              optional: payment (default) or refund; a file with
//	                  this column lists refunds too
//
// then one line per row. It reads the whole file before returning, and
// any problem is an error naming its line (and column): a file is taken
// whole or not at all. refunds reports whether the file has a type column.
func ParseFile(r io.Reader, day string, loc *time.Location) (rows []FileRow, refunds bool, err error) {
	if _, _, err := domain.DayBounds(day, loc); err != nil {
		return nil, false, err
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 0 // every line as long as the header
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, false, fmt.Errorf("%w: line 1: empty file, want a header line", ErrBadFile)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrBadFile, err)
	}
	col := map[string]int{}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch name {
		case "transaction_code", "amount", "amount_minor", "currency", "psp_reference", "status", "settled_at", "type":
		default:
			return nil, false, fmt.Errorf("%w: line 1: unknown column %q", ErrBadFile, h)
		}
		if _, dup := col[name]; dup {
			return nil, false, fmt.Errorf("%w: line 1: column %q twice", ErrBadFile, name)
		}
		col[name] = i
	}
	for _, need := range []string{"transaction_code", "currency", "settled_at"} {
		if _, ok := col[need]; !ok {
			return nil, false, fmt.Errorf("%w: line 1: no %s column", ErrBadFile, need)
		}
	}
	_, decimal := col["amount"]
	_, minor := col["amount_minor"]
	if decimal == minor {
		return nil, false, fmt.Errorf("%w: line 1: want one of the columns amount and amount_minor", ErrBadFile)
	}
	_, refunds = col["type"]
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, false, fmt.Errorf("%w: line %d: %v", ErrBadFile, pe.Line, pe.Err)
			}
			return nil, false, fmt.Errorf("%w: %v", ErrBadFile, err)
		}
		line, _ := cr.FieldPos(0)
		r, err := parseRow(rec, col, day, loc)
		if err != nil {
			return nil, false, fmt.Errorf("%w: line %d: %v", ErrBadFile, line, err)
		}
		rows = append(rows, FileRow{Line: line, Record: r})
	}
	return rows, refunds, nil
}

func parseRow(rec []string, col map[string]int, day string, loc *time.Location) (domain.ReconRecord, error) {
	get := func(name string) string {
		if i, ok := col[name]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	r := domain.ReconRecord{Item: domain.ReconPayment, Ref: get("transaction_code"), PSPReference: get("psp_reference"),
		Status: domain.PSPSucceeded, Day: day}
	if r.Ref == "" || len(r.Ref) > 128 {
		return r, errors.New("transaction_code: 1 to 128 characters required")
	}
	cur := get("currency")
	if _, ok := col["amount"]; ok {
		m, err := domain.ParseDecimal(get("amount"), cur)
		if err != nil {
			return r, fmt.Errorf("amount: %v", err)
		}
		r.Amount = m
	} else {
		n, err := strconv.ParseInt(get("amount_minor"), 10, 64)
		if err != nil {
			return r, fmt.Errorf("amount_minor %q: not an integer of minor units", get("amount_minor"))
		}
		if r.Amount, err = domain.NewMoney(n, cur); err != nil {
			return r, fmt.Errorf("amount_minor: %v", err)
		}
	}
	if s := get("status"); s != "" {
		st, err := domain.ParsePSPStatus(s)
		if err != nil || st == domain.PSPUnknown {
			return r, fmt.Errorf("status %q: succeeded, failed or pending", s)
		}
		r.Status = st
	}
	if t := get("type"); t != "" {
		it, err := domain.ParseReconItem(t)
		if err != nil {
			return r, fmt.Errorf("type %q: payment or refund", t)
		}
		r.Item = it
	}
	at := get("settled_at")
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		if t, err = time.ParseInLocation(time.DateTime, at, loc); err != nil {
			return r, fmt.Errorf("settled_at %q: RFC 3339 or YYYY-MM-DD hh:mm:ss", at)
		}
	}
	r.At = t.UTC()
	return r, nil
}
