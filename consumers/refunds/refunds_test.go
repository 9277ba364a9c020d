package refunds

import (
	"testing"
	"time"
)

// The wait doubles up to the max, jittered within its upper half.
func TestBackoffDoublesUpToTheMax(t *testing.T) {
	e := &executor{cfg: Config{MinBackoff: time.Second, MaxBackoff: 10 * time.Second}}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for polls, w := range want {
		if got := e.backoff(polls); got < w/2 || got > w {
			t.Errorf("backoff(%d) = %s, want %s jittered within [%s, %s]", polls, got, w, w/2, w)
		}
	}
	if got := e.backoff(1000); got < 5*time.Second || got > 10*time.Second {
		t.Errorf("backoff(1000) = %s", got)
	}
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	var c Config
	if err := c.defaults(); err != nil {
		t.Fatal(err)
	}
	if c.Lease != time.Minute || c.CallTimeout != 30*time.Second || c.MinBackoff != time.Second || c.MaxBackoff != 5*time.Minute ||
		c.PollInterval != time.Second || c.PollBatch != 100 || c.Concurrency != 16 {
		t.Errorf("defaults = %+v", c)
	}
	bad := Config{Lease: time.Second, CallTimeout: 2 * time.Second}
	if err := bad.defaults(); err == nil {
		t.Error("a lease shorter than a call was accepted")
	}
}
