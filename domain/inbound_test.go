package domain_test

import (
	"testing"

	"github.com/paygate/paygate/domain"
)

// TestDecideInbound: what the PSP confirmed wins over what the callback
// said; a message that says nothing leaves everything pending; a probe
// marked ExpireIfUnpaid that finds nothing final expires an open attempt.
func TestDecideInbound(t *testing.T) {
	t.Parallel()
	ok := cbNote(cbCodeA, domain.PSPSucceeded, "psp-1", cbPrice)
	failed := cbNote(cbCodeA, domain.PSPFailed, "psp-1", cbPrice)
	pending := cbNote(cbCodeA, domain.PSPPending, "", cbPrice)
	tests := []struct {
		name    string
		a       domain.Attempt
		in      domain.Inbound
		outcome domain.Outcome
		status  domain.AttemptStatus
	}{
		{"says nothing", cbAttempt(cbCodeA, domain.AttemptPending, ""), domain.Inbound{Refusal: domain.Refuse("bad signature")},
			domain.OutcomeStillPending, domain.AttemptPending},
		{"notified success", cbAttempt(cbCodeA, domain.AttemptPending, ""), domain.Inbound{Notified: &ok},
			domain.OutcomePaid, domain.AttemptPaid},
		{"confirmed failure wins over a notified success", cbAttempt(cbCodeA, domain.AttemptPending, ""),
			domain.Inbound{Notified: &ok, Confirmed: &failed}, domain.OutcomeFailed, domain.AttemptFailed},
		{"pending probe, not to expire", cbAttempt(cbCodeA, domain.AttemptPending, ""), domain.Inbound{Confirmed: &pending},
			domain.OutcomeStillPending, domain.AttemptPending},
		{"pending probe past expiry", cbAttempt(cbCodeA, domain.AttemptPending, ""),
			domain.Inbound{Confirmed: &pending, Callback: domain.Callback{ExpireIfUnpaid: true}}, domain.OutcomeExpired, domain.AttemptExpired},
		{"success probe past expiry pays", cbAttempt(cbCodeA, domain.AttemptPending, ""),
			domain.Inbound{Confirmed: &ok, Callback: domain.Callback{ExpireIfUnpaid: true}}, domain.OutcomePaid, domain.AttemptPaid},
		{"expiry leaves a failed attempt", cbAttempt(cbCodeA, domain.AttemptFailed, ""),
			domain.Inbound{Confirmed: &pending, Callback: domain.Callback{ExpireIfUnpaid: true}}, domain.OutcomeStillPending, domain.AttemptFailed},
	}
	for _, tc := range tests {
		d, err := domain.DecideInbound(cbOrder(domain.OrderPending, ""), tc.a, tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if d.Outcome != tc.outcome || d.Attempt.Status() != tc.status {
			t.Errorf("%s: %v, attempt %v; want %v, %v", tc.name, d.Outcome, d.Attempt.Status(), tc.outcome, tc.status)
		}
	}
}

func TestParseCallbackKind(t *testing.T) {
	t.Parallel()
	for _, want := range []domain.CallbackKind{domain.CallbackAsync, domain.CallbackSync, domain.CallbackStatusProbe} {
		if got, err := domain.ParseCallbackKind(want.String()); err != nil || got != want {
			t.Errorf("ParseCallbackKind(%q) = %v, %v", want, got, err)
		}
	}
	for _, s := range []string{"", "Async", "probe", "webhook"} {
		if k, err := domain.ParseCallbackKind(s); err == nil {
			t.Errorf("ParseCallbackKind(%q) = %v, want an error", s, k)
		}
	}
}

// TestRefusal: the zero Refusal refuses nothing; a refusal keeps its
// reason as stored, and one without a reason still refuses.
func TestRefusal(t *testing.T) {
	t.Parallel()
	var none domain.Refusal
	if none.Refused() || none.String() != "" {
		t.Errorf("zero Refusal: refused %v, %q", none.Refused(), none)
	}
	if r := domain.Refuse("malformed query: bad"); !r.Refused() || r.String() != "malformed query: bad" {
		t.Errorf("Refuse: refused %v, %q", r.Refused(), r)
	}
	if r := domain.Refuse(""); !r.Refused() || r.String() == "" {
		t.Errorf(`Refuse(""): refused %v, %q`, r.Refused(), r)
	}
}
