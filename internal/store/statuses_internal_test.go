package store

import (
	"os"
	"regexp"
	"testing"

	"github.com/paygate/paygate/domain"
)

// The refund statuses the store's SQL spells as literals (so that the
// planner matches the partial indexes refunds_due and
// refunds_one_in_flight, which spell them so) are the domain's: a status
// renamed or added in the domain fails here, not in production.
func TestRefundStatusLiteralsAreTheDomains(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("refunds.go")
	if err != nil {
		t.Fatal(err)
	}
	clause := regexp.MustCompile(`status (?:=|IN \() ?('[a-z_]+'(?:, ?'[a-z_]+')*)`)
	literal := regexp.MustCompile(`'([a-z_]+)'`)
	n := 0
	for _, c := range clause.FindAllSubmatch(src, -1) {
		for _, l := range literal.FindAllSubmatch(c[1], -1) {
			n++
			if _, err := domain.ParseRefundStatus(string(l[1])); err != nil {
				t.Errorf("refunds.go spells refund status %q: %v", l[1], err)
			}
		}
	}
	if n == 0 {
		t.Fatal("no status literal found: the test reads nothing")
	}
}
