package app

import (
	"testing"

	"github.com/paygate/paygate/internal/router"
	"github.com/paygate/paygate/internal/settings"
)

// The snapshots a payinit member takes when Routing.SnapshotEvery is 0
// come as often as PAYGATE_ROUTING_SNAPSHOT_EVERY's default says.
func TestDefaultSnapshotEveryIsTheTags(t *testing.T) {
	t.Parallel()
	if err := settings.CheckDefaults(Config{Routing: router.Config{SnapshotEvery: defaultSnapshotEvery}}); err != nil {
		t.Error(err)
	}
}

// PAYGATE_RECON_SCHEDULE is on or off; its zero value is on, the default.
func TestSwitchedOff(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]SwitchedOff{"on": false, "off": true} {
		var s SwitchedOff
		if err := s.UnmarshalText([]byte(text)); err != nil || s != want {
			t.Errorf("%q: %v, %v; want %v", text, s, err, want)
		}
	}
	for _, text := range []string{"", "true", "false", "OFF", "no"} {
		var s SwitchedOff
		if err := s.UnmarshalText([]byte(text)); err == nil || err.Error() != "on or off" {
			t.Errorf("%q: %v", text, err)
		}
	}
	var c Config
	if err := settings.Load(&c, func(string) string { return "" }); err != nil || c.ReconSchedulingOff {
		t.Errorf("unset: off %v, %v; want on", c.ReconSchedulingOff, err)
	}
}
