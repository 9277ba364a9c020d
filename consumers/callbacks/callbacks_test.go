package callbacks

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/schemas"
)

// refundChannel is a channel whose webhooks are either a payment's
// ("pay:<code>") or a refund's ("refund:<ref>:<status>"), signed when the
// body does not start with "forged".
type refundChannel struct{ psp.Channel }

func (refundChannel) Name() string                   { return "rc" }
func (refundChannel) Capabilities() psp.Capabilities { return psp.Capabilities{RefundCallbacks: true} }

func (refundChannel) ParseCallback(cb domain.Callback) (domain.Notification, error) {
	code, ok := strings.CutPrefix(string(cb.Body), "pay:")
	if !ok {
		return domain.Notification{}, fmt.Errorf("not a payment: %w", psp.ErrUnsupported)
	}
	return domain.Notification{TransactionCode: code, Status: domain.PSPPending}, nil
}

func (refundChannel) ParseRefundCallback(cb domain.Callback) (psp.RefundResult, error) {
	body := string(cb.Body)
	if strings.HasPrefix(body, "forged") {
		return psp.RefundResult{}, fmt.Errorf("refund webhook: %w", psp.ErrBadSignature)
	}
	rest, ok := strings.CutPrefix(body, "refund:")
	if !ok {
		return psp.RefundResult{}, psp.ErrNotRefundCallback
	}
	ref, status, _ := strings.Cut(rest, ":")
	st := map[string]psp.RefundStatus{"succeeded": psp.RefundSucceeded, "failed": psp.RefundFailed}[status]
	return psp.RefundResult{RefundRef: ref, PSPReference: "psp-" + ref, Status: st}, nil
}

type channels map[string]psp.Channel

func (c channels) Channel(name string) (psp.Channel, bool) { ch, ok := c[name]; return ch, ok }

type fakeStore struct {
	attempts map[string]domain.Attempt // what Attempts knows
	payments []domain.Inbound
	notices  []domain.RefundNotice
	events   []domain.Event
}

func (s *fakeStore) Attempts(context.Context, []string) (map[string]domain.Attempt, error) {
	if s.attempts != nil {
		return s.attempts, nil
	}
	return map[string]domain.Attempt{}, nil
}

func (s *fakeStore) ApplyCallbacks(_ context.Context, in []domain.Inbound,
	_ func(domain.Order, domain.Attempt, domain.Inbound) (domain.Decision, []domain.Event, error), _ []psp.Exchange) ([]domain.Applied, error) {
	s.payments = append(s.payments, in...)
	out := make([]domain.Applied, len(in))
	for i, m := range in {
		out[i] = domain.Applied{MessageID: m.Callback.MessageID, Rejected: m.Refusal.String()}
	}
	return out, nil
}

// ApplyRefundCallbacks finishes every verified notice about refund
// "Rknown", pending at the PSP, as the real store would.
func (s *fakeStore) ApplyRefundCallbacks(_ context.Context, in []domain.RefundNotice,
	result func(domain.Refund) (domain.Event, error)) ([]domain.RefundNoticeApplied, error) {
	s.notices = append(s.notices, in...)
	out := make([]domain.RefundNoticeApplied, len(in))
	for i, m := range in {
		out[i] = domain.RefundNoticeApplied{MessageID: m.Callback.MessageID, Rejected: m.Refusal.String()}
		if m.Refusal.Refused() || m.RefundRef != "Rknown" {
			continue
		}
		r := domain.RestoreRefund(domain.RefundState{ID: "f1", Ref: "Rknown", OrderID: "A1", TransactionCode: "T1", Channel: "rc",
			Amount: domain.MustMoney(500, "USD"), Status: domain.RefundPendingAtPSP})
		nr, outcome, changed, err := r.NotifiedByPSP(m.Status, m.PSPReference)
		if err != nil {
			return nil, err
		}
		out[i].Outcome = outcome
		if changed {
			ev, err := result(nr)
			if err != nil {
				return nil, err
			}
			s.events = append(s.events, ev)
		}
	}
	return out, nil
}

func rawMessage(t *testing.T, id, channel, body string) kafka.Message {
	t.Helper()
	b, err := json.Marshal(schemas.RawCallback{ID: id, Channel: channel, Kind: "async", Method: "POST", Path: "/v1/callbacks/" + channel,
		Body: []byte(body), ReceivedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Topic: "cb", Offset: int64(len(id)), Value: b,
		Headers: []kafka.Header{{Key: schemas.HeaderID, Value: []byte(id)}}}
}

func TestRefundCallbacksGoToTheRefundStore(t *testing.T) {
	st := &fakeStore{}
	h := New(Config{}, st, channels{"rc": refundChannel{}}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	batch := []kafka.Message{
		rawMessage(t, "m1", "rc", "refund:Rknown:succeeded"),
		rawMessage(t, "m2", "rc", "pay:T9"),
		rawMessage(t, "m3", "rc", "forged refund"),
		rawMessage(t, "m4", "rc", "refund:Rknown:weird"),
		rawMessage(t, "m5", "rc", "refund::succeeded"),
	}
	rejects, err := h.Handle(context.Background(), batch)
	if err != nil || len(rejects) != 0 {
		t.Fatalf("Handle: %v, rejects %v", err, rejects)
	}
	if len(st.payments) != 1 || st.payments[0].Callback.MessageID != "m2" || st.payments[0].Notified == nil {
		t.Fatalf("payment callbacks: %+v", st.payments)
	}
	if len(st.notices) != 4 {
		t.Fatalf("refund callbacks: %+v", st.notices)
	}
	want := []struct {
		id, ref, pspRef string
		status          domain.PSPStatus
		rejected        bool
	}{
		{"m1", "Rknown", "psp-Rknown", domain.PSPSucceeded, false},
		{"m3", "", "", domain.PSPStatus{}, true},
		{"m4", "Rknown", "psp-Rknown", domain.PSPStatus{}, true},
		{"m5", "", "psp-", domain.PSPStatus{}, true},
	}
	for i, w := range want {
		n := st.notices[i]
		if n.Callback.MessageID != w.id || n.RefundRef != w.ref || n.PSPReference != w.pspRef || n.Status != w.status || n.Refusal.Refused() != w.rejected ||
			n.Callback.Channel != "rc" || len(n.Raw) == 0 {
			t.Errorf("notice %d: %+v, want %+v", i, n, w)
		}
	}
	if len(st.events) != 1 || st.events[0].ID != "refund_result/f1" || st.events[0].Topic != schemas.TopicRefundResults {
		t.Fatalf("events: %+v", st.events)
	}
	var res schemas.RefundResult
	if err := json.Unmarshal(st.events[0].Payload, &res); err != nil || res.Status != schemas.RefundSucceeded || res.PSPReference != "psp-Rknown" {
		t.Fatalf("result %+v: %v", res, err)
	}
}

func TestChannelWithoutRefundCallbacksParsesPaymentsOnly(t *testing.T) {
	st := &fakeStore{}
	type plain struct{ psp.Channel }                                  // the port's methods only
	ch := psp.Instrument(plain{refundChannel{}}, psp.NewMetrics(nil)) // hides nothing, adds nothing
	h := New(Config{}, st, channels{"rc": ch}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if _, err := h.Handle(context.Background(), []kafka.Message{rawMessage(t, "m1", "rc", "refund:Rknown:succeeded")}); err != nil {
		t.Fatal(err)
	}
	if len(st.notices) != 0 || len(st.payments) != 1 || !st.payments[0].Refusal.Refused() {
		t.Fatalf("notices %+v, payments %+v: want the payment parser to refuse it", st.notices, st.payments)
	}
}

func TestInstrumentedChannelKeepsItsRefundCallbacks(t *testing.T) {
	st := &fakeStore{}
	ch := psp.Instrument(refundChannel{}, psp.NewMetrics(nil))
	h := New(Config{}, st, channels{"rc": ch}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if _, err := h.Handle(context.Background(), []kafka.Message{rawMessage(t, "m1", "rc", "refund:Rknown:failed")}); err != nil {
		t.Fatal(err)
	}
	if len(st.notices) != 1 || st.notices[0].Status != domain.PSPFailed || len(st.events) != 1 {
		t.Fatalf("notices %+v, events %+v", st.notices, st.events)
	}
}

// notYetChannel cannot judge its callbacks until ready, as a PayPal
// channel whose signing certificate is still being fetched.
type notYetChannel struct {
	refundChannel
	ready *bool
}

func (c notYetChannel) ParseCallback(cb domain.Callback) (domain.Notification, error) {
	if !*c.ready {
		return domain.Notification{}, &psp.TemporaryError{Op: "paypal callback", Err: psp.ErrCertificateMissing}
	}
	return c.refundChannel.ParseCallback(cb)
}

func (notYetChannel) ParseRefundCallback(domain.Callback) (psp.RefundResult, error) {
	return psp.RefundResult{}, psp.ErrNotRefundCallback
}

// TestCallbackNotJudgedYetIsRetried: a callback its channel cannot verify
// yet (a temporary error) is neither stored as refused nor dead-lettered:
// the batch fails, not permanently, for the runner to retry it; once the
// channel can judge, it is verified.
func TestCallbackNotJudgedYetIsRetried(t *testing.T) {
	st := &fakeStore{}
	ready := false
	ch := psp.Instrument(notYetChannel{ready: &ready}, psp.NewMetrics(nil))
	h := New(Config{}, st, channels{"rc": ch}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	batch := []kafka.Message{rawMessage(t, "m1", "rc", "pay:T1"), rawMessage(t, "m2", "rc", "pay:T2")}
	rejects, err := h.Handle(context.Background(), batch)
	if err == nil || consumers.IsPermanent(err) || !psp.IsTemporary(err) || len(rejects) != 0 {
		t.Fatalf("not judged yet: rejects %v, %v; want a temporary batch error", rejects, err)
	}
	if len(st.payments) != 0 {
		t.Fatalf("stored before it could be verified: %+v", st.payments)
	}
	ready = true
	if rejects, err := h.Handle(context.Background(), batch); err != nil || len(rejects) != 0 {
		t.Fatalf("retry: rejects %v, %v", rejects, err)
	}
	if len(st.payments) != 2 || st.payments[0].Notified == nil || st.payments[0].Refusal.Refused() {
		t.Fatalf("after the retry: %+v", st.payments)
	}
}

// confirmChannel confirms its callbacks by query: a webhook "pay:<code>"
// says the payment succeeded; a query answers with the status its
// answers map holds for the code, and is counted.
type confirmChannel struct {
	psp.Channel
	answers map[string]domain.PSPStatus
	queries map[string]int
}

func (confirmChannel) Name() string                   { return "cc" }
func (confirmChannel) Capabilities() psp.Capabilities { return psp.Capabilities{ConfirmByQuery: true} }

func (confirmChannel) ParseCallback(cb domain.Callback) (domain.Notification, error) {
	code, _ := strings.CutPrefix(string(cb.Body), "pay:")
	return domain.Notification{TransactionCode: code, Status: domain.PSPSucceeded, PSPReference: "sp-" + code, Amount: domain.MustMoney(500, "USD")}, nil
}

func (c confirmChannel) Query(_ context.Context, code string) (domain.Notification, error) {
	c.queries[code]++
	return domain.Notification{TransactionCode: code, Status: c.answers[code], PSPReference: "sp-" + code, Amount: domain.MustMoney(500, "USD")}, nil
}

// A payment's browser return and webhook land in consecutive batches, and
// the second is prepared before the first's batch has paid the attempt:
// the success the PSP confirmed for the first is the second's answer too,
// without asking again. A success older than the batch before is asked
// about again, and so is an answer that is not a success.
func TestAConfirmedSuccessIsNotAskedAboutAgain(t *testing.T) {
	usd := domain.MustMoney(500, "USD")
	st := &fakeStore{attempts: map[string]domain.Attempt{
		"T1": domain.RestoreAttempt("T1", "A1", "cc", usd, domain.AttemptPending, "sp-T1", ""),
		"T2": domain.RestoreAttempt("T2", "A2", "cc", usd, domain.AttemptPending, "sp-T2", ""),
		"T3": domain.RestoreAttempt("T3", "A3", "cc", usd, domain.AttemptPending, "sp-T3", ""),
	}}
	ch := confirmChannel{answers: map[string]domain.PSPStatus{"T1": domain.PSPSucceeded, "T2": domain.PSPPending, "T3": domain.PSPSucceeded},
		queries: map[string]int{}}
	h := New(Config{}, st, channels{"cc": ch}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	ctx := context.Background()
	prepare := func(id, body string) consumers.Handler {
		return h.Prepare(ctx, []kafka.Message{rawMessage(t, id, "cc", body)})
	}
	returned := prepare("return-T1", "pay:T1")
	webhook := prepare("webhook-T1", "pay:T1") // before the return's batch is applied
	for _, finish := range []consumers.Handler{returned, webhook} {
		if _, err := finish(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if ch.queries["T1"] != 1 {
		t.Errorf("T1 asked about %d times; want once", ch.queries["T1"])
	}
	for _, p := range st.payments {
		if c := p.Confirmed; c == nil || c.Status != domain.PSPSucceeded || c.PSPReference != "sp-T1" {
			t.Errorf("%s confirmed as %+v; want the PSP's success", p.Callback.MessageID, c)
		}
	}
	prepare("a", "pay:T2")
	prepare("b", "pay:T2") // pending: asked again
	prepare("c", "pay:T3")
	prepare("d", "pay:T3")               // two batches after T1's success
	prepare("webhook-T1-late", "pay:T1") // asked again
	if ch.queries["T2"] != 2 || ch.queries["T3"] != 1 || ch.queries["T1"] != 2 {
		t.Errorf("queries %v; want T2 twice (pending is not final), T3 once, T1 again once its success is two batches old", ch.queries)
	}
}
