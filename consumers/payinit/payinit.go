// Package payinit is the `payinit` consumer group: it turns pay requests
// into attempts at a PSP and publishes the pay sessions.
//
// Per batch: (1) decode and validate every request (a request that can
// never be valid is dead-lettered); (2) one transaction plans every
// request — create or load the order, refuse a conflicting amount or an
// already paid order, route to a channel and mint a new transaction code;
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
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/domain"
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
	PlanAttempts(ctx context.Context, intents []domain.PayIntent,
		decide func(existing *domain.Order, in domain.PayIntent) (domain.Order, domain.Attempt, error)) ([]domain.AttemptPlan, error)
	FinishAttempts(ctx context.Context, starts []domain.AttemptStart, events []domain.Event, exchanges []psp.Exchange) error
}

// Channels finds a configured channel by name.
type Channels interface {
	Channel(name string) (psp.Channel, bool)
}

// Config configures the payinit handler.
type Config struct {
	// PublicURL is the ingress's public base URL; PSPs are told to call
	// back to <PublicURL>/v1/callbacks/<channel> and send buyers back to
	// <PublicURL>/v1/return/<channel>. Required.
	PublicURL string
	// Rules say which channel may take which payment.
	Rules []domain.ChannelRule
	// ReturnHosts is the allow-list for the mall's return URLs.
	ReturnHosts domain.HostAllowList
	// Concurrency bounds simultaneous PSP calls of a batch. Default 128
	// (see callbacks.Config.Concurrency).
	Concurrency int
	// InitiateTries is how often a temporary Initiate failure is tried
	// before the attempt is given up as failed. Default 3.
	InitiateTries int
	// SkipEarlierCheck turns off asking the PSP, on a repeat pay request,
	// whether an earlier attempt of the order already succeeded (the seed
	// system turned it off at traffic peaks; duplicates are then caught
	// and refunded by the callback decision table). Default false: check.
	SkipEarlierCheck bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Handler is the payinit batch handler.
type Handler struct {
	cfg      Config
	store    Store
	channels Channels
	log      *slog.Logger
}

// New builds the handler.
func New(cfg Config, st Store, ch Channels, log *slog.Logger) (*Handler, error) {
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
	return &Handler{cfg: cfg, store: st, channels: ch, log: log.With("group", "payinit")}, nil
}

// Handle implements consumers.Handler.
func (h *Handler) Handle(ctx context.Context, batch []kafka.Message) ([]consumers.Rejection, error) {
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
		return rejects, nil
	}
	if !h.cfg.SkipEarlierCheck {
		if err := h.checkEarlier(ctx, intents); err != nil {
			return nil, err
		}
	}
	plans, err := h.store.PlanAttempts(ctx, intents, h.plan)
	if err != nil {
		return nil, fmt.Errorf("plan %d pay requests: %w", len(intents), err)
	}
	starts, events, exchanges := h.initiate(ctx, plans)
	if err := h.store.FinishAttempts(ctx, starts, events, exchanges); err != nil {
		return nil, fmt.Errorf("store %d sessions: %w", len(starts), err)
	}
	return rejects, nil
}

// checkEarlier asks the PSP about the open attempts of the orders that
// are requested again; a final answer is applied through the callback
// decision table (as a status probe), so that an order whose earlier
// attempt succeeded is paid and notified, and the repeat request is then
// refused as already paid instead of charging the buyer twice. A PSP
// that cannot answer now does not hold the request up.
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
			if !ok {
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
				raw, _ := schemas.EncodeRawCallback(schemas.RawCallback{ID: "probe/" + a.Code() + "/" + msgID, Channel: a.Channel(),
					Kind: string(psp.StatusProbe), ReceivedAt: h.cfg.Now().UTC(), TransactionCode: a.Code()})
				mu.Lock()
				probes = append(probes, domain.Inbound{MessageID: "probe/" + a.Code() + "/" + msgID, Channel: a.Channel(),
					Kind: string(psp.StatusProbe), ReceivedAt: h.cfg.Now(), Raw: raw, Confirmed: &n})
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

// plan is the decision inside the planning transaction.
func (h *Handler) plan(existing *domain.Order, in domain.PayIntent) (domain.Order, domain.Attempt, error) {
	var o domain.Order
	var err error
	if existing == nil {
		o, err = domain.NewOrder(in.OrderID, in.Amount)
	} else {
		o, err = *existing, existing.AcceptPayRequest(in.Amount)
	}
	if err != nil {
		return o, domain.Attempt{}, err
	}
	channel, err := domain.Route(h.cfg.Rules, in, rand.IntN)
	if err != nil {
		return o, domain.Attempt{}, err
	}
	a, err := domain.NewAttempt(domain.NewTransactionCode(h.cfg.Now()), in.OrderID, channel, in.Amount)
	return o, a, err
}

// initiate starts every planned attempt still in state created at its
// PSP, concurrently, and returns what to store.
func (h *Handler) initiate(ctx context.Context, plans []domain.AttemptPlan) ([]domain.AttemptStart, []domain.Event, []psp.Exchange) {
	var (
		mu        sync.Mutex
		starts    []domain.AttemptStart
		events    []domain.Event
		exchanges []psp.Exchange
		wg        sync.WaitGroup
		sem       = make(chan struct{}, h.cfg.Concurrency)
	)
	add := func(s *domain.AttemptStart, e domain.Event) {
		mu.Lock()
		defer mu.Unlock()
		if s != nil {
			starts = append(starts, *s)
		}
		events = append(events, e)
	}
	for _, p := range plans {
		switch {
		case p.Rejected != "":
			h.log.Info("pay request rejected", "order_id", p.Intent.OrderID, "reason", p.Rejected, "resumed", p.Resumed)
			add(nil, sessionEvent(schemas.PaySession{Type: schemas.SessionRejected, OrderID: p.Intent.OrderID, Reason: p.Rejected},
				"pay_session/rejected/"+p.Intent.MessageID))
			continue
		case p.Attempt.Status() != domain.AttemptCreated:
			continue // a redelivery of a request whose session is stored
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(p domain.AttemptPlan) {
			defer func() { <-sem; wg.Done() }()
			rec := func(ex psp.Exchange) {
				ex.OrderID, ex.TransactionCode = p.Intent.OrderID, p.Attempt.Code()
				mu.Lock()
				exchanges = append(exchanges, ex)
				mu.Unlock()
			}
			s, e := h.start(psp.WithRecorder(ctx, "initiate", rec), p)
			add(&s, e)
		}(p)
	}
	wg.Wait()
	return starts, events, exchanges
}

// start initiates one attempt, trying temporary failures again with the
// same transaction code.
func (h *Handler) start(ctx context.Context, p domain.AttemptPlan) (domain.AttemptStart, domain.Event) {
	a := p.Attempt
	log := h.log.With("order_id", a.OrderID(), "attempt", a.Code(), "channel", a.Channel())
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
		for try := 1; try <= h.cfg.InitiateTries; try++ {
			sess, err = ch.Initiate(ctx, req)
			if err == nil || !psp.IsTemporary(err) || ctx.Err() != nil {
				break
			}
			log.Warn("initiate failed, trying again", "err", err, "try", try)
			select { // a shutdown does not wait out the backoff
			case <-ctx.Done():
			case <-time.After(time.Duration(try*try) * 100 * time.Millisecond):
			}
		}
	}
	if err != nil {
		log.Error("initiate failed, attempt failed", "err", err)
		failed, ferr := a.InitiateFailed()
		if ferr != nil {
			failed = a
		}
		return domain.AttemptStart{Attempt: failed}, sessionEvent(schemas.PaySession{
			Type: schemas.SessionFailed, OrderID: a.OrderID(), TransactionCode: a.Code(), Channel: a.Channel(),
			Reason: "the payment service provider could not start the payment: " + err.Error(),
		}, id)
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
	return domain.AttemptStart{Attempt: started, PayURL: sess.PayURL, Token: sess.Token, Form: sess.Form, ExpiresAt: sess.ExpiresAt},
		sessionEvent(ps, id)
}

func sessionEvent(s schemas.PaySession, id string) domain.Event {
	b, _ := json.Marshal(s)
	return domain.Event{ID: id, Type: schemas.TypePaySession, Topic: schemas.TopicPaySessions, Key: s.OrderID, Payload: b, Time: time.Now()}
}
