package store

import (
	"context"
	"strings"
	"testing"
)

// The sweeper's round reads the attempts due a probe from the two probe
// indexes, in due order, rather than reading and sorting every open
// attempt (with sequential scans priced out, the old query sorted all of
// attempts_open).
func TestDueProbesAreReadFromTheProbeIndexes(t *testing.T) {
	s := testStore(t, Config{MaxConns: 1}) // one connection: the SET holds for the EXPLAIN
	ctx := context.Background()
	if _, err := s.db.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	q := strings.NewReplacer("$1", "'2026-12-06T10:00:00Z'", "$2", "'60 seconds'", "$3", "'1800 seconds'", "$4", "100").
		Replace(dueProbesQuery)
	var plan []string
	if err := s.db.SelectContext(ctx, &plan, `EXPLAIN `+q); err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(plan, "\n")
	for _, index := range []string{"attempts_probe_next", "attempts_probe_first"} {
		if !strings.Contains(joined, index) {
			t.Errorf("the due probes are not read from %s:\n%s", index, joined)
		}
	}
}
