// Package dlq reads paygate's dead-letter topics and sends their records
// back to the topics they came from. It is the one code path behind
// `paygate dlq replay` and the console's Dead letters page, so a record is
// replayed the same way, once, and audited, whichever door the operator
// came through.
//
// How a replay stays trustworthy:
//   - It reads each DLQ partition's end offset first and stops there: the
//     copies of records that fail again, which the consumer groups write
//     to the same DLQ while the replay runs, wait for the next run.
//   - It commits, per partition, how far it got (the offsets of consumer
//     group DefaultGroup, committed without joining the group) after each
//     batch it sent, so a second run starts where the first stopped.
//   - Each record sent is recorded in PostgreSQL (dlq_replays), in the
//     same step, so a record replayed on its own from the console is not
//     sent again by a replay of the whole topic. A crash between the send
//     and the record sends that batch again at the next run: at least
//     once, as everywhere in paygate; the consumer groups are idempotent.
//   - One replay of a topic runs at a time (a PostgreSQL advisory lock).
//   - Records up to the topics' size limit (broker.MaxMessageBytes) are
//     read and written.
//   - The record sent carries the DLQ record's headers, without the DLQ's
//     reason and origin, and paygate_replay_count one higher than the
//     DLQ record's (1 for a first replay); the consumer runner keeps that
//     count on the DLQ copy of a record that fails again.
package dlq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/broker"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/schemas"
)

// DefaultGroup is the consumer group whose committed offsets mark how far
// replays of each DLQ partition went (the group `paygate dlq replay` has
// always used).
const DefaultGroup = "paygate-dlq-replay"

// Config configures a Service.
type Config struct {
	// Brokers are the Kafka bootstrap addresses. Required.
	Brokers []string
	// Transport connects to them (TLS, SASL: broker.Security). Default:
	// plaintext.
	Transport *kafka.Transport
	// Group is the consumer group of the replay cursor. Default
	// DefaultGroup.
	Group string
	// MaxMessageBytes is the largest record read or written. Default
	// broker.MaxMessageBytes, the limit of paygate's topics.
	MaxMessageBytes int
	// Timeout bounds one Kafka request. Default 10s.
	Timeout time.Duration
}

// Errors callers tell apart.
var (
	// ErrUnknownTopic: not a paygate topic with a DLQ.
	ErrUnknownTopic = errors.New("not a paygate topic")
	// ErrBusy: another replay of the topic is running.
	ErrBusy = errors.New("another replay of this topic is running")
	// ErrAlreadyReplayed: the record was sent back before.
	ErrAlreadyReplayed = errors.New("already replayed")
	// ErrNoRecord: no record at that partition and offset.
	ErrNoRecord = errors.New("no such record")
)

// Service reads and replays DLQ records. It is safe for concurrent use.
type Service struct {
	cfg    Config
	client *kafka.Client
	writer *kafka.Writer
	store  *store.Store
	log    *slog.Logger
}

// New builds a Service over st (the replay ledger and the audit log).
func New(cfg Config, st *store.Store, log *slog.Logger) (*Service, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("dlq: no brokers")
	}
	if st == nil {
		return nil, errors.New("dlq: no store")
	}
	if cfg.Transport == nil {
		cfg.Transport = &kafka.Transport{}
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = broker.MaxMessageBytes
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &Service{
		cfg:    cfg,
		client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.Timeout, Transport: cfg.Transport},
		writer: &kafka.Writer{
			Addr:      kafka.TCP(cfg.Brokers...),
			Transport: cfg.Transport,
			// The source topic's partition for the key, as paygate and
			// the Java client choose it: an order's messages stay in order.
			Balancer:     &kafka.Murmur2Balancer{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 2 * time.Millisecond,
			// kafka-go refuses a message above BatchBytes (1 MiB by
			// default): a record may be as large as the topic takes.
			BatchBytes:   int64(cfg.MaxMessageBytes) + 1<<20,
			WriteTimeout: cfg.Timeout,
		},
		store: st,
		log:   log,
	}, nil
}

// Close closes the writer.
func (s *Service) Close() error {
	err := s.writer.Close()
	s.cfg.Transport.CloseIdleConnections()
	return err
}

// Topics are the source topics that have a DLQ, in schemas order.
func Topics() []string {
	var out []string
	for _, t := range schemas.Topics() {
		if !strings.HasSuffix(t, ".dlq") {
			out = append(out, t)
		}
	}
	return out
}

// CheckTopic returns the DLQ of a source topic, or ErrUnknownTopic.
func CheckTopic(topic string) (string, error) {
	if !slices.Contains(Topics(), topic) {
		return "", fmt.Errorf("%q: %w (name the source topic, not its .dlq: %s)", topic, ErrUnknownTopic, strings.Join(Topics(), ", "))
	}
	return schemas.DLQ(topic), nil
}

// Record is one dead-lettered record.
type Record struct {
	// Topic is the source topic; the record is in its DLQ.
	Topic     string
	Partition int
	Offset    int64
	Time      time.Time
	Key       []byte
	Value     []byte
	Headers   []kafka.Header
	// From the headers: the message id and type, why it was
	// dead-lettered, where it was (topic/partition/offset) and how often
	// it was replayed before it landed here.
	MessageID   string
	Type        string
	Reason      string
	Origin      string
	ReplayCount int
	// Replayed is set once the record was sent back.
	Replayed *store.DLQReplay
}

func header(hs []kafka.Header, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// replayMessage is the record as it goes back to its topic.
func (r Record) replayMessage() kafka.Message {
	hs := make([]kafka.Header, 0, len(r.Headers)+1)
	for _, h := range r.Headers {
		switch h.Key {
		case schemas.HeaderDLQReason, schemas.HeaderDLQOrigin, schemas.HeaderReplayCount:
			continue
		}
		hs = append(hs, h)
	}
	hs = append(hs, kafka.Header{Key: schemas.HeaderReplayCount, Value: []byte(strconv.Itoa(r.ReplayCount + 1))})
	return kafka.Message{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: hs}
}

// partitionState is one DLQ partition as a replay or a listing sees it.
type partitionState struct {
	id         int
	first, end int64 // log start and end (next offset to be written)
	committed  int64 // the replay cursor; -1 if none
}

// from is where a replay of the partition starts.
func (p partitionState) from() int64 { return max(p.first, p.committed) }

// partitions reads the partitions of dlqTopic with their offsets and the
// replay cursor, all read before anything is replayed.
func (s *Service) partitions(ctx context.Context, dlqTopic string) ([]partitionState, error) {
	md, err := s.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{dlqTopic}})
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", dlqTopic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		err := error(kafka.UnknownTopicOrPartition)
		if len(md.Topics) == 1 {
			err = md.Topics[0].Error
		}
		return nil, fmt.Errorf("partitions of %s: %w", dlqTopic, err)
	}
	var ids []int
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		ids = append(ids, p.ID)
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	sort.Ints(ids)
	lo, err := s.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{dlqTopic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("offsets of %s: %w", dlqTopic, err)
	}
	byID := map[int]*partitionState{}
	for _, id := range ids {
		byID[id] = &partitionState{id: id, committed: -1}
	}
	for _, po := range lo.Topics[dlqTopic] {
		if po.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", dlqTopic, po.Partition, po.Error)
		}
		if p := byID[po.Partition]; p != nil {
			p.first, p.end = max(po.FirstOffset, 0), max(po.LastOffset, 0)
		}
	}
	of, err := s.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: s.cfg.Group, Topics: map[string][]int{dlqTopic: ids}})
	if err == nil && of.Error != nil && !errors.Is(of.Error, kafka.GroupIdNotFound) {
		// A group that never committed is no error (some brokers say
		// "not found", Kafka answers offsets of -1).
		err = of.Error
	}
	if err != nil {
		return nil, fmt.Errorf("replay cursor of %s (group %s): %w", dlqTopic, s.cfg.Group, err)
	}
	for _, po := range of.Topics[dlqTopic] {
		if po.Error != nil {
			return nil, fmt.Errorf("replay cursor of %s/%d: %w", dlqTopic, po.Partition, po.Error)
		}
		if p := byID[po.Partition]; p != nil {
			p.committed = po.CommittedOffset
		}
	}
	out := make([]partitionState, len(ids))
	for i, id := range ids {
		out[i] = *byID[id]
	}
	return out, nil
}

// fetch reads the records of dlqTopic's partition p from offset off up
// to (not including) end: one fetch request, at least one record unless
// the log starts later (then it answers the log's new start).
func (s *Service) fetch(ctx context.Context, topic, dlqTopic string, p int, off, end int64) ([]Record, int64, error) {
	res, err := s.client.Fetch(ctx, &kafka.FetchRequest{Topic: dlqTopic, Partition: p, Offset: off,
		MinBytes: 1, MaxBytes: 2 * int64(s.cfg.MaxMessageBytes), MaxWait: 500 * time.Millisecond})
	if err != nil {
		return nil, off, fmt.Errorf("read %s/%d at %d: %w", dlqTopic, p, off, err)
	}
	if res.Error != nil {
		if errors.Is(res.Error, kafka.OffsetOutOfRange) && res.LogStartOffset > off {
			// Retention deleted what the cursor pointed at: go on from
			// what is left.
			return nil, res.LogStartOffset, nil
		}
		if errors.Is(res.Error, kafka.OffsetOutOfRange) {
			return nil, off, fmt.Errorf("read %s/%d at %d: %w: %w", dlqTopic, p, off, ErrNoRecord, res.Error)
		}
		return nil, off, fmt.Errorf("read %s/%d at %d: %w", dlqTopic, p, off, res.Error)
	}
	var out []Record
	for {
		r, err := res.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, off, fmt.Errorf("read %s/%d at %d: %w", dlqTopic, p, off, err)
		}
		if r.Offset < off {
			continue // a batch may start before the offset asked for
		}
		if r.Offset >= end {
			break
		}
		rec := Record{Topic: topic, Partition: p, Offset: r.Offset, Time: r.Time, Headers: r.Headers}
		if r.Key != nil {
			if rec.Key, err = io.ReadAll(r.Key); err != nil {
				return nil, off, fmt.Errorf("read %s/%d@%d: key: %w", dlqTopic, p, r.Offset, err)
			}
		}
		if r.Value != nil {
			if rec.Value, err = io.ReadAll(r.Value); err != nil {
				return nil, off, fmt.Errorf("read %s/%d@%d: value: %w", dlqTopic, p, r.Offset, err)
			}
		}
		rec.MessageID = header(r.Headers, schemas.HeaderID)
		rec.Type = header(r.Headers, schemas.HeaderType)
		rec.Reason = header(r.Headers, schemas.HeaderDLQReason)
		rec.Origin = header(r.Headers, schemas.HeaderDLQOrigin)
		rec.ReplayCount, _ = strconv.Atoi(header(r.Headers, schemas.HeaderReplayCount))
		out = append(out, rec)
	}
	next := off
	if len(out) > 0 {
		next = out[len(out)-1].Offset + 1
	}
	return out, next, nil
}

// readRange calls fn with the records of partition p from from to end,
// batch by batch, until fn returns false or an error.
func (s *Service) readRange(ctx context.Context, topic, dlqTopic string, p int, from, end int64, fn func([]Record) (bool, error)) error {
	empty := 0
	for off := from; off < end; {
		recs, next, err := s.fetch(ctx, topic, dlqTopic, p, off, end)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			if next > off { // the log starts later now
				off = next
				continue
			}
			// Offsets below the end with no record (transaction markers,
			// compaction) are skipped by the broker; an empty answer
			// again and again means there is nothing left to read here.
			if empty++; empty >= 3 {
				return fmt.Errorf("read %s/%d: no record at offset %d, below the end %d", dlqTopic, p, off, end)
			}
			continue
		}
		empty = 0
		more, err := fn(recs)
		if err != nil || !more {
			return err
		}
		off = next
	}
	return nil
}

// known marks the records that were replayed already (same offset and
// record time in the ledger).
func (s *Service) known(ctx context.Context, dlqTopic string, p int, recs []Record) error {
	offsets := make([]int64, len(recs))
	for i, r := range recs {
		offsets[i] = r.Offset
	}
	done, err := s.store.DLQReplayed(ctx, dlqTopic, p, offsets)
	if err != nil {
		return err
	}
	for i := range recs {
		if d, ok := done[recs[i].Offset]; ok && d.RecordTime.UnixMilli() == recs[i].Time.UnixMilli() {
			recs[i].Replayed = &d
		}
	}
	return nil
}

// ReplayResult says what a replay of a topic did.
type ReplayResult struct {
	Topic    string
	DLQTopic string
	// Sent is how many records were sent back; Skipped how many had been
	// replayed one by one before; Left how many of those that were in the
	// DLQ when the replay started are left for the next run (the limit).
	Sent, Skipped int
	Left          int64
}

// Replay sends the records that were in topic's DLQ when it started, and
// not replayed before, back to topic, at most limit of them (0: all), in
// offset order per partition. It audits the run as actor did it.
func (s *Service) Replay(ctx context.Context, topic string, limit int, actor store.Actor) (ReplayResult, error) {
	res, err := s.replay(ctx, topic, limit, actor)
	detail := map[string]any{"sent": res.Sent, "skipped": res.Skipped, "left": res.Left}
	if limit > 0 {
		detail["limit"] = limit
	}
	s.audit(ctx, actor, "dlq.replay", topic, detail, err)
	return res, err
}

func (s *Service) replay(ctx context.Context, topic string, limit int, actor store.Actor) (ReplayResult, error) {
	dlqTopic, err := CheckTopic(topic)
	res := ReplayResult{Topic: topic, DLQTopic: dlqTopic}
	if err != nil {
		return res, err
	}
	unlock, err := s.store.TryLock(ctx, "paygate.dlq_replay/"+dlqTopic)
	if errors.Is(err, store.ErrLocked) {
		return res, fmt.Errorf("replay %s: %w", dlqTopic, ErrBusy)
	}
	if err != nil {
		return res, err
	}
	defer unlock()
	parts, err := s.partitions(ctx, dlqTopic)
	if err != nil {
		return res, err
	}
	budget := limit
	if budget <= 0 {
		budget = -1
	}
	for i, p := range parts {
		next := p.from()
		err := s.readRange(ctx, topic, dlqTopic, p.id, p.from(), p.end, func(recs []Record) (bool, error) {
			if budget == 0 {
				return false, nil
			}
			if err := s.known(ctx, dlqTopic, p.id, recs); err != nil {
				return false, err
			}
			var send []kafka.Message
			var ledger []store.DLQReplay
			last := int64(-1)
			for _, r := range recs {
				if budget == 0 {
					break
				}
				last = r.Offset
				if r.Replayed != nil {
					res.Skipped++
					continue
				}
				send = append(send, r.replayMessage())
				ledger = append(ledger, store.DLQReplay{Offset: r.Offset, RecordTime: r.Time, MessageID: r.MessageID, ReplayCount: r.ReplayCount + 1})
				budget--
			}
			if err := s.send(ctx, dlqTopic, p.id, actor, send, ledger); err != nil {
				return false, err
			}
			res.Sent += len(send)
			if err := s.commit(ctx, dlqTopic, p.id, last+1); err != nil {
				return false, err
			}
			next = last + 1
			return budget != 0, nil
		})
		if err != nil {
			return res, err
		}
		res.Left += p.end - next
		if budget == 0 {
			for _, q := range parts[i+1:] {
				res.Left += q.end - q.from()
			}
			break
		}
	}
	s.log.Info("dlq replayed", "topic", topic, "sent", res.Sent, "skipped", res.Skipped, "left", res.Left, "actor", actor.Name)
	return res, nil
}

// send writes msgs to their topic (acks=all) and then records them in
// the ledger.
func (s *Service) send(ctx context.Context, dlqTopic string, p int, actor store.Actor, msgs []kafka.Message, ledger []store.DLQReplay) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := s.writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("replay %d records of %s/%d to %s: %w", len(msgs), dlqTopic, p, msgs[0].Topic, err)
	}
	return s.store.RecordDLQReplays(ctx, dlqTopic, p, actor.Name, ledger)
}

// commit moves the replay cursor of a DLQ partition to next, without
// joining the group (a "simple" commit, generation -1).
func (s *Service) commit(ctx context.Context, dlqTopic string, p int, next int64) error {
	res, err := s.client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: s.cfg.Group, GenerationID: -1,
		Topics: map[string][]kafka.OffsetCommit{dlqTopic: {{Partition: p, Offset: next}}}})
	if err == nil {
		for _, pc := range res.Topics[dlqTopic] {
			if pc.Error != nil {
				err = pc.Error
			}
		}
	}
	if err != nil {
		return fmt.Errorf("commit replay cursor of %s/%d at %d: %w", dlqTopic, p, next, err)
	}
	return nil
}

// ReplayOne sends one DLQ record back to its topic, unless it was sent
// back before (ErrAlreadyReplayed), and audits it as actor did it. A
// later replay of the whole topic skips it.
func (s *Service) ReplayOne(ctx context.Context, topic string, partition int, offset int64, actor store.Actor) (Record, error) {
	r, err := s.replayOne(ctx, topic, partition, offset, actor)
	detail := map[string]any{"partition": partition, "offset": offset}
	if r.MessageID != "" {
		detail["message_id"] = r.MessageID
	}
	s.audit(ctx, actor, "dlq.replay_one", topic, detail, err)
	return r, err
}

func (s *Service) replayOne(ctx context.Context, topic string, partition int, offset int64, actor store.Actor) (Record, error) {
	dlqTopic, err := CheckTopic(topic)
	if err != nil {
		return Record{}, err
	}
	unlock, err := s.store.TryLock(ctx, "paygate.dlq_replay/"+dlqTopic)
	if errors.Is(err, store.ErrLocked) {
		return Record{}, fmt.Errorf("replay %s/%d@%d: %w", dlqTopic, partition, offset, ErrBusy)
	}
	if err != nil {
		return Record{}, err
	}
	defer unlock()
	r, err := s.Get(ctx, topic, partition, offset)
	if err != nil {
		return r, err
	}
	if r.Replayed != nil {
		return r, fmt.Errorf("%s/%d@%d: %w at %s by %s", dlqTopic, partition, offset, ErrAlreadyReplayed,
			r.Replayed.ReplayedAt.UTC().Format(time.RFC3339), r.Replayed.Actor)
	}
	err = s.send(ctx, dlqTopic, partition, actor, []kafka.Message{r.replayMessage()},
		[]store.DLQReplay{{Offset: r.Offset, RecordTime: r.Time, MessageID: r.MessageID, ReplayCount: r.ReplayCount + 1}})
	if err != nil {
		return r, err
	}
	s.log.Info("dlq record replayed", "topic", topic, "partition", partition, "offset", offset, "actor", actor.Name)
	return r, nil
}

// Get reads one DLQ record of topic, with its replay if it had one.
func (s *Service) Get(ctx context.Context, topic string, partition int, offset int64) (Record, error) {
	dlqTopic, err := CheckTopic(topic)
	if err != nil {
		return Record{}, err
	}
	recs, _, err := s.fetch(ctx, topic, dlqTopic, partition, offset, offset+1)
	if err != nil {
		return Record{}, err
	}
	if len(recs) == 0 || recs[0].Offset != offset {
		return Record{}, fmt.Errorf("%s/%d@%d: %w", dlqTopic, partition, offset, ErrNoRecord)
	}
	if err := s.known(ctx, dlqTopic, partition, recs); err != nil {
		return Record{}, err
	}
	return recs[0], nil
}

// List returns the newest records of topic's DLQ, newest first, at most
// limit, with their replays.
func (s *Service) List(ctx context.Context, topic string, limit int) ([]Record, error) {
	dlqTopic, err := CheckTopic(topic)
	if err != nil {
		return nil, err
	}
	parts, err := s.partitions(ctx, dlqTopic)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, p := range parts {
		from := max(p.first, p.end-int64(limit))
		err := s.readRange(ctx, topic, dlqTopic, p.id, from, p.end, func(recs []Record) (bool, error) {
			if err := s.known(ctx, dlqTopic, p.id, recs); err != nil {
				return false, err
			}
			out = append(out, recs...)
			return true, nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset > out[j].Offset
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Size is how many records a topic's DLQ holds, and how many of them
// were never replayed.
type Size struct {
	Topic    string
	DLQTopic string
	Total    int64
	Pending  int64
}

// Sizes returns the size of every DLQ, in Topics order.
func (s *Service) Sizes(ctx context.Context) ([]Size, error) {
	var out []Size
	for _, topic := range Topics() {
		dlqTopic := schemas.DLQ(topic)
		parts, err := s.partitions(ctx, dlqTopic)
		if err != nil {
			return nil, err
		}
		sz := Size{Topic: topic, DLQTopic: dlqTopic}
		for _, p := range parts {
			sz.Total += p.end - p.first
			if p.from() < p.end {
				// Records replayed one by one ahead of the cursor are not
				// pending.
				n, err := s.store.DLQReplayedBetween(ctx, dlqTopic, p.id, p.from(), p.end)
				if err != nil {
					return nil, err
				}
				sz.Pending += p.end - p.from() - n
			}
		}
		out = append(out, sz)
	}
	return out, nil
}

// audit records an action in the audit log; a failure to audit is logged
// (the action happened; refusing to say so would hide it).
func (s *Service) audit(ctx context.Context, actor store.Actor, action, target string, detail map[string]any, err error) {
	outcome := store.AuditOK
	switch {
	case errors.Is(err, ErrBusy), errors.Is(err, ErrAlreadyReplayed), errors.Is(err, ErrUnknownTopic), errors.Is(err, ErrNoRecord):
		outcome = store.AuditRefused
	case err != nil:
		outcome = store.AuditFailed
	}
	if err != nil {
		detail["error"] = err.Error()
	}
	// The action's context may have ended (a cancelled run): the audit
	// entry must still be written.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if aerr := s.store.Audit(actx, store.AuditEntry{Actor: actor, Action: action, Target: target, Outcome: outcome, Detail: detail}); aerr != nil {
		s.log.Error("audit failed", "action", action, "target", target, "actor", actor.Name, "err", aerr)
	}
}
