package wire

import (
	"encoding/json"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/schemas"
)

// Decide decides one verified inbound message with domain.DecideInbound
// and names the events the decision implies (PaymentEvents), with the
// routing feedback of an attempt's end (EndFeedback). The store
// calls it inside the transaction that applies callbacks; the callbacks
// group and payinit's check of earlier attempts both hand it over: one
// code path decides.
func Decide(o domain.Order, a domain.Attempt, in domain.Inbound) (domain.Decision, []domain.Event, error) {
	d, err := domain.DecideInbound(o, a, in)
	if err != nil {
		return d, nil, err
	}
	now := time.Now().UTC()
	evs, err := PaymentEvents(o, a, in.Effective(), d, now)
	if f, ok := EndFeedback(a, d.Outcome, now); ok && err == nil {
		evs = append(evs, FeedbackEvent(f))
	}
	return d, evs, err
}

// PaymentEvents are the events decision d about attempt a of order o
// implies, told by notification n (nil if none): `paid`, `failed` (also
// for an attempt given up as expired) or `duplicate_detected` for the
// order center on paygate.payments.v1, and for a duplicate or late
// payment a refund request for its whole amount. Event ids are stable per
// fact, so a fact decided twice is published once. now stamps the events
// and stands for a paid_at the PSP did not give.
func PaymentEvents(o domain.Order, a domain.Attempt, n *domain.Notification, d domain.Decision, now time.Time) ([]domain.Event, error) {
	ev := schemas.PaymentEvent{OrderID: o.ID(), Amount: a.Amount().Minor(), Currency: a.Amount().Currency().Code(),
		Channel: a.Channel(), TransactionCode: a.Code(), PSPReference: d.Attempt.PSPReference(), Reason: d.Reason}
	var events []domain.Event
	add := func(id, typ, topic string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		events = append(events, domain.Event{ID: id, Type: typ, Topic: topic, Key: o.ID(), Payload: b, Time: now})
		return nil
	}
	var err error
	switch d.Outcome {
	case domain.OutcomePaid:
		paidAt := now
		if n != nil && !n.OccurredAt.IsZero() {
			paidAt = n.OccurredAt.UTC()
		}
		ev.Type, ev.PaidAt = schemas.EventPaid, &paidAt
		err = add("payment.paid/"+o.ID(), schemas.TypePaymentPaid, schemas.TopicPayments, ev)
	case domain.OutcomeFailed:
		ev.Type = schemas.EventFailed
		if ev.Reason == "" {
			ev.Reason = "the payment service provider reports the payment failed"
		}
		err = add("payment.failed/"+a.Code(), schemas.TypePaymentFailed, schemas.TopicPayments, ev)
	case domain.OutcomeExpired:
		// Given up by paygate: as final for the order center as a
		// failure the PSP reports, and one fact per attempt like it (an
		// attempt is failed or expired, never both).
		ev.Type = schemas.EventFailed
		ev.Reason = "the attempt expired without a final answer from the payment service provider; paygate gave it up"
		err = add("payment.failed/"+a.Code(), schemas.TypePaymentFailed, schemas.TopicPayments, ev)
	case domain.OutcomeDuplicatePayment, domain.OutcomeLatePayment:
		r := d.Repeat
		ev.Type, ev.Amount, ev.Currency, ev.PSPReference = schemas.EventDuplicateDetected, r.Amount.Minor(), r.Amount.Currency().Code(), r.PSPReference
		if err = add("payment.duplicate_detected/"+a.Code()+"/"+r.PSPReference, schemas.TypeDuplicateDetected, schemas.TopicPayments, ev); err != nil {
			break
		}
		if r.Manual {
			break // a person refunds it: refunds go by attempt, and this attempt's refund is its first payment's
		}
		reason := schemas.ReasonDuplicatePayment
		if d.Outcome == domain.OutcomeLatePayment {
			reason = schemas.ReasonLatePayment
		}
		err = add("refund_request/"+a.Code()+"/"+r.PSPReference, schemas.TypeRefundRequest, schemas.TopicRefundRequests, schemas.RefundRequest{
			RefundID: r.RefundID(), OrderID: o.ID(), TransactionCode: a.Code(), Amount: r.Amount.Minor(),
			Currency: r.Amount.Currency().Code(), Reason: reason,
		})
	}
	return events, err
}
