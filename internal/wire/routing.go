package wire

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/domain/routing"
	"github.com/paygate/paygate/schemas"
)

// FeedbackEvent is a routing feedback as an outbox event on
// paygate.routing-feedback.v1 (schemas.RoutingFeedback), keyed by its arm
// so that every payinit member reads one arm's feedback in one order, with
// its stable id. payinit writes Initiate's answers, the decision table
// each attempt's end, in the transaction that stores them.
func FeedbackEvent(f routing.Feedback) domain.Event {
	b, _ := json.Marshal(schemas.RoutingFeedback{Outcome: f.Outcome.String(), TransactionCode: f.TransactionCode, Channel: f.Channel,
		Segment: f.Segment, PolicyVersion: f.PolicyVersion, DecidedAt: f.DecidedAt.UTC(), At: f.At.UTC(), Explore: f.Explore, Hop: f.Hop})
	return domain.Event{ID: f.ID(), Type: schemas.TypeRoutingFeedback, Topic: schemas.TopicRoutingFeedback, Key: f.Key(), Payload: b, Time: f.At}
}

// PaySessionEvent is a pay session (created, failed or rejected) as an
// outbox event on paygate.pay-sessions.v1, keyed by the order, with its
// stable id (pay_session/<transaction code>, or
// pay_session/rejected/<request message id>).
func PaySessionEvent(s schemas.PaySession, id string, at time.Time) domain.Event {
	b, _ := json.Marshal(s)
	return domain.Event{ID: id, Type: schemas.TypePaySession, Topic: schemas.TopicPaySessions, Key: s.OrderID, Payload: b, Time: at}
}

// DecodeFeedback reads a message of paygate.routing-feedback.v1.
func DecodeFeedback(b []byte) (routing.Feedback, error) {
	var w schemas.RoutingFeedback
	if err := json.Unmarshal(b, &w); err != nil {
		return routing.Feedback{}, fmt.Errorf("routing feedback: %w", err)
	}
	o, err := routing.ParseOutcome(w.Outcome)
	if err != nil {
		return routing.Feedback{}, err
	}
	if w.TransactionCode == "" || w.Channel == "" {
		return routing.Feedback{}, fmt.Errorf("routing feedback: transaction_code and channel are required")
	}
	return routing.Feedback{Outcome: o, TransactionCode: w.TransactionCode, Channel: w.Channel, Segment: w.Segment, PolicyVersion: w.PolicyVersion,
		DecidedAt: w.DecidedAt, At: w.At, Explore: w.Explore, Hop: w.Hop}, nil
}

// AttemptFeedback is the feedback of an attempt's outcome, attributed to
// its routing decision.
func AttemptFeedback(a domain.Attempt, o routing.Outcome, at time.Time) routing.Feedback {
	r := a.Route()
	return routing.Feedback{Outcome: o, TransactionCode: a.Code(), Channel: a.Channel(), Segment: r.Segment,
		PolicyVersion: r.PolicyVersion, DecidedAt: r.DecidedAt, At: at, Explore: r.Explore, Hop: r.Hop}
}

// EndFeedback is the routing feedback of an attempt's end: paid (a
// duplicate or late payment too: the PSP took the money), declined, or
// abandoned (expired without a final answer). An attempt whose Initiate
// failed was counted then, and counts no more.
func EndFeedback(a domain.Attempt, o domain.Outcome, at time.Time) (routing.Feedback, bool) {
	if a.Route().InitiateFailed {
		return routing.Feedback{}, false
	}
	switch o {
	case domain.OutcomePaid, domain.OutcomeDuplicatePayment, domain.OutcomeLatePayment:
		return AttemptFeedback(a, routing.Paid, at), true
	case domain.OutcomeFailed:
		return AttemptFeedback(a, routing.Declined, at), true
	case domain.OutcomeExpired:
		return AttemptFeedback(a, routing.Abandoned, at), true
	}
	return routing.Feedback{}, false
}
