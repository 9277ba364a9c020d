// Package psptest is the contract suite every psp.Channel adapter passes
// (STYLE.md: one suite for all adapters, as watermill's pubsub tests).
// It checks ParseCallback, the part of the port that faces the internet:
// a correctly signed callback verifies and reads as the notification that
// was signed; a tampered, forged, stale, early or unsigned one is refused
// with the right psp error and a zero notification; parsing is
// deterministic, leaves its input alone, judges time at ReceivedAt, is
// safe for concurrent use and does no I/O; and psp.Verify, the gateway's
// one verification, reads the channel's payment callbacks as
// ParseCallback does.
//
// The adapter's tests provide a Harness and call Run (and Bench, for the
// micro-benchmark of its signature check); the operations that
// talk to a PSP are tested against the PSP (or its simulator) by the
// adapter's own tests.
package psptest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/signature"
)

// Harness is what Run needs to know about an adapter.
type Harness struct {
	// Channel is the adapter under test.
	Channel psp.Channel
	// Kinds are the callback kinds the channel verifies. Default (nil):
	// domain.CallbackAsync only.
	Kinds []domain.CallbackKind
	// Tolerance is the replay tolerance the channel was configured with.
	// Default (zero): signature.DefaultTolerance. Negative: the PSP's
	// callbacks carry no signed time, and the stale cases are skipped.
	Tolerance time.Duration
	// StaleAtTolerance says that a callback signed exactly Tolerance away
	// from its receipt is stale, as the PSP's own SDK judges it (WeChat
	// Pay's: |now - timestamp| >= 300 s is refused). Default false: only
	// more than Tolerance away is stale (paygate's rule for its own
	// signatures, DESIGN.md §11, and Stripe's SDKs').
	StaleAtTolerance bool
	// Sign returns a callback of the given kind that states n, signed at
	// time at with a secret the channel holds, as the PSP would send it
	// (ReceivedAt is set by the suite).
	Sign func(kind domain.CallbackKind, n domain.Notification, at time.Time) domain.Callback
	// Forge is Sign with a secret the channel does not hold.
	Forge func(kind domain.CallbackKind, n domain.Notification, at time.Time) domain.Callback
	// SignatureKeys name, per kind, the headers or query parameters that
	// carry the signature (for the sim, "X-Sim-Signature"; "sig"). The
	// suite deletes them to make an unsigned callback and moves them from
	// one callback to another to make a tampered one.
	SignatureKeys map[domain.CallbackKind][]string
	// TimestampKeys name, per kind, the headers or query parameters that
	// carry the signed time. The byte-flipping case leaves query
	// parameters named here alone (a flipped digit may read as stale
	// rather than forged); the unsigned case deletes them as well.
	TimestampKeys map[domain.CallbackKind][]string
	// Want is the notification the channel should read from a callback
	// of kind that was signed for n. Default (nil): n itself. Use it for
	// what a PSP's message does not carry, such as the event id of a sync
	// return.
	Want func(kind domain.CallbackKind, n domain.Notification) domain.Notification
	// Notifications are the statements the cases sign. Default (nil):
	// Notifications().
	Notifications []domain.Notification
	// Requests, if set, counts the HTTP requests the channel has made so
	// far; the no-I/O case checks that ParseCallback does not change it.
	// If nil, that case is skipped.
	Requests func() int64
}

// Epoch is the instant the suite's callbacks are received at. It is far
// from the wall clock on purpose: an adapter that judges time by
// time.Now instead of Callback.ReceivedAt fails every case.
var Epoch = time.Date(2026, time.November, 25, 10, 0, 0, 0, time.UTC)

// Notifications is the default set of statements: success and failure,
// currencies with 0, 2 and 3 decimals, and an amount a float64 cannot
// hold exactly (2^53+1), which catches amounts read through a float.
func Notifications() []domain.Notification {
	at := Epoch.Add(-3 * time.Second)
	return []domain.Notification{
		{TransactionCode: "T261125095957123ABCDEFGH", PSPReference: "psp_1001", EventID: "evt_1001",
			Status: domain.PSPSucceeded, Amount: domain.MustMoney(1999, "USD"), OccurredAt: at},
		{TransactionCode: "T261125095957124ABCDEFGJ", PSPReference: "psp_1002", EventID: "evt_1002",
			Status: domain.PSPFailed, Amount: domain.MustMoney(500, "EUR"), OccurredAt: at},
		{TransactionCode: "T261125095957125ABCDEFGK", PSPReference: "psp_1003", EventID: "evt_1003",
			Status: domain.PSPSucceeded, Amount: domain.MustMoney(120000, "JPY"), OccurredAt: at},
		{TransactionCode: "T261125095957126ABCDEFGL", PSPReference: "psp_1004", EventID: "evt_1004",
			Status: domain.PSPSucceeded, Amount: domain.MustMoney(1999, "KWD"), OccurredAt: at},
		{TransactionCode: "T261125095957127ABCDEFGM", PSPReference: "psp_1005", EventID: "evt_1005",
			Status: domain.PSPSucceeded, Amount: domain.MustMoney(1<<53+1, "USD"), OccurredAt: at},
	}
}

// complete is h with its defaults filled in, or what it lacks.
func (h Harness) complete() (Harness, error) {
	if h.Channel == nil || h.Sign == nil || h.Forge == nil {
		return h, errors.New("psptest: Harness needs Channel, Sign and Forge")
	}
	if h.Kinds == nil {
		h.Kinds = []domain.CallbackKind{domain.CallbackAsync}
	}
	if h.Tolerance == 0 {
		h.Tolerance = signature.DefaultTolerance
	}
	if h.Want == nil {
		h.Want = func(_ domain.CallbackKind, n domain.Notification) domain.Notification { return n }
	}
	if h.Notifications == nil {
		h.Notifications = Notifications()
	}
	for _, k := range h.Kinds {
		if len(h.SignatureKeys[k]) == 0 {
			return h, fmt.Errorf("psptest: Harness.SignatureKeys has none for kind %s", k)
		}
	}
	return h, nil
}

// Run runs the contract suite against h.
func Run(t *testing.T, h Harness) {
	t.Helper()
	h, err := h.complete()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range h.Kinds {
		t.Run(kind.String(), func(t *testing.T) {
			s := suite{h: h, kind: kind}
			t.Run("GoodVerifies", s.goodVerifies)
			t.Run("FlippedByte", s.flippedByte)
			t.Run("ChangedStatement", s.changedStatement)
			t.Run("WrongSecret", s.wrongSecret)
			t.Run("Unsigned", s.unsigned)
			t.Run("Tolerance", s.tolerance)
			t.Run("Deterministic", s.deterministic)
			t.Run("Concurrent", s.concurrent)
			t.Run("NoIO", s.noIO)
			t.Run("Verify", s.verify)
		})
	}
}

// Bench times ParseCallback, the signature check and parse that the
// ingress and the callbacks group run on every callback, for each kind h
// verifies: on a callback signed for h's first notification
// ("<kind>/signed") and on one forged for it ("<kind>/forged"). Each is
// checked once before it is timed, so a benchmark that would time the
// wrong path fails instead: the signed one must read as Want says, the
// forged one must be refused as a bad signature.
func Bench(b *testing.B, h Harness) {
	b.Helper()
	h, err := h.complete()
	if err != nil {
		b.Fatal(err)
	}
	n := h.Notifications[0]
	for _, kind := range h.Kinds {
		signed := h.Sign(kind, n, Epoch)
		forged := h.Forge(kind, n, Epoch)
		signed.ReceivedAt, forged.ReceivedAt = Epoch, Epoch
		if got, err := h.Channel.ParseCallback(signed); err != nil || !SameNotification(got, h.Want(kind, n)) {
			b.Fatalf("%s: the signed callback reads as %+v, %v; want %+v", kind, got, err, h.Want(kind, n))
		}
		if _, err := h.Channel.ParseCallback(forged); !errors.Is(err, psp.ErrBadSignature) {
			b.Fatalf("%s: the forged callback: %v; want a bad signature", kind, err)
		}
		for _, c := range []struct {
			name string
			cb   domain.Callback
		}{{"signed", signed}, {"forged", forged}} {
			cb := c.cb
			b.Run(kind.String()+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_, _ = h.Channel.ParseCallback(cb)
				}
			})
		}
	}
}

type suite struct {
	h    Harness
	kind domain.CallbackKind
}

// signed is a correctly signed callback for n, received at Epoch.
func (s suite) signed(n domain.Notification) domain.Callback {
	cb := s.h.Sign(s.kind, n, Epoch)
	cb.ReceivedAt = Epoch
	return cb
}

// parse calls ParseCallback on a copy, and fails the test if it changed
// its input.
func (s suite) parse(t *testing.T, cb domain.Callback) (domain.Notification, error) {
	t.Helper()
	keep := Clone(cb)
	n, err := s.h.Channel.ParseCallback(cb)
	if !Equal(cb, keep) {
		t.Errorf("ParseCallback modified its input")
	}
	return n, err
}

// refused asserts that cb is refused with target and a zero notification.
func (s suite) refused(t *testing.T, what string, cb domain.Callback, target error) {
	t.Helper()
	n, err := s.parse(t, cb)
	if !errors.Is(err, target) {
		t.Errorf("%s: ParseCallback error = %v, want errors.Is %v", what, err, target)
		return
	}
	if errors.Is(target, psp.ErrBadSignature) && errors.Is(err, psp.ErrVerified) {
		// psp verify would tell the operator the signature was fine.
		t.Errorf("%s: a bad signature is marked psp.ErrVerified: %v", what, err)
	}
	if !SameNotification(n, domain.Notification{}) {
		t.Errorf("%s: refused callback still read as %+v, want the zero Notification", what, n)
	}
}

func (s suite) goodVerifies(t *testing.T) {
	for _, n := range s.h.Notifications {
		got, err := s.parse(t, s.signed(n))
		if err != nil {
			t.Errorf("%s: ParseCallback: %v", n.TransactionCode, err)
			continue
		}
		if want := s.h.Want(s.kind, n); !SameNotification(got, want) {
			t.Errorf("%s: ParseCallback =\n  %+v\nwant\n  %+v", n.TransactionCode, got, want)
		}
	}
}

// flippedByte changes one byte of the signed content at a time: every
// byte of the body, and every byte of every query parameter but the
// timestamp. Each must fail verification.
func (s suite) flippedByte(t *testing.T) {
	n := s.h.Notifications[0]
	cb := s.signed(n)
	skip := s.h.TimestampKeys[s.kind]
	flips := 0
	for i := range cb.Body {
		c := Clone(cb)
		c.Body[i] ^= 0x01
		s.refused(t, fmt.Sprintf("body byte %d %q→%q", i, cb.Body[i], c.Body[i]), c, psp.ErrBadSignature)
		flips++
	}
	c := Clone(cb)
	c.Body = append(c.Body, ' ')
	if len(cb.Body) > 0 {
		s.refused(t, "body with a byte appended", c, psp.ErrBadSignature)
		c = Clone(cb)
		c.Body = c.Body[:len(c.Body)-1]
		s.refused(t, "body with its last byte cut", c, psp.ErrBadSignature)
	}
	for _, k := range slices.Sorted(maps.Keys(cb.Query)) {
		if slices.Contains(skip, k) {
			continue
		}
		for j, v := range cb.Query[k] {
			for i := range len(v) {
				c := Clone(cb)
				b := []byte(v)
				b[i] ^= 0x01
				c.Query[k][j] = string(b)
				s.refused(t, fmt.Sprintf("query %s byte %d", k, i), c, psp.ErrBadSignature)
				flips++
			}
		}
	}
	if flips == 0 {
		t.Fatalf("the signed callback has neither body nor query to tamper with")
	}
}

// changedStatement signs a second, different statement at the same time
// and gives it the first one's signature: a changed amount, currency,
// status or transaction code under a real signature must not verify.
func (s suite) changedStatement(t *testing.T) {
	n := s.h.Notifications[0]
	orig := s.signed(n)
	other := []struct {
		name string
		edit func(*domain.Notification)
	}{
		{"amount+1", func(m *domain.Notification) {
			m.Amount = domain.MustMoney(m.Amount.Minor()+1, m.Amount.Currency().Code())
		}},
		{"currency", func(m *domain.Notification) {
			code := "EUR"
			if m.Amount.Currency().Code() == code {
				code = "USD"
			}
			m.Amount = domain.MustMoney(m.Amount.Minor(), code)
		}},
		{"status", func(m *domain.Notification) {
			if m.Status == domain.PSPSucceeded {
				m.Status = domain.PSPFailed
			} else {
				m.Status = domain.PSPSucceeded
			}
		}},
		{"transaction code", func(m *domain.Notification) { m.TransactionCode += "X" }},
	}
	for _, o := range other {
		m := n
		o.edit(&m)
		forged := s.signed(m)
		if _, err := s.parse(t, forged); err != nil {
			t.Fatalf("%s: the changed statement, correctly signed, does not verify: %v", o.name, err)
		}
		s.refused(t, o.name+" under the original signature", s.moveSignature(orig, forged), psp.ErrBadSignature)
	}
}

// moveSignature is to with from's signature.
func (s suite) moveSignature(from, to domain.Callback) domain.Callback {
	c := Clone(to)
	for _, k := range s.h.SignatureKeys[s.kind] {
		if v := from.Headers.Values(k); len(v) > 0 {
			c.Headers[http.CanonicalHeaderKey(k)] = slices.Clone(v)
		}
		if v, ok := from.Query[k]; ok {
			c.Query[k] = slices.Clone(v)
		}
	}
	return c
}

func (s suite) wrongSecret(t *testing.T) {
	for _, n := range s.h.Notifications {
		cb := s.h.Forge(s.kind, n, Epoch)
		cb.ReceivedAt = Epoch
		s.refused(t, n.TransactionCode, cb, psp.ErrBadSignature)
	}
}

// unsigned removes the signature (and then the timestamp too).
func (s suite) unsigned(t *testing.T) {
	n := s.h.Notifications[0]
	del := func(cb domain.Callback, keys []string) domain.Callback {
		c := Clone(cb)
		for _, k := range keys {
			c.Headers.Del(k)
			delete(c.Query, k)
		}
		return c
	}
	sig := s.h.SignatureKeys[s.kind]
	s.refused(t, "without signature", del(s.signed(n), sig), psp.ErrBadSignature)
	if ts := s.h.TimestampKeys[s.kind]; len(ts) > 0 {
		s.refused(t, "without signature and timestamp", del(s.signed(n), append(slices.Clone(sig), ts...)), psp.ErrBadSignature)
		s.refused(t, "without timestamp", del(s.signed(n), ts), psp.ErrBadSignature)
	}
	s.refused(t, "empty request", domain.Callback{Kind: s.kind, Method: http.MethodPost, Headers: http.Header{}, Query: url.Values{}, ReceivedAt: Epoch}, psp.ErrBadSignature)
}

// tolerance: signed less than Tolerance before or after receipt is
// accepted; exactly Tolerance away, either way, as the PSP's SDK judges
// it (StaleAtTolerance); a second beyond is stale. All judged at
// ReceivedAt.
func (s suite) tolerance(t *testing.T) {
	if s.h.Tolerance < 0 {
		t.Skip("the PSP's callbacks carry no signed time")
	}
	n := s.h.Notifications[0]
	tol := s.h.Tolerance
	var atTol error
	if s.h.StaleAtTolerance {
		atTol = psp.ErrStale
	}
	cases := []struct {
		name   string
		signed time.Duration // relative to receipt
		want   error
	}{
		{"just inside, past", -tol + time.Second, nil},
		{"just inside, future", tol - time.Second, nil},
		{"exactly the tolerance, past", -tol, atTol},
		{"exactly the tolerance, future", tol, atTol},
		{"stale", -tol - time.Second, psp.ErrStale},
		{"far past", -30 * 24 * time.Hour, psp.ErrStale},
		{"future", tol + time.Second, psp.ErrStale},
		{"far future", 365 * 24 * time.Hour, psp.ErrStale},
	}
	for _, c := range cases {
		cb := s.h.Sign(s.kind, n, Epoch.Add(c.signed))
		cb.ReceivedAt = Epoch
		if c.want != nil {
			s.refused(t, c.name, cb, c.want)
			continue
		}
		if _, err := s.parse(t, cb); err != nil {
			t.Errorf("%s: ParseCallback: %v", c.name, err)
		}
	}
	// Long after the fact, a callback received in its time still reads:
	// the ingress stored it at ReceivedAt and a consumer parses it now.
	old := time.Date(2001, time.September, 9, 1, 46, 40, 0, time.UTC)
	cb := s.h.Sign(s.kind, n, old)
	cb.ReceivedAt = old.Add(time.Second)
	if _, err := s.parse(t, cb); err != nil {
		t.Errorf("signed and received in 2001, parsed today: %v", err)
	}
}

func (s suite) deterministic(t *testing.T) {
	for _, n := range s.h.Notifications {
		cb := s.signed(n)
		a, errA := s.parse(t, cb)
		b, errB := s.parse(t, Clone(cb))
		if !SameNotification(a, b) || fmt.Sprint(errA) != fmt.Sprint(errB) {
			t.Errorf("%s: two parses differ: (%+v, %v) and (%+v, %v)", n.TransactionCode, a, errA, b, errB)
		}
		forged := s.h.Forge(s.kind, n, Epoch)
		forged.ReceivedAt = Epoch
		_, errA = s.parse(t, forged)
		_, errB = s.parse(t, Clone(forged))
		if fmt.Sprint(errA) != fmt.Sprint(errB) {
			t.Errorf("%s: two refusals differ: %v and %v", n.TransactionCode, errA, errB)
		}
	}
}

// concurrent parses from several goroutines; run with -race.
func (s suite) concurrent(t *testing.T) {
	n := s.h.Notifications[0]
	cb := s.signed(n)
	want := s.h.Want(s.kind, n)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 20 {
				got, err := s.h.Channel.ParseCallback(Clone(cb))
				if err == nil && !SameNotification(got, want) {
					err = fmt.Errorf("read %+v", got)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent ParseCallback: %v", err)
	}
}

func (s suite) noIO(t *testing.T) {
	if s.h.Requests == nil {
		t.Skip("Harness.Requests not set")
	}
	before := s.h.Requests()
	for _, n := range s.h.Notifications {
		_, _ = s.h.Channel.ParseCallback(s.signed(n))
		forged := s.h.Forge(s.kind, n, Epoch)
		forged.ReceivedAt = Epoch
		_, _ = s.h.Channel.ParseCallback(forged)
	}
	if after := s.h.Requests(); after != before {
		t.Errorf("ParseCallback made %d HTTP requests", after-before)
	}
}

// verify: psp.Verify, which the ingress and the callbacks group run,
// judges a signed callback a payment's, stating what ParseCallback reads,
// and refuses a forged one as a bad signature: a refund callback parser
// the channel has leaves its payment callbacks to ParseCallback.
func (s suite) verify(t *testing.T) {
	for _, n := range s.h.Notifications {
		if v := psp.Verify(s.h.Channel, s.signed(n)); v.Kind != psp.VerdictPayment || !SameNotification(v.Notification, s.h.Want(s.kind, n)) {
			t.Errorf("%s: Verify = %v %+v (%v), want a payment stating %+v", n.TransactionCode, v.Kind, v.Notification, v.Err, s.h.Want(s.kind, n))
		}
		forged := s.h.Forge(s.kind, n, Epoch)
		forged.ReceivedAt = Epoch
		if v := psp.Verify(s.h.Channel, forged); v.Kind != psp.VerdictRefused || !errors.Is(v.Err, psp.ErrBadSignature) || v.Refund != nil {
			t.Errorf("%s: Verify of the forged callback = %v (%v, refund %+v), want refused as a bad signature", n.TransactionCode, v.Kind, v.Err, v.Refund)
		}
	}
}

// Clone is a deep copy of a callback (headers, query, body).
func Clone(cb domain.Callback) domain.Callback {
	c := cb
	c.Headers = cb.Headers.Clone()
	if c.Headers == nil {
		c.Headers = http.Header{}
	}
	c.Query = make(url.Values, len(cb.Query))
	for k, v := range cb.Query {
		c.Query[k] = slices.Clone(v)
	}
	c.Body = bytes.Clone(cb.Body)
	return c
}

// Equal reports whether two callbacks carry the same bytes.
func Equal(a, b domain.Callback) bool {
	eq := func(x, y map[string][]string) bool {
		return maps.EqualFunc(x, y, func(v, w []string) bool { return slices.Equal(v, w) })
	}
	return a.Kind == b.Kind && a.Method == b.Method && a.Path == b.Path && a.RawQuery == b.RawQuery && a.ReceivedAt.Equal(b.ReceivedAt) &&
		bytes.Equal(a.Body, b.Body) && eq(a.Headers, b.Headers) && eq(a.Query, b.Query)
}

// SameNotification reports whether two notifications state the same:
// times are compared as instants, whatever their location.
func SameNotification(a, b domain.Notification) bool {
	return a.TransactionCode == b.TransactionCode && a.PSPReference == b.PSPReference &&
		a.EventID == b.EventID && a.Status == b.Status && a.Amount.Equal(b.Amount) &&
		a.OccurredAt.Equal(b.OccurredAt)
}
