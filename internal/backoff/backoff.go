// Package backoff is paygate's one retry policy: a capped exponential
// backoff with jitter, used by everything that tries again — the consumer
// runner's failed batches, the outbox relay's failed rounds, the store's
// transactions that hit a serialization failure or a deadlock, the
// refunds poller's looks at a refund pending at the PSP, and the Kafka
// writer's produce requests.
//
// Jitter keeps members that failed together (a database restart fails
// every consumer at once) from trying again together; the delay is never
// below half its ceiling, so a policy still says how long at least it
// waits.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is a capped exponential backoff with "equal jitter": the
// ceiling of retry n (n = 0 for the first retry) is Min·2ⁿ, at most Max,
// and its delay is drawn uniformly from [ceiling/2, ceiling].
type Policy struct {
	// Min is the first retry's ceiling. Required (> 0).
	Min time.Duration
	// Max caps every ceiling. Default (0): Min.
	Max time.Duration
	// Attempts bounds the tries Retry makes, the first included. Default
	// (0): no bound.
	Attempts int
}

// Ceiling is the longest delay before retry n (n ≥ 0).
func (p Policy) Ceiling(n int) time.Duration {
	limit := max(p.Max, p.Min)
	d := p.Min
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Delay is the delay before retry n: jittered within [Ceiling(n)/2,
// Ceiling(n)].
func (p Policy) Delay(n int) time.Duration {
	c := p.Ceiling(n)
	half := c / 2
	if c-half <= 0 {
		return c
	}
	return half + rand.N(c-half+1)
}

// Wait sleeps Delay(n), or until ctx ends; it reports whether it slept
// the whole delay.
func (p Policy) Wait(ctx context.Context, n int) bool { return p.WaitFor(ctx, p.Delay(n)) }

// WaitFor sleeps d (a Delay the caller drew, to log it, say), or until
// ctx ends; it reports whether it slept the whole delay.
func (Policy) WaitFor(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Retry calls fn until it returns nil or an error retryable does not
// accept, ctx ends, or Attempts tries were made, waiting Delay between
// tries; it returns fn's last error (or ctx's, if ctx ended first).
// retried, if not nil, is called before each retry with the error that
// caused it.
func (p Policy) Retry(ctx context.Context, retryable func(error) bool, retried func(n int, err error), fn func() error) error {
	for n := 0; ; n++ {
		err := fn()
		if err == nil || !retryable(err) || (p.Attempts > 0 && n+1 >= p.Attempts) {
			return err
		}
		if retried != nil {
			retried(n, err)
		}
		if !p.Wait(ctx, n) {
			return err
		}
	}
}
