package wire

import (
	"encoding/json"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/schemas"
)

// RefundResult builds a final refund's event for finance
// (paygate.refund-results.v1), finished at finishedAt, with the stable id
// refund_result/<refund id>: the outbox emits it once, whichever path —
// the refunds group's call or query, or a PSP's refund callback —
// finished it.
func RefundResult(r domain.Refund, finishedAt time.Time) (domain.Event, error) {
	status := schemas.RefundFailed
	if r.Status() == domain.RefundSucceeded {
		status = schemas.RefundSucceeded
	}
	v := schemas.RefundResult{RefundID: r.ID(), OrderID: r.OrderID(), TransactionCode: r.TransactionCode(), Channel: r.Channel(),
		Amount: r.Amount().Minor(), Currency: r.Amount().Currency().Code(), Status: status, PSPReference: r.PSPReference(),
		Reason: r.Reason(), FinishedAt: finishedAt.UTC()}
	if status == schemas.RefundFailed {
		v.Error = r.ErrorText()
		if v.Error == "" {
			v.Error = "the refund failed"
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return domain.Event{}, err
	}
	return domain.Event{ID: "refund_result/" + r.ID(), Type: schemas.TypeRefundResult, Topic: schemas.TopicRefundResults,
		Key: r.OrderID(), Payload: b, Time: v.FinishedAt}, nil
}
