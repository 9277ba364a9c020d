// Package payinit is the `payinit` consumer group: it turns pay requests
// into attempts at a PSP and publishes the pay sessions.
//
// Per batch: (1) decode and validate every request (a request that can
// never be valid is dead-lettered); risk control prepares, outside any
// transaction: the rules in force for the batch, and the outside risk
// service's answers; (2) one transaction plans every request — create or
// load the order, refuse a conflicting amount or an already paid order,
// decide risk (allow, hold for review, deny) on counts locked for the
// batch, route to a channel and mint a new transaction code;
// (3) the PSP calls (Initiate) of the batch run concurrently, outside any
// transaction; (4) one transaction stores the sessions, the pay-session
// events and the PSP exchanges. A redelivered request resumes its stored
// plan: the same transaction code is initiated again (PSPs deduplicate on
// it), never a new one.
package payinit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/domain/risk"
	"github.com/paygate/paygate/domain/routing"
	"github.com/paygate/paygate/internal/backoff"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/wire"
	"github.com/paygate/paygate/schemas"
)

// Store is what payinit needs from the system of record.
type Store interface {
	OpenAttempts(ctx context.Context, orderIDs []string) (map[string][]domain.Attempt, error)
	ApplyCallbacks(ctx context.Context, in []domain.Inbound,
		decide func(o domain.Order, a domain.Attempt, in domain.Inbound) (domain.Decision, []domain.Event, error),
		exchanges []psp.Exchange) ([]domain.Applied, error)
	PlanAttempts(ctx context.Context, intents []domain.PayIntent, screen domain.Screen,
		decide func(existing *domain.Order, in domain.PayIntent, seen domain.RiskSeen) (domain.Planned, error)) ([]domain.AttemptPlan, error)
	FinishAttempts(ctx context.Context, starts []domain.AttemptStart, events []domain.Event, exchanges []psp.Exchange) error
	FailoverAttempts(ctx context.Context, fs []domain.Failover, events []domain.Event, exchanges []psp.Exchange) error
}

// Router chooses channels: from memory, never a database round trip.
type Router interface {
	Decide(req routing.Request, usable routing.Usable) (routing.Decision, error)
	// Next is where to fail over after d's channel failed to start the
	// payment (attempt previous), false if nowhere.
	Next(d routing.Decision, previous string) (routing.Decision, bool)
}

// Risk is risk control's part outside the planning transaction (the
// decisions themselves are domain/risk's, inside it): the rules in force,
// the outside risk service, and the decisions taken, for the metrics.
type Risk interface {
	// Rules are the risk rules in force; nil: risk control is off.
	Rules() *risk.Rules
	// Ask asks the outside risk service about reqs, concurrently, each
	// with its prescreen (our score before the counts), within rules'
	// timeout; out[i] is nil for a request not asked. It never fails: a
	// failed call is evidence, decided by the rules' failure policy.
	Ask(ctx context.Context, rules *risk.Rules, reqs []risk.Request, prescreens []risk.Assessment) []*risk.Outside
	// Decided reports the decisions a batch committed.
	Decided(as []risk.Assessment)
}

// Channels finds a configured channel by name.
type Channels interface {
	Channel(name string) (psp.Channel, bool)
}

// Config configures the payinit handler. PublicURL, ReturnHosts,
// Concurrency and SkipEarlierCheck are settings: their variables,
// defaults and help are their tags (internal/settings); New fills a zero
// Concurrency with the same default, which a test holds to the tag.
type Config struct {
	// PublicURL is the ingress's public base URL; PSPs are told to call
	// back to <PublicURL>/v1/callbacks/<channel> and send buyers back to
	// <PublicURL>/v1/return/<channel>. Required; internal/app makes it
	// the ingress's address when it is not set.
	PublicURL string `env:"PAYGATE_PUBLIC_URL" derived:"http://$PAYGATE_HTTP_ADDR" help:"the ingress as PSPs and browsers reach it: the base of the callback and return URLs payinit gives PSPs"`
	// Rules say which channel may take which payment (its countries,
	// currencies, methods); the routing policy says how to split among
	// those that may.
	Rules []domain.ChannelRule
	// ReturnHosts is the allow-list for the mall's return URLs, the
	// ingress's too (ingress.Config.ReturnHosts).
	ReturnHosts domain.HostAllowList `env:"PAYGATE_RETURN_HOSTS" default:"localhost,127.0.0.1,shop.example,.shop.example"`
	// Concurrency bounds simultaneous PSP calls of a batch, the callbacks
	// group's too (callbacks.Config.Concurrency).
	Concurrency int `env:"PAYGATE_PSP_CONCURRENCY" default:"128" min:"1" help:"PSP calls of one batch in flight at once: Initiate, status queries"`
	// InitiateTries is how often a temporary Initiate failure is tried at
	// one channel when there is no other to fail over to, before the
	// attempt is given up as failed. Default 3.
	InitiateTries int
	// SkipEarlierCheck turns off asking the PSP, on a repeat pay request,
	// whether an earlier attempt of the order already succeeded (the seed
	// system turned it off at traffic peaks; duplicates are then caught
	// and refunded by the callback decision table). Its variable says
	// whether to check, so it is the variable negated: the zero value
	// checks, as the variable's default does.
	SkipEarlierCheck bool `env:"PAYGATE_CHECK_EARLIER_ATTEMPTS" default:"true" negate:"true" help:"ask the PSP about open attempts on a repeat pay request"`
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Handler is the payinit batch handler.
type Handler struct {
	cfg      Config
	store    Store
	channels Channels
	router   Router
	risk     Risk
	log      *slog.Logger
}

// New builds the handler. rk may be nil: no risk control.
func New(cfg Config, st Store, ch Channels, rt Router, rk Risk, log *slog.Logger) (*Handler, error) {
	if _, err := url.Parse(cfg.PublicURL); err != nil || cfg.PublicURL == "" {
		return nil, fmt.Errorf("payinit: PublicURL %q is not a URL", cfg.PublicURL)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 128
	}
	if cfg.InitiateTries == 0 {
		cfg.InitiateTries = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{cfg: cfg, store: st, channels: ch, router: rt, risk: rk, log: log.With("group", "payinit")}, nil
}

// Handle implements consumers.Handler: a batch's two halves, Prepare's
// and the one it returns, in turn.
func (h *Handler) Handle(ctx context.Context, batch []kafka.Message) ([]consumers.Rejection, error) {
	return h.Prepare(ctx, batch)(ctx, batch)
}

// Prepare is payinit's first half, which the runner runs one batch ahead
// (consumers.Runner.Pipeline): it decodes the batch, checks earlier
// attempts, screens and plans it (the planning transaction), and returns
// the half that starts the planned attempts at their PSPs and stores
// their sessions. So batch k+1 is planned while batch k waits for its
// PSPs: with a PSP tens of milliseconds away, a batch's cycle is the
// longer of the two halves, not their sum.
//
// Planning batch k+1 before batch k's second half is done decides the
// same: the second half moves attempts from created to pending or failed,
// fails over to new attempts and stores sessions and events, and none of
// that is what planning reads (the orders, the requests stored before,
// risk control's counts and reviews). The earlier-attempt check leaves
// out attempts still created (checkEarlier), which batch k may be
// starting. A batch whose second half fails is handled again from the
// start by Handle, which resumes its stored plans.
func (h *Handler) Prepare(ctx context.Context, batch []kafka.Message) consumers.Handler {
	rejects, plans, decisions, err := h.plan(ctx, batch)
	return func(ctx context.Context, _ []kafka.Message) ([]consumers.Rejection, error) {
		if err != nil {
			return nil, err
		}
		if len(plans) == 0 {
			return rejects, nil
		}
		starts, events, exchanges, err := h.initiate(ctx, plans, decisions)
		if err != nil {
			return nil, err
		}
		if err := h.store.FinishAttempts(ctx, starts, events, exchanges); err != nil {
			return nil, fmt.Errorf("store %d sessions: %w", len(starts), err)
		}
		return rejects, nil
	}
}

// plan is Prepare's work: the batch's rejections (what can never be a
// pay request), and the plans of the others with their routing
// decisions by transaction code.
func (h *Handler) plan(ctx context.Context, batch []kafka.Message) ([]consumers.Rejection, []domain.AttemptPlan, map[string]routing.Decision, error) {
	var rejects []consumers.Rejection
	intents := make([]domain.PayIntent, 0, len(batch))
	for i, m := range batch {
		in, err := h.decode(m)
		if err != nil {
			rejects = append(rejects, consumers.Rejection{Index: i, Err: err})
			continue
		}
		intents = append(intents, in)
	}
	if len(intents) == 0 {
		return rejects, nil, nil, nil
	}
	if !h.cfg.SkipEarlierCheck {
		if err := h.checkEarlier(ctx, intents); err != nil {
			return nil, nil, nil, err
		}
	}
	rc := h.screen(ctx, intents)
	decisions := map[string]routing.Decision{}
	plans, err := h.store.PlanAttempts(ctx, intents, rc.screen, h.planner(decisions, rc))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("plan %d pay requests: %w", len(intents), err)
	}
	if h.risk != nil {
		var decided []risk.Assessment
		for _, p := range plans {
			if p.Risk != nil {
				decided = append(decided, *p.Risk)
			}
		}
		h.risk.Decided(decided)
	}
	return rejects, plans, decisions, nil
}

// checkEarlier asks the PSP about the open attempts of the orders that
// are requested again; a final answer is applied through the callback
// decision table (as a status probe), so that an order whose earlier
// attempt succeeded is paid and notified, and the repeat request is then
// refused as already paid instead of charging the buyer twice. A PSP
// that cannot answer now does not hold the request up. An attempt still
// created has no session yet (it is being started, by the batch before
// this one, or will be when its request is redelivered): nobody can have
// paid it, and it is not asked about.
func (h *Handler) checkEarlier(ctx context.Context, intents []domain.PayIntent) error {
	ids := make([]string, len(intents))
	byOrder := map[string]string{}
	for i, in := range intents {
		ids[i] = in.OrderID
		if _, ok := byOrder[in.OrderID]; !ok {
			byOrder[in.OrderID] = in.MessageID
		}
	}
	open, err := h.store.OpenAttempts(ctx, ids)
	if err != nil || len(open) == 0 {
		return err
	}
	var (
		mu        sync.Mutex
		probes    []domain.Inbound
		exchanges []psp.Exchange
		wg        sync.WaitGroup
		sem       = make(chan struct{}, h.cfg.Concurrency)
	)
	for orderID, attempts := range open {
		for _, a := range attempts {
			ch, ok := h.channels.Channel(a.Channel())
			if !ok || a.Status() == domain.AttemptCreated {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func(a domain.Attempt, msgID string) {
				defer func() { <-sem; wg.Done() }()
				rec := func(ex psp.Exchange) {
					ex.OrderID, ex.TransactionCode = a.OrderID(), a.Code()
					mu.Lock()
					exchanges = append(exchanges, ex)
					mu.Unlock()
				}
				n, err := psp.QueryAttempt(psp.WithRecorder(ctx, "query", rec), ch, a.Code(), a.PSPReference())
				if err != nil {
					h.log.Warn("earlier attempt could not be checked", "order_id", a.OrderID(), "attempt", a.Code(), "channel", a.Channel(), "err", err)
					return
				}
				if n.Status != domain.PSPSucceeded && n.Status != domain.PSPFailed {
					return
				}
				n.TransactionCode = a.Code()
				probe := domain.ProbeCallback("probe/"+a.Code()+"/"+msgID, a.Channel(), a.Code(), h.cfg.Now().UTC(), false)
				raw, _ := wire.EncodeCallback(probe)
				mu.Lock()
				probes = append(probes, domain.Inbound{Callback: probe, Raw: raw, Confirmed: &n})
				mu.Unlock()
			}(a, byOrder[orderID])
		}
	}
	wg.Wait()
	if len(probes) == 0 {
		return nil
	}
	applied, err := h.store.ApplyCallbacks(ctx, probes, wire.Decide, exchanges)
	if err != nil {
		return fmt.Errorf("apply %d earlier-attempt checks: %w", len(probes), err)
	}
	for _, r := range applied {
		if !r.Duplicate {
			h.log.Info("earlier attempt checked on a repeat request", "order_id", r.OrderID, "outcome", r.Outcome.String())
		}
	}
	return nil
}

// decode reads and validates one pay request message.
func (h *Handler) decode(m kafka.Message) (domain.PayIntent, error) {
	if err := schemas.Validate(schemas.PayRequestSchema, m.Value); err != nil {
		return domain.PayIntent{}, consumers.Permanent(err)
	}
	var req schemas.PayRequest
	dec := json.NewDecoder(bytes.NewReader(m.Value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return domain.PayIntent{}, consumers.Permanent(fmt.Errorf("decode pay request: %w", err))
	}
	in, err := wire.PayIntent(req, consumers.MessageID(m), m.Value)
	if err != nil {
		return in, consumers.Permanent(err)
	}
	// What tells a retry under this message id from another request
	// reusing it (PayIntent.Retries).
	if in.Digest, err = schemas.Digest(m.Value); err != nil {
		return in, consumers.Permanent(fmt.Errorf("pay request %s: %w", req.OrderID, err))
	}
	if err := in.Validate(h.cfg.ReturnHosts); err != nil {
		return in, consumers.Permanent(fmt.Errorf("pay request %s: %w", req.OrderID, err))
	}
	return in, nil
}

// riskCheck is a batch's risk control, prepared before its planning
// transaction: the rules in force when the batch began (one version for
// the whole batch), its time, and the outside service's calls by message
// id.
type riskCheck struct {
	rules   *risk.Rules
	at      time.Time
	outside map[string]*risk.Outside
	screen  domain.Screen
}

// screen prepares the batch's risk control: the rules, and the outside
// service asked about each new request the lists do not settle (with our
// score so far: the rules that need no counts). An approved review's
// release is not asked again: an operator decided.
func (h *Handler) screen(ctx context.Context, intents []domain.PayIntent) riskCheck {
	rc := riskCheck{at: h.cfg.Now(), outside: map[string]*risk.Outside{}}
	if h.risk == nil {
		return rc
	}
	if rc.rules = h.risk.Rules(); rc.rules == nil {
		return rc
	}
	rules, at := rc.rules, rc.at
	rc.screen = domain.Screen{At: at, Probes: func(in domain.PayIntent) []risk.Probe {
		if domain.IsRelease(in.MessageID) {
			return nil
		}
		return rules.Probes(in.RiskRequest(), at)
	}}
	if rules.Outside == nil {
		return rc
	}
	var reqs []risk.Request
	var pres []risk.Assessment
	var ids []string
	for _, in := range intents {
		if domain.IsRelease(in.MessageID) {
			continue
		}
		req := in.RiskRequest()
		pre := rules.Assess(req, nil, nil, at)
		if pre.PrescreenKnown() {
			continue
		}
		reqs, pres, ids = append(reqs, req), append(pres, pre), append(ids, in.MessageID)
	}
	if len(reqs) == 0 {
		return rc
	}
	for i, o := range h.risk.Ask(ctx, rules, reqs, pres) {
		if o != nil {
			rc.outside[ids[i]] = o
		}
	}
	return rc
}

// planner is the decision inside the planning transaction: the order,
// then risk control, then routing, then a new attempt carrying its
// routing decision, which it also keeps in decisions (by transaction
// code) for failover. A request held for review gets no attempt (and no
// routing) until an operator approves it; it then comes back as its
// release and is routed like any other.
func (h *Handler) planner(decisions map[string]routing.Decision, rc riskCheck) func(existing *domain.Order, in domain.PayIntent, seen domain.RiskSeen) (domain.Planned, error) {
	return func(existing *domain.Order, in domain.PayIntent, seen domain.RiskSeen) (domain.Planned, error) {
		o, err := domain.OrderFor(existing, in)
		if err != nil {
			return domain.Planned{Order: o}, err
		}
		p := domain.Planned{Order: o}
		if seen.Approved == nil {
			if seen.ReviewPending {
				return p, domain.ErrReviewPending
			}
			if rc.rules != nil {
				a := rc.rules.Assess(in.RiskRequest(), seen.Tally, rc.outside[in.MessageID], rc.at)
				p.Risk = &a
				switch a.Decision {
				case risk.Deny:
					return p, domain.ErrRiskDenied
				case risk.Review:
					return p, nil
				}
			}
		}
		d, err := h.router.Decide(routingRequest(in), h.usable(in))
		if err != nil {
			return p, err
		}
		d.RequestID = in.MessageID
		if p.Attempt, err = newAttempt(h.cfg.Now(), in, d); err == nil {
			decisions[p.Attempt.Code()] = d
		}
		return p, err
	}
}

// routingRequest is what routing knows of a pay intent.
func routingRequest(in domain.PayIntent) routing.Request {
	return routing.Request{Country: in.Country, Currency: in.Amount.Currency().Code(), Method: in.Method, Bank: in.Bank,
		Amount: in.Amount.Minor(), Channel: in.Channel}
}

// usable says whether a channel can take the intent: configured here,
// and by its rule enabled and taking the intent's country, currency and
// method.
func (h *Handler) usable(in domain.PayIntent) routing.Usable {
	byRule := domain.UsableBy(h.cfg.Rules, in)
	return func(channel string) error {
		if _, ok := h.channels.Channel(channel); !ok {
			return errors.New("not configured")
		}
		return byRule(channel)
	}
}

// newAttempt mints the attempt a routing decision made.
func newAttempt(now time.Time, in domain.PayIntent, d routing.Decision) (domain.Attempt, error) {
	a, err := domain.NewAttempt(domain.NewTransactionCode(now), in.OrderID, d.Chosen, in.Amount)
	if err != nil {
		return a, err
	}
	evidence, err := json.Marshal(d)
	if err != nil {
		return a, fmt.Errorf("routing decision of %s: %w", in.OrderID, err)
	}
	return a.WithRoute(domain.Route{Segment: d.Segment, PolicyVersion: d.PolicyVersion, DecidedAt: d.At, Explore: d.Explore,
		Hop: d.Hop, Evidence: string(evidence)}), nil
}

// resumedDecision stands for the decision of an attempt planned before a
// redelivery: its channel and segment, so that a failover goes on from
// there.
func resumedDecision(in domain.PayIntent, a domain.Attempt) routing.Decision {
	r := a.Route()
	d := routing.Decision{PolicyVersion: r.PolicyVersion, Segment: r.Segment, Request: routingRequest(in), RequestID: in.MessageID,
		Chosen: a.Channel(), Reason: routing.ReasonWeight, Hop: r.Hop, At: r.DecidedAt}
	if in.Channel != "" {
		d.Reason = routing.ReasonPin
	}
	return d
}

// job is one attempt to start at its PSP.
type job struct {
	plan     domain.AttemptPlan
	attempt  domain.Attempt
	decision routing.Decision
}

// result is what starting a job came to.
type result struct {
	start domain.AttemptStart
	// events are the pay session's and routing's feedback.
	events []domain.Event
	// failover, when set, is the attempt to try next: the job's failed
	// for a reason that may pass, and routing had another channel.
	failover *job
	fromErr  string
}

// initiate starts every planned attempt still in state created at its
// PSP, concurrently, failing over to the next channel where Initiate fails
// for a reason that may pass (each round of failovers stored in one
// transaction before its attempts are initiated), and returns what to
// store.
func (h *Handler) initiate(ctx context.Context, plans []domain.AttemptPlan, decisions map[string]routing.Decision) ([]domain.AttemptStart, []domain.Event, []psp.Exchange, error) {
	var (
		mu        sync.Mutex
		starts    []domain.AttemptStart
		events    []domain.Event
		exchanges []psp.Exchange
		round     []job
	)
	for _, p := range plans {
		switch {
		case p.Rejected != "":
			log := h.log.With("order_id", p.Intent.OrderID, "reason", p.Rejected, "resumed", p.Resumed)
			if p.Risk != nil {
				log = log.With("score", p.Risk.Score, "rules", p.Risk.RuleIDs(), "rules_version", p.Risk.RulesVersion)
			}
			log.Info("pay request rejected")
			events = append(events, sessionEvent(schemas.PaySession{Type: schemas.SessionRejected, OrderID: p.Intent.OrderID, Reason: p.Rejected},
				"pay_session/rejected/"+p.Intent.MessageID))
			continue
		case p.Held:
			if !p.Resumed {
				h.log.Info("pay request held for a risk review", "order_id", p.Intent.OrderID, "score", p.Risk.Score,
					"rules", p.Risk.RuleIDs(), "until", p.Risk.ReviewExpires)
			}
			continue
		case p.Attempt.Status() != domain.AttemptCreated:
			continue // a redelivery of a request whose session is stored
		}
		d, ok := decisions[p.Attempt.Code()]
		if !ok {
			d = resumedDecision(p.Intent, p.Attempt)
		}
		round = append(round, job{plan: p, attempt: p.Attempt, decision: d})
	}
	for len(round) > 0 {
		results := make([]result, len(round))
		var wg sync.WaitGroup
		sem := make(chan struct{}, h.cfg.Concurrency)
		for i, j := range round {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				rec := func(ex psp.Exchange) {
					ex.OrderID, ex.TransactionCode = j.plan.Intent.OrderID, j.attempt.Code()
					mu.Lock()
					exchanges = append(exchanges, ex)
					mu.Unlock()
				}
				results[i] = h.start(psp.WithRecorder(ctx, "initiate", rec), j)
			}()
		}
		wg.Wait()
		var next []job
		var failovers []domain.Failover
		var feedback []domain.Event
		for i, res := range results {
			if res.failover == nil {
				starts, events = append(starts, res.start), append(events, res.events...)
				continue
			}
			from := round[i].attempt
			if pending, err := from.Started(""); err == nil {
				// The PSP may have started it all the same: pending, so
				// that the sweeper probes it until it expires.
				from = pending
			}
			failovers = append(failovers, domain.Failover{MessageID: round[i].plan.Intent.MessageID, From: from, FromError: res.fromErr, To: res.failover.attempt})
			feedback = append(feedback, wire.FeedbackEvent(wire.AttemptFeedback(round[i].attempt, routing.InitiateFailed, h.cfg.Now())))
			next = append(next, *res.failover)
		}
		if len(failovers) > 0 {
			if err := h.store.FailoverAttempts(ctx, failovers, feedback, exchanges); err != nil {
				return nil, nil, nil, fmt.Errorf("store %d failovers: %w", len(failovers), err)
			}
			exchanges = nil // stored with the failovers
		}
		round = next
	}
	return starts, events, exchanges, nil
}

// start initiates one attempt. A failure that may pass moves the payment
// to the next channel routing has for it; with none, it is tried again at
// the same channel with the same transaction code (PSPs deduplicate on
// it), InitiateTries times in all.
func (h *Handler) start(ctx context.Context, j job) result {
	a := j.attempt
	p := j.plan
	log := h.log.With("order_id", a.OrderID(), "attempt", a.Code(), "channel", a.Channel(), "hop", a.Route().Hop)
	id := "pay_session/" + a.Code()
	ch, ok := h.channels.Channel(a.Channel())
	var sess psp.Session
	err := fmt.Errorf("channel %q is not configured", a.Channel())
	if ok {
		req := psp.InitiateRequest{
			TransactionCode: a.Code(), OrderID: a.OrderID(), Amount: a.Amount(), Country: p.Intent.Country,
			Method: p.Intent.Method, Description: p.Intent.Description, BuyerEmail: p.Intent.Buyer.Email, BuyerIP: p.Intent.Buyer.IP,
			NotifyURL: h.cfg.PublicURL + "/v1/callbacks/" + url.PathEscape(a.Channel()),
			ReturnURL: h.cfg.PublicURL + "/v1/return/" + url.PathEscape(a.Channel()),
		}
		for try := 1; ; try++ {
			sess, err = ch.Initiate(ctx, req)
			if err == nil || !psp.IsTemporary(err) || ctx.Err() != nil {
				break
			}
			if try == 1 {
				if n, ok := h.router.Next(j.decision, a.Code()); ok {
					to, aerr := newAttempt(h.cfg.Now(), p.Intent, n)
					if aerr == nil {
						log.Warn("initiate failed, failing over", "err", err, "to", n.Chosen)
						return result{failover: &job{plan: p, attempt: to, decision: n}, fromErr: err.Error()}
					}
					log.Error("failover attempt could not be made", "err", aerr)
				}
			}
			if try >= h.cfg.InitiateTries {
				break
			}
			log.Warn("initiate failed, trying again", "err", err, "try", try)
			if !initiateRetry.Wait(ctx, try-1) { // a shutdown does not wait out the backoff
				break
			}
		}
	}
	if err != nil {
		log.Error("initiate failed, attempt failed", "err", err)
		failed, ferr := a.InitiateFailed()
		if ferr != nil {
			failed = a
		}
		// A failure that may pass is the PSP's (the breaker's business);
		// a refusal for good is about this payment (the success rate's).
		outcome := routing.Declined
		if psp.IsTemporary(err) || !ok {
			outcome = routing.InitiateFailed
		}
		return result{start: domain.AttemptStart{Attempt: failed, InitiateError: err.Error()},
			events: h.withFeedback(sessionEvent(schemas.PaySession{
				Type: schemas.SessionFailed, OrderID: a.OrderID(), TransactionCode: a.Code(), Channel: a.Channel(),
				Reason: "the payment service provider could not start the payment: " + err.Error(),
			}, id), a, outcome)}
	}
	started, err := a.Started(sess.PSPReference)
	if err != nil {
		started = a
	}
	log.Info("attempt started", "psp_reference", sess.PSPReference)
	ps := schemas.PaySession{Type: schemas.SessionCreated, OrderID: a.OrderID(), TransactionCode: a.Code(), Channel: a.Channel(),
		PayURL: sess.PayURL, Token: sess.Token, Form: sess.Form}
	if !sess.ExpiresAt.IsZero() {
		t := sess.ExpiresAt.UTC()
		ps.ExpiresAt = &t
	}
	return result{start: domain.AttemptStart{Attempt: started, PayURL: sess.PayURL, Token: sess.Token, Form: sess.Form, ExpiresAt: sess.ExpiresAt},
		events: h.withFeedback(sessionEvent(ps, id), a, routing.Initiated)}
}

// withFeedback is a session event and the routing feedback of the
// attempt's Initiate.
func (h *Handler) withFeedback(session domain.Event, a domain.Attempt, o routing.Outcome) []domain.Event {
	return []domain.Event{session, wire.FeedbackEvent(wire.AttemptFeedback(a, o, h.cfg.Now()))}
}

// initiateRetry spaces the tries of an Initiate at the last channel left.
var initiateRetry = backoff.Policy{Min: 100 * time.Millisecond, Max: time.Second}

func sessionEvent(s schemas.PaySession, id string) domain.Event {
	return wire.PaySessionEvent(s, id, time.Now())
}
