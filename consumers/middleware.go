package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/backoff"
)

// Middleware wraps a Handler with one concern: the runner's handling is
// the group's Handler wrapped, from the outside in, in Retry, Isolate,
// DeadLetter and Recover (Runner.pipeline).
type Middleware func(Handler) Handler

// Chain wraps h in ms, the first outermost: Chain(h, a, b) is a(b(h)).
func Chain(h Handler, ms ...Middleware) Handler {
	for i := len(ms) - 1; i >= 0; i-- {
		h = ms[i](h)
	}
	return h
}

// Recover turns a handler's panic into a permanent error, so that one
// poison message cannot stop the group.
func Recover(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, batch []kafka.Message) (rejects []Rejection, err error) {
			defer func() {
				if p := recover(); p != nil {
					log.Error("handler panic", "panic", p, "stack", string(debug.Stack()))
					rejects, err = nil, Permanent(fmt.Errorf("handler panic: %v", p))
				}
			}()
			return next(ctx, batch)
		}
	}
}

// errDeadLetter is a failed dead-letter write: the batch is handled again.
var errDeadLetter = errors.New("dead-letter write failed")

// DeadLetter writes the rejections of a handled batch, and a
// single-message batch that failed permanently, to their topic's DLQ
// (write), and counts the messages handled and dead-lettered. The batch
// is done only once the DLQ write succeeded: a failed write is a
// retryable error, and the batch is handled again. A permanent error for
// a batch of several messages passes on (Isolate takes it).
func DeadLetter(write func(ctx context.Context, batch []kafka.Message, rejects []Rejection) error, count func(outcome string, n int)) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, batch []kafka.Message) ([]Rejection, error) {
			rejects, err := next(ctx, batch)
			switch {
			case err != nil && (ctx.Err() != nil || !IsPermanent(err) || len(batch) > 1):
				return nil, err
			case err != nil: // one message that can never be handled
				rejects = []Rejection{{Index: 0, Err: err}}
			}
			if werr := write(ctx, batch, rejects); werr != nil {
				return nil, fmt.Errorf("%w: %w", errDeadLetter, werr)
			}
			if err == nil {
				count("ok", len(batch)-len(rejects))
			}
			return nil, nil
		}
	}
}

// Isolate handles the messages of a batch that failed permanently one by
// one, in order, with each (a Handler for single messages, which retries
// and dead-letters): one poison message does not hold up the rest.
func Isolate(each Handler, log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, batch []kafka.Message) ([]Rejection, error) {
			rejects, err := next(ctx, batch)
			if err == nil || ctx.Err() != nil || !IsPermanent(err) || len(batch) < 2 {
				return rejects, err
			}
			log.Warn("batch failed permanently, processing its messages one by one", "err", err, "size", len(batch))
			for i := range batch {
				if _, err := each(ctx, batch[i:i+1]); err != nil {
					return nil, err
				}
			}
			return nil, nil
		}
	}
}

// Retry handles a batch again, after policy's jittered wait, for as long
// as it fails and ctx lasts; it returns ctx's error if ctx ends first.
// retried is called before each wait.
func Retry(policy backoff.Policy, log *slog.Logger, retried func()) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, batch []kafka.Message) ([]Rejection, error) {
			for attempt := 1; ; attempt++ {
				rejects, err := next(ctx, batch)
				if err == nil {
					return rejects, nil
				}
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				delay := policy.Delay(attempt - 1)
				if errors.Is(err, errDeadLetter) {
					log.Error("dead-letter write failed, retrying batch", "err", err)
				} else {
					m := batch[0]
					log.Warn("batch failed, retrying", "err", err, "attempt", attempt, "backoff", delay,
						"size", len(batch), "partition", m.Partition, "offset", m.Offset)
				}
				retried()
				if !policy.WaitFor(ctx, delay) {
					return nil, ctx.Err()
				}
			}
		}
	}
}

// pipeline is how the runner handles a batch: the group's Handler (first,
// if not nil, on the first try: a prepared batch's finishing half),
// recovered, dead-lettering, isolating poison and retrying. A batch's
// messages handled one by one go through the same, without first.
func (r *Runner) pipeline(first Handler) Handler {
	retry := Retry(backoff.Policy{Min: r.cfg.MinBackoff, Max: r.cfg.MaxBackoff}, r.log,
		func() { r.metrics.retries.WithLabelValues(r.cfg.Group).Inc() })
	dead := DeadLetter(r.deadLetter, func(outcome string, n int) {
		r.metrics.messages.WithLabelValues(r.cfg.Group, outcome).Add(float64(n))
	})
	each := Chain(r.handle, retry, dead, Recover(r.log))
	return Chain(firstThen(first, r.handle), retry, Isolate(each, r.log), dead, Recover(r.log))
}

// firstThen is first on its first call (if not nil), then h.
func firstThen(first, h Handler) Handler {
	if first == nil {
		return h
	}
	used := false
	return func(ctx context.Context, batch []kafka.Message) ([]Rejection, error) {
		if !used {
			used = true
			return first(ctx, batch)
		}
		return h(ctx, batch)
	}
}
