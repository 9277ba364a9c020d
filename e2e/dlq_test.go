package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/dlq"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/schemas"
)

// A pay request payinit can never process, replayed from its DLQ before
// the cause is fixed, fails again and lands in the DLQ once more, once,
// with its replay count; the replay does not pick that copy up.
func TestDLQReplayOfAMessageThatFailsAgain(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	ctx := context.Background()
	dlqTopic := schemas.DLQ(schemas.TopicPayRequests)
	if err := e.app.Writer.Write(ctx, producers.Message{Topic: schemas.TopicPayRequests, Key: "X", ID: "m-bad-json", Value: []byte(`{"order_id":`)}); err != nil {
		t.Fatal(err)
	}
	e.eventually(20*time.Second, "the bad request dead-lettered", func() bool { return e.topicSize(dlqTopic) == 1 })

	svc, err := dlq.New(dlq.Config{Brokers: e.app.Brokers}, e.app.Store, logger())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	res, err := svc.Replay(ctx, schemas.TopicPayRequests, 0, store.Actor{Name: "cli:e2e@test"})
	if err != nil || res.Sent != 1 {
		t.Fatalf("replay = %+v, %v", res, err)
	}
	// payinit has handled both (the original and the replayed one) once
	// it counts 2: by then the DLQ holds every copy there will be.
	e.eventually(20*time.Second, "payinit handled the replayed request", func() bool {
		handled, _ := consumerCounts(e.app.Registry)
		return handled["payinit"] == 2
	})
	if n := e.topicSize(dlqTopic); n != 2 {
		t.Fatalf("%s holds %d records, want the original and one copy", dlqTopic, n)
	}
	recs, err := svc.List(ctx, schemas.TopicPayRequests, 10)
	if err != nil || len(recs) != 2 {
		t.Fatalf("list = %v, %v", recs, err)
	}
	newest := recs[0]
	if newest.ReplayCount != 1 || newest.MessageID != "m-bad-json" || newest.Replayed != nil || newest.Reason == "" {
		t.Errorf("the copy = %+v; want message m-bad-json, replay count 1, not replayed, with its reason", newest)
	}
	if res, err := svc.Replay(ctx, schemas.TopicPayRequests, 0, store.Actor{Name: "cli:e2e@test"}); err != nil || res.Sent != 1 || res.Skipped != 0 {
		t.Errorf("second replay = %+v, %v; want the copy alone sent", res, err)
	}
}
