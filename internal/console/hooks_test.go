package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/console"
	"github.com/paygate/paygate/internal/store"
)

// queue stands for risk's review queue (internal/app hands the console
// the store's; e2e's TestConsoleDecidesRiskReviews decides real ones): it
// keeps the decisions the console hands it.
type queue struct {
	mu        sync.Mutex
	decisions []string
}

func (q *queue) Open(context.Context, int) ([]console.Review, error) {
	return []console.Review{{ID: "rv-1", OrderID: "A1001", Amount: 250000, Currency: "USD", Score: 0.91, Rules: []string{"velocity_email_1h"},
		RulesVer: "r7", CreatedAt: time.Now()}}, nil
}

func (q *queue) decide(what, id string, a store.Actor) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.decisions = append(q.decisions, what+" "+id+" by "+a.Name)
	return nil
}

func (q *queue) Approve(_ context.Context, id string, a store.Actor) error {
	return q.decide("approve", id, a)
}
func (q *queue) Deny(_ context.Context, id string, a store.Actor) error {
	return q.decide("deny", id, a)
}

// The pages other parts feed: routing's health on the Channels page, and
// risk's review queue on the Reviews page, where an operator approves or
// denies (a viewer may not, nor a form without the session's token).
func TestRoutingAndRiskHooks(t *testing.T) {
	t.Parallel()
	q := &queue{}
	rate := 0.93
	e := newEnvWith(t, console.Deps{
		Health: func(context.Context) ([]console.ChannelHealth, error) {
			return []console.ChannelHealth{{Channel: "sim", Segment: "US/card", SuccessRate: &rate, Samples: 412, Breaker: "closed", Share: 0.8},
				{Channel: "sim2", Segment: "US/card", Samples: 3, Breaker: "open", BreakerReason: "5 of 5 Initiate calls failed", Share: 0.2}}, nil
		},
		Reviews: q,
	})
	viewer, op := e.client(), e.client()
	vcsrf := viewer.login(viewerName, viewerPassword)
	csrf := op.login(operatorName, operatorPassword)

	_, body, _ := op.get("/console/channels")
	for _, want := range []string{"US/card", "93.0%", "5 of 5 Initiate calls failed", "80.0%", "No routing policy applied"} {
		if !strings.Contains(body, want) {
			t.Errorf("channels page lacks %q", want)
		}
	}
	_, body, _ = op.get("/console/reviews")
	if !strings.Contains(body, "velocity_email_1h") || !strings.Contains(body, `action="/console/reviews/rv-1/approve"`) {
		t.Errorf("reviews page:\n%s", body)
	}
	if _, body, _ = viewer.get("/console/reviews"); strings.Contains(body, `/approve"`) {
		t.Error("the viewer is offered to approve")
	}
	if code, _, _ := viewer.post("/console/reviews/rv-1/approve", url.Values{"csrf": {vcsrf}}); code != http.StatusForbidden {
		t.Errorf("viewer approves: %d", code)
	}
	if code, _, _ := op.post("/console/reviews/rv-1/deny", url.Values{"csrf": {"nope"}}); code != http.StatusForbidden {
		t.Errorf("deny without the token: %d", code)
	}
	if code, _, _ := op.post("/console/reviews/rv-1/approve", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther {
		t.Errorf("operator approves: %d", code)
	}
	q.mu.Lock()
	got := strings.Join(q.decisions, "; ")
	q.mu.Unlock()
	if got != "approve rv-1 by console:alice" {
		t.Errorf("decisions = %q", got)
	}

	// Without them, the pages say what is not there.
	plain := newEnv(t)
	c := plain.client()
	c.login(operatorName, operatorPassword)
	if _, body, _ := c.get("/console/channels"); !strings.Contains(body, "has no router to ask") {
		t.Error("channels page without health")
	}
	if _, body, _ := c.get("/console/reviews"); !strings.Contains(body, "Risk checks are not built yet") {
		t.Error("reviews page without risk")
	}
}
