package ingress

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/wire"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/schemas"
)

// RefundStore is what the ingress reads of refunds: one refund (with the
// hash of the request that created it), for GET /v1/refunds/{id}.
type RefundStore interface {
	Refund(ctx context.Context, refundID string) (schemas.Refund, []byte, error)
}

// createRefund is POST /v1/refunds: finance asks for money back. The body
// is a refund request, signed like a pay request; refund_id is its
// idempotency key. The request goes to paygate.refund-requests.v1 and the
// answer is 202 once Kafka has it, without reading the database (so that
// refunds are taken while it is down); the refunds group validates it
// against the order (a refused request becomes a failed refund, visible
// at the status URL and on the results topic), and decides a refund id
// already recorded: the same content is a retry (nothing happens), other
// content is refused (idempotency_key_reused), recorded and shown with
// the first refund, which stands.
func (s *Server) createRefund(c echo.Context) error {
	release, err := s.admit(c)
	if err != nil {
		return err
	}
	defer release()
	var req schemas.RefundRequest
	body, keyID, err := s.signedRequest(c, schemas.RefundRequestSchema, &req)
	if err != nil {
		return err
	}
	id := "refund_request/" + keyID + "/" + req.RefundID
	in, err := wire.RefundIntent(req, id, body)
	if err != nil {
		return fail(http.StatusBadRequest, "invalid_request", err.Error())
	}
	ctx := c.Request().Context()
	accepted := schemas.RefundAccepted{RefundID: req.RefundID, StatusURL: "/v1/refunds/" + url.PathEscape(req.RefundID)}
	msg := producers.Message{Topic: schemas.TopicRefundRequests, Key: req.OrderID, ID: id, Type: schemas.TypeRefundRequest, Time: s.cfg.Now(), Value: body}
	if err := s.pub.Write(ctx, msg); err != nil {
		s.log.Error("refund request not accepted: kafka write failed", "order_id", req.OrderID, "refund_id", req.RefundID, "err", err)
		return fail(http.StatusServiceUnavailable, "unavailable", "the request could not be stored; retry it as it is")
	}
	s.log.Info("refund request accepted", "order_id", req.OrderID, "refund_id", req.RefundID, "amount", in.Amount.String())
	return c.JSON(http.StatusAccepted, accepted)
}

// getRefund is GET /v1/refunds/{refund_id}.
func (s *Server) getRefund(c echo.Context) error {
	id := c.Param("refund_id")
	if err := domain.ValidRefundID(id); err != nil {
		return fail(http.StatusBadRequest, "invalid_refund_id", err.Error())
	}
	r, _, err := s.store.Refund(c.Request().Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fail(http.StatusNotFound, "not_found", "no refund "+id+" (a request just accepted may still be on its way)")
	case err != nil:
		return err
	}
	return c.JSON(http.StatusOK, r)
}
