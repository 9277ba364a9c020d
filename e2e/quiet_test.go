package e2e

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/segmentio/kafka-go"
)

// quiet waits until nothing paygate or the test started is still in
// flight, and fails the test as await does if that does not happen
// within timeout. It is the barrier before a test asserts that nothing
// more came (no second event, no second refund): every consumer group of
// the broker, paygate's and the test's own readers alike, has committed
// up to the end of every partition of every topic it reads, the outbox
// holds no unpublished row, and the topics' ends did not move while that
// was checked. A group commits only after its transaction, and the
// test's readers after recording a message, so at that point whatever
// the work so far was going to cause has been caused, stored and read.
//
// Time-driven work (the sweeper's probes, the refunds poller) may start
// more after it returns; what was due before it has been done.
func (e *env) quiet(timeout time.Duration) {
	e.t.Helper()
	why := "not looked yet"
	defer func() {
		if why != "" { // await failed the test: say what was left
			e.t.Logf("still in flight: %s", why)
		}
	}()
	e.await(e.t, timeout, "nothing in flight", func() bool {
		why = e.inFlight()
		return why == ""
	})
}

// inFlight says what is still in flight ("" if nothing): a group behind
// the end of a topic it reads, unpublished outbox rows, or topics whose
// ends moved while it looked.
func (e *env) inFlight() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(e.app.Brokers...), Timeout: 5 * time.Second}
	before, err := topicEnds(ctx, c)
	if err != nil {
		return err.Error()
	}
	groups, err := c.ListGroups(ctx, &kafka.ListGroupsRequest{})
	if err != nil {
		return "list groups: " + err.Error()
	}
	for _, g := range groups.Groups {
		if behind := groupBehind(ctx, c, g.GroupID, before); behind != "" {
			return behind
		}
	}
	if n := e.scalar(`SELECT count(*) FROM outbox WHERE published_at IS NULL`); n > 0 {
		return fmt.Sprintf("%d outbox rows unpublished", n)
	}
	after, err := topicEnds(ctx, c)
	if err != nil {
		return err.Error()
	}
	if !maps.EqualFunc(before, after, maps.Equal) {
		return "topics grew while looking"
	}
	return ""
}

// topicEnds returns the end offset of every partition of every topic.
func topicEnds(ctx context.Context, c *kafka.Client) (map[string]map[int]int64, error) {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	req := map[string][]kafka.OffsetRequest{}
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			req[t.Name] = append(req[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	ends := map[string]map[int]int64{}
	for topic, ps := range res.Topics {
		ends[topic] = map[int]int64{}
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("list offsets %s/%d: %w", topic, p.Partition, p.Error)
			}
			ends[topic][p.Partition] = p.LastOffset
		}
	}
	return ends, nil
}

// groupBehind says where group has not committed up to ends ("" if
// nowhere). The topics a group reads are those its members subscribe to
// and those it has committed offsets in (its members may have left).
func groupBehind(ctx context.Context, c *kafka.Client, group string, ends map[string]map[int]int64) string {
	committed, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group})
	if err != nil {
		return fmt.Sprintf("offsets of group %s: %v", group, err)
	}
	if committed.Error != nil {
		return fmt.Sprintf("offsets of group %s: %v", group, committed.Error)
	}
	topics := map[string]bool{}
	for t := range committed.Topics {
		topics[t] = true
	}
	desc, err := c.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return fmt.Sprintf("describe group %s: %v", group, err)
	}
	for _, g := range desc.Groups {
		for _, m := range g.Members {
			for _, t := range m.MemberMetadata.Topics {
				topics[t] = true
			}
		}
	}
	for t := range topics {
		at := map[int]int64{}
		for _, p := range committed.Topics[t] {
			at[p.Partition] = p.CommittedOffset
		}
		for p, end := range ends[t] {
			if off := max(at[p], 0); off < end { // no commit yet reads from the start
				return fmt.Sprintf("group %s at %d of %s/%d's %d", group, off, t, p, end)
			}
		}
	}
	return ""
}
