package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/pgtest"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/schemas"
)

func open(t *testing.T) *store.Store {
	t.Helper()
	s, _ := openURL(t)
	return s
}

// openURL is open, with the database's URL.
func openURL(t *testing.T) (*store.Store, string) {
	t.Helper()
	url := pgtest.New(t)
	s, err := store.Open(context.Background(), store.Config{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, url
}

func intent(msg, order string, minor int64) domain.PayIntent {
	in := domain.PayIntent{MessageID: msg, OrderID: order, Amount: domain.MustMoney(minor, "USD"), Country: "US",
		Returns: domain.ReturnURLs{Success: "https://shop.example/ok", Failure: "https://shop.example/fail", Pending: "https://shop.example/wait"}}
	// The body as the mall would send it, and its digest as payinit
	// computes it: the same order and amount, the same body.
	in.Raw = []byte(fmt.Sprintf(`{"order_id":%q,"amount":%d,"currency":"USD"}`, order, minor))
	in.Digest, _ = schemas.Digest(in.Raw)
	return in
}

// decideNew is payinit's rule, reduced: new order or accept a repeat.
func decideNew(code func() string) store.PlanDecider {
	return func(ex *domain.Order, in domain.PayIntent, _ domain.RiskSeen) (domain.Planned, error) {
		o, err := domain.OrderFor(ex, in)
		if err != nil {
			return domain.Planned{Order: o}, err
		}
		a, err := domain.NewAttempt(code(), in.OrderID, "sim", in.Amount)
		return domain.Planned{Order: o, Attempt: a}, err
	}
}

func counter() func() string {
	var mu sync.Mutex
	n := 0
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("T%04d", n)
	}
}

func TestPlanAttemptsIsIdempotentPerMessage(t *testing.T) {
	t.Parallel()
	s, ctx := open(t), context.Background()
	dec := decideNew(counter())
	plans, err := s.PlanAttempts(ctx, []domain.PayIntent{intent("m1", "A1", 1999), intent("m2", "A1", 1999), intent("m3", "A1", 2000)}, domain.Screen{}, dec)
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{plans[0].Attempt.Code(), plans[1].Attempt.Code(), plans[2].Rejected}; got[0] != "T0001" || got[1] != "T0002" || got[2] == "" {
		t.Fatalf("plans = %v", got)
	}
	// Redelivery of m1 and m3: the stored plan, nothing minted.
	again, err := s.PlanAttempts(ctx, []domain.PayIntent{intent("m1", "A1", 1999), intent("m3", "A1", 2000)}, domain.Screen{}, dec)
	if err != nil {
		t.Fatal(err)
	}
	if !again[0].Resumed || again[0].Attempt.Code() != "T0001" || again[0].Order.ID() != "A1" {
		t.Fatalf("resumed plan = %+v", again[0])
	}
	if !again[1].Resumed || again[1].Rejected != plans[2].Rejected {
		t.Fatalf("resumed rejection = %+v", again[1])
	}
	p, err := s.Payment(ctx, "A1")
	if err != nil || len(p.Attempts) != 2 || p.Status != "pending" || p.Amount != 1999 {
		t.Fatalf("payment = %+v, %v", p, err)
	}
	if _, err := s.Payment(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown order: %v", err)
	}
}

func TestApplyCallbacksDecidesOnceAndOutboxPublishesInOrder(t *testing.T) {
	t.Parallel()
	s, url := openURL(t)
	ctx := context.Background()
	plans, err := s.PlanAttempts(ctx, []domain.PayIntent{intent("m1", "A1", 500)}, domain.Screen{}, decideNew(counter()))
	if err != nil {
		t.Fatal(err)
	}
	a := plans[0].Attempt
	n := &domain.Notification{TransactionCode: a.Code(), PSPReference: "sp_1", Status: domain.PSPSucceeded, Amount: domain.MustMoney(500, "USD")}
	decide := func(o domain.Order, a domain.Attempt, in domain.Inbound) (domain.Decision, []domain.Event, error) {
		d, err := domain.DecideCallback(o, a, *in.Effective())
		var evs []domain.Event
		if d.Outcome == domain.OutcomePaid {
			evs = append(evs, domain.Event{ID: "paid/" + o.ID(), Type: "paid", Topic: "t", Key: o.ID(), Payload: []byte(`{}`)})
		}
		return d, evs, err
	}
	in := []domain.Inbound{
		{Callback: domain.Callback{MessageID: "c1", Channel: "sim", Kind: domain.CallbackAsync, ReceivedAt: time.Now()}, Raw: []byte("raw1"), Notified: n},
		{Callback: domain.Callback{MessageID: "c2", Channel: "sim", Kind: domain.CallbackSync, ReceivedAt: time.Now()}, Raw: []byte("raw2"), Notified: n},
		{Callback: domain.Callback{MessageID: "c3", Channel: "sim", Kind: domain.CallbackAsync, ReceivedAt: time.Now()}, Raw: []byte("forged"), Refusal: domain.Refuse("bad signature")},
		{Callback: domain.Callback{MessageID: "c4", Channel: "other", Kind: domain.CallbackAsync, ReceivedAt: time.Now()}, Raw: []byte("x"), Notified: n},
	}
	ex := []psp.Exchange{{Channel: "sim", Operation: "query", Method: "GET", URL: "http://sim/x", StartedAt: time.Now()}}
	res, err := s.ApplyCallbacks(ctx, in, decide, ex)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"paid", "duplicate_notification", "", ""}
	for i, r := range res {
		if r.Outcome.String() != want[i] || r.Duplicate {
			t.Errorf("result %d = %+v, want outcome %q", i, r, want[i])
		}
	}
	if res[2].Rejected != "bad signature" || res[3].Rejected == "" {
		t.Errorf("rejections = %q, %q", res[2].Rejected, res[3].Rejected)
	}
	// Each message is stored once, with what became of it.
	db := sqlx.MustConnect("postgres", url)
	defer db.Close()
	var rows []struct {
		MessageID string         `db:"message_id"`
		Raw       []byte         `db:"raw"`
		Outcome   sql.NullString `db:"outcome"`
		Rejected  string         `db:"rejected"`
	}
	if err := db.SelectContext(ctx, &rows, `SELECT message_id, raw, outcome, rejected FROM callbacks ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(in) {
		t.Fatalf("%d callbacks stored, want %d", len(rows), len(in))
	}
	for i, r := range rows {
		if r.MessageID != in[i].Callback.MessageID || string(r.Raw) != string(in[i].Raw) || r.Outcome.String != want[i] ||
			r.Outcome.Valid != (want[i] != "") || r.Rejected != res[i].Rejected {
			t.Errorf("callback %d stored as %+v; applied %+v", i, r, res[i])
		}
	}
	// Redelivery of the whole batch: all duplicates, no second event.
	res, err = s.ApplyCallbacks(ctx, in, decide, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if !r.Duplicate {
			t.Errorf("redelivered %d not duplicate: %+v", i, r)
		}
	}
	p, _ := s.Payment(ctx, "A1")
	if p.Status != "paid" || p.Attempts[0].Status != "paid" || p.Attempts[0].PSPReference != "sp_1" || p.PaidAt == nil {
		t.Fatalf("payment = %+v", p)
	}
	var published []domain.Event
	n1, err := s.PublishOutbox(ctx, 10, func(_ context.Context, evs []domain.Event) error {
		published = append(published, evs...)
		return nil
	})
	if err != nil || n1 != 1 || published[0].ID != "paid/A1" {
		t.Fatalf("published %d %v: %+v", n1, err, published)
	}
	n2, err := s.PublishOutbox(ctx, 10, func(context.Context, []domain.Event) error { t.Fatal("republished"); return nil })
	if err != nil || n2 != 0 {
		t.Fatalf("second publish: %d %v", n2, err)
	}
	if b, _ := s.OutboxBacklog(ctx); b != 0 {
		t.Fatalf("backlog = %d", b)
	}
}

// A message looked up as new and stored by another transaction before
// this one stores it (a redelivery to another member, mid-rebalance) is
// a duplicate: the batch is retried, finds it stored, and pays nothing.
func TestApplyCallbacksYieldsToTheSameMessageStoredMeanwhile(t *testing.T) {
	t.Parallel()
	s, url := openURL(t)
	ctx := context.Background()
	plans, err := s.PlanAttempts(ctx, []domain.PayIntent{intent("m1", "A1", 500)}, domain.Screen{}, decideNew(counter()))
	if err != nil {
		t.Fatal(err)
	}
	code := plans[0].Attempt.Code()
	db := sqlx.MustConnect("postgres", url)
	defer db.Close()
	n := &domain.Notification{TransactionCode: code, PSPReference: "sp_1", Status: domain.PSPSucceeded, Amount: domain.MustMoney(500, "USD")}
	decide := func(o domain.Order, a domain.Attempt, in domain.Inbound) (domain.Decision, []domain.Event, error) {
		d, err := domain.DecideCallback(o, a, *in.Effective())
		return d, []domain.Event{{ID: "paid/" + o.ID(), Type: "paid", Topic: "t", Key: o.ID(), Payload: []byte(`{}`)}}, err
	}
	type result struct {
		applied []domain.Applied
		err     error
	}
	done := make(chan result, 1)
	storedMeanwhile(t, db.DB, "c1", func() {
		in := []domain.Inbound{{Callback: domain.Callback{MessageID: "c1", Channel: "sim", Kind: domain.CallbackAsync, ReceivedAt: time.Now()}, Raw: []byte("raw"), Notified: n}}
		applied, err := s.ApplyCallbacks(ctx, in, decide, nil)
		done <- result{applied, err}
	})
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !r.applied[0].Duplicate || r.applied[0].Outcome.String() != "" {
		t.Fatalf("applied %+v; want a duplicate", r.applied[0])
	}
	p, err := s.Payment(ctx, "A1")
	if err != nil || p.Status != "pending" {
		t.Fatalf("payment = %+v, %v; want pending", p, err)
	}
	var stored []string
	if err := db.SelectContext(ctx, &stored, `SELECT convert_from(raw, 'UTF8') FROM callbacks`); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.OutboxBacklog(ctx); b != 0 || len(stored) != 1 || stored[0] != "stored meanwhile" {
		t.Fatalf("outbox backlog %d, callbacks %q; want none and the other's", b, stored)
	}
}

// storedMeanwhile stores a callback with the message id in a transaction
// of its own, runs apply in a goroutine, and commits that transaction
// once apply waits on its row: apply then finds the message new when it
// looks, and stored when it stores it.
func storedMeanwhile(t *testing.T, db *sql.DB, messageID string, apply func()) {
	t.Helper()
	ctx := context.Background()
	other, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback()
	if _, err := other.ExecContext(ctx, `INSERT INTO callbacks (message_id, channel, kind, received_at, raw, rejected)
		VALUES ($1, 'sim', 'async', now(), 'stored meanwhile', 'bad signature')`, messageID); err != nil {
		t.Fatal(err)
	}
	go apply()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var waiting int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never waited on the message stored meanwhile")
		}
	}
	if err := other.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestPublishOutboxFailureKeepsEvents(t *testing.T) {
	t.Parallel()
	s, ctx := open(t), context.Background()
	plans, _ := s.PlanAttempts(ctx, []domain.PayIntent{intent("m1", "A1", 500)}, domain.Screen{}, decideNew(counter()))
	err := s.FinishAttempts(ctx, []domain.AttemptStart{{Attempt: plans[0].Attempt, PayURL: "http://sim/pay/1"}},
		[]domain.Event{{ID: "s1", Topic: "t", Key: "A1", Type: "x", Payload: []byte("{}")}, {ID: "s1", Topic: "t", Key: "A1", Type: "x", Payload: []byte("{}")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("kafka down")
	if _, err := s.PublishOutbox(ctx, 10, func(context.Context, []domain.Event) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if b, _ := s.OutboxBacklog(ctx); b != 1 {
		t.Fatalf("backlog after failed publish = %d, want 1 (same id written twice counts once)", b)
	}
}

// PlanAttempts takes the same round trips for a batch of forty as for a
// batch of two (BEGIN, the stored plans, the orders locked, one write,
// COMMIT), and decides each intent against the orders as the ones before
// it in the batch left them: a new order's second request is a repeat of
// it, and the newest request's return pages are the order's.
func TestPlanAttemptsTakesFiveRoundTripsWhateverTheBatch(t *testing.T) {
	t.Parallel()
	s, url := openURL(t)
	ctx := context.Background()
	dec := decideNew(counter())
	// Warm the connection's prepared statements, one per shape of the
	// batch's write: new orders only; and with a repeat of an order
	// stored before (its return pages updated), and a refusal.
	for _, warm := range [][]domain.PayIntent{{intent("w1", "W1", 100)}, {intent("w2", "W1", 100), intent("w3", "W3", 100), intent("w4", "W3", 1)}} {
		if _, err := s.PlanAttempts(ctx, warm, domain.Screen{}, dec); err != nil {
			t.Fatal(err)
		}
	}
	trips := func(intents []domain.PayIntent) ([]domain.AttemptPlan, int64) {
		t.Helper()
		before := s.Counts()
		plans, err := s.PlanAttempts(ctx, intents, domain.Screen{}, dec)
		if err != nil {
			t.Fatal(err)
		}
		return plans, s.Counts().RoundTrips() - before.RoundTrips()
	}
	again := intent("b2", "B1", 500)
	again.Returns.Success = "https://shop.example/second-device"
	small, n2 := trips([]domain.PayIntent{intent("b1", "B1", 500), again, intent("b3", "W1", 100), intent("b4", "B1", 999)})
	var big []domain.PayIntent
	for i := range 40 {
		big = append(big, intent(fmt.Sprintf("c%d", i), fmt.Sprintf("C%d", i%20), 700))
	}
	plans, n40 := trips(big)
	if n2 != 5 || n40 != 5 {
		t.Errorf("round trips: %d for a batch of 4, %d for a batch of 40; want 5 each", n2, n40)
	}
	if small[0].Rejected != "" || small[1].Rejected != "" || small[1].Attempt.Code() == small[0].Attempt.Code() || small[2].Rejected != "" ||
		small[3].Rejected == "" || small[3].Order.ID() != "B1" {
		t.Errorf("plans: %+v", small)
	}
	for i, p := range plans {
		if p.Rejected != "" || p.Attempt.Code() == "" {
			t.Errorf("plan %d: %+v", i, p)
		}
	}
	db := sqlx.MustOpen("postgres", url)
	defer db.Close()
	var attempts, requests int
	var success string
	db.QueryRow(`SELECT count(*) FROM attempts WHERE order_id = 'B1'`).Scan(&attempts)
	db.QueryRow(`SELECT count(*) FROM pay_requests WHERE order_id = 'B1'`).Scan(&requests)
	db.QueryRow(`SELECT return_urls->>'success' FROM orders WHERE order_id = 'B1'`).Scan(&success)
	if attempts != 2 || requests != 3 || success != "https://shop.example/second-device" {
		t.Errorf("B1: %d attempts, %d requests, success page %q; want 2, 3 and the second request's", attempts, requests, success)
	}
	db.QueryRow(`SELECT count(*) FROM attempts WHERE order_id LIKE 'C%'`).Scan(&attempts)
	if attempts != 40 {
		t.Errorf("%d attempts for the 40 requests of 20 orders", attempts)
	}
}

// FinishAttempts stores a batch's sessions, failures, events and
// exchanges in one statement that is its own transaction: no BEGIN or
// COMMIT. An attempt a callback already moved on keeps its status and
// PSP reference; the others take theirs, with the session's details.
func TestFinishAttemptsStoresABatchInOneStatement(t *testing.T) {
	t.Parallel()
	s, url := openURL(t)
	ctx := context.Background()
	plans, err := s.PlanAttempts(ctx, []domain.PayIntent{intent("m1", "A1", 500), intent("m2", "B1", 600), intent("m3", "C1", 700)}, domain.Screen{}, decideNew(counter()))
	if err != nil {
		t.Fatal(err)
	}
	db := sqlx.MustOpen("postgres", url)
	defer db.Close()
	// A callback overtook C1's Initiate: paid, with its PSP reference.
	db.MustExec(`UPDATE attempts SET status = 'paid', psp_reference = 'sp_c', paid_at = now() WHERE transaction_code = $1`, plans[2].Attempt.Code())

	started := func(a domain.Attempt, ref string) domain.Attempt {
		a, err := a.Started(ref)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	failed, err := plans[1].Attempt.InitiateFailed()
	if err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(30 * time.Minute).UTC().Truncate(time.Second)
	starts := []domain.AttemptStart{
		{Attempt: started(plans[0].Attempt, "sp_a"), PayURL: "http://sim/pay/a", Token: "tok_a", Form: map[string]string{"f": "1"}, ExpiresAt: expires},
		{Attempt: failed, InitiateError: "psp said no"},
		{Attempt: started(plans[2].Attempt, "sp_other"), PayURL: "http://sim/pay/c"},
	}
	events := []domain.Event{{ID: "pay_session/a", Topic: "t", Key: "A1", Type: "x", Payload: []byte(`{"a":1}`)},
		{ID: "pay_session/b", Topic: "t", Key: "B1", Type: "x", Payload: []byte(`{"b":1}`)}}
	exchanges := []psp.Exchange{{Channel: "sim", Operation: "initiate", OrderID: "A1", TransactionCode: plans[0].Attempt.Code(), Method: "POST",
		URL: "http://sim/api", RequestBody: "{}", StatusCode: 201, ResponseBody: `{"id":"sp_a"}`, StartedAt: time.Now()}}
	before := s.Counts()
	if err := s.FinishAttempts(ctx, starts, events, exchanges); err != nil {
		t.Fatal(err)
	}
	after := s.Counts()
	if after.Transactions != before.Transactions || after.Ends != before.Ends || after.Statements-before.Statements > 2 {
		t.Errorf("%d BEGINs, %d COMMITs, %d statements (a PREPARE at most, and the statement); want none, none, one",
			after.Transactions-before.Transactions, after.Ends-before.Ends, after.Statements-before.Statements)
	}
	type row struct {
		Status, Ref, PayURL, Token, Err string
		Form                            sql.NullString
		Expires, Session                sql.NullTime
	}
	get := func(code string) row {
		var r row
		if err := db.QueryRow(`SELECT status, psp_reference, coalesce(pay_url, ''), coalesce(token, ''), initiate_error, form::text, expires_at, session_at
			FROM attempts WHERE transaction_code = $1`, code).Scan(&r.Status, &r.Ref, &r.PayURL, &r.Token, &r.Err, &r.Form, &r.Expires, &r.Session); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if a := get(plans[0].Attempt.Code()); a.Status != "pending" || a.Ref != "sp_a" || a.PayURL != "http://sim/pay/a" || a.Token != "tok_a" ||
		a.Form.String != `{"f": "1"}` || !a.Expires.Time.Equal(expires) || !a.Session.Valid {
		t.Errorf("started attempt: %+v", a)
	}
	if b := get(plans[1].Attempt.Code()); b.Status != "failed" || b.Err != "psp said no" || b.PayURL != "" || b.Form.Valid || b.Expires.Valid || b.Session.Valid {
		t.Errorf("failed attempt: %+v", b)
	}
	if c := get(plans[2].Attempt.Code()); c.Status != "paid" || c.Ref != "sp_c" || c.PayURL != "http://sim/pay/c" {
		t.Errorf("attempt a callback paid first: %+v; want it paid with its own reference", c)
	}
	var nEvents, nExchanges int
	db.QueryRow(`SELECT count(*) FROM outbox WHERE event_id LIKE 'pay_session/%'`).Scan(&nEvents)
	db.QueryRow(`SELECT count(*) FROM psp_exchanges WHERE operation = 'initiate'`).Scan(&nExchanges)
	if nEvents != 2 || nExchanges != 1 {
		t.Errorf("%d events, %d exchanges; want 2 and 1", nEvents, nExchanges)
	}
	// Again (a redelivery): nothing changes, no event twice.
	if err := s.FinishAttempts(ctx, starts, events, exchanges); err != nil {
		t.Fatal(err)
	}
	db.QueryRow(`SELECT count(*) FROM outbox WHERE event_id LIKE 'pay_session/%'`).Scan(&nEvents)
	if c := get(plans[2].Attempt.Code()); nEvents != 2 || c.Status != "paid" {
		t.Errorf("again: %d events, C1 %s", nEvents, c.Status)
	}
}

func TestHistoryShowsEverythingInOrder(t *testing.T) {
	t.Parallel()
	s, ctx := open(t), context.Background()
	plans, err := s.PlanAttempts(ctx, []domain.PayIntent{intent("m1", "H1", 500), intent("m2", "H1", 501)}, domain.Screen{}, decideNew(counter()))
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.History(ctx, "H1")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range h {
		kinds[e.Kind]++
	}
	if kinds["pay_request"] != 2 || kinds["attempt"] != 1 {
		t.Fatalf("history = %+v", h)
	}
	var rejected bool
	for _, e := range h {
		if e.Kind == "pay_request" && strings.Contains(e.Detail, "rejected") && strings.Contains(e.Detail, "another amount") {
			rejected = true
		}
	}
	if !rejected || plans[1].Rejected == "" {
		t.Errorf("the rejected request does not show why: %+v", h)
	}
}

// Attempts never probed (due firstAfter their creation) and attempts
// probed before (due at their next probe time) are claimed together,
// earliest due first; one not due yet is left.
func TestClaimProbesTakesTheEarliestDueOfEitherKind(t *testing.T) {
	t.Parallel()
	s, url := openURL(t)
	ctx := context.Background()
	var intents []domain.PayIntent
	for i := 1; i <= 3; i++ {
		intents = append(intents, intent(fmt.Sprintf("m%d", i), fmt.Sprintf("P%d", i), 100))
	}
	if _, err := s.PlanAttempts(ctx, intents, domain.Screen{}, decideNew(counter())); err != nil {
		t.Fatal(err)
	}
	db := sqlx.MustConnect("postgres", url)
	defer db.Close()
	now := time.Now()
	// T0003 is never probed: due a minute after its creation, about now+1m.
	if _, err := db.ExecContext(ctx, `UPDATE attempts SET next_probe_at = CASE transaction_code
		WHEN 'T0001' THEN $1::timestamptz + interval '10 minutes' WHEN 'T0002' THEN $1::timestamptz + interval '2 minutes' END
		WHERE transaction_code IN ('T0001', 'T0002')`, now); err != nil {
		t.Fatal(err)
	}
	var claimed []string
	plan := func(p domain.DueProbe) (time.Time, domain.Event) {
		code := p.Attempt.Code()
		claimed = append(claimed, code)
		return now.Add(time.Hour), domain.Event{ID: "probe/" + code, Type: "probe", Topic: "t", Key: code, Payload: []byte(`{}`)}
	}
	at := now.Add(5 * time.Minute)
	for range 3 {
		if _, err := s.ClaimProbes(ctx, at, time.Minute, 30*time.Minute, 1, plan); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(claimed, ","); got != "T0003,T0002" {
		t.Fatalf("claimed %s; want T0003 (due about now+1m), then T0002 (now+2m), and not T0001 (now+10m)", got)
	}
}

// Two sweepers claiming at once never probe one attempt twice in a round,
// and a probed attempt is not due again before its next probe time.
func TestClaimProbesConcurrentSweepersNeverDoubleProbe(t *testing.T) {
	t.Parallel()
	s, ctx := open(t), context.Background()
	var intents []domain.PayIntent
	for i := 0; i < 40; i++ {
		intents = append(intents, intent(fmt.Sprintf("m%d", i), fmt.Sprintf("S%02d", i), 100))
	}
	if _, err := s.PlanAttempts(ctx, intents, domain.Screen{}, decideNew(counter())); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Hour) // every attempt is due
	var mu sync.Mutex
	seen := map[string]int{}
	plan := func(p domain.DueProbe) (time.Time, domain.Event) {
		mu.Lock()
		seen[p.Attempt.Code()]++
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // hold the row locks while the other sweeper looks
		code := p.Attempt.Code()
		return now.Add(time.Minute), domain.Event{ID: "probe/" + code, Type: "probe", Topic: "t", Key: code, Payload: []byte(`{}`)}
	}
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i := range counts {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			n, err := s.ClaimProbes(ctx, now, time.Minute, 30*time.Minute, 100, plan)
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		}(i)
	}
	wg.Wait()
	if counts[0]+counts[1] != 40 || len(seen) != 40 {
		t.Fatalf("claimed %v, %d distinct attempts; want 40 in all", counts, len(seen))
	}
	for code, n := range seen {
		if n != 1 {
			t.Errorf("attempt %s probed %d times in one round", code, n)
		}
	}
	if n, err := s.ClaimProbes(ctx, now, time.Minute, 30*time.Minute, 100, plan); err != nil || n != 0 {
		t.Errorf("a second round before the next probe time claimed %d (%v)", n, err)
	}
	if n, err := s.ClaimProbes(ctx, now.Add(2*time.Minute), time.Minute, 30*time.Minute, 100, plan); err != nil || n != 40 {
		t.Errorf("a round after the next probe time claimed %d (%v), want 40", n, err)
	}
	if b, _ := s.OutboxBacklog(ctx); b != 40 {
		t.Errorf("outbox holds %d probes, want 40 (one per attempt and round; the ids repeat per round)", b)
	}
}

// A message id (an Idempotency-Key) names the first body stored under
// it: the same body again is a retry, another body is refused with
// idempotency_key_reused, recorded once under an id of its own, and
// shown in its order's status; in one batch as across batches.
func TestPlanAttemptsRefusesAReusedMessageID(t *testing.T) {
	t.Parallel()
	s, url := openURL(t)
	ctx := context.Background()
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dec := decideNew(counter())
	first, retry := intent("k1", "A1", 1999), intent("k1", "A1", 1999)
	retry.Raw = []byte(`{ "currency": "USD", "amount": 1999, "order_id": "A1" }`) // the same value, spelt otherwise
	plans, err := s.PlanAttempts(ctx, []domain.PayIntent{first, intent("k1", "A1", 2500), retry, intent("k1", "B1", 1999)}, domain.Screen{}, dec)
	if err != nil {
		t.Fatal(err)
	}
	if plans[0].Rejected != "" || plans[0].Attempt.Code() != "T0001" {
		t.Fatalf("first = %+v", plans[0])
	}
	for _, i := range []int{1, 3} {
		p := plans[i]
		if !strings.HasPrefix(p.Rejected, "idempotency_key_reused: message id k1 was first used for another request (order A1") ||
			!strings.HasPrefix(p.Intent.MessageID, "k1/reused/") || p.Attempt.Code() != "" {
			t.Errorf("plan %d = %+v, want refused under k1/reused/…", i, p)
		}
	}
	if plans[1].Intent.MessageID == plans[3].Intent.MessageID {
		t.Errorf("two other bodies recorded under one id %s", plans[1].Intent.MessageID)
	}
	if plans[2].Rejected != "" || plans[2].Attempt.Code() != "T0001" {
		t.Errorf("the same body again = %+v, want the first plan", plans[2])
	}
	// Redelivered, in another batch: the same decisions, nothing minted
	// or recorded twice.
	again, err := s.PlanAttempts(ctx, []domain.PayIntent{intent("k1", "B1", 1999), intent("k1", "A1", 1999), intent("k1", "A1", 2500)}, domain.Screen{}, dec)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Intent.MessageID != plans[3].Intent.MessageID || again[0].Rejected != plans[3].Rejected || !again[0].Resumed {
		t.Errorf("redelivered refusal = %+v, want %+v resumed", again[0], plans[3])
	}
	if !again[1].Resumed || again[1].Attempt.Code() != "T0001" {
		t.Errorf("redelivered first = %+v", again[1])
	}
	if again[2].Intent.MessageID != plans[1].Intent.MessageID || !again[2].Resumed {
		t.Errorf("redelivered refusal = %+v, want %+v resumed", again[2], plans[1])
	}
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM pay_requests`); err != nil || n != 3 {
		t.Errorf("pay_requests rows = %d, %v; want 3 (the first, two refused)", n, err)
	}
	// B1 exists only through its refused request: its status is the
	// refusal. A1 shows its refused request beside its attempt.
	var rej *store.RejectedError
	if _, err := s.Payment(ctx, "B1"); !errors.As(err, &rej) || !strings.HasPrefix(rej.Reason, "idempotency_key_reused:") {
		t.Errorf("Payment(B1) = %v, want the refusal", err)
	}
	p, err := s.Payment(ctx, "A1")
	if err != nil || len(p.Attempts) != 1 || len(p.RejectedRequests) != 1 ||
		p.RejectedRequests[0].MessageID != plans[1].Intent.MessageID || p.RejectedRequests[0].Reason != plans[1].Rejected {
		t.Errorf("Payment(A1) = %+v, %v", p, err)
	}
}

// Two batches racing on one message id from two partitions (another
// order each): the first to commit wins, the other is run again and
// refused, whichever it is.
func TestPlanAttemptsReusedMessageIDAcrossTransactions(t *testing.T) {
	t.Parallel()
	s, ctx := open(t), context.Background()
	dec := decideNew(counter())
	start := make(chan struct{})
	plans := make([][]domain.AttemptPlan, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, order := range []string{"P1", "P2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			plans[i], errs[i] = s.PlanAttempts(ctx, []domain.PayIntent{intent("race", order, 700)}, domain.Screen{}, dec)
		}()
	}
	close(start)
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("errors: %v, %v", errs[0], errs[1])
	}
	won, lost := plans[0][0], plans[1][0]
	if won.Rejected != "" {
		won, lost = lost, won
	}
	if won.Rejected != "" || won.Attempt.Code() == "" || !strings.HasPrefix(lost.Rejected, "idempotency_key_reused: message id race was first used for another request (order "+won.Intent.OrderID) {
		t.Fatalf("plans = %+v and %+v, want one planned and one refused", won, lost)
	}
}
