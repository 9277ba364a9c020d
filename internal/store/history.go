package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/paygate/paygate/domain/risk"
	"github.com/paygate/paygate/domain/routing"
)

// HistoryEntry is one thing that happened to an order, for operators.
type HistoryEntry struct {
	At     time.Time
	Kind   string
	Ref    string
	Detail string
}

// historyQuery gathers everything stored about an order in time order:
// pay requests, attempts, callbacks with their outcome, PSP exchanges,
// events written, repeat payments and refunds. Every part is served by an
// index: a PSP exchange is found by its attempt (each names the attempt
// it was made for), an event by its key (outbox_key).
const historyQuery = `
SELECT at, kind, ref, detail FROM (
    SELECT received_at AS at, 'pay_request' AS kind, message_id AS ref,
           outcome || CASE WHEN reason <> '' THEN ': ' || reason ELSE '' END
           || coalesce(' → ' || transaction_code, '') AS detail
    FROM pay_requests WHERE order_id = $1
  UNION ALL
    SELECT created_at, 'attempt', transaction_code,
           channel || ' ' || amount || ' ' || currency || ', now ' || status
           || CASE WHEN review <> '' THEN ', REVIEW: ' || review ELSE '' END
           || CASE WHEN initiate_error <> '' THEN ', Initiate failed: ' || initiate_error ELSE '' END
    FROM attempts WHERE order_id = $1
  UNION ALL
    SELECT created_at, 'routing', transaction_code, routing::text
    FROM attempts WHERE order_id = $1 AND routing IS NOT NULL
  UNION ALL
    SELECT c.processed_at, 'callback', c.message_id,
           c.kind || ' ' || coalesce(c.notified_status, '-') || '/' || coalesce(c.confirmed_status, '-')
           || ' → ' || coalesce(c.outcome, 'rejected: ' || c.rejected)
    FROM callbacks c JOIN attempts a ON a.transaction_code = c.transaction_code WHERE a.order_id = $1
  UNION ALL
    SELECT started_at, 'psp_' || operation, coalesce(transaction_code, ''),
           method || ' ' || url || ' → ' || coalesce(status_code::text, error)
    FROM psp_exchanges WHERE transaction_code IN (SELECT transaction_code FROM attempts WHERE order_id = $1)
  UNION ALL
    SELECT created_at, 'event', event_id,
           topic || CASE WHEN published_at IS NULL THEN ' (not yet published)' ELSE '' END
    FROM outbox WHERE key = $1
  UNION ALL
    SELECT rp.detected_at, 'repeat_payment', rp.transaction_code || '/' || rp.psp_reference,
           rp.kind || ' ' || rp.amount || ' ' || rp.currency || ', refund '
           || CASE WHEN rp.manual THEN 'by hand at the PSP' ELSE rp.refund_id || ' ' || coalesce(r.status, 'requested') END
    FROM repeat_payments rp LEFT JOIN refunds r ON r.refund_id = rp.refund_id WHERE rp.order_id = $1
  UNION ALL
    SELECT created_at, 'refund', refund_id,
           amount || ' ' || currency || ' of ' || transaction_code || ' (' || reason || '): ' || status
           || CASE WHEN call_status <> '' THEN ', call ' || call_status ELSE '' END
           || CASE WHEN error <> '' THEN ', ' || error ELSE '' END
    FROM refunds WHERE order_id = $1
  UNION ALL
    SELECT decided_at, 'risk', message_id,
           json_build_object('decision', decision, 'score', score, 'rules_version', rules_version, 'matched', matched,
               'outside', outside)::text
    FROM risk_decisions WHERE order_id = $1
  UNION ALL
    SELECT created_at, 'risk_review', id::text || ' of ' || message_id,
           CASE WHEN status = 'pending'
                THEN 'pending, until ' || to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC, then ' || default_decision
                ELSE status || ' by ' || decided_by || ' at ' || to_char(decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
                     || CASE WHEN note <> '' THEN ': ' || note ELSE '' END
                     || coalesce(', released as ' || release_id, '')
           END
    FROM risk_reviews WHERE order_id = $1
  UNION ALL
    SELECT at, 'risk_event', kind || '/' || ref, amount || ' ' || currency || ', counted under ' || array_to_string(keys, ', ')
    FROM risk_events WHERE order_id = $1
) h ORDER BY at, kind`

// History is an order's whole stored history, oldest first. Outbox rows
// are kept for a day after publication, so older events do not show.
func (s *Store) History(ctx context.Context, orderID string) ([]HistoryEntry, error) {
	var out []HistoryEntry
	rows, err := s.db.QueryContext(ctx, historyQuery, orderID)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", orderID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var h HistoryEntry
		if err := rows.Scan(&h.At, &h.Kind, &h.Ref, &h.Detail); err != nil {
			return nil, fmt.Errorf("history of %s: %w", orderID, err)
		}
		switch h.Kind {
		case "routing":
			h.Detail = routingDetail(h.Detail)
		case "risk":
			h.Detail = riskDetail(h.Detail)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// routingDetail words an attempt's stored routing decision for operators:
// policy, segment, the choice and why, every candidate as it was scored,
// and the failover order.
func routingDetail(raw string) string {
	var d routing.Decision
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return raw
	}
	var b strings.Builder
	fmt.Fprintf(&b, "policy v%d, segment %s: %s because %s (chance %.1f%%)", d.PolicyVersion, d.Segment, d.Chosen, d.Reason, 100*d.Propensity)
	if d.Hop > 0 {
		fmt.Fprintf(&b, ", failover %d from %s", d.Hop, d.Previous)
	}
	b.WriteString("; candidates:")
	for _, c := range d.Candidates {
		sr := "no outcomes"
		if c.SuccessRate >= 0 {
			sr = fmt.Sprintf("%.1f%% of %d", 100*c.SuccessRate, c.Resolved)
		}
		fmt.Fprintf(&b, " %s (%s, breaker %s, chance %.1f%%", c.Channel, sr, c.Breaker, 100*c.Propensity)
		if c.Excluded != "" {
			b.WriteString(", excluded: " + c.Excluded)
		}
		b.WriteString(")")
	}
	if len(d.Failover) > 0 {
		b.WriteString("; then " + strings.Join(d.Failover, ", "))
	}
	return b.String()
}

// riskDetail words a stored risk decision for operators: the decision,
// the score, the rules version, every matched rule with its points and
// what it saw, and the outside service's answer.
func riskDetail(raw string) string {
	var d struct {
		Decision     string        `json:"decision"`
		Score        int           `json:"score"`
		RulesVersion int64         `json:"rules_version"`
		Matched      []risk.Match  `json:"matched"`
		Outside      *risk.Outside `json:"outside"`
	}
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return raw
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s, score %d, rules v%d", d.Decision, d.Score, d.RulesVersion)
	for i, m := range d.Matched {
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%s", sep, m.Rule)
		if m.Points != 0 {
			fmt.Fprintf(&b, " +%d", m.Points)
		}
		fmt.Fprintf(&b, " (%s)", m.Detail)
	}
	if o := d.Outside; o != nil {
		if o.Error != "" {
			fmt.Fprintf(&b, "; outside service failed after %.0f ms: %s", o.LatencyMS, o.Error)
		} else {
			fmt.Fprintf(&b, "; outside service answered in %.0f ms: %s", o.LatencyMS, o.Response)
		}
	}
	return b.String()
}
