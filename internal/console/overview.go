package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/dlq"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/schemas"
)

// DefaultGroups are paygate's consumer groups and the topic each reads.
func DefaultGroups() map[string]string {
	return map[string]string{
		"payinit":   schemas.TopicPayRequests,
		"callbacks": schemas.TopicPSPCallbacks,
		"refunds":   schemas.TopicRefundRequests,
		"recon":     schemas.TopicReconciliation,
	}
}

// The Overview's figures come from what every process shares, not from
// one process's metrics: the rates from the topics' end offsets (Kafka
// counts every pay request and callback the ingress or the mall wrote),
// the lag from the groups' committed offsets, the success rate from the
// attempts that ended (PostgreSQL), the DLQ sizes from internal/dlq.

// successWindow is the window of the success rate.
const successWindow = 5 * time.Minute

// keepSamples is how many samples the charts show (an hour at 5 s... or
// less, with a longer interval: the count is what is bounded).
const keepSamples = 720

// point is one sample for the charts.
type point struct {
	At          time.Time `json:"t"`
	PayRequests float64   `json:"pay_requests_per_s"`
	Callbacks   float64   `json:"callbacks_per_s"`
	SuccessRate *float64  `json:"success_rate"`
}

// GroupLag is one consumer group's lag.
type GroupLag struct {
	Group string `json:"group"`
	Topic string `json:"topic"`
	Lag   int64  `json:"lag"`
}

// Overview is what the Overview page and /api/overview show.
type Overview struct {
	At             time.Time         `json:"at"`
	PayRequests    float64           `json:"pay_requests_per_s"`
	Callbacks      float64           `json:"callbacks_per_s"`
	SuccessRate    *float64          `json:"success_rate"`
	Ended          int64             `json:"attempts_ended"`
	Lags           []GroupLag        `json:"lags"`
	DLQ            []dlq.Size        `json:"dlq"`
	FlaggedReviews int               `json:"flagged_reviews"`
	Errors         map[string]string `json:"errors,omitempty"`
	Series         []point           `json:"series"`
}

type sampler struct {
	cfg    Config
	client *kafka.Client
	store  *store.Store
	dlq    *dlq.Service

	mu     sync.Mutex
	last   Overview
	series []point
	// ends of the two topics at the previous sample, for the rates.
	prevAt          time.Time
	prevPay, prevCb int64
}

func newSampler(cfg Config, st *store.Store, d *dlq.Service) *sampler {
	s := &sampler{cfg: cfg, store: st, dlq: d}
	if len(cfg.Brokers) > 0 {
		tr := cfg.Transport
		if tr == nil {
			tr = &kafka.Transport{}
		}
		s.client = &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 5 * time.Second, Transport: tr}
	}
	return s
}

func (s *sampler) run(ctx context.Context, log *slog.Logger) error {
	t := time.NewTicker(s.cfg.SampleInterval)
	defer t.Stop()
	for {
		if err := s.sample(ctx); err != nil && ctx.Err() == nil {
			log.Warn("console overview sample", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sample takes the figures now. A source that fails leaves its figure out
// (and says why in Errors); the others still show.
func (s *sampler) sample(ctx context.Context) error {
	now := s.cfg.Now()
	o := Overview{At: now, Errors: map[string]string{}}
	var errs []error
	note := func(what string, err error) {
		o.Errors[what] = err.Error()
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
	}
	var pay, cb int64
	haveEnds := false
	if s.client != nil {
		ends, err := s.ends(ctx, schemas.TopicPayRequests, schemas.TopicPSPCallbacks)
		if err != nil {
			note("kafka", err)
		} else {
			pay, cb, haveEnds = sum(ends[schemas.TopicPayRequests]), sum(ends[schemas.TopicPSPCallbacks]), true
			if o.Lags, err = s.lags(ctx); err != nil {
				note("consumer lag", err)
			}
		}
	}
	outcomes, err := s.store.AttemptOutcomes(ctx, now.Add(-successWindow))
	if err != nil {
		note("attempts", err)
	} else {
		var paid, ended int64
		for _, c := range outcomes {
			paid += c.Paid
			ended += c.Paid + c.Failed + c.Expired
		}
		o.Ended = ended
		if ended > 0 {
			r := float64(paid) / float64(ended)
			o.SuccessRate = &r
		}
	}
	if flagged, err := s.store.FlaggedAttempts(ctx, 1000); err != nil {
		note("reviews", err)
	} else {
		o.FlaggedReviews = len(flagged)
	}
	if s.dlq != nil {
		if o.DLQ, err = s.dlq.Sizes(ctx); err != nil {
			note("dead letters", err)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if haveEnds && !s.prevAt.IsZero() {
		if dt := now.Sub(s.prevAt).Seconds(); dt > 0 {
			o.PayRequests = float64(max(pay-s.prevPay, 0)) / dt
			o.Callbacks = float64(max(cb-s.prevCb, 0)) / dt
			s.series = append(s.series, point{At: now, PayRequests: o.PayRequests, Callbacks: o.Callbacks, SuccessRate: o.SuccessRate})
			if len(s.series) > keepSamples {
				s.series = slices.Clone(s.series[len(s.series)-keepSamples:])
			}
		}
	}
	if haveEnds {
		s.prevAt, s.prevPay, s.prevCb = now, pay, cb
	}
	s.last = o
	return errors.Join(errs...)
}

// overview is the latest sample with the chart series.
func (s *sampler) overview() Overview {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.last
	o.Series = slices.Clone(s.series)
	return o
}

func sum(m map[int]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// ends returns each topic's end offsets by partition.
func (s *sampler) ends(ctx context.Context, topics ...string) (map[string]map[int]int64, error) {
	md, err := s.client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	req := map[string][]kafka.OffsetRequest{}
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			req[t.Name] = append(req[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	res, err := s.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return nil, fmt.Errorf("offsets: %w", err)
	}
	out := map[string]map[int]int64{}
	for t, ps := range res.Topics {
		out[t] = map[int]int64{}
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("offsets of %s/%d: %w", t, p.Partition, p.Error)
			}
			out[t][p.Partition] = p.LastOffset
		}
	}
	return out, nil
}

// lags is each group's end minus committed offsets over its topic (a
// partition it never committed counts from the start).
func (s *sampler) lags(ctx context.Context) ([]GroupLag, error) {
	var topics []string
	for _, t := range s.cfg.Groups {
		if !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	ends, err := s.ends(ctx, topics...)
	if err != nil {
		return nil, err
	}
	var out []GroupLag
	for g, t := range s.cfg.Groups {
		var parts []int
		for p := range ends[t] {
			parts = append(parts, p)
		}
		res, err := s.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: g, Topics: map[string][]int{t: parts}})
		if err == nil && res.Error != nil && !errors.Is(res.Error, kafka.GroupIdNotFound) {
			err = res.Error
		}
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", g, err)
		}
		committed := map[int]int64{}
		for _, p := range res.Topics[t] {
			committed[p.Partition] = p.CommittedOffset
		}
		l := GroupLag{Group: g, Topic: t}
		for p, end := range ends[t] {
			l.Lag += end - max(committed[p], 0)
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out, nil
}
