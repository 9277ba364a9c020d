package main

import (
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"
)

// The command line reads into the run's Config: the flags' defaults, a
// 0 that means none as the Config's negative (its zero is its default),
// a sweep's rates.
func TestParseArgs(t *testing.T) {
	t.Parallel()
	cfg, _, err := parseArgs(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rate != 1000 || cfg.Duration != 30*time.Second || cfg.Lone != 20 || cfg.Warmup != 5*time.Second ||
		cfg.DuplicateShare != 0.1 || cfg.ForgedShare != 0.02 || cfg.SkipEarlierCheck || cfg.LogLevel != slog.LevelInfo || cfg.Sweep != nil {
		t.Errorf("defaults: %+v", cfg)
	}
	cfg, _, err = parseArgs([]string{"-dup", "0", "-forged", "0", "-repeat", "0", "-abandon", "0", "-wait-share", "0", "-warmup", "0", "-lone", "0",
		"-check-earlier=false", "-sweep", "500, 1000,,2000"})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]float64{"dup": cfg.DuplicateShare, "forged": cfg.ForgedShare, "repeat": cfg.RepeatShare, "abandon": cfg.AbandonShare,
		"wait-share": cfg.WaitShare, "warmup": float64(cfg.Warmup), "lone": float64(cfg.Lone)} {
		if v != -1 {
			t.Errorf("-%s 0: %v, want -1 (none)", name, v)
		}
	}
	if !cfg.SkipEarlierCheck || !slices.Equal(cfg.Sweep, []float64{500, 1000, 2000}) {
		t.Errorf("skip earlier check %v, sweep %v", cfg.SkipEarlierCheck, cfg.Sweep)
	}
}

// A wrong value is a usage error (exit 2), found before anything runs, as
// an unknown flag is (the flag package's, which also prints the usage).
func TestParseArgsRefuses(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-sweep", "1,x"}, {"-gateway-cpuprofile", "f"}, {"-gateway-memprofile", "f"}, {"-log-level", "loud"}} {
		_, _, err := parseArgs(args)
		if u := (usageError{}); !errors.As(err, &u) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}
