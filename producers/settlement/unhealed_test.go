package settlement

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

// unhealedStore answers ReconUnhealed from a list the test changes; the
// gauges need no more of the store.
type unhealedStore struct {
	Store
	un *[]domain.ReconUnhealed
}

func (s unhealedStore) ReconUnhealed(context.Context) ([]domain.ReconUnhealed, error) {
	return *s.un, nil
}

// The gauges of findings not healed: a count and the age of the oldest per
// channel, and a channel whose findings are all healed back to 0.
func TestUnhealedGauges(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	un := []domain.ReconUnhealed{
		{Channel: "adyen_eu", Count: 1, Oldest: now.Add(-5 * time.Minute)},
		{Channel: "sim", Count: 2, Oldest: now.Add(-90 * time.Minute)},
	}
	reg := prometheus.NewRegistry()
	f, err := New(Config{Now: func() time.Time { return now }}, unhealedStore{un: &un}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	gauges := func() map[string]float64 {
		t.Helper()
		if err := f.Unhealed(context.Background()); err != nil {
			t.Fatal(err)
		}
		return promtest.Gauges(t, reg)
	}
	promtest.Equal(t, gauges(), map[string]float64{
		`paygate_recon_unhealed{channel="adyen_eu"}`: 1, `paygate_recon_oldest_unhealed_seconds{channel="adyen_eu"}`: 300,
		`paygate_recon_unhealed{channel="sim"}`: 2, `paygate_recon_oldest_unhealed_seconds{channel="sim"}`: 5400,
	})
	un = []domain.ReconUnhealed{{Channel: "sim", Count: 1, Oldest: now.Add(-30 * time.Minute)}}
	promtest.Equal(t, gauges(), map[string]float64{
		`paygate_recon_unhealed{channel="adyen_eu"}`: 0, `paygate_recon_oldest_unhealed_seconds{channel="adyen_eu"}`: 0,
		`paygate_recon_unhealed{channel="sim"}`: 1, `paygate_recon_oldest_unhealed_seconds{channel="sim"}`: 1800,
	})
}
