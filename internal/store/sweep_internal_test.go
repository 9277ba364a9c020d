package store

import (
	"strings"
	"testing"
)

// The sweeper's round reads the attempts due a probe from the two probe
// indexes, in due order, rather than reading and sorting every open
// attempt (with sequential scans priced out, the old query sorted all of
// attempts_open).
func TestDueProbesAreReadFromTheProbeIndexes(t *testing.T) {
	t.Parallel()
	plan := planWithoutSeqScans(t, strings.NewReplacer("$1", "'2026-12-06T10:00:00Z'", "$2", "'60 seconds'",
		"$3", "'1800 seconds'", "$4", "100").Replace(strings.TrimPrefix(dueProbesQuery, planEachTime)))
	for _, index := range []string{"attempts_probe_next", "attempts_probe_first"} {
		if !strings.Contains(plan, index) {
			t.Errorf("the due probes are not read from %s:\n%s", index, plan)
		}
	}
}
