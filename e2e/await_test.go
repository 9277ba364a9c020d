package e2e

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/consumers"
	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/schemas"
)

// A consumer group whose every batch fails (its store statement broken,
// say) makes a wait fail within seconds, naming the group, instead of
// running to its deadline: the group here is one the test adds to
// paygate, with a handler that always fails as a retryable error does.
func TestAwaitGivesUpOnAStuckConsumerGroup(t *testing.T) {
	t.Parallel()
	e := start(t, app.Roles{Broker: true, Migrate: true})
	down := func(context.Context, []kafka.Message) ([]consumers.Rejection, error) {
		return nil, errors.New("store down")
	}
	if err := e.app.Consume("always-failing", schemas.TopicPayRequests, down, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.app.Writer.Write(context.Background(), producers.Message{Topic: schemas.TopicPayRequests, Key: "STUCK-1", ID: "m-stuck",
		Value: payBody("STUCK-1", 100)}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	msg := fatalOf(t, 45*time.Second, func(tb testing.TB) {
		e.await(tb, 10*time.Minute, "something the stuck group would do", func() bool { return false })
	})
	t.Logf("the wait failed after %s: %s", time.Since(began).Round(time.Millisecond), msg)
	if !strings.Contains(msg, "something the stuck group would do") || !strings.Contains(msg, "always-failing") {
		t.Errorf("the failure %q names neither what was awaited nor the stuck group", msg)
	}
}

// fatalOf runs wait with a testing.TB whose Fatalf ends it, and returns
// that message; it fails t if wait has not called Fatalf within limit.
func fatalOf(t *testing.T, limit time.Duration, wait func(testing.TB)) string {
	t.Helper()
	f := &fatalTB{TB: t, msg: make(chan string, 1)}
	go wait(f)
	select {
	case m := <-f.msg:
		return m
	case <-time.After(limit):
		t.Fatalf("the wait had not failed after %s", limit)
		return ""
	}
}

// fatalTB passes on everything but Fatalf, which it records before it
// ends the calling goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg chan string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	select {
	case f.msg <- fmt.Sprintf(format, args...):
	default:
	}
	runtime.Goexit()
}
