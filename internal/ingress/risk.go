package ingress

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/domain/risk"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/schemas"
)

// RiskReviews is the risk review queue: an operator's decision on an
// order's pending review, and the queue itself (docs/risk.md).
type RiskReviews interface {
	DecideReview(ctx context.Context, orderID string, approve bool, by store.Actor, note string) (store.Review, error)
	Reviews(ctx context.Context, pending bool, limit int) ([]store.Review, error)
}

// ServeRiskReviews adds the review queue to the API listener:
// POST /v1/risk/reviews/{order_id} (a decision, signed as the mall signs
// its calls) and GET /v1/risk/reviews (the pending reviews, a signed
// read). A decision is the one write the ingress makes to the database
// itself: an operator's, answered with its outcome (approved, or 409 if
// the review was decided already), which a queue could not give. The
// store audits it with the decision, and the attempt it releases is
// started by payinit. Call it before Handler.
func (s *Server) ServeRiskReviews(r RiskReviews) { s.reviews = r }

func (s *Server) decideReview(c echo.Context) error {
	orderID := c.Param("order_id")
	if err := domain.ValidOrderID(orderID); err != nil {
		return fail(http.StatusBadRequest, "invalid_order_id", err.Error())
	}
	var req schemas.RiskReviewDecision
	_, keyID, err := s.signedRequest(c, schemas.RiskReviewSchema, &req)
	if err != nil {
		return err
	}
	actor := store.Actor{Name: "api:" + keyID, RemoteAddr: c.RealIP()}
	if req.By != "" {
		actor.Name += "/" + req.By
	}
	r, err := s.reviews.DecideReview(c.Request().Context(), orderID, req.Decision == "approve", actor, req.Note)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fail(http.StatusNotFound, "not_found", "order "+orderID+" has no risk review")
	case errors.Is(err, risk.ErrReviewDecided):
		return c.JSON(http.StatusConflict, map[string]any{"error": "review_decided",
			"detail": "the review of " + orderID + " was " + r.Status + " by " + r.DecidedBy, "review": reviewJSON(r)})
	case err != nil:
		return err
	}
	s.log.Info("risk review decided", "order_id", orderID, "review", r.ID, "status", r.Status, "by", actor.Name)
	return c.JSON(http.StatusOK, reviewJSON(r))
}

func (s *Server) listReviews(c echo.Context) error {
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return fail(http.StatusBadRequest, "invalid_limit", "limit: 1 to 1000")
		}
		limit = n
	}
	rs, err := s.reviews.Reviews(c.Request().Context(), c.QueryParam("decided") == "", limit)
	if err != nil {
		return err
	}
	out := make([]schemas.RiskReview, len(rs))
	for i, r := range rs {
		out[i] = reviewJSON(r)
	}
	return c.JSON(http.StatusOK, map[string]any{"reviews": out})
}

// reviewJSON is a review as the API shows it: never the rules that held
// it (they stay with operators' tools).
func reviewJSON(r store.Review) schemas.RiskReview {
	return schemas.RiskReview{OrderID: r.OrderID, ReviewID: r.ID, Status: r.Status, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt,
		Default: r.Default, DecidedAt: r.DecidedAt, DecidedBy: r.DecidedBy, Note: r.Note}
}
