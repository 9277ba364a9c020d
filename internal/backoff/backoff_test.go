package backoff_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/backoff"
)

func TestCeilingDoublesUpToTheMax(t *testing.T) {
	t.Parallel()
	p := backoff.Policy{Min: time.Second, Max: 10 * time.Second}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for n, w := range want {
		if got := p.Ceiling(n); got != w {
			t.Errorf("Ceiling(%d) = %s, want %s", n, got, w)
		}
	}
	if got := p.Ceiling(1000); got != 10*time.Second {
		t.Errorf("Ceiling(1000) = %s", got)
	}
	if got := (backoff.Policy{Min: time.Second}).Ceiling(5); got != time.Second {
		t.Errorf("without Max, Ceiling(5) = %s, want Min", got)
	}
}

// Delays are jittered within [ceiling/2, ceiling], and not all alike.
func TestDelayIsJitteredWithinHalfTheCeiling(t *testing.T) {
	t.Parallel()
	p := backoff.Policy{Min: 100 * time.Millisecond, Max: 10 * time.Second}
	for n := range 10 {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := p.Delay(n)
			if c := p.Ceiling(n); d < c/2 || d > c {
				t.Fatalf("Delay(%d) = %s, outside [%s, %s]", n, d, c/2, c)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("Delay(%d): one value in 50 draws, no jitter", n)
		}
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()
	transient, permanent := errors.New("transient"), errors.New("permanent")
	retryable := func(err error) bool { return errors.Is(err, transient) }
	p := backoff.Policy{Min: time.Millisecond, Max: 2 * time.Millisecond, Attempts: 4}

	tries := 0
	err := p.Retry(context.Background(), retryable, nil, func() error {
		if tries++; tries < 3 {
			return transient
		}
		return nil
	})
	if err != nil || tries != 3 {
		t.Errorf("passes on the third try: %v after %d tries", err, tries)
	}

	tries = 0
	var retried []int
	err = p.Retry(context.Background(), retryable, func(n int, _ error) { retried = append(retried, n) }, func() error { tries++; return transient })
	if !errors.Is(err, transient) || tries != 4 || len(retried) != 3 {
		t.Errorf("always transient: %v after %d tries, retried %v; want 4 tries", err, tries, retried)
	}

	tries = 0
	if err := p.Retry(context.Background(), retryable, nil, func() error { tries++; return permanent }); !errors.Is(err, permanent) || tries != 1 {
		t.Errorf("permanent: %v after %d tries, want one", err, tries)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	long := backoff.Policy{Min: time.Hour}
	tries = 0
	if err := long.Retry(ctx, retryable, nil, func() error { tries++; return transient }); !errors.Is(err, transient) || tries != 1 {
		t.Errorf("ctx ended: %v after %d tries; want the error at once", err, tries)
	}
}
