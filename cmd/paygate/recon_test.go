package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/pgtest"
)

// `paygate recon import`: a good file is stored; a malformed one is
// refused with its line named, and nothing of it is imported — the list
// imported before stays as it was.
func TestReconImportAllOrNothing(t *testing.T) {
	url := pgtest.New(t)
	cfg, err := LoadConfig(func(k string) string {
		if k == "DATABASE_URL" {
			return url
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.csv", "transaction_code,amount,currency,settled_at\nT1,19.99,USD,2026-03-10T12:00:00Z\nT2,5.00,USD,2026-03-10T13:00:00Z\n")
	bad := write("bad.csv", "transaction_code,amount,currency,settled_at\nT1,19.99,USD,2026-03-10T12:00:00Z\nT3,5.00,USD,2026-03-10T13:00:00Z\nT4,12.345,USD,2026-03-10T14:00:00Z\n")
	ctx := context.Background()
	var out bytes.Buffer
	if err := runRecon(ctx, cfg, []string{"import", "--channel", "sim", "--date", "2026-03-10", good}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "imported 2 rows") {
		t.Errorf("output %q", out.String())
	}
	err = runRecon(ctx, cfg, []string{"import", "--channel", "sim", "--date", "2026-03-10", bad}, &out)
	if err == nil || !strings.Contains(err.Error(), "line 4") || !strings.Contains(err.Error(), "bad.csv") {
		t.Fatalf("malformed file: %v; want an error naming bad.csv and line 4", err)
	}
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var refs string
	if err := db.QueryRow(`SELECT string_agg(ref, ',' ORDER BY line) FROM recon_import_rows WHERE channel = 'sim' AND day = '2026-03-10'`).Scan(&refs); err != nil {
		t.Fatal(err)
	}
	if refs != "T1,T2" {
		t.Errorf("imported rows after the malformed file: %s, want T1,T2 (the good file's)", refs)
	}
	if err := runRecon(ctx, cfg, []string{"import", "--channel", "nope", "--date", "2026-03-10", good}, &out); err == nil {
		t.Error("import for an unknown channel accepted")
	}
	out.Reset()
	if err := runRecon(ctx, cfg, []string{"report", "--format", "json"}, &out); err != nil || !strings.Contains(out.String(), `"runs": []`) {
		t.Errorf("report with no runs: %q, %v", out.String(), err)
	}
}
