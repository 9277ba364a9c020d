package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/schemas"
)

// reconLock is the advisory lock that serialises the beginning of runs of
// one channel-day, so that two schedulers never begin one slot twice.
func reconLock(channel, day string) int64 {
	h := fnv.New64a()
	h.Write([]byte("recon/" + channel + "/" + day))
	return int64(h.Sum64())
}

const slotTakenQuery = `
SELECT EXISTS (SELECT 1 FROM recon_runs WHERE channel = $1 AND day = $2 AND slot = $3
    AND (status = 'done' OR (status = 'collecting' AND started_at > now() - $4::interval)))`

const insertRunQuery = `
INSERT INTO recon_runs (run_id, channel, day, timezone, tolerance_days, slot, status, as_of, window_closes, window_days)
VALUES ($1, $2, $3, $4, $5, $6, 'collecting', $7, $8, $9)`

// ourSideQuery is our side of a window: paid attempts of the channel
// paid in [$2, $3) and refunds that succeeded then. An attempt paygate
// learnt was paid from reconciliation itself (a missing_at_gateway being
// healed) is left out: it stays reported on the day the PSP listed it,
// so that a day's report does not change because of its own healing.
const ourSideQuery = `
SELECT 'payment' AS item, a.transaction_code AS ref, a.psp_reference, a.amount, a.currency, a.paid_at AS at
FROM attempts a
WHERE a.channel = $1 AND a.status = 'paid' AND a.paid_at >= $2 AND a.paid_at < $3
  AND NOT EXISTS (SELECT 1 FROM recon_mismatches m WHERE m.channel = a.channel AND m.ref = a.transaction_code
                  AND m.kind = 'missing_at_gateway' AND m.item = 'payment' AND m.heal IN ('probing', 'healed'))
UNION ALL
SELECT 'refund', coalesce(r.refund_ref, r.refund_id), r.psp_reference, r.amount, r.currency, r.finished_at
FROM refunds r
WHERE r.channel = $1 AND r.status = 'succeeded' AND r.finished_at >= $2 AND r.finished_at < $3
ORDER BY at, ref`

// BeginReconRun records a run and, in the same transaction, our side of
// its window: every record and then the end record, as the outbox events
// ours returns (the relay publishes them to paygate.reconciliation.v1).
// It first marks healed the mismatches whose attempt is paid now. It
// returns false, writing nothing, when spec.Slot is taken.
func (s *Store) BeginReconRun(ctx context.Context, spec domain.ReconSpec,
	ours func(run domain.ReconRun, records []domain.ReconRecord) ([]domain.Event, error)) (bool, error) {
	days, closes, err := domain.ReconWindow(spec.Day, spec.Tolerance, spec.Location)
	if err != nil {
		return false, err
	}
	from, _, err := domain.DayBounds(days[0], spec.Location)
	if err != nil {
		return false, err
	}
	run := domain.ReconRun{RunID: spec.RunID, Channel: spec.Channel, Day: spec.Day, Timezone: spec.Location.String(),
		Tolerance: spec.Tolerance, Slot: spec.Slot, Status: domain.ReconCollecting, AsOf: spec.AsOf.UTC(), WindowCloses: closes.UTC(), WindowDays: days}
	began := false
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		began = false
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, reconLock(spec.Channel, spec.Day)); err != nil {
			return fmt.Errorf("recon lock: %w", err)
		}
		if spec.Slot != "" {
			var taken bool
			if err := tx.GetContext(ctx, &taken, slotTakenQuery, spec.Channel, spec.Day, spec.Slot, interval(spec.StaleAfter)); err != nil {
				return fmt.Errorf("recon slot: %w", err)
			}
			if taken {
				return nil
			}
		}
		if _, err := tx.ExecContext(ctx, markHealedQuery); err != nil {
			return fmt.Errorf("mark healed: %w", err)
		}
		if _, err := tx.ExecContext(ctx, insertRunQuery, run.RunID, run.Channel, run.Day, run.Timezone, run.Tolerance, run.Slot,
			run.AsOf, run.WindowCloses, pq.Array(run.WindowDays)); err != nil {
			return fmt.Errorf("insert recon run %s: %w", run.RunID, err)
		}
		rows, err := tx.QueryContext(ctx, ourSideQuery, spec.Channel, from, closes)
		if err != nil {
			return fmt.Errorf("our side of %s %s: %w", spec.Channel, spec.Day, err)
		}
		var recs []domain.ReconRecord
		for rows.Next() {
			var item, ref, pspRef, cur string
			var amount int64
			var at time.Time
			if err := rows.Scan(&item, &ref, &pspRef, &amount, &cur, &at); err != nil {
				rows.Close()
				return fmt.Errorf("scan our side: %w", err)
			}
			r, err := reconRecord(item, ref, pspRef, amount, cur, domain.PSPSucceeded.String(), domain.BusinessDay(at, spec.Location), at)
			if err != nil {
				rows.Close()
				return err
			}
			recs = append(recs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("our side of %s %s: %w", spec.Channel, spec.Day, err)
		}
		events, err := ours(run, recs)
		if err != nil {
			return err
		}
		if err := insertEvents(ctx, tx, events); err != nil {
			return err
		}
		began = true
		return nil
	})
	return began, err
}

func reconRecord(item, ref, pspRef string, amount int64, cur, status, day string, at time.Time) (domain.ReconRecord, error) {
	it, err := domain.ParseReconItem(item)
	if err != nil {
		return domain.ReconRecord{}, err
	}
	m, err := domain.NewMoney(amount, cur)
	if err != nil {
		return domain.ReconRecord{}, fmt.Errorf("%s %s: %w", item, ref, err)
	}
	st, err := domain.ParsePSPStatus(status)
	if err != nil {
		return domain.ReconRecord{}, fmt.Errorf("%s %s: %w", item, ref, err)
	}
	return domain.ReconRecord{Item: it, Ref: ref, PSPReference: pspRef, Amount: m, Status: st, Day: day, At: at.UTC()}, nil
}

const insertItemsQuery = `
INSERT INTO recon_items (run_id, side, seq, item, ref, psp_reference, amount, currency, status, day, at)
SELECT u.run_id, u.side, u.seq, u.item, u.ref, u.psp_reference, u.amount, u.currency, u.status, u.day::date, u.at
FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::timestamptz[])
    AS u(run_id, side, seq, item, ref, psp_reference, amount, currency, status, day, at)
JOIN recon_runs r ON r.run_id = u.run_id AND r.status = 'collecting'
ON CONFLICT DO NOTHING`

const runColumns = `run_id, channel, day::text, timezone, tolerance_days, slot, status, as_of, window_closes, window_days,
    coalesce(psp_days, '{}'), psp_refunds, error, coalesce(window_closed, false), coalesce(matched, 0), coalesce(straddled, 0),
    coalesce(held, 0), coalesce(unmatched, 0), coalesce(mismatches, 0), coalesce(ours_totals, '{}'), coalesce(psp_totals, '{}'),
    started_at, finished_at`

func scanRun(sc interface{ Scan(...any) error }) (domain.ReconRun, error) {
	var r domain.ReconRun
	var status string
	var ours, psp []byte
	err := sc.Scan(&r.RunID, &r.Channel, &r.Day, &r.Timezone, &r.Tolerance, &r.Slot, &status, &r.AsOf, &r.WindowCloses,
		pq.Array(&r.WindowDays), pq.Array(&r.PSPDays), &r.PSPRefunds, &r.Error, &r.WindowClosed, &r.Matched, &r.Straddled,
		&r.Held, &r.Unmatched, &r.Mismatches, &ours, &psp, &r.StartedAt, &r.FinishedAt)
	if err != nil {
		return r, err
	}
	if r.Status, err = domain.ParseReconRunStatus(status); err != nil {
		return r, err
	}
	if r.Ours, err = decodeTotals(ours); err != nil {
		return r, err
	}
	r.PSP, err = decodeTotals(psp)
	return r, err
}

// totalsJSON is SideTotals as stored in recon_runs.
type totalsJSON struct {
	Payments    int              `json:"payments"`
	PaymentSums map[string]int64 `json:"payment_sums"`
	Refunds     int              `json:"refunds"`
	RefundSums  map[string]int64 `json:"refund_sums"`
}

func decodeTotals(b []byte) (domain.SideTotals, error) {
	var t totalsJSON
	if err := json.Unmarshal(b, &t); err != nil {
		return domain.SideTotals{}, fmt.Errorf("decode run totals: %w", err)
	}
	return domain.SideTotals{Payments: t.Payments, PaymentSums: t.PaymentSums, Refunds: t.Refunds, RefundSums: t.RefundSums}, nil
}

func encodeTotals(t domain.SideTotals) string {
	return jsonText(totalsJSON{Payments: t.Payments, PaymentSums: t.PaymentSums, Refunds: t.Refunds, RefundSums: t.RefundSums})
}

// StoreReconMessages stores a batch of reconciliation records in one
// transaction and matches every run the batch completes: both sides'
// end records are in and every record they announced is stored. Matching
// stores the result and each mismatch (a rerun finds the same rows),
// writes the events of mismatches found for the first time and the
// status probes that heal missing_at_gateway payments, marks older
// runs of the day still collecting abandoned, and drops the run's
// records. Records of a run already matched are ignored, so a
// redelivered batch is a no-op.
func (s *Store) StoreReconMessages(ctx context.Context, msgs []domain.ReconMessage, plan domain.MatchPlan) ([]domain.MatchedRun, error) {
	var out []domain.MatchedRun
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		out = out[:0]
		var touched []string
		seen := map[string]bool{}
		n := 0
		for _, m := range msgs {
			if !m.End {
				n++
			}
		}
		runIDs, sides, items, refs, pspRefs, curs, statuses, days := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n),
			make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		seqs, amounts, ats := make([]int64, 0, n), make([]int64, 0, n), make([]time.Time, 0, n)
		for _, m := range msgs {
			if !seen[m.RunID] {
				seen[m.RunID] = true
				touched = append(touched, m.RunID)
			}
			if m.End {
				continue
			}
			r := m.Record
			runIDs, sides, seqs, items, refs, pspRefs = append(runIDs, m.RunID), append(sides, m.Side), append(seqs, int64(m.Seq)),
				append(items, r.Item.String()), append(refs, r.Ref), append(pspRefs, r.PSPReference)
			amounts, curs, statuses, days, ats = append(amounts, r.Amount.Minor()), append(curs, r.Amount.Currency().Code()),
				append(statuses, r.Status.String()), append(days, r.Day), append(ats, r.At)
		}
		var known []string
		if err := tx.SelectContext(ctx, &known, `SELECT run_id FROM recon_runs WHERE run_id = ANY($1)`, pq.Array(touched)); err != nil {
			return fmt.Errorf("look up recon runs: %w", err)
		}
		if len(known) != len(touched) {
			for _, id := range touched {
				found := false
				for _, k := range known {
					found = found || k == id
				}
				if !found {
					return fmt.Errorf("%w: %s", domain.ErrUnknownReconRun, id)
				}
			}
		}
		if len(runIDs) > 0 {
			if _, err := tx.ExecContext(ctx, insertItemsQuery, pq.Array(runIDs), pq.Array(sides), pq.Array(seqs), pq.Array(items),
				pq.Array(refs), pq.Array(pspRefs), pq.Array(amounts), pq.Array(curs), pq.Array(statuses), pq.Array(days), pq.Array(ats)); err != nil {
				return fmt.Errorf("store %d recon records: %w", len(runIDs), err)
			}
		}
		for _, m := range msgs {
			if !m.End {
				continue
			}
			var err error
			if m.Side == domain.ReconSideOurs {
				_, err = tx.ExecContext(ctx, `UPDATE recon_runs SET ours_expected = $2 WHERE run_id = $1 AND status = 'collecting'`, m.RunID, m.Count)
			} else {
				_, err = tx.ExecContext(ctx, `UPDATE recon_runs SET psp_expected = $2, psp_days = $3, psp_refunds = $4 WHERE run_id = $1 AND status = 'collecting'`,
					m.RunID, m.Count, pq.Array(m.PSPDays), m.PSPRefunds)
			}
			if err != nil {
				return fmt.Errorf("end of %s side of run %s: %w", m.Side, m.RunID, err)
			}
		}
		for _, id := range touched {
			mr, done, err := matchIfComplete(ctx, tx, id, plan)
			if err != nil {
				return err
			}
			if done {
				out = append(out, mr)
			}
		}
		return nil
	})
	return out, err
}

const completeRunQuery = `
SELECT ` + runColumns + ` FROM recon_runs r
WHERE run_id = $1 AND status = 'collecting' AND ours_expected IS NOT NULL AND psp_expected IS NOT NULL
  AND ours_expected = (SELECT count(*) FROM recon_items i WHERE i.run_id = r.run_id AND i.side = 'ours')
  AND psp_expected = (SELECT count(*) FROM recon_items i WHERE i.run_id = r.run_id AND i.side = 'psp')
FOR UPDATE`

const runItemsQuery = `
SELECT side, item, ref, psp_reference, amount, currency, status, day::text, at FROM recon_items WHERE run_id = $1 ORDER BY side, seq`

const upsertMismatchQuery = `
INSERT INTO recon_mismatches AS m (channel, day, kind, item, ref, psp_reference, our_amount, our_currency, psp_amount, psp_currency,
    psp_status, detail, first_run, last_run)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
ON CONFLICT (channel, day, kind, item, ref) DO UPDATE SET last_run = EXCLUDED.last_run, psp_reference = EXCLUDED.psp_reference,
    our_amount = EXCLUDED.our_amount, our_currency = EXCLUDED.our_currency, psp_amount = EXCLUDED.psp_amount,
    psp_currency = EXCLUDED.psp_currency, psp_status = EXCLUDED.psp_status, detail = EXCLUDED.detail
RETURNING (xmax = 0) AS inserted, heal`

// matchIfComplete matches run runID if both its sides are complete: the
// store loads the run, its records and the attempts a heal would probe;
// plan and the domain decide (the match, each finding's heal, the run's
// end); the store saves what they decided. It reports false, and does
// nothing, for a run not complete yet.
func matchIfComplete(ctx context.Context, tx *sqlx.Tx, runID string, plan domain.MatchPlan) (domain.MatchedRun, bool, error) {
	run, ours, psp, ok, err := loadCompleteRun(ctx, tx, runID)
	if err != nil || !ok {
		return domain.MatchedRun{}, false, err
	}
	res, err := plan.Match(run, ours, psp)
	if err != nil {
		return domain.MatchedRun{}, false, fmt.Errorf("match run %s: %w", runID, err)
	}
	done, err := run.Finish(res)
	if err != nil {
		return domain.MatchedRun{}, false, err
	}
	attempts, err := healableAttempts(ctx, tx, run.Channel, res.Mismatches)
	if err != nil {
		return domain.MatchedRun{}, false, err
	}
	mr := domain.MatchedRun{Run: done, Result: res}
	var events []domain.Event
	heals := map[string]domain.HealState{} // ref → heal state decided now
	for _, m := range res.Mismatches {
		inserted, stored, err := upsertMismatch(ctx, tx, run, m)
		if err != nil {
			return domain.MatchedRun{}, false, err
		}
		st, held := attempts[m.Ref]
		heal, probe := domain.DecideHeal(m, stored, st, held)
		if heal != stored {
			heals[m.Ref] = heal
		}
		if probe {
			ev, err := plan.Probe(run, m.Ref)
			if err != nil {
				return domain.MatchedRun{}, false, err
			}
			events = append(events, ev)
			mr.Probes++
		}
		if inserted {
			mr.New = append(mr.New, m)
			ev, err := plan.Found(run, m, heal)
			if err != nil {
				return domain.MatchedRun{}, false, err
			}
			events = append(events, ev)
		}
	}
	if err := saveHeals(ctx, tx, run, heals); err != nil {
		return domain.MatchedRun{}, false, err
	}
	if err := insertEvents(ctx, tx, events); err != nil {
		return domain.MatchedRun{}, false, err
	}
	if err := saveFinishedRun(ctx, tx, done); err != nil {
		return domain.MatchedRun{}, false, err
	}
	return mr, true, nil
}

// loadCompleteRun locks run runID if it is collecting and both its sides
// are complete, and reads its records, ours and the PSP's; ok is false
// for a run not complete yet.
func loadCompleteRun(ctx context.Context, tx *sqlx.Tx, runID string) (run domain.ReconRun, ours, psp []domain.ReconRecord, ok bool, err error) {
	run, err = scanRun(tx.QueryRowContext(ctx, completeRunQuery, runID))
	if errors.Is(err, sql.ErrNoRows) {
		return run, nil, nil, false, nil
	}
	if err != nil {
		return run, nil, nil, false, fmt.Errorf("load recon run %s: %w", runID, err)
	}
	rows, err := tx.QueryContext(ctx, runItemsQuery, runID)
	if err != nil {
		return run, nil, nil, false, fmt.Errorf("load records of run %s: %w", runID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var side, item, ref, pspRef, cur, status, day string
		var amount int64
		var at time.Time
		if err := rows.Scan(&side, &item, &ref, &pspRef, &amount, &cur, &status, &day, &at); err != nil {
			return run, nil, nil, false, fmt.Errorf("scan record of run %s: %w", runID, err)
		}
		r, err := reconRecord(item, ref, pspRef, amount, cur, status, day, at)
		if err != nil {
			return run, nil, nil, false, err
		}
		if side == domain.ReconSideOurs {
			ours = append(ours, r)
		} else {
			psp = append(psp, r)
		}
	}
	if err := rows.Err(); err != nil {
		return run, nil, nil, false, fmt.Errorf("load records of run %s: %w", runID, err)
	}
	return run, ours, psp, true, nil
}

// healableAttempts returns the status of the attempts of channel that
// the missing_at_gateway payments among mismatches name, for those
// paygate holds.
func healableAttempts(ctx context.Context, tx *sqlx.Tx, channel string, mismatches []domain.Mismatch) (map[string]domain.AttemptStatus, error) {
	var codes []string
	for _, m := range mismatches {
		if m.Kind == domain.MismatchMissingAtGateway && m.Item == domain.ReconPayment {
			codes = append(codes, m.Ref)
		}
	}
	attempts := map[string]domain.AttemptStatus{}
	if len(codes) == 0 {
		return attempts, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT transaction_code, status FROM attempts WHERE channel = $1 AND transaction_code = ANY($2)`, channel, pq.Array(codes))
	if err != nil {
		return nil, fmt.Errorf("attempts to heal: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var code, st string
		if err := rows.Scan(&code, &st); err != nil {
			return nil, err
		}
		if attempts[code], err = domain.ParseAttemptStatus(st); err != nil {
			return nil, err
		}
	}
	return attempts, rows.Err()
}

// upsertMismatch stores finding m of run (a rerun finds the same row) and
// returns whether it is new, and its heal state as stored before.
func upsertMismatch(ctx context.Context, tx *sqlx.Tx, run domain.ReconRun, m domain.Mismatch) (inserted bool, heal domain.HealState, err error) {
	var ourAmount, pspAmount sql.NullInt64
	var ourCur, pspCur, pspStatus sql.NullString
	pspRef := ""
	if m.Ours != nil {
		ourAmount, ourCur = sql.NullInt64{Int64: m.Ours.Amount.Minor(), Valid: true}, sql.NullString{String: m.Ours.Amount.Currency().Code(), Valid: true}
		pspRef = m.Ours.PSPReference
	}
	if m.PSP != nil {
		pspAmount, pspCur = sql.NullInt64{Int64: m.PSP.Amount.Minor(), Valid: true}, sql.NullString{String: m.PSP.Amount.Currency().Code(), Valid: true}
		pspStatus, pspRef = sql.NullString{String: m.PSP.Status.String(), Valid: true}, m.PSP.PSPReference
	}
	var stored string
	if err := tx.QueryRowContext(ctx, upsertMismatchQuery, run.Channel, run.Day, m.Kind.String(), m.Item.String(), m.Ref, pspRef,
		ourAmount, ourCur, pspAmount, pspCur, pspStatus, m.Detail, run.RunID).Scan(&inserted, &stored); err != nil {
		return false, heal, fmt.Errorf("store mismatch %s %s: %w", m.Kind, m.Ref, err)
	}
	heal, err = domain.ParseHealState(stored)
	return inserted, heal, err
}

// saveHeals stores the heal states decided for run's missing_at_gateway
// findings (by reference), each only if still undecided.
func saveHeals(ctx context.Context, tx *sqlx.Tx, run domain.ReconRun, heals map[string]domain.HealState) error {
	for ref, heal := range heals {
		if _, err := tx.ExecContext(ctx, `UPDATE recon_mismatches SET heal = $4, healed_at = CASE WHEN $4 = $5 THEN now() END
			WHERE channel = $1 AND day = $2 AND kind = $6 AND ref = $3 AND heal = $7`, run.Channel, run.Day, ref, heal.String(),
			domain.HealHealed.String(), domain.MismatchMissingAtGateway.String(), domain.HealUndecided.String()); err != nil {
			return fmt.Errorf("heal %s: %w", ref, err)
		}
	}
	return nil
}

// saveFinishedRun stores run as finished (Finish), abandons the older
// runs of its channel-day still collecting, and drops its records.
func saveFinishedRun(ctx context.Context, tx *sqlx.Tx, run domain.ReconRun) error {
	if _, err := tx.ExecContext(ctx, `
UPDATE recon_runs SET status = $10, finished_at = now(), window_closed = $2, matched = $3, straddled = $4, held = $5,
    unmatched = $6, mismatches = $7, ours_totals = $8, psp_totals = $9
WHERE run_id = $1`, run.RunID, run.WindowClosed, run.Matched, run.Straddled, run.Held, run.Unmatched,
		run.Mismatches, encodeTotals(run.Ours), encodeTotals(run.PSP), run.Status.String()); err != nil {
		return fmt.Errorf("finish run %s: %w", run.RunID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE recon_runs SET status = $5, finished_at = now(), error = 'superseded by ' || $1
		WHERE channel = $2 AND day = $3 AND status = $6 AND started_at <= $4 AND run_id <> $1`,
		run.RunID, run.Channel, run.Day, run.StartedAt, domain.ReconAbandoned.String(), domain.ReconCollecting.String()); err != nil {
		return fmt.Errorf("abandon older runs: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM recon_items WHERE run_id = $1`, run.RunID); err != nil {
		return fmt.Errorf("drop records of run %s: %w", run.RunID, err)
	}
	return nil
}

// markHealedQuery marks healed the missing_at_gateway mismatches being
// probed whose attempt is paid now (by the probe, or by a late callback).
const markHealedQuery = `
UPDATE recon_mismatches m SET heal = 'healed', healed_at = now()
FROM attempts a
WHERE m.heal = 'probing' AND a.transaction_code = m.ref AND a.channel = m.channel AND a.status = 'paid'`

// MarkReconHealed marks healed the mismatches whose status probe has
// paid their attempt, and returns how many per channel.
func (s *Store) MarkReconHealed(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, markHealedQuery+` RETURNING m.channel`)
	if err != nil {
		return nil, fmt.Errorf("mark healed: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var ch string
		if err := rows.Scan(&ch); err != nil {
			return nil, err
		}
		out[ch]++
	}
	return out, rows.Err()
}

// ReconUnhealed counts, per channel, the missing_at_gateway findings still
// probing: the status probe sent to heal each has not paid its attempt.
// Findings are few (a handful a day at most), and this reads them whole.
func (s *Store) ReconUnhealed(ctx context.Context) ([]domain.ReconUnhealed, error) {
	var rows []struct {
		Channel string    `db:"channel"`
		Count   int       `db:"n"`
		Oldest  time.Time `db:"oldest"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT channel, count(*) AS n, min(detected_at) AS oldest FROM recon_mismatches
		WHERE kind = 'missing_at_gateway' AND heal = 'probing' GROUP BY channel ORDER BY channel`); err != nil {
		return nil, fmt.Errorf("count unhealed findings: %w", err)
	}
	out := make([]domain.ReconUnhealed, len(rows))
	for i, r := range rows {
		out[i] = domain.ReconUnhealed{Channel: r.Channel, Count: r.Count, Oldest: r.Oldest}
	}
	return out, nil
}

// AbandonReconRun ends a run that cannot complete (its PSP list could
// not be fetched), with why; its slot may be run again.
func (s *Store) AbandonReconRun(ctx context.Context, runID, why string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE recon_runs SET status = 'abandoned', finished_at = now(), error = $2
		WHERE run_id = $1 AND status = 'collecting'`, runID, why); err != nil {
		return fmt.Errorf("abandon run %s: %w", runID, err)
	}
	return nil
}

// ReconRunFilter selects runs for reports.
type ReconRunFilter struct {
	Channel string // "" for every channel
	Day     string // "" for every day
	// Latest keeps only the newest done run of each channel-day.
	Latest bool
	// Limit bounds the runs returned. Default 100.
	Limit int
}

// ReconRuns lists runs, newest first.
func (s *Store) ReconRuns(ctx context.Context, f ReconRunFilter) ([]domain.ReconRun, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var where []string
	args := []any{f.Limit}
	if f.Channel != "" {
		args = append(args, f.Channel)
		where = append(where, fmt.Sprintf("channel = $%d", len(args)))
	}
	if f.Day != "" {
		args = append(args, f.Day)
		where = append(where, fmt.Sprintf("day = $%d::date", len(args)))
	}
	q := `SELECT ` + runColumns + ` FROM recon_runs`
	if f.Latest {
		where = append(where, "status = 'done'")
		q = `SELECT DISTINCT ON (channel, day) ` + runColumns + ` FROM recon_runs`
	}
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	if f.Latest {
		q = `SELECT * FROM (` + q + ` ORDER BY channel, day, started_at DESC) r ORDER BY day DESC, channel LIMIT $1`
	} else {
		q += ` ORDER BY started_at DESC, run_id LIMIT $1`
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list recon runs: %w", err)
	}
	defer rows.Close()
	var out []domain.ReconRun
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("scan recon run: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ReconMismatch is a stored mismatch.
type ReconMismatch struct {
	Channel      string     `db:"channel"`
	Day          string     `db:"day"`
	Kind         string     `db:"kind"`
	Item         string     `db:"item"`
	Ref          string     `db:"ref"`
	PSPReference string     `db:"psp_reference"`
	OurAmount    *int64     `db:"our_amount"`
	OurCurrency  *string    `db:"our_currency"`
	PSPAmount    *int64     `db:"psp_amount"`
	PSPCurrency  *string    `db:"psp_currency"`
	PSPStatus    *string    `db:"psp_status"`
	Detail       string     `db:"detail"`
	FirstRun     string     `db:"first_run"`
	LastRun      string     `db:"last_run"`
	Heal         string     `db:"heal"`
	HealedAt     *time.Time `db:"healed_at"`
	DetectedAt   time.Time  `db:"detected_at"`
}

// ReconMismatches returns the mismatches a run found (the findings of
// its channel-day that it found again), ordered as the matcher orders
// them.
func (s *Store) ReconMismatches(ctx context.Context, runID string) ([]ReconMismatch, error) {
	var out []ReconMismatch
	err := s.db.SelectContext(ctx, &out, `
SELECT channel, day::text AS day, kind, item, ref, psp_reference, our_amount, our_currency, psp_amount, psp_currency, psp_status,
    detail, first_run, last_run, heal, healed_at, detected_at
FROM recon_mismatches WHERE last_run = $1
ORDER BY array_position(ARRAY['missing_at_psp','missing_at_gateway','amount_mismatch','currency_mismatch','status_mismatch','duplicate_at_psp'], kind),
    item, ref`, runID)
	if err != nil {
		return nil, fmt.Errorf("mismatches of run %s: %w", runID, err)
	}
	return out, nil
}

// ImportRow is one line of an imported settlement file.
type ImportRow struct {
	Line   int
	Record domain.ReconRecord
}

// ImportSettlement replaces the imported settlement list of a
// channel-day with rows, in one transaction: all of it or nothing.
// refunds says whether the list covers refunds.
func (s *Store) ImportSettlement(ctx context.Context, channel, day string, refunds bool, raw []byte, rows []ImportRow) error {
	sum := sha256.Sum256(raw)
	n := len(rows)
	lines, amounts := make([]int64, n), make([]int64, n)
	items, refs, pspRefs, curs, statuses := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ats := make([]time.Time, n)
	for i, r := range rows {
		lines[i], amounts[i] = int64(r.Line), r.Record.Amount.Minor()
		items[i], refs[i], pspRefs[i], curs[i], statuses[i] = r.Record.Item.String(), r.Record.Ref, r.Record.PSPReference,
			r.Record.Amount.Currency().Code(), r.Record.Status.String()
		ats[i] = r.Record.At
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM recon_imports WHERE channel = $1 AND day = $2`, channel, day); err != nil {
			return fmt.Errorf("replace import: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO recon_imports (channel, day, refunds, rows, sha256) VALUES ($1, $2, $3, $4, $5)`,
			channel, day, refunds, n, hex.EncodeToString(sum[:])); err != nil {
			return fmt.Errorf("record import: %w", err)
		}
		if n == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `
INSERT INTO recon_import_rows (channel, day, line, item, ref, psp_reference, amount, currency, status, settled_at)
SELECT $1, $2, u.* FROM unnest($3::int[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[], $10::timestamptz[]) AS u`,
			channel, day, pq.Array(lines), pq.Array(items), pq.Array(refs), pq.Array(pspRefs), pq.Array(amounts), pq.Array(curs),
			pq.Array(statuses), pq.Array(ats)); err != nil {
			return fmt.Errorf("import %d rows: %w", n, err)
		}
		return nil
	})
}

// ImportedSettlement returns the imported list of a channel-day in file
// order; ok is false if none was imported.
func (s *Store) ImportedSettlement(ctx context.Context, channel, day string) (recs []domain.ReconRecord, refunds, ok bool, err error) {
	err = s.db.GetContext(ctx, &refunds, `SELECT refunds FROM recon_imports WHERE channel = $1 AND day = $2`, channel, day)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, false, nil
	}
	if err != nil {
		return nil, false, false, fmt.Errorf("imported settlement %s %s: %w", channel, day, err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT item, ref, psp_reference, amount, currency, status, settled_at
		FROM recon_import_rows WHERE channel = $1 AND day = $2 ORDER BY line`, channel, day)
	if err != nil {
		return nil, false, false, fmt.Errorf("imported settlement %s %s: %w", channel, day, err)
	}
	defer rows.Close()
	for rows.Next() {
		var item, ref, pspRef, cur, status string
		var amount int64
		var at time.Time
		if err := rows.Scan(&item, &ref, &pspRef, &amount, &cur, &status, &at); err != nil {
			return nil, false, false, err
		}
		r, err := reconRecord(item, ref, pspRef, amount, cur, status, day, at)
		if err != nil {
			return nil, false, false, err
		}
		recs = append(recs, r)
	}
	return recs, refunds, true, rows.Err()
}

// ReconReport is runs as reports show them (GET /v1/recon/runs, paygate
// recon report), each with its mismatches if findings is set.
func (s *Store) ReconReport(ctx context.Context, f ReconRunFilter, findings bool) ([]schemas.ReconRun, error) {
	runs, err := s.ReconRuns(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]schemas.ReconRun, 0, len(runs))
	for _, r := range runs {
		v := schemas.ReconRun{RunID: r.RunID, Channel: r.Channel, Day: r.Day, Timezone: r.Timezone, Tolerance: r.Tolerance,
			Status: r.Status.String(), Final: r.WindowClosed, Matched: r.Matched, Straddled: r.Straddled, Held: r.Held, Unmatched: r.Unmatched,
			Ours: totals(r.Ours), PSP: totals(r.PSP), Mismatches: r.Mismatches, ByKind: map[string]int{}, Error: r.Error,
			StartedAt: r.StartedAt.UTC(), FinishedAt: r.FinishedAt}
		if r.Status == domain.ReconDone {
			ms, err := s.ReconMismatches(ctx, r.RunID)
			if err != nil {
				return nil, err
			}
			for _, m := range ms {
				v.ByKind[m.Kind]++
				if findings {
					v.Findings = append(v.Findings, m.Message())
				}
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func totals(t domain.SideTotals) schemas.ReconTotals {
	return schemas.ReconTotals{Payments: t.Payments, PaymentSums: t.PaymentSums, Refunds: t.Refunds, RefundSums: t.RefundSums}
}

// Message is the mismatch as published and reported.
func (m ReconMismatch) Message() schemas.ReconMismatch {
	v := schemas.ReconMismatch{Channel: m.Channel, Day: m.Day, Kind: m.Kind, Item: m.Item, Reference: m.Ref, PSPReference: m.PSPReference,
		Detail: m.Detail, Heal: m.Heal, RunID: m.LastRun}
	if m.OurAmount != nil && m.OurCurrency != nil {
		v.Ours = &schemas.ReconAmount{Amount: *m.OurAmount, Currency: *m.OurCurrency}
	}
	if m.PSPAmount != nil && m.PSPCurrency != nil {
		v.PSP = &schemas.ReconAmount{Amount: *m.PSPAmount, Currency: *m.PSPCurrency}
	}
	if m.PSPStatus != nil {
		v.PSPStatus = *m.PSPStatus
	}
	return v
}
