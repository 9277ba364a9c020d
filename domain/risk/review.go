package risk

import (
	"errors"
	"fmt"
)

// ReviewStatus is where a risk review is, a closed enum: pending, then
// approved or denied — by an operator, or by the review's default when it
// expires.
type ReviewStatus struct{ s string }

// The review statuses, as stored.
var (
	ReviewPending  = ReviewStatus{"pending"}
	ReviewApproved = ReviewStatus{"approved"}
	ReviewDenied   = ReviewStatus{"denied"}
)

// ParseReviewStatus reads a stored status.
func ParseReviewStatus(s string) (ReviewStatus, error) {
	for _, st := range []ReviewStatus{ReviewPending, ReviewApproved, ReviewDenied} {
		if st.s == s {
			return st, nil
		}
	}
	return ReviewStatus{}, fmt.Errorf("unknown review status %q", s)
}

// String is the status as stored and shown.
func (s ReviewStatus) String() string { return s.s }

// ErrReviewDecided refuses a decision on a review that was decided
// already (by an operator, or by its expiry).
var ErrReviewDecided = errors.New("the review was decided already")

// Decide is the status a review takes when it is decided: approved or
// denied, from pending only; a review decided already keeps its status,
// and the decision is refused with ErrReviewDecided.
func (s ReviewStatus) Decide(approve bool) (ReviewStatus, error) {
	switch {
	case s != ReviewPending:
		return s, ErrReviewDecided
	case approve:
		return ReviewApproved, nil
	default:
		return ReviewDenied, nil
	}
}
