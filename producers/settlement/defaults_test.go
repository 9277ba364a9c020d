package settlement_test

import (
	"testing"

	"github.com/paygate/paygate/internal/settings"
	"github.com/paygate/paygate/producers/settlement"
)

// The default Validate fills in is the one the tag gives
// PAYGATE_RECON_TOLERANCE_DAYS.
func TestDefaultsAreTheTags(t *testing.T) {
	t.Parallel()
	var c settlement.Config
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := settings.CheckDefaults(c); err != nil {
		t.Error(err)
	}
}
