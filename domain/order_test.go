package domain_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
)

var (
	allOrderStatuses = []domain.OrderStatus{
		domain.OrderPending, domain.OrderPaid, domain.OrderPartiallyRefunded, domain.OrderRefunded, domain.OrderClosed,
	}
	allAttemptStatuses = []domain.AttemptStatus{
		domain.AttemptCreated, domain.AttemptPending, domain.AttemptPaid, domain.AttemptFailed, domain.AttemptExpired,
	}
)

func TestParseOrderStatus(t *testing.T) {
	for _, want := range allOrderStatuses {
		got, err := domain.ParseOrderStatus(want.String())
		if err != nil || got != want {
			t.Errorf("ParseOrderStatus(%q) = %v, %v; want %v", want.String(), got, err, want)
		}
	}
	for _, s := range []string{"", "PAID", "Paid", "paid ", "cancelled", "expired"} {
		if _, err := domain.ParseOrderStatus(s); err == nil {
			t.Errorf("ParseOrderStatus(%q): no error", s)
		}
	}
	wantNames := []string{"pending", "paid", "partially_refunded", "refunded", "closed"}
	for i, st := range allOrderStatuses {
		if st.String() != wantNames[i] {
			t.Errorf("order status %d String() = %q, want %q", i, st.String(), wantNames[i])
		}
	}
}

func TestOrderStatusIsPaid(t *testing.T) {
	want := map[domain.OrderStatus]bool{
		domain.OrderPending:           false,
		domain.OrderPaid:              true,
		domain.OrderPartiallyRefunded: true,
		domain.OrderRefunded:          true,
		domain.OrderClosed:            false,
	}
	for _, st := range allOrderStatuses {
		if got := st.IsPaid(); got != want[st] {
			t.Errorf("%v.IsPaid() = %v, want %v", st, got, want[st])
		}
	}
}

func TestParseAttemptStatus(t *testing.T) {
	wantNames := []string{"created", "pending", "paid", "failed", "expired"}
	for i, want := range allAttemptStatuses {
		if want.String() != wantNames[i] {
			t.Errorf("attempt status %d String() = %q, want %q", i, want.String(), wantNames[i])
		}
		got, err := domain.ParseAttemptStatus(wantNames[i])
		if err != nil || got != want {
			t.Errorf("ParseAttemptStatus(%q) = %v, %v; want %v", wantNames[i], got, err, want)
		}
	}
	for _, s := range []string{"", "PAID", "succeeded", "closed", "refunded"} {
		if _, err := domain.ParseAttemptStatus(s); err == nil {
			t.Errorf("ParseAttemptStatus(%q): no error", s)
		}
	}
}

func TestAttemptStatusIsFinal(t *testing.T) {
	want := map[domain.AttemptStatus]bool{
		domain.AttemptCreated: false,
		domain.AttemptPending: false,
		domain.AttemptPaid:    true,
		domain.AttemptFailed:  true,
		domain.AttemptExpired: true,
	}
	for _, st := range allAttemptStatuses {
		if got := st.IsFinal(); got != want[st] {
			t.Errorf("%v.IsFinal() = %v, want %v", st, got, want[st])
		}
	}
}

// TestAttemptCanBecome checks all 25 (from, to) pairs against the state
// machine of DESIGN.md §6, written out here rather than read from the code:
// created → pending → (paid | failed | expired); created may end directly
// (a refused Initiate fails it, a success can beat the "started" record);
// a late success turns failed or expired into paid; paid is terminal; no
// state becomes itself.
func TestAttemptCanBecome(t *testing.T) {
	const (
		C = "created"
		P = "pending"
		D = "paid"
		F = "failed"
		E = "expired"
	)
	allowed := map[[2]string]bool{
		{C, C}: false, {C, P}: true, {C, D}: true, {C, F}: true, {C, E}: true,
		{P, C}: false, {P, P}: false, {P, D}: true, {P, F}: true, {P, E}: true,
		{D, C}: false, {D, P}: false, {D, D}: false, {D, F}: false, {D, E}: false,
		{F, C}: false, {F, P}: false, {F, D}: true, {F, F}: false, {F, E}: false,
		{E, C}: false, {E, P}: false, {E, D}: true, {E, F}: false, {E, E}: false,
	}
	if len(allowed) != 25 {
		t.Fatalf("table has %d pairs, want 25", len(allowed))
	}
	for _, from := range allAttemptStatuses {
		for _, to := range allAttemptStatuses {
			want, ok := allowed[[2]string{from.String(), to.String()}]
			if !ok {
				t.Fatalf("pair %v → %v missing from the table", from, to)
			}
			if got := from.CanBecome(to); got != want {
				t.Errorf("%v.CanBecome(%v) = %v, want %v", from, to, got, want)
			}
		}
	}
	var zero domain.AttemptStatus
	for _, st := range allAttemptStatuses {
		if zero.CanBecome(st) {
			t.Errorf("zero AttemptStatus.CanBecome(%v) = true, want false", st)
		}
		if st.CanBecome(zero) {
			t.Errorf("%v.CanBecome(zero) = true, want false", st)
		}
	}
}

func TestAttemptMethods(t *testing.T) {
	amt := domain.MustMoney(1999, "USD")
	type op func(domain.Attempt) (domain.Attempt, error)
	ops := map[string]op{
		"Started":        func(a domain.Attempt) (domain.Attempt, error) { return a.Started("psp-1") },
		"InitiateFailed": func(a domain.Attempt) (domain.Attempt, error) { return a.InitiateFailed() },
		"Expire":         func(a domain.Attempt) (domain.Attempt, error) { return a.Expire() },
	}
	tests := []struct {
		op   string
		from domain.AttemptStatus
		want domain.AttemptStatus // zero: refused with ErrBadTransition
	}{
		{"Started", domain.AttemptCreated, domain.AttemptPending},
		{"Started", domain.AttemptPending, domain.AttemptStatus{}},
		{"Started", domain.AttemptPaid, domain.AttemptStatus{}},
		{"Started", domain.AttemptFailed, domain.AttemptStatus{}},
		{"Started", domain.AttemptExpired, domain.AttemptStatus{}},
		{"InitiateFailed", domain.AttemptCreated, domain.AttemptFailed},
		{"InitiateFailed", domain.AttemptPending, domain.AttemptFailed},
		{"InitiateFailed", domain.AttemptPaid, domain.AttemptStatus{}},
		{"InitiateFailed", domain.AttemptFailed, domain.AttemptStatus{}},
		{"InitiateFailed", domain.AttemptExpired, domain.AttemptStatus{}},
		{"Expire", domain.AttemptCreated, domain.AttemptExpired},
		{"Expire", domain.AttemptPending, domain.AttemptExpired},
		{"Expire", domain.AttemptPaid, domain.AttemptStatus{}},
		{"Expire", domain.AttemptFailed, domain.AttemptStatus{}},
		{"Expire", domain.AttemptExpired, domain.AttemptStatus{}},
	}
	for _, tt := range tests {
		a := domain.RestoreAttempt("T1", "A1", "sim", amt, tt.from, "", "")
		got, err := ops[tt.op](a)
		if tt.want == (domain.AttemptStatus{}) {
			if !errors.Is(err, domain.ErrBadTransition) {
				t.Errorf("%s from %v: error = %v, want ErrBadTransition", tt.op, tt.from, err)
			}
			if got != a {
				t.Errorf("%s from %v: refused but attempt changed to %+v", tt.op, tt.from, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s from %v: unexpected error %v", tt.op, tt.from, err)
			continue
		}
		if got.Status() != tt.want {
			t.Errorf("%s from %v: status %v, want %v", tt.op, tt.from, got.Status(), tt.want)
		}
	}

	a, _ := domain.RestoreAttempt("T1", "A1", "sim", amt, domain.AttemptCreated, "", "").Started("psp-9")
	if got := a.PSPReference(); got != "psp-9" {
		t.Errorf("Started(psp-9).PSPReference() = %q", got)
	}
	a, _ = domain.RestoreAttempt("T1", "A1", "sim", amt, domain.AttemptCreated, "old", "").Started("")
	if got := a.PSPReference(); got != "old" {
		t.Errorf("Started(\"\") dropped the known PSP reference: %q", got)
	}
}

func TestNewAttempt(t *testing.T) {
	usd := domain.MustMoney(1999, "USD")
	tests := []struct {
		name                   string
		code, orderID, channel string
		amount                 domain.Money
		wantErr                bool
		wantSentinel           error
	}{
		{"ok", "T1", "A1001", "sim", usd, false, nil},
		{"empty code", "", "A1001", "sim", usd, true, nil},
		{"empty channel", "T1", "A1001", "", usd, true, nil},
		{"bad order id", "T1", "-A", "sim", usd, true, domain.ErrInvalidOrderID},
		{"zero amount", "T1", "A1001", "sim", domain.MustMoney(0, "USD"), true, domain.ErrNonPositive},
		{"no money", "T1", "A1001", "sim", domain.Money{}, true, domain.ErrNonPositive},
	}
	for _, tt := range tests {
		a, err := domain.NewAttempt(tt.code, tt.orderID, tt.channel, tt.amount)
		if tt.wantErr {
			if err == nil {
				t.Errorf("%s: NewAttempt: no error", tt.name)
			} else if tt.wantSentinel != nil && !errors.Is(err, tt.wantSentinel) {
				t.Errorf("%s: NewAttempt error = %v, want %v", tt.name, err, tt.wantSentinel)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: NewAttempt: %v", tt.name, err)
			continue
		}
		if a.Code() != tt.code || a.OrderID() != tt.orderID || a.Channel() != tt.channel || a.Amount() != tt.amount ||
			a.Status() != domain.AttemptCreated || a.PSPReference() != "" || a.Review() != "" {
			t.Errorf("%s: NewAttempt = %+v", tt.name, a)
		}
	}
}

func TestNewOrder(t *testing.T) {
	usd := domain.MustMoney(1999, "USD")
	o, err := domain.NewOrder("A1001", usd)
	if err != nil {
		t.Fatalf("NewOrder: %v", err)
	}
	if o.ID() != "A1001" || o.Amount() != usd || o.Status() != domain.OrderPending || o.PaidAttempt() != "" {
		t.Errorf("NewOrder = %+v", o)
	}
	for _, tt := range []struct {
		id     string
		amount domain.Money
		want   error
	}{
		{"", usd, domain.ErrInvalidOrderID},
		{"A 1", usd, domain.ErrInvalidOrderID},
		{"A1", domain.MustMoney(0, "USD"), domain.ErrNonPositive},
		{"A1", domain.Money{}, domain.ErrNonPositive},
	} {
		if _, err := domain.NewOrder(tt.id, tt.amount); !errors.Is(err, tt.want) {
			t.Errorf("NewOrder(%q, %v) error = %v, want %v", tt.id, tt.amount, err, tt.want)
		}
	}
}

func TestValidOrderID(t *testing.T) {
	ok := []string{
		"A", "1", "A1001", "a.b_c:d-e", "order-2026-11-25", "9_", "Z:", "x.",
		strings.Repeat("a", 64),
		"A" + strings.Repeat("-", 63),
	}
	for _, id := range ok {
		if err := domain.ValidOrderID(id); err != nil {
			t.Errorf("ValidOrderID(%q) = %v, want nil", id, err)
		}
	}
	refused := []string{
		"",
		strings.Repeat("a", 65),
		"-A1", ".A1", "_A1", ":A1",
		"A 1", " A1", "A1 ", "A1\n", "\nA1", "A1\x00",
		"A/1", "A?1", "A#1", "A%1", "A+1", "A@1", "A,1", "A\\1", "A\"1", "A'1",
		"Aé1", "é", "订单1", "A\u200b1", "Ａ1", "A٣",
	}
	for _, id := range refused {
		if err := domain.ValidOrderID(id); !errors.Is(err, domain.ErrInvalidOrderID) {
			t.Errorf("ValidOrderID(%q) = %v, want ErrInvalidOrderID", id, err)
		}
	}
}

func TestOrderAcceptPayRequest(t *testing.T) {
	usd := domain.MustMoney(1999, "USD")
	tests := []struct {
		status  domain.OrderStatus
		amount  domain.Money
		wantErr error
	}{
		{domain.OrderPending, usd, nil},
		{domain.OrderPaid, usd, domain.ErrAlreadyPaid},
		{domain.OrderPartiallyRefunded, usd, domain.ErrAlreadyPaid},
		{domain.OrderRefunded, usd, domain.ErrAlreadyPaid},
		{domain.OrderClosed, usd, domain.ErrOrderClosed},
	}
	// Another amount, another currency with the same digits, the same
	// value in another exponent, or no amount: a conflict whatever the status.
	conflicts := []domain.Money{
		domain.MustMoney(2000, "USD"),
		domain.MustMoney(1998, "USD"),
		domain.MustMoney(0, "USD"),
		domain.MustMoney(1999, "EUR"),
		domain.MustMoney(19990, "KWD"),
		{},
	}
	for _, st := range allOrderStatuses {
		for _, c := range conflicts {
			tests = append(tests, struct {
				status  domain.OrderStatus
				amount  domain.Money
				wantErr error
			}{st, c, domain.ErrAmountConflict})
		}
	}
	for _, tt := range tests {
		o := domain.RestoreOrder("A1001", usd, tt.status, "")
		err := o.AcceptPayRequest(tt.amount)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("order %v of %v: AcceptPayRequest(%v) = %v, want %v", tt.status, usd, tt.amount, err, tt.wantErr)
		}
		for _, other := range []error{domain.ErrAmountConflict, domain.ErrAlreadyPaid, domain.ErrOrderClosed} {
			if other != tt.wantErr && errors.Is(err, other) {
				t.Errorf("order %v: AcceptPayRequest(%v) = %v, also matches %v", tt.status, tt.amount, err, other)
			}
		}
	}
}

func TestOrderClose(t *testing.T) {
	usd := domain.MustMoney(1999, "USD")
	for _, st := range allOrderStatuses {
		paid := ""
		if st.IsPaid() {
			paid = "T1"
		}
		o := domain.RestoreOrder("A1001", usd, st, paid)
		got, err := o.Close()
		if st == domain.OrderPending {
			if err != nil {
				t.Errorf("Close from %v: %v", st, err)
			}
			if got.Status() != domain.OrderClosed || got.ID() != o.ID() || got.Amount() != usd || got.PaidAttempt() != "" {
				t.Errorf("Close from %v = %+v", st, got)
			}
			if o.Status() != domain.OrderPending {
				t.Errorf("Close mutated its receiver: %v", o.Status())
			}
			continue
		}
		if !errors.Is(err, domain.ErrBadTransition) {
			t.Errorf("Close from %v: error = %v, want ErrBadTransition", st, err)
		}
		if got != o {
			t.Errorf("Close from %v: refused but returned %+v", st, got)
		}
	}
}

var transactionCodePattern = regexp.MustCompile(`^T[0-9]{15}[A-Z0-9]{8}$`)

func TestNewTransactionCodeFormat(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 4, 5, 678_900_000, time.UTC)
	for i := 0; i < 1000; i++ {
		c := domain.NewTransactionCode(now)
		if len(c) != 24 {
			t.Fatalf("NewTransactionCode = %q, %d characters, want 24", c, len(c))
		}
		if !transactionCodePattern.MatchString(c) {
			t.Fatalf("NewTransactionCode = %q, want T, 15 digits, 8 of [A-Z0-9]", c)
		}
		if got, want := c[1:16], "261125100405678"; got != want {
			t.Fatalf("NewTransactionCode(%v) time part = %q, want %q", now, got, want)
		}
	}
	// A time in another zone is rendered in UTC.
	tokyo := time.FixedZone("JST", 9*3600)
	c := domain.NewTransactionCode(now.In(tokyo))
	if got, want := c[1:16], "261125100405678"; got != want {
		t.Errorf("NewTransactionCode(JST) time part = %q, want the UTC %q", got, want)
	}
}

// TestNewTransactionCodeUnique uses the wall clock, as production does: the
// random part is 40 bits, so 100k codes minted in one and the same
// millisecond would collide with a probability of about 0.5%; spread over
// the ~50 ms the loop takes, the chance of a spurious failure is about 1e-4.
func TestNewTransactionCodeUnique(t *testing.T) {
	const n = 100_000
	seen := make(map[string]struct{}, n)
	for i := 0; i < n; i++ {
		c := domain.NewTransactionCode(time.Now())
		if _, dup := seen[c]; dup {
			t.Fatalf("NewTransactionCode repeated %q after %d calls", c, i)
		}
		seen[c] = struct{}{}
	}
	// Within one millisecond the random part alone must keep codes apart.
	fixed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	same := make(map[string]struct{}, 1000)
	for i := 0; i < 1000; i++ {
		c := domain.NewTransactionCode(fixed)
		if _, dup := same[c]; dup {
			t.Fatalf("NewTransactionCode(fixed) repeated %q", c)
		}
		same[c] = struct{}{}
	}
}

func TestNewTransactionCodeSortable(t *testing.T) {
	base := time.Date(2026, 12, 31, 23, 59, 59, 998_000_000, time.UTC)
	times := []time.Time{
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 1_000_000, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 999_000_000, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
		base,
		base.Add(time.Millisecond),
		base.Add(2 * time.Millisecond), // next year
		time.Date(2099, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		// Try several random suffixes: the order must not depend on them.
		for k := 0; k < 20; k++ {
			a, b := domain.NewTransactionCode(times[i-1]), domain.NewTransactionCode(times[i])
			if !(a < b) {
				t.Fatalf("NewTransactionCode(%v) = %q is not before NewTransactionCode(%v) = %q", times[i-1], a, times[i], b)
			}
		}
	}
	// Sub-millisecond differences need not sort, but the time part is
	// truncated, never rounded up into the next millisecond.
	c := domain.NewTransactionCode(time.Date(2026, 1, 1, 0, 0, 0, 999_999_999, time.UTC))
	if got, want := c[1:16], "260101000000999"; got != want {
		t.Errorf("time part of 00:00:00.999999999 = %q, want %q", got, want)
	}
}

func TestOrderFor(t *testing.T) {
	usd := domain.MustMoney(1999, "USD")
	in := domain.PayIntent{OrderID: "A1", Amount: usd}
	o, err := domain.OrderFor(nil, in)
	if err != nil || o.ID() != "A1" || o.Status() != domain.OrderPending {
		t.Fatalf("a new order: %+v %v", o, err)
	}
	again, err := domain.OrderFor(&o, in)
	if err != nil || again != o {
		t.Fatalf("a repeat request for the same amount: %+v %v", again, err)
	}
	other := in
	other.Amount = domain.MustMoney(2000, "USD")
	if got, err := domain.OrderFor(&o, other); !errors.Is(err, domain.ErrAmountConflict) || got != o {
		t.Fatalf("another amount: %+v %v; want the order as it is and ErrAmountConflict", got, err)
	}
}
