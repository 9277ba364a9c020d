package risk

import (
	"errors"
	"testing"
)

func TestReviewDecidesOnceFromPending(t *testing.T) {
	for _, c := range []struct {
		from    ReviewStatus
		approve bool
		want    ReviewStatus
		err     error
	}{
		{ReviewPending, true, ReviewApproved, nil},
		{ReviewPending, false, ReviewDenied, nil},
		{ReviewApproved, true, ReviewApproved, ErrReviewDecided},
		{ReviewApproved, false, ReviewApproved, ErrReviewDecided},
		{ReviewDenied, true, ReviewDenied, ErrReviewDecided},
		{ReviewDenied, false, ReviewDenied, ErrReviewDecided},
	} {
		got, err := c.from.Decide(c.approve)
		if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("%s.Decide(approve %v) = %s, %v; want %s, %v", c.from, c.approve, got, err, c.want, c.err)
		}
	}
}

func TestReviewStatusesReadAsStored(t *testing.T) {
	for _, st := range []ReviewStatus{ReviewPending, ReviewApproved, ReviewDenied} {
		got, err := ParseReviewStatus(st.String())
		if err != nil || got != st {
			t.Errorf("ParseReviewStatus(%q) = %v, %v", st, got, err)
		}
	}
	for _, bad := range []string{"", "Pending", "expired", "approve"} {
		if _, err := ParseReviewStatus(bad); err == nil {
			t.Errorf("ParseReviewStatus(%q): no error", bad)
		}
	}
}
