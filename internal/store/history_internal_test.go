package store

import (
	"context"
	"strings"
	"testing"
)

// An order's history reads every table through an index: with sequential
// scans priced out, its plan has none. The outbox and the PSP exchanges
// hold a day or more of every order's rows; a scan of them per lookup
// would take seconds on a busy gateway.
func TestHistoryIsServedByIndexes(t *testing.T) {
	t.Parallel()
	if plan := planWithoutSeqScans(t, strings.ReplaceAll(historyQuery, "$1", "'A1'")); strings.Contains(plan, "Seq Scan") {
		t.Errorf("history scans a table:\n%s", plan)
	}
}

// planWithoutSeqScans is EXPLAIN of query on a migrated database, with
// sequential scans priced out: what the indexes allow.
func planWithoutSeqScans(t *testing.T, query string) string {
	t.Helper()
	s := testStore(t, Config{MaxConns: 1}) // one connection: the SET holds for the EXPLAIN
	ctx := context.Background()
	if _, err := s.db.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	var plan []string
	if err := s.db.SelectContext(ctx, &plan, `EXPLAIN `+query); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}
