// Package refunds is the `refunds` consumer group and its poller: it
// executes refund requests (finance's, and paygate's own for duplicate
// and late payments) at the PSP, safely, and publishes each final result
// exactly once.
//
// Per batch: (1) decode and validate the shape of each request (a message
// that is not a refund request at all is dead-lettered); (2) one
// transaction records the requests — a refund id seen before with the
// same body is a no-op, with another body a conflict (recorded as
// refused, idempotency_key_reused, the original untouched), a request refused by the rules
// in domain is a failed refund whose result goes to the outbox — and
// starts the oldest queued refund of each order that has none in flight,
// under a lease; (3) the PSP calls of the batch run concurrently, outside
// any transaction, each with the refund's stable reference so that the
// PSP deduplicates; (4) one transaction stores the outcomes, the results
// of the final ones, the PSP exchanges, and starts each order's next
// queued refund, which is called in turn.
//
// A refund whose call outcome is unknown (a timeout, a crash) stays
// calling and is resolved by QueryRefund, never by calling again blindly;
// refunds pending at the PSP are queried with backoff. The Poller does
// both, and takes over the refunds of a worker that died, once its lease
// has run out.
package refunds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/domain/risk"
	"github.com/paygate/paygate/internal/backoff"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/wire"
	"github.com/paygate/paygate/schemas"
)

// Store is what the refunds group needs from the system of record.
type Store interface {
	QueueRefunds(ctx context.Context, in []domain.RefundIntent,
		decide func(in domain.RefundIntent, order *domain.Order, attempts []domain.Attempt, existing []domain.Refund) (domain.Refund, error),
		result func(domain.Refund) (domain.Event, error), lease time.Duration) ([]domain.RefundRecorded, []domain.RefundClaim, error)
	ClaimRefunds(ctx context.Context, limit int, lease time.Duration) ([]domain.RefundClaim, error)
	RefundsInFlight(ctx context.Context) ([]domain.RefundsInFlight, error)
	FinishRefunds(ctx context.Context, outcomes []domain.RefundOutcome, result func(domain.Refund) (domain.Event, error),
		exchanges []psp.Exchange, lease time.Duration) ([]domain.RefundClaim, error)
}

// RiskEvents is risk control's side of refunds: a refund above the risk
// rules' threshold counts against its buyer (docs/risk.md).
type RiskEvents interface {
	// LargeRefund reports whether a refund of amount is a risk event
	// under the rules in force.
	LargeRefund(amount domain.Money) bool
	// RecordRiskEvents records events; one recorded before counts once.
	RecordRiskEvents(ctx context.Context, evs []risk.Event) error
}

// Channels finds a configured channel by name.
type Channels interface {
	Channel(name string) (psp.Channel, bool)
}

// Config configures the handler and the poller. Each setting's variable,
// default and help are its tags (internal/settings); New and NewPoller
// fill a zero field with the same default, which a test holds to the
// tag.
type Config struct {
	// Concurrency bounds simultaneous PSP calls of a batch.
	Concurrency int `env:"PAYGATE_REFUND_CONCURRENCY" default:"16" min:"1" help:"refund calls and queries to PSPs in flight at once"`
	// Lease is how long a worker holds a refund it calls or queries;
	// after it, another worker may take the refund over (querying first).
	// It must exceed CallTimeout.
	Lease time.Duration `env:"PAYGATE_REFUND_LEASE" default:"1m" min:"1ns" help:"how long a worker holds a refund it calls; more than the call timeout"`
	// CallTimeout bounds one PSP call (the channel's own timeout applies
	// too).
	CallTimeout time.Duration `env:"PAYGATE_REFUND_CALL_TIMEOUT" default:"30s" min:"1ns" help:"one refund call or query"`
	// MinBackoff and MaxBackoff bound the wait before a refund pending at
	// the PSP, or with an unknown call outcome, is queried again; it
	// doubles with every query, jittered (backoff.Policy).
	MinBackoff time.Duration `env:"PAYGATE_REFUND_MIN_BACKOFF" default:"1s" min:"1ns" help:"the first wait before a refund pending at the PSP is queried again; doubles"`
	MaxBackoff time.Duration `env:"PAYGATE_REFUND_MAX_BACKOFF" default:"5m" min:"1ns" help:"the longest such wait"`
	// PollInterval is how often the poller looks for due refunds.
	PollInterval time.Duration `env:"PAYGATE_REFUND_POLL_INTERVAL" default:"1s" min:"1ns" help:"how often the poller looks for due refunds"`
	// PollBatch is the most refunds the poller claims at once.
	PollBatch int `env:"PAYGATE_REFUND_POLL_BATCH" default:"100" min:"1" help:"the most refunds it claims at once"`
	// Now is the clock of result timestamps. Default time.Now.
	Now func() time.Time
	// RiskEvents, if set, records the large refunds finance asks for as
	// risk events. Default nil: none.
	RiskEvents RiskEvents
}

// Check fills a copy of c with the defaults and says what is wrong with
// it, if anything.
func (c Config) Check() error { return c.defaults() }

func (c *Config) defaults() error {
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.Lease == 0 {
		c.Lease = time.Minute
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.PollBatch == 0 {
		c.PollBatch = 100
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Concurrency < 1 || c.PollBatch < 1 || c.Lease <= c.CallTimeout || c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff || c.PollInterval <= 0 {
		return fmt.Errorf("refunds config: need Concurrency, PollBatch >= 1, Lease > CallTimeout, 0 < MinBackoff <= MaxBackoff, PollInterval > 0 (got %+v)", *c)
	}
	return nil
}

// executor moves claimed refunds on: it asks the PSPs, then stores the
// outcomes, and goes on with the refunds that started as a result.
type executor struct {
	cfg      Config
	store    Store
	channels Channels
	log      *slog.Logger
	results  *prometheus.CounterVec
	calls    *prometheus.CounterVec
}

func newExecutor(cfg Config, st Store, ch Channels, log *slog.Logger, reg prometheus.Registerer) (*executor, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	e := &executor{cfg: cfg, store: st, channels: ch, log: log,
		results: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_refunds_total",
			Help: "Refunds that reached a final state, by channel and status (succeeded, failed)."}, []string{"channel", "status"})),
		calls: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_refund_psp_calls_total",
			Help: "Refund calls and queries to PSPs, by channel, operation (refund, query_refund) and outcome (ok, failed, unknown)."},
			[]string{"channel", "operation", "outcome"})),
	}
	return e, nil
}

// register registers c, or returns the collector already registered
// under its name (the handler and the poller of one process share them).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if ex, ok := are.ExistingCollector.(C); ok {
				return ex
			}
		}
		panic(err)
	}
	return c
}

// run executes claims until no refund started as a result is left. It
// returns an error only when outcomes could not be stored within half the
// lease (finish); the claims then stay leased and are taken over once the
// lease runs out.
func (e *executor) run(ctx context.Context, claims []domain.RefundClaim) error {
	for len(claims) > 0 {
		outcomes, exchanges := e.work(ctx, claims)
		if err := ctx.Err(); err != nil {
			return err
		}
		next, err := e.finish(ctx, outcomes, exchanges)
		if err != nil {
			return fmt.Errorf("store %d refund outcomes: %w", len(outcomes), err)
		}
		for _, o := range outcomes {
			r := o.Refund
			if r.Status().IsFinal() {
				e.results.WithLabelValues(r.Channel(), r.Status().String()).Inc()
			}
			e.log.Info("refund moved on", "refund_id", r.ID(), "order_id", r.OrderID(), "attempt", r.TransactionCode(),
				"channel", r.Channel(), "status", r.Status().String(), "call_status", r.CallStatus().String(), "error", r.ErrorText())
		}
		claims = next
	}
	return nil
}

// finishRetry paces the tries to store outcomes the PSPs gave.
var finishRetry = backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}

// finish stores the outcomes, trying again while the claims' lease has
// more than half to run: what the PSP said is known, and dropping it on a
// database blip would leave each refund calling until its lease ran out
// (a minute by default) and another worker queried the PSP again. Storing
// twice changes nothing: an outcome is applied only under its claim's
// lease and state (Store.FinishRefunds).
func (e *executor) finish(ctx context.Context, outcomes []domain.RefundOutcome, exchanges []psp.Exchange) ([]domain.RefundClaim, error) {
	var next []domain.RefundClaim
	until := time.Now().Add(e.cfg.Lease / 2)
	err := finishRetry.Retry(ctx, func(error) bool { return time.Now().Before(until) }, func(n int, err error) {
		e.log.Warn("refund outcomes not stored; trying again", "refunds", len(outcomes), "try", n+1, "err", err)
	}, func() error {
		var err error
		next, err = e.store.FinishRefunds(ctx, outcomes, e.result, exchanges, e.cfg.Lease)
		return err
	})
	return next, err
}

// work asks the PSPs about every claim, concurrently.
func (e *executor) work(ctx context.Context, claims []domain.RefundClaim) ([]domain.RefundOutcome, []psp.Exchange) {
	var (
		mu        sync.Mutex
		outcomes  = make([]domain.RefundOutcome, len(claims))
		exchanges []psp.Exchange
		wg        sync.WaitGroup
		sem       = make(chan struct{}, e.cfg.Concurrency)
	)
	for i, c := range claims {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			rec := func(ex psp.Exchange) {
				ex.OrderID, ex.TransactionCode = c.Refund.OrderID(), c.Refund.TransactionCode()
				mu.Lock()
				exchanges = append(exchanges, ex)
				mu.Unlock()
			}
			outcomes[i] = e.one(ctx, c, rec)
		}()
	}
	wg.Wait()
	return outcomes, exchanges
}

// one moves one claimed refund on. A claim that may have been called
// before is queried first; only a PSP that does not know the refund at
// all is called (again), with the same reference.
func (e *executor) one(ctx context.Context, c domain.RefundClaim, rec func(psp.Exchange)) domain.RefundOutcome {
	r := c.Refund
	out := domain.RefundOutcome{Claim: c, Refund: r}
	log := e.log.With("refund_id", r.ID(), "order_id", r.OrderID(), "attempt", r.TransactionCode(), "channel", r.Channel())
	retry := e.backoff(c.Polls)
	ch, ok := e.channels.Channel(r.Channel())
	if !ok {
		msg := fmt.Sprintf("channel %q is not configured", r.Channel())
		if !c.Query {
			out.Refund = must(r.CallFailed(msg))
			return out
		}
		out.Refund, out.Retry = r.Stalled(msg), retry
		return out
	}
	if c.Query {
		qctx, cancel := context.WithTimeout(psp.WithRecorder(ctx, "query_refund", rec), e.cfg.CallTimeout)
		res, err := psp.QueryRefundOf(qctx, ch, psp.RefundQuery{RefundRef: r.Ref(), PSPReference: r.PSPReference(),
			TransactionCode: r.TransactionCode(), PaymentPSPReference: r.PaymentPSPReference()})
		cancel()
		switch {
		case err != nil:
			e.calls.WithLabelValues(r.Channel(), "query_refund", "unknown").Inc()
			log.Warn("refund query failed; will query again", "err", err, "retry_in", retry)
			out.Refund, out.Retry = r.Stalled("query refund: "+err.Error()), retry
			return out
		case res.Status == psp.RefundUnknown && r.Status() == domain.RefundCalling:
			// The PSP never received the call: make it, with the same
			// reference (a call still on its way is deduplicated).
			e.calls.WithLabelValues(r.Channel(), "query_refund", "ok").Inc()
			log.Info("refund unknown at the PSP; calling it")
		case res.Status == psp.RefundUnknown:
			e.calls.WithLabelValues(r.Channel(), "query_refund", "ok").Inc()
			log.Error("the PSP no longer knows a refund it had accepted; will query again", "refund_ref", r.Ref())
			out.Refund, out.Retry = r.Stalled("the payment service provider does not know refund "+r.Ref()), retry
			return out
		default:
			e.calls.WithLabelValues(r.Channel(), "query_refund", "ok").Inc()
			out.Refund, out.Retry = e.answered(r, res, retry)
			return out
		}
	}
	cctx, cancel := context.WithTimeout(psp.WithRecorder(ctx, "refund", rec), e.cfg.CallTimeout)
	res, err := ch.Refund(cctx, psp.RefundRequest{RefundRef: r.Ref(), TransactionCode: r.TransactionCode(),
		PSPReference: r.PaymentPSPReference(), Amount: r.Amount(), Reason: r.Reason()})
	cancel()
	switch {
	case err == nil && res.Status != psp.RefundUnknown:
		e.calls.WithLabelValues(r.Channel(), "refund", "ok").Inc()
		out.Refund, out.Retry = e.answered(r, res, retry)
	case err != nil && (errors.Is(err, psp.ErrDeclined) || errors.Is(err, psp.ErrNotFound) || errors.Is(err, psp.ErrUnsupported)):
		// The PSP refused the call for good: nothing was refunded.
		e.calls.WithLabelValues(r.Channel(), "refund", "failed").Inc()
		log.Warn("refund refused by the PSP", "err", err)
		out.Refund = must(r.CallFailed("the payment service provider refused the refund: " + err.Error()))
	default:
		// Timeout, lost connection, unreadable answer: it may have
		// happened. A query will tell.
		if err == nil {
			err = errors.New("the answer gave no status")
		}
		e.calls.WithLabelValues(r.Channel(), "refund", "unknown").Inc()
		log.Warn("refund call outcome unknown; will query", "err", err, "retry_in", retry)
		out.Refund, out.Retry = must(r.CallUnknown("refund call: "+err.Error())), retry
	}
	return out
}

// answered records a PSP's statement about the refund.
func (e *executor) answered(r domain.Refund, res psp.RefundResult, retry time.Duration) (domain.Refund, time.Duration) {
	st := map[psp.RefundStatus]domain.PSPStatus{psp.RefundPending: domain.PSPPending, psp.RefundSucceeded: domain.PSPSucceeded,
		psp.RefundFailed: domain.PSPFailed}[res.Status]
	if !res.Amount.IsZero() && !res.Amount.Equal(r.Amount()) {
		e.log.Error("the PSP reports another refund amount", "refund_id", r.ID(), "asked", r.Amount().String(), "psp", res.Amount.String())
	}
	nr, err := r.Answered(st, res.PSPReference, "")
	if err != nil { // cannot happen for a claimed refund; keep it for the next look
		return r.Stalled(err.Error()), retry
	}
	if nr.Status().IsFinal() {
		return nr, 0
	}
	return nr, retry
}

func must(r domain.Refund, err error) domain.Refund {
	if err != nil {
		panic(err) // a claimed refund is calling: the transitions used here are legal
	}
	return r
}

// backoff is the wait before the next look at a refund looked at polls
// times already: backoff.Policy's, doubling from MinBackoff to
// MaxBackoff, jittered so that refunds that failed together are not
// looked at together again.
func (e *executor) backoff(polls int) time.Duration {
	return backoff.Policy{Min: e.cfg.MinBackoff, Max: e.cfg.MaxBackoff}.Delay(polls)
}

// result builds a final refund's event for finance (wire.RefundResult).
func (e *executor) result(r domain.Refund) (domain.Event, error) {
	return wire.RefundResult(r, e.cfg.Now())
}

// Handler is the refunds batch handler.
type Handler struct {
	exec *executor
	log  *slog.Logger
}

// New builds the handler and registers its metrics.
func New(cfg Config, st Store, ch Channels, log *slog.Logger, reg prometheus.Registerer) (*Handler, error) {
	log = log.With("group", "refunds")
	e, err := newExecutor(cfg, st, ch, log, reg)
	if err != nil {
		return nil, err
	}
	return &Handler{exec: e, log: log}, nil
}

// Handle implements consumers.Handler.
func (h *Handler) Handle(ctx context.Context, batch []kafka.Message) ([]consumers.Rejection, error) {
	var rejects []consumers.Rejection
	intents := make([]domain.RefundIntent, 0, len(batch))
	for i, m := range batch {
		in, err := decode(m)
		if err != nil {
			rejects = append(rejects, consumers.Rejection{Index: i, Err: err})
			continue
		}
		intents = append(intents, in)
	}
	if len(intents) == 0 {
		return rejects, nil
	}
	recorded, claims, err := h.exec.store.QueueRefunds(ctx, intents, h.decide, h.exec.result, h.exec.cfg.Lease)
	if err != nil {
		return nil, fmt.Errorf("record %d refund requests: %w", len(intents), err)
	}
	for i, r := range recorded {
		in := intents[i]
		switch r.Outcome {
		case domain.RecordedConflict:
			// Never processed, never overwriting: the original refund
			// stands, and this request is recorded as refused
			// (idempotency_key_reused), shown with it at its status URL.
			// Decided, so not dead-lettered: replaying it would decide
			// the same.
			h.log.Warn("refund request refused: its refund id names another request", "refund_id", r.RefundID, "order_id", in.OrderID,
				"message_id", r.MessageID, "reason", r.Err)
		case domain.RecordedRejected:
			h.exec.results.WithLabelValues("", schemas.RefundFailed).Inc()
			h.log.Warn("refund request refused", "refund_id", r.RefundID, "order_id", in.OrderID, "reason", r.Err)
		case domain.RecordedQueued:
			h.log.Info("refund queued", "refund_id", r.RefundID, "order_id", in.OrderID, "amount", in.Amount.String())
		}
	}
	if err := h.riskEvents(ctx, intents, recorded); err != nil {
		return nil, err
	}
	if err := h.exec.run(ctx, claims); err != nil {
		return nil, err
	}
	return rejects, nil
}

// decide applies the refund rules, with the channels' capabilities.
func (h *Handler) decide(in domain.RefundIntent, o *domain.Order, attempts []domain.Attempt, existing []domain.Refund) (domain.Refund, error) {
	rules := domain.RefundRules{PartialRefund: func(name string) (bool, bool) {
		ch, ok := h.exec.channels.Channel(name)
		if !ok {
			return false, false
		}
		return ch.Capabilities().PartialRefund, true
	}}
	return domain.DecideRefund(in, o, attempts, existing, rules, domain.NewRefundRef(h.exec.cfg.Now()))
}

func decode(m kafka.Message) (domain.RefundIntent, error) {
	if err := schemas.Validate(schemas.RefundRequestSchema, m.Value); err != nil {
		return domain.RefundIntent{}, consumers.Permanent(err)
	}
	var req schemas.RefundRequest
	dec := json.NewDecoder(bytes.NewReader(m.Value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return domain.RefundIntent{}, consumers.Permanent(fmt.Errorf("decode refund request: %w", err))
	}
	in, err := wire.RefundIntent(req, consumers.MessageID(m), m.Value)
	if err != nil {
		return in, consumers.Permanent(err)
	}
	return in, nil
}

// Poller looks after refunds no message is about to move: pending at the
// PSP (queried with backoff), with an unknown call outcome (resolved by a
// query), queued behind a refund that finished elsewhere, or held by a
// worker that died. Several pollers may run, in one process or many.
type Poller struct {
	exec *executor
	log  *slog.Logger
	// inFlight and oldest are the refunds not yet final, by status, and
	// the age of the oldest (Gauges).
	inFlight, oldest *prometheus.GaugeVec
}

// gaugeInterval is how often the poller counts the refunds in flight.
const gaugeInterval = 15 * time.Second

// NewPoller builds a poller.
func NewPoller(cfg Config, st Store, ch Channels, log *slog.Logger, reg prometheus.Registerer) (*Poller, error) {
	log = log.With("component", "refund_poller")
	e, err := newExecutor(cfg, st, ch, log, reg)
	if err != nil {
		return nil, err
	}
	return &Poller{exec: e, log: log,
		inFlight: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paygate_refunds_in_flight",
			Help: "Refunds not yet final, by status (queued, calling, pending_at_psp)."}, []string{"status"})),
		oldest: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paygate_refund_oldest_in_flight_seconds",
			Help: "Age of the oldest refund in each unfinished status, since it was requested; 0 if none."}, []string{"status"})),
	}, nil
}

// Gauges counts the refunds in flight and sets paygate_refunds_in_flight
// and paygate_refund_oldest_in_flight_seconds.
func (p *Poller) Gauges(ctx context.Context) error {
	fl, err := p.exec.store.RefundsInFlight(ctx)
	if err != nil {
		return err
	}
	now := p.exec.cfg.Now()
	for _, f := range fl {
		age := 0.0
		if f.Count > 0 {
			age = max(now.Sub(f.Oldest).Seconds(), 0)
		}
		p.inFlight.WithLabelValues(f.Status.String()).Set(float64(f.Count))
		p.oldest.WithLabelValues(f.Status.String()).Set(age)
	}
	return nil
}

// PollOnce claims the refunds due now (at most Config.PollBatch) and
// moves them on; it returns how many it claimed.
func (p *Poller) PollOnce(ctx context.Context) (int, error) {
	claims, err := p.exec.store.ClaimRefunds(ctx, p.exec.cfg.PollBatch, p.exec.cfg.Lease)
	if err != nil {
		return 0, fmt.Errorf("claim due refunds: %w", err)
	}
	return len(claims), p.exec.run(ctx, claims)
}

// Run polls every PollInterval until ctx ends (at once again while full
// batches come back). Errors are logged and retried: they never stop it.
func (p *Poller) Run(ctx context.Context) error {
	t := time.NewTicker(p.exec.cfg.PollInterval)
	defer t.Stop()
	var counted time.Time
	for {
		if time.Since(counted) >= gaugeInterval {
			if err := p.Gauges(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("counting refunds in flight failed", "err", err)
			}
			counted = time.Now()
		}
		n, err := p.PollOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			p.log.Warn("refund poll failed", "err", err)
		}
		if n >= p.exec.cfg.PollBatch && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// riskEvents records the batch's large refunds as risk events: those
// queued now, and those found recorded before (a batch retried after a
// crash: the event may not be), finance's only — a refund paygate asks
// for itself (a duplicate or late payment) is the event of its payment.
func (h *Handler) riskEvents(ctx context.Context, intents []domain.RefundIntent, recorded []domain.RefundRecorded) error {
	re := h.exec.cfg.RiskEvents
	if re == nil {
		return nil
	}
	var evs []risk.Event
	for i, r := range recorded {
		in := intents[i]
		if (r.Outcome != domain.RecordedQueued && r.Outcome != domain.RecordedDuplicate) ||
			in.Reason == schemas.ReasonDuplicatePayment || in.Reason == schemas.ReasonLatePayment || !re.LargeRefund(in.Amount) {
			continue
		}
		evs = append(evs, risk.Event{Kind: risk.EventLargeRefund, Ref: in.RefundID, OrderID: in.OrderID, Amount: in.Amount.Minor(),
			Currency: in.Amount.Currency().Code()})
	}
	if err := re.RecordRiskEvents(ctx, evs); err != nil {
		return fmt.Errorf("record %d large refunds as risk events: %w", len(evs), err)
	}
	return nil
}
