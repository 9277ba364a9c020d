package settlement_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/producers/settlement"
)

func TestParseFile(t *testing.T) {
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	file := "transaction_code,psp_reference,amount,currency,status,settled_at,type\n" +
		"T1,sp_1,19.99,USD,succeeded,2026-03-10T12:00:00Z,payment\n" +
		"T2,,500,JPY,,2026-03-10 23:59:59,\n" +
		"R1,sr_1,1.5,KWD,failed,2026-03-10T01:00:00+09:00,refund\n"
	rows, refunds, err := settlement.ParseFile(strings.NewReader(file), "2026-03-10", tokyo)
	if err != nil {
		t.Fatal(err)
	}
	if !refunds || len(rows) != 3 {
		t.Fatalf("refunds %v, %d rows", refunds, len(rows))
	}
	want := []struct {
		line   int
		item   domain.ReconItem
		ref    string
		amount string
		status domain.PSPStatus
		at     time.Time
	}{
		{2, domain.ReconPayment, "T1", "19.99 USD", domain.PSPSucceeded, time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)},
		{3, domain.ReconPayment, "T2", "500 JPY", domain.PSPSucceeded, time.Date(2026, 3, 10, 23, 59, 59, 0, tokyo)},
		{4, domain.ReconRefund, "R1", "1.500 KWD", domain.PSPFailed, time.Date(2026, 3, 9, 16, 0, 0, 0, time.UTC)},
	}
	for i, w := range want {
		r := rows[i]
		if r.Line != w.line || r.Record.Item != w.item || r.Record.Ref != w.ref || r.Record.Amount.String() != w.amount ||
			r.Record.Status != w.status || !r.Record.At.Equal(w.at) || r.Record.Day != "2026-03-10" {
			t.Errorf("row %d = %+v", i, r)
		}
	}
	rows, refunds, err = settlement.ParseFile(strings.NewReader("currency,amount_minor,settled_at,transaction_code\nUSD,1999,2026-03-10T12:00:00Z,T1\n"), "2026-03-10", time.UTC)
	if err != nil || refunds || len(rows) != 1 || rows[0].Record.Amount.Minor() != 1999 {
		t.Errorf("minor units, columns in another order: %+v, %v, %v", rows, refunds, err)
	}
}

func TestParseFileNamesTheBadLine(t *testing.T) {
	const head = "transaction_code,amount,currency,settled_at\n"
	const good = "T1,19.99,USD,2026-03-10T12:00:00Z\n"
	tests := []struct {
		name, file, want string
	}{
		{"empty", "", "line 1: empty file"},
		{"unknown column", "transaction_code,amount,currency,settled_at,colour\n", `line 1: unknown column "colour"`},
		{"no currency column", "transaction_code,amount,settled_at\n", "line 1: no currency column"},
		{"both amounts", "transaction_code,amount,amount_minor,currency,settled_at\n", "line 1: want one of the columns"},
		{"float in USD", head + good + "T2,19.999,USD,2026-03-10T12:00:00Z\n", "line 3: amount: parse amount \"19.999\": USD has 2 decimals"},
		{"negative", head + good + good + "T3,-5,USD,2026-03-10T12:00:00Z\n", "line 4: amount"},
		{"unknown currency", head + "T1,1,XXX,2026-03-10T12:00:00Z\n", "line 2: amount"},
		{"no reference", head + ",1,USD,2026-03-10T12:00:00Z\n", "line 2: transaction_code"},
		{"bad time", head + good + "T2,1,USD,yesterday\n", `line 3: settled_at "yesterday"`},
		{"bad status", "transaction_code,amount,currency,settled_at,status\nT1,1,USD,2026-03-10T12:00:00Z,refunded\n", `line 2: status "refunded"`},
		{"short line", head + good + "T2,1,USD\n", "line 3: wrong number of fields"},
		{"bad quote", head + good + good + "T\"2,1,USD,2026-03-10T12:00:00Z\n", "line 4:"},
	}
	for _, tt := range tests {
		rows, _, err := settlement.ParseFile(strings.NewReader(tt.file), "2026-03-10", time.UTC)
		if !errors.Is(err, settlement.ErrBadFile) || !strings.Contains(err.Error(), tt.want) || rows != nil {
			t.Errorf("%s: %d rows, err %v; want an error with %q and no rows", tt.name, len(rows), err, tt.want)
		}
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add("transaction_code,amount,currency,settled_at\nT1,19.99,USD,2026-03-10T12:00:00Z\n")
	f.Add("transaction_code,amount_minor,currency,settled_at,type,status\nR1,5,JPY,2026-03-10 10:00:00,refund,pending\n")
	f.Fuzz(func(t *testing.T, file string) {
		rows, _, err := settlement.ParseFile(strings.NewReader(file), "2026-03-10", time.UTC)
		if err != nil && rows != nil {
			t.Fatal("rows and an error")
		}
		for _, r := range rows {
			if r.Record.Ref == "" || r.Record.Amount.IsZero() || r.Line < 2 {
				t.Fatalf("bad row %+v", r)
			}
		}
	})
}
