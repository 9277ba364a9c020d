package store

import (
	"os"
	"regexp"
	"testing"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/domain/risk"
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

// So are the other statuses the store's SQL spells as literals (partial
// indexes again: risk_reviews_pending, the recon heal states): each file's
// literals are values of the domain's enums for the tables it reads.
func TestStatusLiteralsAreTheDomains(t *testing.T) {
	t.Parallel()
	type parse func(string) error
	of := func(f func(string) (any, error)) parse { return func(s string) error { _, err := f(s); return err } }
	review := of(func(s string) (any, error) { return risk.ParseReviewStatus(s) })
	run := of(func(s string) (any, error) { return domain.ParseReconRunStatus(s) })
	refund := of(func(s string) (any, error) { return domain.ParseRefundStatus(s) })
	heal := of(func(s string) (any, error) { return domain.ParseHealState(s) })
	attempt := of(func(s string) (any, error) { return domain.ParseAttemptStatus(s) })
	for _, c := range []struct {
		file, column string
		any          []parse
	}{
		{"risk.go", "status", []parse{review}},
		{"recon.go", "status", []parse{run, refund, attempt}},
		{"recon.go", "heal", []parse{heal}},
	} {
		src, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		clause := regexp.MustCompile(`\b` + c.column + ` (?:=|<>|IN \() ?('[a-z_]+'(?:, ?'[a-z_]+')*)`)
		literal := regexp.MustCompile(`'([a-z_]+)'`)
		n := 0
		for _, m := range clause.FindAllSubmatch(src, -1) {
			for _, l := range literal.FindAllSubmatch(m[1], -1) {
				n++
				ok := false
				for _, p := range c.any {
					ok = ok || p(string(l[1])) == nil
				}
				if !ok {
					t.Errorf("%s spells %s %q, which no domain enum of its tables has", c.file, c.column, l[1])
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no %s literal found: the test reads nothing", c.file, c.column)
		}
	}
}
