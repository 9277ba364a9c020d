package ingress

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/paygate/paygate/internal/settings"
)

// The defaults New fills in are the ones the tags give
// PAYGATE_INGRESS_MAX_INFLIGHT and PAYGATE_INGRESS_QUEUE_WAIT.
func TestDefaultsAreTheTags(t *testing.T) {
	t.Parallel()
	var c Config
	c.defaults()
	if err := settings.CheckDefaults(c); err != nil {
		t.Error(err)
	}
}

// PAYGATE_MALL_KEYS: id:secret pairs, an id repeated during rotation, a
// secret with colons; an entry that is not id:secret is named by its
// position, never printed.
func TestKeys(t *testing.T) {
	t.Parallel()
	var k Keys
	if err := k.UnmarshalText([]byte(" mall:new , mall:old,,finance:a:b")); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(Keys{"mall": {"new", "old"}, "finance": {"a:b"}}, k); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	for text, want := range map[string]string{"mall:s3cret,s3cret": "entry 2 is not id:secret", ":s3cret": "entry 1 is not id:secret",
		"mall:": "entry 1 is not id:secret"} {
		if err := k.UnmarshalText([]byte(text)); err == nil || err.Error() != want {
			t.Errorf("%q: %v; want %s", text, err, want)
		}
	}
}
