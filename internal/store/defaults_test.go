package store_test

import (
	"testing"

	"github.com/paygate/paygate/internal/settings"
	"github.com/paygate/paygate/internal/store"
)

// The defaults Validate fills in are the ones the tags give DATABASE_URL
// and PAYGATE_DB_STATEMENT_CACHE.
func TestDefaultsAreTheTags(t *testing.T) {
	t.Parallel()
	var c store.Config
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := settings.CheckDefaults(c); err != nil {
		t.Error(err)
	}
}

// PAYGATE_DB_STATEMENT_CACHE: a positive size, or off (or 0) for none;
// anything else says what it wants.
func TestCacheSize(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]store.CacheSize{"1": 1, "256": 256, "off": -1, "0": -1} {
		var c store.CacheSize
		if err := c.UnmarshalText([]byte(text)); err != nil || c != want {
			t.Errorf("%q: %d, %v; want %d", text, c, err, want)
		}
	}
	for _, text := range []string{"", "-3", "on", "many", "1.5"} {
		var c store.CacheSize
		if err := c.UnmarshalText([]byte(text)); err == nil || err.Error() != "a positive integer, or off" {
			t.Errorf("%q: %v", text, err)
		}
	}
}
