package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
)

// refundFixture is an order paid by T1 (1000 USD minor units on channel
// sim), with a duplicate paid attempt T2, a failed attempt T3, and an
// attempt T4 on a channel without partial refunds.
func refundFixture() (domain.Order, []domain.Attempt) {
	usd := domain.MustMoney(1000, "USD")
	o := domain.RestoreOrder("A1", usd, domain.OrderPaid, "T1")
	return o, []domain.Attempt{
		domain.RestoreAttempt("T1", "A1", "sim", usd, domain.AttemptPaid, "sp_1", ""),
		domain.RestoreAttempt("T2", "A1", "sim2", usd, domain.AttemptPaid, "sp_2", ""),
		domain.RestoreAttempt("T3", "A1", "sim", usd, domain.AttemptFailed, "", ""),
		domain.RestoreAttempt("T4", "A1", "whole", usd, domain.AttemptPaid, "sp_4", ""),
	}
}

var refundRules = domain.RefundRules{PartialRefund: func(ch string) (bool, bool) {
	switch ch {
	case "sim", "sim2":
		return true, true
	case "whole":
		return false, true
	}
	return false, false
}}

func refundOf(id, code string, minor int64, st domain.RefundStatus) domain.Refund {
	return domain.RestoreRefund(domain.RefundState{ID: id, Ref: "R" + id, OrderID: "A1", TransactionCode: code, Channel: "sim",
		Amount: domain.MustMoney(minor, "USD"), Status: st})
}

func TestDecideRefund(t *testing.T) {
	order, attempts := refundFixture()
	closed := domain.RestoreOrder("A1", domain.MustMoney(1000, "USD"), domain.OrderClosed, "")
	intent := func(code string, minor int64, cur string) domain.RefundIntent {
		return domain.RefundIntent{RefundID: "f-1", OrderID: "A1", TransactionCode: code, Amount: domain.MustMoney(minor, cur), Reason: "customer"}
	}
	tests := []struct {
		name     string
		in       domain.RefundIntent
		order    *domain.Order
		existing []domain.Refund
		wantErr  error
		wantCode string
		wantMsg  string
	}{
		{name: "full refund of the paid attempt", in: intent("", 1000, "USD"), order: &order, wantCode: "T1"},
		{name: "named paid attempt", in: intent("T1", 1, "USD"), order: &order, wantCode: "T1"},
		{name: "partial", in: intent("", 999, "USD"), order: &order, wantCode: "T1"},
		{name: "over-refund by one minor unit", in: intent("", 1001, "USD"), order: &order, wantErr: domain.ErrRefundExceedsCapture,
			wantCode: "T1", wantMsg: "10.00 USD is left"},
		{name: "cumulative partials past the capture", in: intent("", 301, "USD"), order: &order, wantErr: domain.ErrRefundExceedsCapture,
			existing: []domain.Refund{refundOf("a", "T1", 500, domain.RefundSucceeded), refundOf("b", "T1", 200, domain.RefundPendingAtPSP)},
			wantCode: "T1", wantMsg: "7.00 USD is refunded or in progress, 3.00 USD is left"},
		{name: "cumulative partials up to the capture", in: intent("", 300, "USD"), order: &order, wantCode: "T1",
			existing: []domain.Refund{refundOf("a", "T1", 500, domain.RefundSucceeded), refundOf("b", "T1", 200, domain.RefundQueued)}},
		{name: "queued and calling refunds count", in: intent("", 1, "USD"), order: &order, wantErr: domain.ErrRefundExceedsCapture,
			existing: []domain.Refund{refundOf("a", "T1", 500, domain.RefundQueued), refundOf("b", "T1", 500, domain.RefundCalling)}, wantCode: "T1"},
		{name: "failed refunds do not count", in: intent("", 1000, "USD"), order: &order, wantCode: "T1",
			existing: []domain.Refund{refundOf("a", "T1", 1000, domain.RefundFailed)}},
		{name: "refunds of another attempt do not count", in: intent("", 1000, "USD"), order: &order, wantCode: "T1",
			existing: []domain.Refund{refundOf("a", "T2", 1000, domain.RefundSucceeded)}},
		{name: "duplicate payment's attempt", in: intent("T2", 1000, "USD"), order: &order, wantCode: "T2"},
		{name: "late payment of a closed order", in: intent("T2", 1000, "USD"), order: &closed, wantCode: "T2"},
		{name: "closed order without attempt named", in: intent("", 1000, "USD"), order: &closed, wantErr: domain.ErrNotCaptured},
		{name: "unknown order", in: intent("", 1000, "USD"), wantErr: domain.ErrUnknownOrder},
		{name: "unknown attempt", in: intent("T9", 1000, "USD"), order: &order, wantErr: domain.ErrUnknownAttempt},
		{name: "failed attempt", in: intent("T3", 1000, "USD"), order: &order, wantErr: domain.ErrNotCaptured, wantCode: "T3"},
		{name: "currency mismatch", in: intent("", 1000, "EUR"), order: &order, wantErr: domain.ErrCurrencyMismatch, wantCode: "T1"},
		{name: "zero amount", in: intent("", 0, "USD"), order: &order, wantErr: domain.ErrNonPositive},
		{name: "bad refund id", in: domain.RefundIntent{RefundID: "-x", OrderID: "A1", Amount: domain.MustMoney(1, "USD")}, order: &order,
			wantErr: domain.ErrInvalidRefundID},
		{name: "partial without the capability", in: intent("T4", 999, "USD"), order: &order, wantErr: domain.ErrPartialRefundUnsupported, wantCode: "T4"},
		{name: "whole without the capability", in: intent("T4", 1000, "USD"), order: &order, wantCode: "T4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := domain.DecideRefund(tt.in, tt.order, attempts, tt.existing, refundRules, "RREF")
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if r.TransactionCode() != tt.wantCode && tt.wantCode != "" {
				t.Errorf("attempt = %q, want %q", r.TransactionCode(), tt.wantCode)
			}
			if err != nil {
				if r.Status() != domain.RefundFailed || r.ErrorText() != err.Error() || r.Ref() != "" {
					t.Errorf("rejected refund = %+v", r.State())
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("error %q does not say %q", err, tt.wantMsg)
				}
				return
			}
			if r.Status() != domain.RefundQueued || r.Ref() != "RREF" || r.ID() != "f-1" || r.CallStatus() != domain.CallNone {
				t.Errorf("queued refund = %+v", r.State())
			}
		})
	}
}

func TestDecideRefundUnconfiguredChannel(t *testing.T) {
	order, attempts := refundFixture()
	rules := domain.RefundRules{PartialRefund: func(string) (bool, bool) { return false, false }}
	in := domain.RefundIntent{RefundID: "f", OrderID: "A1", Amount: domain.MustMoney(1000, "USD")}
	if _, err := domain.DecideRefund(in, &order, attempts, nil, rules, "R"); !errors.Is(err, domain.ErrChannelNotConfigured) {
		t.Fatalf("err = %v", err)
	}
}

// TestRefundTransitions walks every refund state through every
// transition and checks the whole table.
func TestRefundTransitions(t *testing.T) {
	all := []domain.RefundStatus{domain.RefundQueued, domain.RefundCalling, domain.RefundPendingAtPSP, domain.RefundSucceeded, domain.RefundFailed}
	type result struct {
		to   domain.RefundStatus
		call domain.CallStatus
	}
	ok := func(to domain.RefundStatus, call domain.CallStatus) *result { return &result{to, call} }
	trans := []struct {
		name string
		do   func(domain.Refund) (domain.Refund, error)
		want map[domain.RefundStatus]*result // nil: refused
	}{
		{"start", domain.Refund.Start, map[domain.RefundStatus]*result{domain.RefundQueued: ok(domain.RefundCalling, domain.CallNone)}},
		{"answered pending", func(r domain.Refund) (domain.Refund, error) { return r.Answered(domain.PSPPending, "sr_1", "") },
			map[domain.RefundStatus]*result{domain.RefundCalling: ok(domain.RefundPendingAtPSP, domain.CallOK), domain.RefundPendingAtPSP: ok(domain.RefundPendingAtPSP, domain.CallOK)}},
		{"answered succeeded", func(r domain.Refund) (domain.Refund, error) { return r.Answered(domain.PSPSucceeded, "sr_1", "") },
			map[domain.RefundStatus]*result{domain.RefundCalling: ok(domain.RefundSucceeded, domain.CallOK), domain.RefundPendingAtPSP: ok(domain.RefundSucceeded, domain.CallOK)}},
		{"answered failed", func(r domain.Refund) (domain.Refund, error) { return r.Answered(domain.PSPFailed, "sr_1", "") },
			map[domain.RefundStatus]*result{domain.RefundCalling: ok(domain.RefundFailed, domain.CallOK), domain.RefundPendingAtPSP: ok(domain.RefundFailed, domain.CallOK)}},
		{"answered unknown", func(r domain.Refund) (domain.Refund, error) { return r.Answered(domain.PSPUnknown, "", "") }, nil},
		{"call failed", func(r domain.Refund) (domain.Refund, error) { return r.CallFailed("declined") },
			map[domain.RefundStatus]*result{domain.RefundCalling: ok(domain.RefundFailed, domain.CallFailed)}},
		{"call unknown", func(r domain.Refund) (domain.Refund, error) { return r.CallUnknown("timeout") },
			map[domain.RefundStatus]*result{domain.RefundCalling: ok(domain.RefundCalling, domain.CallUnknown)}},
	}
	for _, tr := range trans {
		for _, from := range all {
			r := refundOf("x", "T1", 100, from)
			got, err := tr.do(r)
			want := tr.want[from]
			if want == nil {
				if !errors.Is(err, domain.ErrBadTransition) {
					t.Errorf("%s from %s: err = %v, want ErrBadTransition", tr.name, from, err)
				}
				if got.Status() != from {
					t.Errorf("%s from %s: refused transition changed the state to %s", tr.name, from, got.Status())
				}
				continue
			}
			if err != nil || got.Status() != want.to || got.CallStatus() != want.call {
				t.Errorf("%s from %s = %s/%s, %v; want %s/%s", tr.name, from, got.Status(), got.CallStatus(), err, want.to, want.call)
			}
		}
	}
	for _, st := range all {
		if st.IsFinal() != (st == domain.RefundSucceeded || st == domain.RefundFailed) {
			t.Errorf("%s.IsFinal() = %v", st, st.IsFinal())
		}
		if st.InFlight() != (st == domain.RefundCalling || st == domain.RefundPendingAtPSP) {
			t.Errorf("%s.InFlight() = %v", st, st.InFlight())
		}
		if p, err := domain.ParseRefundStatus(st.String()); err != nil || p != st {
			t.Errorf("ParseRefundStatus(%q) = %v, %v", st, p, err)
		}
	}
	if _, err := domain.ParseRefundStatus("refunded"); err == nil {
		t.Error("ParseRefundStatus accepted refunded")
	}
	r, _ := refundOf("x", "T1", 100, domain.RefundCalling).Answered(domain.PSPFailed, "sr_9", "")
	if r.ErrorText() == "" || r.PSPReference() != "sr_9" {
		t.Errorf("failed at PSP: error %q, psp ref %q", r.ErrorText(), r.PSPReference())
	}
}

func TestOrderApplyRefunds(t *testing.T) {
	order, attempts := refundFixture()
	usd := func(m int64) domain.Money { return domain.MustMoney(m, "USD") }
	partial := domain.RestoreOrder("A1", usd(1000), domain.OrderPartiallyRefunded, "T1")
	refunded := domain.RestoreOrder("A1", usd(1000), domain.OrderRefunded, "T1")
	pending := domain.RestoreOrder("A1", usd(1000), domain.OrderPending, "")
	tests := []struct {
		name    string
		o       domain.Order
		a       domain.Attempt
		total   domain.Money
		want    domain.OrderStatus
		wantErr error
	}{
		{"part of the paying attempt", order, attempts[0], usd(1), domain.OrderPartiallyRefunded, nil},
		{"all of the paying attempt", order, attempts[0], usd(1000), domain.OrderRefunded, nil},
		{"the rest after a partial", partial, attempts[0], usd(1000), domain.OrderRefunded, nil},
		{"another partial", partial, attempts[0], usd(600), domain.OrderPartiallyRefunded, nil},
		{"nothing refunded (the refund failed)", order, attempts[0], usd(0), domain.OrderPaid, nil},
		{"duplicate attempt leaves the order paid", order, attempts[1], usd(1000), domain.OrderPaid, nil},
		{"more than captured", order, attempts[0], usd(1001), domain.OrderPaid, domain.ErrRefundExceedsCapture},
		{"refunded cannot go back", refunded, attempts[0], usd(10), domain.OrderRefunded, domain.ErrBadTransition},
		{"other currency", order, attempts[0], domain.MustMoney(10, "EUR"), domain.OrderPaid, domain.ErrCurrencyMismatch},
		{"unpaid order, other attempt", pending, attempts[0], usd(10), domain.OrderPending, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.o.ApplyRefunds(tt.a, tt.total)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got.Status() != tt.want {
				t.Errorf("status = %s, want %s", got.Status(), tt.want)
			}
		})
	}
}

func TestNewRefundRef(t *testing.T) {
	seen := map[string]bool{}
	at := time.Date(2026, 11, 25, 10, 0, 0, 123e6, time.UTC)
	for range 1000 {
		r := domain.NewRefundRef(at)
		if len(r) != 24 || !strings.HasPrefix(r, "R261125100000123") || seen[r] {
			t.Fatalf("ref %q (len %d, seen %v)", r, len(r), seen[r])
		}
		seen[r] = true
	}
}

func TestValidRefundID(t *testing.T) {
	good := []string{"f-1", "dup-T261125100000123ABCDEFGH-sp_0123456789abcdef01234567", strings.Repeat("a", 128)}
	bad := []string{"", "-a", "a b", strings.Repeat("a", 129), "a/b"}
	for _, id := range good {
		if err := domain.ValidRefundID(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
	for _, id := range bad {
		if err := domain.ValidRefundID(id); !errors.Is(err, domain.ErrInvalidRefundID) {
			t.Errorf("%q: err = %v", id, err)
		}
	}
}

func TestRefundNotifiedByPSP(t *testing.T) {
	tests := []struct {
		name    string
		from    domain.RefundStatus
		status  domain.PSPStatus
		want    domain.RefundStatus
		outcome string
		changed bool
		err     bool
	}{
		{"pending at PSP, succeeded", domain.RefundPendingAtPSP, domain.PSPSucceeded, domain.RefundSucceeded, domain.RefundNoticeSucceeded, true, false},
		{"pending at PSP, failed", domain.RefundPendingAtPSP, domain.PSPFailed, domain.RefundFailed, domain.RefundNoticeFailed, true, false},
		{"calling (unknown outcome), succeeded", domain.RefundCalling, domain.PSPSucceeded, domain.RefundSucceeded, domain.RefundNoticeSucceeded, true, false},
		{"pending stays pending", domain.RefundPendingAtPSP, domain.PSPPending, domain.RefundPendingAtPSP, domain.RefundNoticePending, false, false},
		{"calling stays calling on pending", domain.RefundCalling, domain.PSPPending, domain.RefundCalling, domain.RefundNoticePending, false, false},
		{"repeated success", domain.RefundSucceeded, domain.PSPSucceeded, domain.RefundSucceeded, domain.RefundNoticeRepeated, false, false},
		{"repeated failure", domain.RefundFailed, domain.PSPFailed, domain.RefundFailed, domain.RefundNoticeRepeated, false, false},
		{"contradicts success", domain.RefundSucceeded, domain.PSPFailed, domain.RefundSucceeded, "", false, true},
		{"contradicts failure", domain.RefundFailed, domain.PSPSucceeded, domain.RefundFailed, "", false, true},
		{"queued", domain.RefundQueued, domain.PSPSucceeded, domain.RefundQueued, "", false, true},
		{"unknown is no statement", domain.RefundPendingAtPSP, domain.PSPUnknown, domain.RefundPendingAtPSP, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := refundOf("F1", "T1", 500, tt.from)
			got, outcome, changed, err := r.NotifiedByPSP(tt.status, "psp_refund_1")
			if tt.err {
				if !errors.Is(err, domain.ErrBadTransition) {
					t.Fatalf("err = %v, want ErrBadTransition", err)
				}
			} else if err != nil {
				t.Fatalf("NotifiedByPSP: %v", err)
			}
			if got.Status() != tt.want || outcome != tt.outcome || changed != tt.changed {
				t.Fatalf("got %s, %q, changed %v; want %s, %q, %v", got.Status(), outcome, changed, tt.want, tt.outcome, tt.changed)
			}
			if changed && (got.PSPReference() != "psp_refund_1" || got.CallStatus() != domain.CallOK) {
				t.Fatalf("final refund: PSP reference %q, call %q", got.PSPReference(), got.CallStatus())
			}
		})
	}
}
