package refunds

import (
	"testing"

	"github.com/paygate/paygate/internal/settings"
)

// The defaults New and NewPoller fill in are the ones the tags give the
// variables (PAYGATE_REFUND_*).
func TestDefaultsAreTheTags(t *testing.T) {
	t.Parallel()
	var c Config
	if err := c.defaults(); err != nil {
		t.Fatal(err)
	}
	if err := settings.CheckDefaults(c); err != nil {
		t.Error(err)
	}
}
