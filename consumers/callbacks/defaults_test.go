package callbacks

import (
	"log/slog"
	"testing"

	"github.com/paygate/paygate/internal/settings"
)

// The default New fills in is the one the tag gives
// PAYGATE_PSP_CONCURRENCY.
func TestDefaultsAreTheTags(t *testing.T) {
	t.Parallel()
	h := New(Config{}, nil, nil, slog.New(slog.DiscardHandler), nil)
	if err := settings.CheckDefaults(h.cfg); err != nil {
		t.Error(err)
	}
}
