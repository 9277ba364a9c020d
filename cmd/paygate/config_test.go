package main

import (
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

// The PSP concurrency and the simulator's latency: defaults, values, and
// a message naming the variable for a bad one.
func TestLoadConfigPSPConcurrencyAndSimLatency(t *testing.T) {
	c, err := LoadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.PSPConcurrency != 128 || c.SimLatency != 0 {
		t.Errorf("defaults: concurrency %d, latency %s", c.PSPConcurrency, c.SimLatency)
	}
	c, err = LoadConfig(env(map[string]string{"PAYGATE_PSP_CONCURRENCY": "32", "PAYGATE_SIM_LATENCY": "80ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.PSPConcurrency != 32 || c.SimLatency != 80*time.Millisecond {
		t.Errorf("set: concurrency %d, latency %s", c.PSPConcurrency, c.SimLatency)
	}
	for _, tc := range []struct{ name, value string }{
		{"PAYGATE_PSP_CONCURRENCY", "0"},
		{"PAYGATE_PSP_CONCURRENCY", "many"},
		{"PAYGATE_SIM_LATENCY", "-1s"},
		{"PAYGATE_SIM_LATENCY", "soon"},
	} {
		if _, err := LoadConfig(env(map[string]string{tc.name: tc.value})); err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s=%s: %v", tc.name, tc.value, err)
		}
	}
}
