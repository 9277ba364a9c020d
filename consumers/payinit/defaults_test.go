package payinit

import (
	"log/slog"
	"testing"

	"github.com/paygate/paygate/internal/settings"
)

// The default New fills in is the one the tag gives
// PAYGATE_PSP_CONCURRENCY.
func TestDefaultsAreTheTags(t *testing.T) {
	t.Parallel()
	h, err := New(Config{PublicURL: "http://127.0.0.1:8080"}, nil, nil, nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c := h.cfg
	c.PublicURL = "" // required, not filled in
	if err := settings.CheckDefaults(c); err != nil {
		t.Error(err)
	}
}
