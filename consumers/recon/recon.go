// Package recon is the `recon` consumer group: it reads both sides of
// reconciliation runs from paygate.reconciliation.v1, stores them, and
// once a run's two sides are complete matches it with domain.Reconcile —
// all in the batch's transaction, so that the result, each finding
// (stored once per channel-day), its event on
// paygate.recon-mismatches.v1 and the status probes that heal
// missing_at_gateway payments commit together. A redelivered batch, or a
// second run of a channel-day, publishes and heals nothing twice.
package recon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/wire"
	"github.com/paygate/paygate/schemas"
)

// Store is what the recon group needs from the system of record.
type Store interface {
	StoreReconMessages(ctx context.Context, msgs []domain.ReconMessage, plan domain.MatchPlan) ([]domain.MatchedRun, error)
}

// Handler is the recon batch handler.
type Handler struct {
	store      Store
	log        *slog.Logger
	mismatches *prometheus.CounterVec
	runs       *prometheus.CounterVec
	probes     *prometheus.CounterVec
	held       *prometheus.GaugeVec
}

// New builds the handler and registers its metrics (reg may be nil).
func New(st Store, log *slog.Logger, reg prometheus.Registerer) *Handler {
	h := &Handler{store: st, log: log.With("group", "recon"),
		mismatches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_recon_mismatches_total",
			Help: "Reconciliation mismatches found, counted once per finding of a channel-day, by channel and kind."},
			[]string{"channel", "kind"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_recon_runs_total",
			Help: "Reconciliation runs matched, by channel and whether the tolerance window had closed (final)."},
			[]string{"channel", "final"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_recon_heal_probes_total",
			Help: "Status probes sent to heal missing_at_gateway payments, by channel."}, []string{"channel"}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paygate_recon_held",
			Help: "Our payments of the last matched day the PSP has not listed yet, inside the tolerance window, by channel."},
			[]string{"channel"}),
	}
	if reg != nil {
		reg.MustRegister(h.mismatches, h.runs, h.probes, h.held)
	}
	return h
}

// Handle implements consumers.Handler.
func (h *Handler) Handle(ctx context.Context, batch []kafka.Message) ([]consumers.Rejection, error) {
	var rejects []consumers.Rejection
	msgs := make([]domain.ReconMessage, 0, len(batch))
	for i, m := range batch {
		rm, err := decode(m.Value)
		if err != nil {
			rejects = append(rejects, consumers.Rejection{Index: i, Err: consumers.Permanent(err)})
			continue
		}
		msgs = append(msgs, rm)
	}
	if len(msgs) == 0 {
		return rejects, nil
	}
	done, err := h.store.StoreReconMessages(ctx, msgs, Plan)
	if errors.Is(err, domain.ErrUnknownReconRun) {
		return nil, consumers.Permanent(err) // the runner isolates the message
	}
	if err != nil {
		return nil, fmt.Errorf("store %d reconciliation records: %w", len(msgs), err)
	}
	for _, d := range done {
		r := d.Run
		for _, m := range d.New {
			h.mismatches.WithLabelValues(r.Channel, m.Kind.String()).Inc()
		}
		h.probes.WithLabelValues(r.Channel).Add(float64(d.Probes))
		h.runs.WithLabelValues(r.Channel, fmt.Sprint(r.WindowComplete())).Inc()
		h.held.WithLabelValues(r.Channel).Set(float64(d.Result.Held))
		h.log.Info("reconciliation run matched", "channel", r.Channel, "day", r.Day, "run", r.RunID,
			"matched", d.Result.Matched, "held", d.Result.Held, "mismatches", len(d.Result.Mismatches),
			"new_mismatches", len(d.New), "heal_probes", d.Probes, "final", r.WindowComplete())
		for _, m := range d.New {
			h.log.Warn("reconciliation mismatch", "channel", r.Channel, "day", r.Day, "kind", m.Kind.String(),
				"item", m.Item.String(), "attempt", m.Ref, "detail", m.Detail)
		}
	}
	return rejects, nil
}

// decode validates and reads one record.
func decode(b []byte) (domain.ReconMessage, error) {
	if err := schemas.Validate(schemas.ReconRecordSchema, b); err != nil {
		return domain.ReconMessage{}, err
	}
	var v schemas.ReconRecord
	if err := json.Unmarshal(b, &v); err != nil {
		return domain.ReconMessage{}, fmt.Errorf("decode reconciliation record: %w", err)
	}
	m := domain.ReconMessage{RunID: v.RunID, Side: v.Side, Seq: v.Seq}
	if v.Type == schemas.ReconTypeEnd {
		m.End, m.Count, m.PSPDays, m.PSPRefunds = true, v.Count, v.PSPDays, v.PSPRefunds
		return m, nil
	}
	item, err := domain.ParseReconItem(v.Item)
	if err != nil {
		return m, err
	}
	amount, err := domain.NewMoney(v.Amount, v.Currency)
	if err != nil {
		return m, fmt.Errorf("record %s: %w", v.Reference, err)
	}
	st, err := domain.ParsePSPStatus(v.Status)
	if err != nil {
		return m, fmt.Errorf("record %s: %w", v.Reference, err)
	}
	m.Record = domain.ReconRecord{Item: item, Ref: v.Reference, PSPReference: v.PSPReference, Amount: amount, Status: st,
		Day: v.RecordDay, At: v.At.UTC()}
	return m, nil
}

// Plan is what the group decides when a run is complete.
var Plan = domain.MatchPlan{Match: match, Found: found, Probe: probe}

func match(run domain.ReconRun, ours, psp []domain.ReconRecord) (domain.ReconResult, error) {
	return domain.Reconcile(domain.ReconInput{Day: run.Day, Ours: ours, PSP: psp, WindowClosed: run.WindowComplete(), PSPRefunds: run.PSPRefunds})
}

// found publishes a mismatch: once per channel-day, kind and reference
// (the event id says so, and the outbox keeps ids unique).
func found(run domain.ReconRun, m domain.Mismatch, heal domain.HealState) (domain.Event, error) {
	v := schemas.ReconMismatch{Channel: run.Channel, Day: run.Day, Kind: m.Kind.String(), Item: m.Item.String(), Reference: m.Ref,
		Detail: m.Detail, Heal: heal.String(), RunID: run.RunID}
	if m.Ours != nil {
		v.Ours = &schemas.ReconAmount{Amount: m.Ours.Amount.Minor(), Currency: m.Ours.Amount.Currency().Code()}
		v.PSPReference = m.Ours.PSPReference
	}
	if m.PSP != nil {
		v.PSP = &schemas.ReconAmount{Amount: m.PSP.Amount.Minor(), Currency: m.PSP.Amount.Currency().Code()}
		v.PSPReference, v.PSPStatus = m.PSP.PSPReference, m.PSP.Status.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return domain.Event{}, err
	}
	return domain.Event{ID: "recon.mismatch/" + run.Channel + "/" + run.Day + "/" + v.Kind + "/" + v.Item + "/" + v.Reference,
		Type: schemas.TypeReconMismatch, Topic: schemas.TopicReconMismatches, Key: run.Channel + "/" + run.Day,
		Payload: b, Time: time.Now().UTC()}, nil
}

// probe is the status probe that heals a missing_at_gateway payment, sent
// down the callbacks path exactly as the sweeper's probes are: the
// callbacks group asks the PSP and applies the decision table, so the
// order is paid and the order center notified by the one code path that
// decides. Its id is one per attempt: never two heals.
func probe(run domain.ReconRun, code string) (domain.Event, error) {
	now := time.Now().UTC()
	id := "recon-probe/" + run.Channel + "/" + code
	b, err := wire.EncodeCallback(domain.ProbeCallback(id, run.Channel, code, now, false))
	if err != nil {
		return domain.Event{}, err
	}
	return domain.Event{ID: id, Type: schemas.TypePSPCallback, Topic: schemas.TopicPSPCallbacks, Key: run.Channel + "/" + code,
		Payload: b, Time: now}, nil
}
