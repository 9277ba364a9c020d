package consumers

import (
	"testing"

	"github.com/paygate/paygate/internal/settings"
)

// The default NewRunner fills in is the one the tag gives
// PAYGATE_BATCH_SIZE.
func TestDefaultsAreTheTags(t *testing.T) {
	t.Parallel()
	c := Config{Brokers: []string{"kafka:9092"}, Group: "g", Topic: "t"}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if err := settings.CheckDefaults(c); err != nil {
		t.Error(err)
	}
}
