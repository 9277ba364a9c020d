package store_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/pgtest"
	"github.com/paygate/paygate/internal/store"
)

// refundDB is a store plus a plain connection for fixtures: an order A1
// of 1000 USD paid by attempt T1, with a second (duplicate) paid attempt
// T2, and an unpaid order B1.
func refundDB(t *testing.T) (*store.Store, *sql.DB) {
	t.Helper()
	url := pgtest.New(t)
	s, err := store.Open(context.Background(), store.Config{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{
		`INSERT INTO orders (order_id, amount, currency, country, status, paid_attempt) VALUES ('A1', 1000, 'USD', 'US', 'pending', NULL)`,
		`INSERT INTO orders (order_id, amount, currency, country, status) VALUES ('B1', 1000, 'USD', 'US', 'pending')`,
		`INSERT INTO attempts (transaction_code, order_id, channel, amount, currency, status, psp_reference) VALUES
			('T1', 'A1', 'sim', 1000, 'USD', 'paid', 'sp_1'), ('T2', 'A1', 'sim', 1000, 'USD', 'paid', 'sp_2'),
			('T3', 'B1', 'sim', 1000, 'USD', 'pending', '')`,
		`UPDATE orders SET status = 'paid', paid_attempt = 'T1' WHERE order_id = 'A1'`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return s, db
}

func refundIntent(id, order, code string, minor int64, reason string) domain.RefundIntent {
	body, _ := json.Marshal([]any{id, order, code, minor, reason})
	h := sha256.Sum256(body)
	return domain.RefundIntent{MessageID: "m-" + id + "-" + reason, RefundID: id, OrderID: order, TransactionCode: code,
		Amount: domain.MustMoney(minor, "USD"), Reason: reason, BodyHash: h[:], Raw: body}
}

var anyChannel = domain.RefundRules{PartialRefund: func(string) (bool, bool) { return true, true }}

func decideRefund(in domain.RefundIntent, o *domain.Order, a []domain.Attempt, ex []domain.Refund) (domain.Refund, error) {
	return domain.DecideRefund(in, o, a, ex, anyChannel, "R"+in.RefundID)
}

func resultEvent(r domain.Refund) (domain.Event, error) {
	return domain.Event{ID: "refund_result/" + r.ID(), Type: "refund", Topic: "results", Key: r.OrderID(),
		Payload: []byte(`{"status":"` + r.Status().String() + `"}`)}, nil
}

const lease = time.Minute

func outcomes(t *testing.T, claims []domain.RefundClaim, do func(domain.Refund) (domain.Refund, error)) []domain.RefundOutcome {
	t.Helper()
	var out []domain.RefundOutcome
	for _, c := range claims {
		r, err := do(c.Refund)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, domain.RefundOutcome{Claim: c, Refund: r})
	}
	return out
}

func succeed(r domain.Refund) (domain.Refund, error) {
	return r.Answered(domain.PSPSucceeded, "sr_"+r.ID(), "")
}

func TestQueueRefundsRecordsOnceRejectsAndConflicts(t *testing.T) {
	t.Parallel()
	s, db := refundDB(t)
	ctx := context.Background()
	in := []domain.RefundIntent{
		refundIntent("f1", "A1", "", 400, "customer"),
		refundIntent("f1", "A1", "", 400, "customer"),   // the same request again in the batch
		refundIntent("f2", "A1", "", 601, "customer"),   // 400 + 601 > 1000
		refundIntent("f3", "A1", "", 600, "customer"),   // queued behind f1
		refundIntent("f1", "A1", "", 500, "other"),      // conflict
		refundIntent("f4", "B1", "", 100, "customer"),   // not paid
		refundIntent("f5", "NOPE", "", 100, "customer"), // unknown order
		refundIntent("d1", "A1", "T2", 1000, "duplicate_payment"),
	}
	rec, claims, err := s.QueueRefunds(ctx, in, decideRefund, resultEvent, lease)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"queued", "duplicate", "rejected", "queued", "conflict", "rejected", "rejected", "queued"}
	for i, r := range rec {
		if r.Outcome != want[i] {
			t.Errorf("%d (%s): outcome %s (%s), want %s", i, r.RefundID, r.Outcome, r.Err, want[i])
		}
	}
	if len(claims) != 1 || claims[0].Refund.ID() != "f1" || claims[0].Refund.Status() != domain.RefundCalling || claims[0].Query {
		t.Fatalf("claims = %+v: want f1 started, the only one of order A1", claims)
	}
	// Redelivery of the whole batch: nothing new, nothing started twice.
	in[2].MessageID, in[4].MessageID = "again-2", "again-4"
	rec, claims2, err := s.QueueRefunds(ctx, in, decideRefund, resultEvent, lease)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rec {
		if w := map[string]string{"conflict": "conflict"}[want[i]]; w == "" && r.Outcome != "duplicate" {
			t.Errorf("redelivered %d (%s): %s", i, r.RefundID, r.Outcome)
		}
	}
	if len(claims2) != 0 {
		t.Fatalf("redelivery claimed %+v while f1 is leased", claims2)
	}
	var conflicts, results int
	_ = db.QueryRow(`SELECT count(*) FROM refund_conflicts`).Scan(&conflicts)
	_ = db.QueryRow(`SELECT count(*) FROM outbox WHERE event_id LIKE 'refund_result/%'`).Scan(&results)
	if conflicts != 2 || results != 3 {
		t.Errorf("conflicts %d (want 2), results %d (want 3: f2, f4, f5 once each)", conflicts, results)
	}
	f2, _, err := s.Refund(ctx, "f2")
	if err != nil || f2.Status != "failed" || f2.RefundStatus != "failed" || f2.FinishedAt == nil || f2.TransactionCode != "T1" {
		t.Fatalf("f2 = %+v, %v", f2, err)
	}
	if f1, _, _ := s.Refund(ctx, "f1"); f1.Amount != 400 || f1.Reason != "customer" {
		t.Errorf("f1 was overwritten by its conflict: %+v", f1)
	}
	if _, _, err := s.Refund(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown refund: %v", err)
	}

	// f1 succeeds: the order is partially refunded and f3 starts.
	next, err := s.FinishRefunds(ctx, outcomes(t, claims, succeed), resultEvent, nil, lease)
	if err != nil {
		t.Fatal(err)
	}
	if len(next) != 1 || next[0].Refund.ID() != "f3" {
		t.Fatalf("next = %+v, want f3", next)
	}
	p, err := s.Payment(ctx, "A1")
	if err != nil || p.Status != "partially_refunded" || len(p.Refunds) != 4 {
		t.Fatalf("payment = %s with %d refunds, %v", p.Status, len(p.Refunds), err)
	}
	// A stale worker (wrong lease) changes nothing.
	stale := outcomes(t, next, succeed)
	stale[0].Claim.Lease = "someone-else"
	if n2, err := s.FinishRefunds(ctx, stale, resultEvent, nil, lease); err != nil || len(n2) != 0 {
		t.Fatalf("stale finish: %v, %v", n2, err)
	}
	if f3, _, _ := s.Refund(ctx, "f3"); f3.RefundStatus != "calling" {
		t.Fatalf("f3 after a stale finish = %s", f3.RefundStatus)
	}
	// f3 succeeds: the order is refunded; then the duplicate d1 starts and
	// succeeds, which leaves the order as it is.
	next, err = s.FinishRefunds(ctx, outcomes(t, next, succeed), resultEvent, nil, lease)
	if err != nil || len(next) != 1 || next[0].Refund.ID() != "d1" {
		t.Fatalf("next = %+v, %v; want d1", next, err)
	}
	if _, err := s.FinishRefunds(ctx, outcomes(t, next, succeed), resultEvent, nil, lease); err != nil {
		t.Fatal(err)
	}
	p, _ = s.Payment(ctx, "A1")
	if p.Status != "refunded" {
		t.Fatalf("order = %s, want refunded", p.Status)
	}
	st, err := s.RefundStatuses(ctx, []string{"d1", "f2", "zzz"})
	if err != nil || st["d1"] != "succeeded" || st["f2"] != "failed" || len(st) != 2 {
		t.Fatalf("RefundStatuses = %v, %v", st, err)
	}
	_ = db.QueryRow(`SELECT count(*) FROM outbox WHERE event_id LIKE 'refund_result/%'`).Scan(&results)
	if results != 6 {
		t.Errorf("results = %d, want 6", results)
	}
}

// TestClaimRefundsConcurrentPollers: pollers claiming at once never get
// the same refund, a pending refund is claimed again only when due, and a
// dead worker's claim is taken over once its lease ran out.
func TestClaimRefundsConcurrentPollers(t *testing.T) {
	t.Parallel()
	s, db := refundDB(t)
	ctx := context.Background()
	_, claims, err := s.QueueRefunds(ctx, []domain.RefundIntent{refundIntent("f1", "A1", "", 100, "x"), refundIntent("f2", "A1", "", 100, "x")},
		decideRefund, resultEvent, lease)
	if err != nil || len(claims) != 1 {
		t.Fatalf("claims %v, %v", claims, err)
	}
	// f1 is pending at the PSP, to be looked at again at once.
	var out []domain.RefundOutcome
	for _, c := range claims {
		r, _ := c.Refund.Answered(domain.PSPPending, "sr_1", "")
		out = append(out, domain.RefundOutcome{Claim: c, Refund: r})
	}
	if next, err := s.FinishRefunds(ctx, out, resultEvent, nil, lease); err != nil || len(next) != 0 {
		t.Fatalf("pending finish started %v, %v (f2 must wait for f1)", next, err)
	}
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs, err := s.ClaimRefunds(ctx, 10, lease)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			for _, c := range cs {
				got[c.Refund.ID()]++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(got) != 1 || got["f1"] != 1 {
		t.Fatalf("claims by 8 pollers = %v, want f1 once (f2 waits)", got)
	}
	// The claimant dies; once its lease is over, f1 is claimed again, to be queried.
	if _, err := db.Exec(`UPDATE refunds SET lease_until = now() - interval '1 second' WHERE refund_id = 'f1'`); err != nil {
		t.Fatal(err)
	}
	cs, err := s.ClaimRefunds(ctx, 10, lease)
	if err != nil || len(cs) != 1 || !cs[0].Query || cs[0].Refund.Status() != domain.RefundPendingAtPSP || cs[0].Polls != 1 {
		t.Fatalf("takeover = %+v, %v", cs, err)
	}
}

func TestApplyRefundCallbacksFinishesOnce(t *testing.T) {
	t.Parallel()
	s, db := refundDB(t)
	ctx := context.Background()
	_, claims, err := s.QueueRefunds(ctx, []domain.RefundIntent{
		refundIntent("f1", "A1", "", 400, "customer"),
		refundIntent("f3", "A1", "", 600, "customer"),
	}, decideRefund, resultEvent, lease)
	if err != nil || len(claims) != 1 {
		t.Fatalf("queue: %v, %d claims", err, len(claims))
	}
	pending := func(r domain.Refund) (domain.Refund, error) { return r.Answered(domain.PSPPending, "sr_f1", "") }
	if _, err := s.FinishRefunds(ctx, outcomes(t, claims, pending), resultEvent, nil, lease); err != nil {
		t.Fatal(err)
	}
	notice := func(msg, ref, channel string, st domain.PSPStatus) domain.RefundNotice {
		return domain.RefundNotice{Callback: domain.Callback{MessageID: msg, Channel: channel, Kind: domain.CallbackAsync, ReceivedAt: time.Now()},
			Raw: []byte(`{"raw":"` + msg + `"}`), RefundRef: ref, PSPReference: "sr_f1", Status: st}
	}
	batch := []domain.RefundNotice{
		notice("c1", "Rf1", "sim", domain.PSPSucceeded),
		notice("c1", "Rf1", "sim", domain.PSPSucceeded), // the same message twice in a batch
		notice("c2", "Rf1", "sim", domain.PSPSucceeded), // the PSP repeats its webhook
		notice("c3", "Rf1", "sim", domain.PSPFailed),    // contradicts: evidence only
		notice("c4", "Rnope", "sim", domain.PSPSucceeded),
		notice("c5", "Rf1", "other", domain.PSPSucceeded),
		notice("c6", "Rf3", "sim", domain.PSPSucceeded), // queued: never sent
		{Callback: domain.Callback{MessageID: "c7", Channel: "sim", Kind: domain.CallbackAsync, ReceivedAt: time.Now()}, Refusal: domain.Refuse("bad signature")},
	}
	applied, err := s.ApplyRefundCallbacks(ctx, batch, resultEvent)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		dup      bool
		outcome  string
		rejected bool
	}
	wants := []want{{false, "refund_succeeded", false}, {true, "", false}, {false, "refund_repeated", false},
		{false, "", true}, {false, "", true}, {false, "", true}, {false, "", true}, {false, "", true}}
	for i, a := range applied {
		w := wants[i]
		if a.Duplicate != w.dup || a.Outcome != w.outcome || (a.Rejected != "") != w.rejected {
			t.Errorf("%d (%s): duplicate %v outcome %q rejected %q; want %+v", i, a.MessageID, a.Duplicate, a.Outcome, a.Rejected, w)
		}
	}
	var status, call, pspRef, order string
	var leased bool
	if err := db.QueryRow(`SELECT status, call_status, psp_reference, lease IS NOT NULL FROM refunds WHERE refund_id = 'f1'`).
		Scan(&status, &call, &pspRef, &leased); err != nil {
		t.Fatal(err)
	}
	if status != "succeeded" || call != "ok" || pspRef != "sr_f1" || leased {
		t.Fatalf("f1: %s/%s/%s leased %v", status, call, pspRef, leased)
	}
	if err := db.QueryRow(`SELECT status FROM refunds WHERE refund_id = 'f3'`).Scan(&status); err != nil || status != "queued" {
		t.Fatalf("f3: %s %v: the poller starts it, not the callback", status, err)
	}
	if err := db.QueryRow(`SELECT status FROM orders WHERE order_id = 'A1'`).Scan(&order); err != nil || order != "partially_refunded" {
		t.Fatalf("order A1: %s %v", order, err)
	}
	var results, stored int
	if err := db.QueryRow(`SELECT count(*) FROM outbox WHERE event_id = 'refund_result/f1'`).Scan(&results); err != nil || results != 1 {
		t.Fatalf("refund results in the outbox: %d %v", results, err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM callbacks WHERE message_id LIKE 'c%'`).Scan(&stored); err != nil || stored != 7 {
		t.Fatalf("callbacks stored: %d %v", stored, err)
	}
	var outcome, tc string
	if err := db.QueryRow(`SELECT coalesce(outcome, ''), coalesce(transaction_code, '') FROM callbacks WHERE message_id = 'c1'`).Scan(&outcome, &tc); err != nil ||
		outcome != "refund_succeeded" || tc != "T1" {
		t.Fatalf("callback c1: %q %q %v", outcome, tc, err)
	}
	// Redelivery of the batch: nothing happens again.
	applied, err = s.ApplyRefundCallbacks(ctx, batch, resultEvent)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range applied {
		if !a.Duplicate {
			t.Errorf("redelivered %d (%s): %+v", i, a.MessageID, a)
		}
	}
	// A worker that held f1 before the callback finished it changes nothing.
	if _, err := s.FinishRefunds(ctx, outcomes(t, []domain.RefundClaim{{Refund: claims[0].Refund, Lease: claims[0].Lease}},
		func(r domain.Refund) (domain.Refund, error) { return r.Answered(domain.PSPFailed, "", "") }), resultEvent, nil, lease); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT status FROM refunds WHERE refund_id = 'f1'`).Scan(&status); err != nil || status != "succeeded" {
		t.Fatalf("f1 after a stale worker: %s %v", status, err)
	}
}

// RefundsInFlight counts the refunds in each unfinished status with the
// request time of the oldest, lists every unfinished status (0 when
// none), and leaves out the final ones.
func TestRefundsInFlight(t *testing.T) {
	t.Parallel()
	s, db := refundDB(t)
	ctx := context.Background()
	fl, err := s.RefundsInFlight(ctx)
	if err != nil || len(fl) != 3 {
		t.Fatalf("empty: %+v, %v", fl, err)
	}
	for _, f := range fl {
		if f.Count != 0 || !f.Oldest.IsZero() {
			t.Errorf("empty: %+v", f)
		}
	}
	in := []domain.RefundIntent{refundIntent("f1", "A1", "", 100, "x"), refundIntent("f2", "A1", "", 100, "x"),
		refundIntent("f3", "A1", "", 100, "x"), refundIntent("f4", "B1", "", 100, "x")} // f4: not paid, failed at once
	_, claims, err := s.QueueRefunds(ctx, in, decideRefund, resultEvent, lease)
	if err != nil || len(claims) != 1 {
		t.Fatalf("claims %v, %v", claims, err)
	}
	r, _ := claims[0].Refund.Answered(domain.PSPPending, "sr_1", "")
	if _, err := s.FinishRefunds(ctx, []domain.RefundOutcome{{Claim: claims[0], Refund: r}}, resultEvent, nil, lease); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE refunds SET created_at = now() - interval '2 hours' WHERE refund_id = 'f3'`); err != nil {
		t.Fatal(err)
	}
	fl, err = s.RefundsInFlight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]domain.RefundsInFlight{}
	for _, f := range fl {
		got[f.Status.String()] = f
	}
	if q := got["queued"]; q.Count != 2 || time.Since(q.Oldest) < 2*time.Hour || time.Since(q.Oldest) > 3*time.Hour {
		t.Errorf("queued: %+v, want f2 and f3, the oldest 2 hours old", q)
	}
	if c := got["calling"]; c.Count != 0 {
		t.Errorf("calling: %+v", c)
	}
	if p := got["pending_at_psp"]; p.Count != 1 || time.Since(p.Oldest) > time.Minute {
		t.Errorf("pending_at_psp: %+v, want f1", p)
	}
	if len(got) != 3 {
		t.Errorf("statuses %v: want the three unfinished ones only", fl)
	}
}

// A refund callback looked up as new and stored by another transaction
// before this one stores it is a duplicate, as a payment callback is: the
// batch is retried and the refund stays as it was.
func TestApplyRefundCallbacksYieldsToTheSameMessageStoredMeanwhile(t *testing.T) {
	t.Parallel()
	s, db := refundDB(t)
	ctx := context.Background()
	_, claims, err := s.QueueRefunds(ctx, []domain.RefundIntent{refundIntent("f1", "A1", "", 400, "customer")}, decideRefund, resultEvent, lease)
	if err != nil || len(claims) != 1 {
		t.Fatalf("queue: %v, %d claims", err, len(claims))
	}
	pending := func(r domain.Refund) (domain.Refund, error) { return r.Answered(domain.PSPPending, "sr_f1", "") }
	if _, err := s.FinishRefunds(ctx, outcomes(t, claims, pending), resultEvent, nil, lease); err != nil {
		t.Fatal(err)
	}
	type result struct {
		applied []domain.RefundNoticeApplied
		err     error
	}
	done := make(chan result, 1)
	storedMeanwhile(t, db, "c1", func() {
		applied, err := s.ApplyRefundCallbacks(ctx, []domain.RefundNotice{{Callback: domain.Callback{MessageID: "c1", Channel: "sim", Kind: domain.CallbackAsync, ReceivedAt: time.Now()},
			Raw: []byte("raw"), RefundRef: "Rf1", PSPReference: "sr_f1", Status: domain.PSPSucceeded}}, resultEvent)
		done <- result{applied, err}
	})
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !r.applied[0].Duplicate || r.applied[0].Outcome != "" {
		t.Fatalf("applied %+v; want a duplicate", r.applied[0])
	}
	var status string
	var results int
	if err := db.QueryRow(`SELECT status FROM refunds WHERE refund_id = 'f1'`).Scan(&status); err != nil || status != "pending_at_psp" {
		t.Fatalf("f1: %s %v; want pending_at_psp", status, err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM outbox WHERE event_id = 'refund_result/f1'`).Scan(&results); err != nil || results != 0 {
		t.Fatalf("refund results in the outbox: %d %v; want none", results, err)
	}
}
