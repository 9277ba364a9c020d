package refunds

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/promtest"
)

// inFlightStore answers RefundsInFlight; the poller's gauges need no more.
type inFlightStore struct {
	Store
	fl []domain.RefundsInFlight
}

func (s inFlightStore) RefundsInFlight(context.Context) ([]domain.RefundsInFlight, error) {
	return s.fl, nil
}

// The poller's gauges: a count per unfinished status, and the age of the
// oldest (0 where there is none).
func TestPollerGauges(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	st := inFlightStore{fl: []domain.RefundsInFlight{
		{Status: domain.RefundQueued, Count: 3, Oldest: now.Add(-90 * time.Minute)},
		{Status: domain.RefundCalling},
		{Status: domain.RefundPendingAtPSP, Count: 1, Oldest: now.Add(-26 * time.Hour)},
	}}
	reg := prometheus.NewRegistry()
	p, err := NewPoller(Config{Now: func() time.Time { return now }}, st, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Gauges(context.Background()); err != nil {
		t.Fatal(err)
	}
	promtest.Equal(t, promtest.Gauges(t, reg), map[string]float64{
		`paygate_refunds_in_flight{status="queued"}`: 3, `paygate_refunds_in_flight{status="calling"}`: 0, `paygate_refunds_in_flight{status="pending_at_psp"}`: 1,
		`paygate_refund_oldest_in_flight_seconds{status="queued"}`:         5400,
		`paygate_refund_oldest_in_flight_seconds{status="calling"}`:        0,
		`paygate_refund_oldest_in_flight_seconds{status="pending_at_psp"}`: 26 * 3600,
	})
}
