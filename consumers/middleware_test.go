package consumers_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/internal/backoff"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func msgs(vs ...string) []kafka.Message {
	out := make([]kafka.Message, len(vs))
	for i, v := range vs {
		out[i] = kafka.Message{Value: []byte(v), Offset: int64(i)}
	}
	return out
}

// The runner's concerns compose as middleware, each testable alone:
// Recover makes a panic permanent; DeadLetter writes rejections (and a
// lone permanent failure) before the batch counts as done; Isolate takes
// a poisoned batch one message at a time; Retry tries again until the
// handler passes or the context ends.
func TestMiddleware(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	var order []string
	tag := func(name string) consumers.Middleware {
		return func(next consumers.Handler) consumers.Handler {
			return func(ctx context.Context, b []kafka.Message) ([]consumers.Rejection, error) {
				order = append(order, name)
				return next(ctx, b)
			}
		}
	}
	ok := func(context.Context, []kafka.Message) ([]consumers.Rejection, error) { return nil, nil }
	_, _ = consumers.Chain(ok, tag("outer"), tag("inner"))(ctx, msgs("a"))
	if d := cmp.Diff([]string{"outer", "inner"}, order); d != "" {
		t.Errorf("Chain order (-want +got):\n%s", d)
	}

	panics := func(context.Context, []kafka.Message) ([]consumers.Rejection, error) { panic("bug") }
	if _, err := consumers.Recover(discard)(panics)(ctx, msgs("a")); !consumers.IsPermanent(err) {
		t.Errorf("Recover: %v, want a permanent error", err)
	}

	var written []string
	counted := map[string]int{}
	var writeErr error
	write := func(_ context.Context, b []kafka.Message, rj []consumers.Rejection) error {
		if writeErr != nil {
			return writeErr
		}
		for _, r := range rj {
			written = append(written, string(b[r.Index].Value)+": "+r.Err.Error())
		}
		return nil
	}
	dead := consumers.DeadLetter(write, func(outcome string, n int) { counted[outcome] += n })
	rejectB := func(context.Context, []kafka.Message) ([]consumers.Rejection, error) {
		return []consumers.Rejection{{Index: 1, Err: errors.New("bad shape")}}, nil
	}
	if rj, err := dead(rejectB)(ctx, msgs("a", "b", "c")); err != nil || rj != nil {
		t.Errorf("DeadLetter of a rejection: %v, %v", rj, err)
	}
	poison := func(context.Context, []kafka.Message) ([]consumers.Rejection, error) {
		return nil, consumers.Permanent(errors.New("poison"))
	}
	if _, err := dead(poison)(ctx, msgs("p")); err != nil {
		t.Errorf("DeadLetter of a lone poison: %v", err)
	}
	if _, err := dead(poison)(ctx, msgs("p", "q")); !consumers.IsPermanent(err) {
		t.Errorf("DeadLetter of a poisoned batch: %v, want it passed on", err)
	}
	writeErr = errors.New("kafka down")
	if _, err := dead(rejectB)(ctx, msgs("a", "b")); err == nil || consumers.IsPermanent(err) {
		t.Errorf("DeadLetter write failed: %v, want a retryable error", err)
	}
	if d := cmp.Diff([]string{"b: bad shape", "p: permanent: poison"}, written); d != "" {
		t.Errorf("dead-lettered (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]int{"ok": 2}, counted); d != "" {
		t.Errorf("counted (-want +got):\n%s", d)
	}

	var each []string
	one := func(_ context.Context, b []kafka.Message) ([]consumers.Rejection, error) {
		each = append(each, string(b[0].Value))
		return nil, nil
	}
	if _, err := consumers.Isolate(one, discard)(poison)(ctx, msgs("x", "y", "z")); err != nil {
		t.Errorf("Isolate: %v", err)
	}
	if d := cmp.Diff([]string{"x", "y", "z"}, each); d != "" {
		t.Errorf("isolated (-want +got):\n%s", d)
	}

	tries, retried := 0, 0
	flaky := func(context.Context, []kafka.Message) ([]consumers.Rejection, error) {
		if tries++; tries < 3 {
			return nil, errors.New("database unavailable")
		}
		return nil, nil
	}
	policy := backoff.Policy{Min: time.Millisecond, Max: 2 * time.Millisecond}
	if _, err := consumers.Retry(policy, discard, func() { retried++ })(flaky)(ctx, msgs("a")); err != nil || tries != 3 || retried != 2 {
		t.Errorf("Retry: %v after %d tries, %d retries; want success on the third", err, tries, retried)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	down := func(context.Context, []kafka.Message) ([]consumers.Rejection, error) { return nil, errors.New("down") }
	if _, err := consumers.Retry(policy, discard, func() {})(down)(cctx, msgs("a")); !errors.Is(err, context.Canceled) {
		t.Errorf("Retry after ctx ended: %v, want ctx's error", err)
	}
}
