package wire

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/paygate/paygate/domain/routing"
	"github.com/paygate/paygate/schemas"
)

// TestRoutingFeedbackWire: what paygate writes on the feedback topic is
// what routing-feedback.json and schemas.RoutingFeedback describe, and it
// reads back the same.
func TestRoutingFeedbackWire(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for _, f := range []routing.Feedback{
		{Outcome: routing.Paid, TransactionCode: "T1", Channel: "sim", Segment: "default", PolicyVersion: 3, DecidedAt: at, At: at.Add(time.Minute)},
		{Outcome: routing.InitiateFailed, TransactionCode: "T2", Channel: "sim2", Segment: "in-hdfc", DecidedAt: at, At: at, Explore: true, Hop: 2},
	} {
		ev := FeedbackEvent(f)
		b := ev.Payload
		if ev.Topic != schemas.TopicRoutingFeedback || ev.Key != f.Channel+"/"+f.Segment || ev.ID != f.ID() {
			t.Fatalf("event %+v", ev)
		}
		if err := schemas.Validate(schemas.RoutingFeedbackSchema, b); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		var w schemas.RoutingFeedback
		if err := json.Unmarshal(b, &w); err != nil || w.Outcome != f.Outcome.String() || w.Hop != f.Hop || !w.DecidedAt.Equal(f.DecidedAt) {
			t.Fatalf("%s read as %+v (%v)", b, w, err)
		}
		back, err := DecodeFeedback(b)
		if err != nil || back != f {
			t.Fatalf("%s read back as %+v (%v), want %+v", b, back, err, f)
		}
	}
}
