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
	s := testStore(t, Config{MaxConns: 1}) // one connection: the SET holds for the EXPLAIN
	ctx := context.Background()
	if _, err := s.db.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	var plan []string
	if err := s.db.SelectContext(ctx, &plan, `EXPLAIN `+strings.ReplaceAll(historyQuery, "$1", "'A1'")); err != nil {
		t.Fatal(err)
	}
	for _, line := range plan {
		if strings.Contains(line, "Seq Scan") {
			t.Errorf("history scans a table:\n%s", strings.Join(plan, "\n"))
			break
		}
	}
}
