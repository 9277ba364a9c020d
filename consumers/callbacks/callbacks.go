// Package callbacks is the `callbacks` consumer group: it turns raw PSP
// callbacks (and the sweeper's status probes) into state changes, exactly
// once per fact, through the decision table in domain.
//
// Per batch: (1) decode each raw callback and judge it with psp.Verify,
// the one verification (the ingress ran it too, only to key the message;
// this verdict is the one that decides): forged or unreadable callbacks
// are kept as evidence and change nothing; a message that is not a raw
// callback at all, or names no configured channel, is dead-lettered; one
// its channel cannot judge yet has the batch retried; (2) confirm what the verified
// ones say with the PSP's status query, concurrently and outside any
// transaction, skipping a success already applied for the same PSP
// transaction; (3) one transaction stores every raw callback, locks the
// orders, applies the decision table in order and writes the events.
//
// Refund callbacks come to the same endpoint as a channel's payment
// callbacks (Adyen's REFUND webhooks); psp.Verify tells them apart (it
// asks the channel's psp.RefundCallbackParser first) and judges each
// callback once. A verified refund callback is not confirmed by a query
// (a channel sends them because it has no refund status API): (4) one
// more transaction stores the batch's refund callbacks and finishes the
// refunds they report final, exactly once, with their results in the
// outbox (Store.ApplyRefundCallbacks). The two transactions are
// independent and each is idempotent per message id, so a retried batch
// redoes neither.
//
// Steps 1 and 2 are Handler.Prepare, which the runner runs one batch ahead
// (consumers.Runner.Pipeline): a batch's PSP queries overlap the previous
// batch's transactions.
package callbacks

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/wire"
)

// Store is what the callbacks group needs from the system of record.
type Store interface {
	Attempts(ctx context.Context, codes []string) (map[string]domain.Attempt, error)
	ApplyCallbacks(ctx context.Context, in []domain.Inbound,
		decide func(o domain.Order, a domain.Attempt, in domain.Inbound) (domain.Decision, []domain.Event, error),
		exchanges []psp.Exchange) ([]domain.Applied, error)
	ApplyRefundCallbacks(ctx context.Context, in []domain.RefundNotice,
		result func(domain.Refund) (domain.Event, error)) ([]domain.RefundNoticeApplied, error)
}

// Channels finds a configured channel by name.
type Channels interface {
	Channel(name string) (psp.Channel, bool)
}

// Config configures the handler. Its variable, default and help are its
// tags (internal/settings); New fills a zero Concurrency with the same
// default, which a test holds to the tag.
type Config struct {
	// Concurrency bounds simultaneous status queries of a batch, payinit's
	// Initiates too (payinit.Config.Concurrency: one variable). Each round
	// of queries waits one PSP round trip, so a PSP 100 ms away lets one
	// member confirm at most Concurrency×10 callbacks a second.
	Concurrency int `env:"PAYGATE_PSP_CONCURRENCY" default:"128" min:"1"`
}

// Handler is the callbacks batch handler.
type Handler struct {
	cfg      Config
	store    Store
	channels Channels
	log      *slog.Logger
	outcomes *prometheus.CounterVec
	review   *prometheus.CounterVec
	// confirmed holds the successes the PSPs confirmed in the last two
	// batches (confirm).
	confirmed successMemo
}

// successMemo is what the PSPs confirmed as succeeded in the batches
// confirm prepared last, by channel and transaction code: the batch
// before and this one. Safe for concurrent use.
type successMemo struct {
	mu         sync.Mutex
	prev, curr map[[2]string]domain.Notification
}

// rotate starts a batch: what the batch before last confirmed is
// forgotten.
func (m *successMemo) rotate() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prev, m.curr = m.curr, map[[2]string]domain.Notification{}
}

func (m *successMemo) get(channel, code string) (domain.Notification, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{channel, code}
	if n, ok := m.curr[k]; ok {
		return n, true
	}
	n, ok := m.prev[k]
	return n, ok
}

func (m *successMemo) put(channel string, n domain.Notification) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.curr == nil {
		m.curr = map[[2]string]domain.Notification{}
	}
	m.curr[[2]string{channel, n.TransactionCode}] = n
}

// New builds the handler and registers its metrics.
func New(cfg Config, st Store, ch Channels, log *slog.Logger, reg prometheus.Registerer) *Handler {
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 128
	}
	h := &Handler{cfg: cfg, store: st, channels: ch, log: log.With("group", "callbacks"),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_callbacks_total",
			Help: "Callbacks processed, by channel, kind and outcome (paid, duplicate_notification, rejected, ...)."},
			[]string{"channel", "kind", "outcome"}),
		review: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_payments_flagged_total",
			Help: "Attempts flagged for review (amount or currency differs from what was asked): an alert."},
			[]string{"channel"}),
	}
	if reg != nil {
		reg.MustRegister(h.outcomes, h.review)
	}
	return h
}

// Handle implements consumers.Handler: Prepare, then what it returns.
func (h *Handler) Handle(ctx context.Context, batch []kafka.Message) ([]consumers.Rejection, error) {
	return h.Prepare(ctx, batch)(ctx, batch)
}

// Prepare implements consumers.Prepare: it verifies the batch and
// confirms its payment callbacks with the PSPs, outside any transaction,
// and returns the Handler that applies them (payments, then refunds). A
// runner may prepare a batch while it applies the one before; the
// decisions are taken in the transactions, on the rows as they are then,
// so a query made before the previous batch committed only costs a query
// that batch could have spared (a success it has just applied).
func (h *Handler) Prepare(ctx context.Context, batch []kafka.Message) consumers.Handler {
	var rejects []consumers.Rejection
	inbound := make([]domain.Inbound, 0, len(batch))
	var notices []domain.RefundNotice
	var notYet error
	for i, m := range batch {
		in, notice, err := h.verify(m)
		switch {
		case err != nil && !consumers.IsPermanent(err):
			notYet = cmp.Or(notYet, err)
		case err != nil:
			rejects = append(rejects, consumers.Rejection{Index: i, Err: err})
		case notice != nil:
			notices = append(notices, *notice)
		default:
			inbound = append(inbound, in)
		}
	}
	if notYet != nil {
		return func(context.Context, []kafka.Message) ([]consumers.Rejection, error) { return nil, notYet }
	}
	exchanges, err := h.confirm(ctx, inbound)
	return func(ctx context.Context, _ []kafka.Message) ([]consumers.Rejection, error) {
		if err != nil {
			return nil, err
		}
		if err := h.payments(ctx, inbound, exchanges); err != nil {
			return nil, err
		}
		if err := h.refunds(ctx, notices); err != nil {
			return nil, err
		}
		return rejects, nil
	}
}

// refunds applies the batch's refund callbacks.
func (h *Handler) refunds(ctx context.Context, notices []domain.RefundNotice) error {
	if len(notices) == 0 {
		return nil
	}
	applied, err := h.store.ApplyRefundCallbacks(ctx, notices, func(r domain.Refund) (domain.Event, error) {
		return wire.RefundResult(r, time.Now())
	})
	if err != nil {
		return fmt.Errorf("apply %d refund callbacks: %w", len(notices), err)
	}
	for i, r := range applied {
		n := notices[i]
		outcome := r.Outcome
		switch {
		case r.Duplicate:
			outcome = "redelivered"
		case r.Rejected != "":
			outcome = "rejected"
			h.log.Warn("refund callback rejected", "channel", n.Callback.Channel, "kind", n.Callback.Kind.String(), "message_id", n.Callback.MessageID,
				"refund_ref", n.RefundRef, "reason", r.Rejected)
		default:
			attrs := []any{"channel", n.Callback.Channel, "kind", n.Callback.Kind.String(), "refund_ref", n.RefundRef, "outcome", outcome}
			if r.Refund != nil {
				attrs = append(attrs, "refund_id", r.Refund.ID(), "order_id", r.Refund.OrderID(), "attempt", r.Refund.TransactionCode())
			}
			h.log.Info("refund callback applied", attrs...)
		}
		h.outcomes.WithLabelValues(n.Callback.Channel, n.Callback.Kind.String(), outcome).Inc()
	}
	return nil
}

// payments applies the batch's confirmed payment callbacks and status
// probes, with the PSP exchanges that confirmed them.
func (h *Handler) payments(ctx context.Context, inbound []domain.Inbound, exchanges []psp.Exchange) error {
	if len(inbound) == 0 {
		return nil
	}
	applied, err := h.store.ApplyCallbacks(ctx, inbound, wire.Decide, exchanges)
	if err != nil {
		return fmt.Errorf("apply %d callbacks: %w", len(inbound), err)
	}
	for i, r := range applied {
		in := inbound[i]
		channel, kind := in.Callback.Channel, in.Callback.Kind.String()
		outcome := r.Outcome.String()
		switch {
		case r.Duplicate:
			outcome = "redelivered"
		case r.Rejected != "":
			outcome = "rejected"
			h.log.Warn("callback rejected", "channel", channel, "kind", kind, "message_id", in.Callback.MessageID, "reason", r.Rejected)
		default:
			h.log.Info("callback applied", "channel", channel, "kind", kind, "order_id", r.OrderID,
				"attempt", in.Effective().TransactionCode, "outcome", outcome)
		}
		if r.Outcome == domain.OutcomeAmountMismatch {
			h.review.WithLabelValues(channel).Inc()
		}
		h.outcomes.WithLabelValues(channel, kind, outcome).Inc()
	}
	return nil
}

// verify decodes a raw callback and has psp.Verify judge it. A
// permanent error is for messages that are not raw callbacks of a
// configured channel at all; a refused callback (forged, stale,
// unreadable) is returned as a refused Inbound, to be stored. A callback
// the channel's refund callback parser claimed is returned as a
// RefundNotice instead (refused too, if forged). A temporary error is a
// callback the channel cannot judge yet (psp.VerdictNotYet): the batch is
// retried with backoff, as when a status query cannot be answered now,
// rather than the callback stored as refused.
func (h *Handler) verify(m kafka.Message) (domain.Inbound, *domain.RefundNotice, error) {
	cb, err := wire.DecodeCallback(m.Value)
	if err != nil {
		return domain.Inbound{}, nil, consumers.Permanent(err)
	}
	ch, ok := h.channels.Channel(cb.Channel)
	if !ok {
		return domain.Inbound{}, nil, consumers.Permanent(fmt.Errorf("raw callback %s: unknown channel %q", cb.MessageID, cb.Channel))
	}
	rawID := cb.MessageID
	// Stored under the message's id on the topic, as every group stores
	// its messages (the writers put the raw callback's id there).
	cb.MessageID = consumers.MessageID(m)
	v := psp.Verify(ch, cb)
	switch {
	case v.Kind == psp.VerdictNotYet:
		return domain.Inbound{}, nil, fmt.Errorf("verify raw callback %s of channel %s: %w", rawID, cb.Channel, v.Err)
	case v.Refund != nil:
		return domain.Inbound{}, &domain.RefundNotice{Callback: cb, Raw: m.Value, RefundRef: v.Refund.RefundRef,
			PSPReference: v.Refund.PSPReference, Status: v.RefundStatus(), Refusal: v.Refusal()}, nil
	}
	in := domain.Inbound{Callback: cb, Raw: m.Value, Refusal: v.Refusal()}
	if v.Kind == psp.VerdictPayment {
		n := v.Notification
		in.Notified = &n
	}
	return in, nil, nil
}

// confirm asks the PSPs for the status of every attempt the batch's
// verified callbacks name, once per attempt, concurrently. A success
// notification for an attempt already paid by the same PSP transaction
// needs no query: it is a duplicate notification whatever the PSP says.
// Nor does an attempt the PSP confirmed as succeeded while confirm
// prepared this batch or the one before: a success is final at the PSP,
// and the answer is the one a query would give again. That is the buyer's
// browser return and the PSP's webhook of one payment, a few milliseconds
// apart, in consecutive batches: the second is confirmed (Prepare) before
// the first's batch has paid the attempt, and was asked about a second
// time.
func (h *Handler) confirm(ctx context.Context, inbound []domain.Inbound) ([]psp.Exchange, error) {
	type target struct{ channel, code string }
	need := map[target][]int{}
	var codes []string
	for i, in := range inbound {
		if in.Refusal.Refused() {
			continue
		}
		ch, _ := h.channels.Channel(in.Callback.Channel)
		var code string
		if in.Notified != nil {
			if !ch.Capabilities().ConfirmByQuery {
				continue
			}
			code = in.Notified.TransactionCode
		} else {
			code = in.Callback.TransactionCode
		}
		t := target{in.Callback.Channel, code}
		if _, ok := need[t]; !ok {
			codes = append(codes, code)
		}
		need[t] = append(need[t], i)
	}
	h.confirmed.rotate()
	if len(need) == 0 {
		return nil, nil
	}
	known, err := h.store.Attempts(ctx, codes)
	if err != nil {
		return nil, fmt.Errorf("load attempts to confirm: %w", err)
	}
	var (
		mu        sync.Mutex
		exchanges []psp.Exchange
		firstErr  error
		wg        sync.WaitGroup
		sem       = make(chan struct{}, h.cfg.Concurrency)
	)
	for t, idx := range need {
		a, ok := known[t.code]
		if !ok {
			continue // the store rejects unknown codes; do not ask the PSP about them
		}
		if a.Status() == domain.AttemptPaid && allSameSuccess(inbound, idx, a) {
			continue
		}
		if n, ok := h.confirmed.get(t.channel, t.code); ok {
			for _, i := range idx {
				c := n
				inbound[i].Confirmed = &c
			}
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(t target, idx []int, a domain.Attempt) {
			defer func() { <-sem; wg.Done() }()
			ch, _ := h.channels.Channel(t.channel)
			rec := func(ex psp.Exchange) {
				ex.OrderID, ex.TransactionCode = a.OrderID(), a.Code()
				mu.Lock()
				exchanges = append(exchanges, ex)
				mu.Unlock()
			}
			n, err := psp.QueryAttempt(psp.WithRecorder(ctx, "query", rec), ch, t.code, a.PSPReference())
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && psp.IsTemporary(err):
				if firstErr == nil {
					firstErr = fmt.Errorf("confirm %s at %s: %w", t.code, t.channel, err)
				}
				return
			case err != nil:
				// The PSP will not confirm (it refuses the query for
				// good): the callback decides nothing, and stays stored;
				// the sweeper asks again about the open attempt later.
				for _, i := range idx {
					inbound[i].Refusal = domain.Refuse(fmt.Sprintf("not confirmed: status query failed: %v", err))
				}
				return
			}
			if n.TransactionCode == "" {
				n.TransactionCode = t.code
			}
			if n.TransactionCode == t.code && n.Status == domain.PSPSucceeded {
				h.confirmed.put(t.channel, n)
			}
			for _, i := range idx {
				if n.TransactionCode != t.code {
					inbound[i].Refusal = domain.Refuse(fmt.Sprintf("status query for %s answered about %s", t.code, n.TransactionCode))
					continue
				}
				c := n
				inbound[i].Confirmed = &c
			}
		}(t, idx, a)
	}
	wg.Wait()
	if firstErr != nil {
		// An unconfirmed callback must not decide; while the PSP cannot
		// answer now, the batch is retried with backoff (and shows in
		// paygate_consumer_retries_total and the PSP error metrics).
		return nil, firstErr
	}
	return exchanges, nil
}

func allSameSuccess(inbound []domain.Inbound, idx []int, a domain.Attempt) bool {
	for _, i := range idx {
		n := inbound[i].Notified
		if n == nil || n.Status != domain.PSPSucceeded || n.PSPReference != a.PSPReference() || !n.Amount.Equal(a.Amount()) {
			return false
		}
	}
	return true
}
