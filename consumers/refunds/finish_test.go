package refunds

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// failingStore fails FinishRefunds its first fails calls, as a database
// that is gone for a moment does.
type failingStore struct {
	Store
	fails, calls int
	next         []domain.RefundClaim
}

func (s *failingStore) FinishRefunds(context.Context, []domain.RefundOutcome, func(domain.Refund) (domain.Event, error),
	[]psp.Exchange, time.Duration) ([]domain.RefundClaim, error) {
	s.calls++
	if s.calls <= s.fails {
		return nil, errors.New("read tcp: connection reset by peer")
	}
	return s.next, nil
}

func newTestExecutor(t *testing.T, st Store, lease time.Duration) *executor {
	t.Helper()
	e, err := newExecutor(Config{CallTimeout: lease / 4, Lease: lease}, st, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Outcomes the PSPs gave are stored once the database answers again,
// while the claims' lease has time to run: not dropped to wait for the
// lease to run out and the PSP to be asked again.
func TestOutcomesAreStoredAfterABlip(t *testing.T) {
	t.Parallel()
	st := &failingStore{fails: 2, next: []domain.RefundClaim{{Lease: "next"}}}
	next, err := newTestExecutor(t, st, time.Minute).finish(context.Background(), nil, nil)
	if err != nil || len(next) != 1 || next[0].Lease != "next" || st.calls != 3 {
		t.Fatalf("finish: %v, %v after %d calls; want the next claim after 3", next, err, st.calls)
	}
}

// Past half the lease it gives up: another worker may take the claims
// over once the lease runs out, and must find them as they were.
func TestOutcomesAreGivenUpPastHalfTheLease(t *testing.T) {
	t.Parallel()
	st := &failingStore{fails: 1 << 30}
	start := time.Now()
	_, err := newTestExecutor(t, st, 400*time.Millisecond).finish(context.Background(), nil, nil)
	if err == nil || st.calls < 2 {
		t.Fatalf("finish: %v after %d calls; want an error after more than one try", err, st.calls)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("gave up after %s; want soon after half the lease (200ms)", took)
	}
}
