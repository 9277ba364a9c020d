package sweeper

import (
	"testing"

	"github.com/paygate/paygate/internal/settings"
)

// The defaults New fills in are the ones the tags give the variables
// (PAYGATE_SWEEP_INTERVAL, PAYGATE_PROBE_SCHEDULE, ...).
func TestDefaultsAreTheTags(t *testing.T) {
	t.Parallel()
	var c Config
	c.defaults()
	if err := settings.CheckDefaults(c); err != nil {
		t.Error(err)
	}
}
