package payinit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/domain/risk"
	"github.com/paygate/paygate/domain/routing"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/schemas"
)

// fakeStore plans every intent as a new order and records what payinit
// asks it to store.
type fakeStore struct {
	mu        sync.Mutex
	open      map[string][]domain.Attempt // what OpenAttempts answers
	planned   int                         // batches planned
	failovers []domain.Failover
	foEvents  []domain.Event
	starts    []domain.AttemptStart
	events    []domain.Event
}

func (s *fakeStore) OpenAttempts(context.Context, []string) (map[string][]domain.Attempt, error) {
	return s.open, nil
}

func (s *fakeStore) ApplyCallbacks(context.Context, []domain.Inbound, func(domain.Order, domain.Attempt, domain.Inbound) (domain.Decision, []domain.Event, error), []psp.Exchange) ([]domain.Applied, error) {
	return nil, errors.New("not expected")
}

func (s *fakeStore) PlanAttempts(_ context.Context, intents []domain.PayIntent, screen domain.Screen,
	decide func(*domain.Order, domain.PayIntent, domain.RiskSeen) (domain.Planned, error)) ([]domain.AttemptPlan, error) {
	s.mu.Lock()
	s.planned++
	s.mu.Unlock()
	var plans []domain.AttemptPlan
	for _, in := range intents {
		var seen domain.RiskSeen
		if screen.Probes != nil {
			seen.Tally = risk.NewTally(screen.Probes(in))
		}
		if domain.IsRelease(in.MessageID) { // as if its approved review were found
			seen.Approved = &domain.ReviewRelease{By: "ana"}
		}
		d, err := decide(nil, in, seen)
		p := domain.AttemptPlan{Intent: in, Order: d.Order, Risk: d.Risk}
		switch {
		case err != nil:
			p.Rejected = err.Error()
		case d.Held():
			p.Held = true
		default:
			p.Attempt = d.Attempt
		}
		plans = append(plans, p)
	}
	return plans, nil
}

func (s *fakeStore) FinishAttempts(_ context.Context, starts []domain.AttemptStart, events []domain.Event, _ []psp.Exchange) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starts, s.events = append(s.starts, starts...), append(s.events, events...)
	return nil
}

func (s *fakeStore) FailoverAttempts(_ context.Context, fs []domain.Failover, events []domain.Event, _ []psp.Exchange) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failovers, s.foEvents = append(s.failovers, fs...), append(s.foEvents, events...)
	return nil
}

// fakeChannel answers Initiate with its errors in turn, then a session.
type fakeChannel struct {
	psp.Channel
	name    string
	mu      sync.Mutex
	errs    []error
	calls   []string // transaction codes
	queries []string // transaction codes asked about
}

func (c *fakeChannel) Initiate(_ context.Context, req psp.InitiateRequest) (psp.Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, req.TransactionCode)
	if len(c.errs) > 0 {
		err := c.errs[0]
		if len(c.errs) > 1 {
			c.errs = c.errs[1:]
		}
		if err != nil {
			return psp.Session{}, err
		}
	}
	return psp.Session{PayURL: "https://" + c.name + ".example/pay/" + req.TransactionCode, PSPReference: c.name + "-" + req.TransactionCode}, nil
}

// Query answers that the attempt is pending at the PSP, and records it.
func (c *fakeChannel) Query(_ context.Context, code string) (domain.Notification, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queries = append(c.queries, code)
	return domain.Notification{TransactionCode: code, Status: domain.PSPPending}, nil
}

type channels map[string]*fakeChannel

func (cs channels) Channel(name string) (psp.Channel, bool) {
	c, ok := cs[name]
	return c, ok
}

// policyRouter routes with the domain's Decide over one policy and an
// empty health: the router without its feedback.
type policyRouter struct{ p *routing.Policy }

func (r policyRouter) Decide(req routing.Request, usable routing.Usable) (routing.Decision, error) {
	return routing.Decide(r.p, req, routing.NewHealth().View(r.p, time.Now()), usable, rand.New(rand.NewPCG(1, 2)), time.Now())
}

func (r policyRouter) Next(d routing.Decision, previous string) (routing.Decision, bool) {
	return d.Next(r.p, routing.NewHealth().View(r.p, time.Now()), previous, time.Now())
}

const priority3 = `{"max_channels":3,"segments":[{"name":"default","split":"priority","match":{},
  "candidates":[{"channel":"a","priority":0,"weight":1},{"channel":"b","priority":1,"weight":1},{"channel":"c","priority":2,"weight":1}]}]}`

func newHandler(t *testing.T, doc string, cs channels) (*Handler, *fakeStore) {
	t.Helper()
	p, err := routing.Parse([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	var rules []domain.ChannelRule
	for name := range cs {
		rules = append(rules, domain.ChannelRule{Name: name, Enabled: true, Weight: 1})
	}
	st := &fakeStore{}
	h, err := New(Config{PublicURL: "https://gw.example", Rules: rules, ReturnHosts: domain.HostAllowList{"shop.example"}, SkipEarlierCheck: true},
		st, cs, policyRouter{p}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return h, st
}

func message(t *testing.T, order, channel string) kafka.Message {
	t.Helper()
	b, _ := json.Marshal(schemas.PayRequest{OrderID: order, Amount: 1999, Currency: "USD", Country: "US", Method: "card", Channel: channel,
		ReturnURLs: schemas.ReturnURLs{Success: "https://shop.example/ok", Failure: "https://shop.example/f", Pending: "https://shop.example/p"}})
	return kafka.Message{Topic: schemas.TopicPayRequests, Key: []byte(order), Value: b,
		Headers: []kafka.Header{{Key: schemas.HeaderID, Value: []byte("msg-" + order)}}}
}

func temporary(msg string) error { return &psp.TemporaryError{Op: "initiate", Err: errors.New(msg)} }

func sessionTypes(evs []domain.Event) map[string]int {
	out := map[string]int{}
	for _, e := range evs {
		if e.Topic == schemas.TopicPaySessions {
			var s schemas.PaySession
			_ = json.Unmarshal(e.Payload, &s)
			out[s.Type+"@"+s.Channel]++
		} else {
			var f schemas.RoutingFeedback
			_ = json.Unmarshal(e.Payload, &f)
			out["feedback "+f.Outcome+"@"+f.Channel]++
		}
	}
	return out
}

// Prepare plans a batch without starting anything at a PSP, so that the
// runner can plan batch k+1 while batch k's attempts are started; the
// earlier-attempt check then asks only about attempts that have a
// session (pending), not about one still created, which the batch before
// may be starting. What Prepare returns starts the attempts and stores
// their sessions.
func TestPrepareRunsAheadOfTheBatchBefore(t *testing.T) {
	cs := channels{"a": {name: "a"}}
	h, st := newHandler(t, `{"segments":[{"name":"default","match":{},"candidates":[{"channel":"a","weight":1}]}]}`, cs)
	h.cfg.SkipEarlierCheck = false
	ctx := context.Background()
	first := h.Prepare(ctx, []kafka.Message{message(t, "P1", "")})
	// The repeat comes in the next batch while the first is being
	// started: its attempt is still created. An older one is pending.
	usd := domain.MustMoney(1999, "USD")
	st.open = map[string][]domain.Attempt{"P1": {
		domain.RestoreAttempt("T-starting", "P1", "a", usd, domain.AttemptCreated, "", ""),
		domain.RestoreAttempt("T-older", "P1", "a", usd, domain.AttemptPending, "a-T-older", ""),
	}}
	second := h.Prepare(ctx, []kafka.Message{message(t, "P1", "")})
	if st.planned != 2 || len(cs["a"].calls) != 0 || len(st.starts) != 0 {
		t.Fatalf("after preparing two batches: %d planned, Initiate %v, %d sessions stored; want 2, none, none", st.planned, cs["a"].calls, len(st.starts))
	}
	if q := cs["a"].queries; len(q) != 1 || q[0] != "T-older" {
		t.Errorf("earlier-attempt check asked about %v; want the pending attempt only", q)
	}
	for i, finish := range []consumers.Handler{first, second} {
		if _, err := finish(ctx, nil); err != nil {
			t.Fatalf("finish %d: %v", i+1, err)
		}
	}
	if len(cs["a"].calls) != 2 || len(st.starts) != 2 || st.starts[0].Attempt.Code() == st.starts[1].Attempt.Code() {
		t.Fatalf("Initiate %v, sessions %+v; want both batches' attempts started", cs["a"].calls, st.starts)
	}
}

func TestFailoverMovesToTheNextChannelAtOnce(t *testing.T) {
	cs := channels{"a": {name: "a", errs: []error{temporary("503")}}, "b": {name: "b", errs: []error{temporary("timeout")}}, "c": {name: "c"}}
	h, st := newHandler(t, priority3, cs)
	if _, err := h.Handle(context.Background(), []kafka.Message{message(t, "O1", "")}); err != nil {
		t.Fatal(err)
	}
	// One call each: a failure that may pass is not retried where
	// another channel is left.
	if len(cs["a"].calls) != 1 || len(cs["b"].calls) != 1 || len(cs["c"].calls) != 1 {
		t.Fatalf("calls a %v b %v c %v", cs["a"].calls, cs["b"].calls, cs["c"].calls)
	}
	if len(st.failovers) != 2 {
		t.Fatalf("failovers %+v", st.failovers)
	}
	for i, f := range st.failovers {
		from, to := []string{"a", "b"}[i], []string{"b", "c"}[i]
		if f.From.Channel() != from || f.To.Channel() != to || f.From.Status() != domain.AttemptPending || f.FromError == "" ||
			f.To.Status() != domain.AttemptCreated || f.To.Route().Hop != i+1 || f.MessageID != "msg-O1" || f.From.Code() == f.To.Code() {
			t.Fatalf("failover %d: from %s %s (%q) to %s %s hop %d", i, f.From.Channel(), f.From.Status(), f.FromError, f.To.Channel(), f.To.Status(), f.To.Route().Hop)
		}
		var d routing.Decision
		if err := json.Unmarshal([]byte(f.To.Route().Evidence), &d); err != nil || d.Reason != routing.ReasonFailover || d.Previous != f.From.Code() {
			t.Fatalf("failover %d evidence %s (%v)", i, f.To.Route().Evidence, err)
		}
	}
	if got := sessionTypes(st.foEvents); got["feedback initiate_failed@a"] != 1 || got["feedback initiate_failed@b"] != 1 || len(got) != 2 {
		t.Fatalf("failover feedback %v", got)
	}
	if got := sessionTypes(st.events); got["session@c"] != 1 || got["feedback initiated@c"] != 1 || len(got) != 2 {
		t.Fatalf("finish events %v: want c's session and its feedback only", got)
	}
	if len(st.starts) != 1 || st.starts[0].Attempt.Channel() != "c" || st.starts[0].PayURL == "" {
		t.Fatalf("starts %+v", st.starts)
	}
}

func TestNoChannelLeftRetriesTheSameCodeThenFails(t *testing.T) {
	cs := channels{"a": {name: "a", errs: []error{temporary("503")}}}
	h, st := newHandler(t, `{"segments":[{"name":"default","match":{},"candidates":[{"channel":"a","weight":1}]}]}`, cs)
	if _, err := h.Handle(context.Background(), []kafka.Message{message(t, "O2", "")}); err != nil {
		t.Fatal(err)
	}
	calls := cs["a"].calls
	if len(calls) != 3 || calls[0] != calls[1] || calls[1] != calls[2] {
		t.Fatalf("calls %v: want 3 tries with one transaction code", calls)
	}
	if len(st.failovers) != 0 || len(st.starts) != 1 || st.starts[0].Attempt.Status() != domain.AttemptFailed || st.starts[0].InitiateError == "" {
		t.Fatalf("failovers %v starts %+v", st.failovers, st.starts)
	}
	if got := sessionTypes(st.events); got["failed@a"] != 1 || got["feedback initiate_failed@a"] != 1 {
		t.Fatalf("events %v", got)
	}
}

func TestARefusalForGoodDoesNotFailOver(t *testing.T) {
	cs := channels{"a": {name: "a", errs: []error{fmt.Errorf("initiate: %w", psp.ErrDeclined)}}, "b": {name: "b"}, "c": {name: "c"}}
	h, st := newHandler(t, priority3, cs)
	if _, err := h.Handle(context.Background(), []kafka.Message{message(t, "O3", "")}); err != nil {
		t.Fatal(err)
	}
	if len(cs["a"].calls) != 1 || len(cs["b"].calls) != 0 || len(st.failovers) != 0 {
		t.Fatalf("a refusal for good moved the payment: a %v b %v failovers %v", cs["a"].calls, cs["b"].calls, st.failovers)
	}
	// It is about this payment, not the PSP's health: a decline, not an
	// Initiate failure for the breaker.
	if got := sessionTypes(st.events); got["failed@a"] != 1 || got["feedback declined@a"] != 1 {
		t.Fatalf("events %v", got)
	}
}

func TestAPinnedPaymentNeverFailsOver(t *testing.T) {
	cs := channels{"a": {name: "a"}, "b": {name: "b", errs: []error{temporary("503")}}, "c": {name: "c"}}
	h, st := newHandler(t, priority3, cs)
	if _, err := h.Handle(context.Background(), []kafka.Message{message(t, "O4", "b")}); err != nil {
		t.Fatal(err)
	}
	if len(cs["b"].calls) != 3 || len(cs["a"].calls)+len(cs["c"].calls) != 0 || len(st.failovers) != 0 {
		t.Fatalf("pinned to b: a %v b %v c %v", cs["a"].calls, cs["b"].calls, cs["c"].calls)
	}
}

func TestAChannelThatCannotTakeThePaymentIsSkipped(t *testing.T) {
	cs := channels{"a": {name: "a"}, "b": {name: "b"}, "c": {name: "c"}}
	h, st := newHandler(t, priority3, cs)
	for i := range h.cfg.Rules {
		if h.cfg.Rules[i].Name == "a" {
			h.cfg.Rules[i].Currencies = []string{"EUR"}
		}
	}
	if _, err := h.Handle(context.Background(), []kafka.Message{message(t, "O5", "")}); err != nil {
		t.Fatal(err)
	}
	if len(cs["a"].calls) != 0 || len(cs["b"].calls) != 1 {
		t.Fatalf("a takes EUR only, the payment is USD: a %v b %v", cs["a"].calls, cs["b"].calls)
	}
	var d routing.Decision
	if err := json.Unmarshal([]byte(st.starts[0].Attempt.Route().Evidence), &d); err != nil || d.Candidates[0].Excluded == "" {
		t.Fatalf("the decision must say why a was left out: %+v (%v)", d, err)
	}
}
