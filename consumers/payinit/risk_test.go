package payinit

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/domain/risk"
	"github.com/paygate/paygate/schemas"
)

// fakeRisk holds rules and answers the outside service per order id (nil:
// nothing said), recording what it was asked and what was decided.
type fakeRisk struct {
	rules   *risk.Rules
	answers map[string]*risk.Outside
	asked   []string
	decided []risk.Assessment
}

func (f *fakeRisk) Rules() *risk.Rules { return f.rules }

func (f *fakeRisk) Ask(_ context.Context, _ *risk.Rules, reqs []risk.Request, _ []risk.Assessment) []*risk.Outside {
	out := make([]*risk.Outside, len(reqs))
	for i, r := range reqs {
		f.asked = append(f.asked, r.OrderID)
		out[i] = f.answers[r.OrderID]
	}
	return out
}

func (f *fakeRisk) Decided(as []risk.Assessment) { f.decided = append(f.decided, as...) }

func payRequest(t *testing.T, id, order string, amount int64, country string) kafka.Message {
	t.Helper()
	b, _ := json.Marshal(schemas.PayRequest{OrderID: order, Amount: amount, Currency: "USD", Country: country, Method: "card",
		ReturnURLs: schemas.ReturnURLs{Success: "https://shop.example/ok", Failure: "https://shop.example/f", Pending: "https://shop.example/p"}})
	return kafka.Message{Topic: schemas.TopicPayRequests, Key: []byte(order), Value: b,
		Headers: []kafka.Header{{Key: schemas.HeaderID, Value: []byte(id)}}}
}

// Risk control comes before routing: a denied request is rejected
// (risk_denied) and a held one waits, neither routed nor initiated; an
// allowed one is routed and initiated. The outside service is not asked
// about a request the lists settle, nor about an approved review's
// release, which is not decided again.
func TestRiskDecidesBeforeRouting(t *testing.T) {
	rules, err := risk.Parse([]byte(`{"thresholds":{"review":50,"deny":100},"outside":{},
	  "limits":[{"id":"big","currency":"USD","max":1000,"points":60}],
	  "block":[{"country":"KP","reason":"sanctions"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	cs := channels{"a": {name: "a"}, "b": {name: "b"}, "c": {name: "c"}}
	h, st := newHandler(t, priority3, cs)
	fr := &fakeRisk{rules: rules, answers: map[string]*risk.Outside{"NO": {Answer: &risk.OutsideAnswer{Decision: risk.Deny}}}}
	h.risk = fr
	batch := []kafka.Message{
		payRequest(t, "m-held", "HELD", 5000, "US"),                // above the limit: 60 points, review
		payRequest(t, "m-ok", "OK", 500, "US"),                     // nothing: allow
		payRequest(t, "m-no", "NO", 500, "US"),                     // the outside service denies
		payRequest(t, "m-kp", "KP1", 500, "KP"),                    // blocked
		payRequest(t, domain.ReleasePrefix+"7", "REL", 5000, "US"), // an approved review's release
	}
	if _, err := h.Handle(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	var initiated []string
	for _, c := range cs {
		initiated = append(initiated, c.calls...)
	}
	if len(initiated) != 2 {
		t.Fatalf("%d Initiates, want OK's and REL's", len(initiated))
	}
	got := map[string]string{}
	for _, e := range st.events {
		var s schemas.PaySession
		if e.Topic == schemas.TopicPaySessions && json.Unmarshal(e.Payload, &s) == nil {
			got[s.OrderID] = s.Type + ":" + s.Reason
		}
	}
	if got["NO"] != "rejected:risk_denied" || got["KP1"] != "rejected:risk_denied" || got["HELD"] != "" ||
		got["OK"] != "session:" || got["REL"] != "session:" {
		t.Fatalf("sessions %v", got)
	}
	if len(fr.decided) != 4 {
		t.Fatalf("%d decisions reported, want 4 (not the release's)", len(fr.decided))
	}
	for _, id := range fr.asked {
		if id == "REL" || id == "KP1" {
			t.Fatalf("the outside service was asked about %s (asked: %v)", id, fr.asked)
		}
	}
}
