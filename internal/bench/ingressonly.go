package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp/sim"
	"github.com/paygate/paygate/schemas"
)

// IngressStep is one rate of an ingress-only run (Config.IngressOnly):
// the ingress alone — signature check and a durable Kafka write (acks=all)
// before each answer — with nothing consuming behind it.
type IngressStep struct {
	Rate         float64  `json:"offered_per_s"`
	DurationSec  float64  `json:"duration_s"`
	Sent         int      `json:"sent"`
	AchievedSend float64  `json:"sent_per_s"`
	Accepted     int64    `json:"accepted"`
	Sustained    float64  `json:"accepted_per_s"`
	Answer       *Latency `json:"answer_ms"`         // from the scheduled time
	Service      *Latency `json:"answer_service_ms"` // from the actual send
	SendErrors   int64    `json:"send_errors"`
	// SendShed counts the tries answered 503 with Retry-After (the
	// ingress at PAYGATE_INGRESS_MAX_INFLIGHT), each tried again after it.
	SendShed   int64  `json:"send_shed"`
	FirstError string `json:"first_error,omitempty"`
	LateStarts int64  `json:"late_starts"`
	// Stored is how many records the load added to the callbacks topic;
	// NotStored counts accepted requests missing from it (must be 0: an
	// answer means the callback is durable).
	Stored    int64 `json:"stored"`
	NotStored int64 `json:"accepted_not_stored"`
	CPU       *CPU  `json:"cpu,omitempty"`
}

// runIngressOnly drives each rate at the ingress with webhooks about
// payments nobody prepared (the ingress does not look orders up; it
// verifies, keys by transaction code and writes), then counts what the
// topic holds.
func runIngressOnly(ctx context.Context, cfg *Config, t *target, rep *Report, rates []float64) error {
	parts, err := topicPartitions(ctx, t.kafka, schemas.TopicPSPCallbacks)
	if err != nil {
		return err
	}
	kc := t.kafka.client(10 * time.Second)
	for i, rate := range rates {
		p, f := need(cfg, rate, cfg.Duration)
		now := time.Now()
		mk := func(n int, forged bool) []*order {
			os := make([]*order, n)
			for j := range os {
				os[j] = &order{id: fmt.Sprintf("I%d-%07d", i, j), code: domain.NewTransactionCode(now),
					pspRef: fmt.Sprintf("sp_i%d_%d", i, j), amount: orderAmount(j), forged: forged}
			}
			return os
		}
		sched := schedule(cfg, rate, cfg.Duration, mk(p, false), mk(f, true))
		before, err := topicEnd(ctx, kc, schemas.TopicPSPCallbacks, parts)
		if err != nil {
			return err
		}
		stopSigning := presign(ctx, t, sched)
		cfg.logf("ingress only, step %d/%d: %.0f webhooks/s for %s", i+1, len(rates), rate, cfg.Duration)
		if i == 0 && cfg.OnLoad != nil {
			cfg.OnLoad(true)
		}
		profiled := func() error { return nil }
		if i == 0 {
			profiled = profileGateway(ctx, cfg, t)
		}
		cpu0 := readCPU(t.gatewayPid())
		res := drive(ctx, cfg, t, sched)
		stopSigning()
		cpu := cpuBetween(cpu0, readCPU(t.gatewayPid()), runtime.NumCPU(), len(sched))
		if err := profiled(); err != nil {
			return err
		}
		if i == len(rates)-1 && cfg.OnLoad != nil {
			cfg.OnLoad(false)
		}
		after, err := topicEnd(ctx, kc, schemas.TopicPSPCallbacks, parts)
		if err != nil {
			return err
		}
		window := res.ended.Sub(res.start).Seconds()
		st := IngressStep{Rate: rate, DurationSec: cfg.Duration.Seconds(), Sent: len(sched), AchievedSend: float64(len(sched)) / window,
			Answer: latency(res.ingress), Service: latency(res.ingressSvc), SendErrors: res.errors.Load(), SendShed: res.tries.shed.Load(), LateStarts: res.lateStarts.Load(),
			Stored: after - before, CPU: cpu}
		st.Accepted = int64(len(sched)) - st.SendErrors
		st.Sustained = float64(st.Accepted) / window
		st.NotStored = max(st.Accepted-st.Stored, 0)
		if e, ok := res.firstErr.Load().(string); ok {
			st.FirstError = e
		}
		rep.IngressOnly = append(rep.IngressOnly, st)
		if ctx.Err() != nil {
			break
		}
	}
	rep.OK = true
	for _, s := range rep.IngressOnly {
		if s.NotStored > 0 {
			rep.OK = false
		}
	}
	return ctx.Err()
}

// topicEnd is the sum of the topic's end offsets.
func topicEnd(ctx context.Context, c *kafka.Client, topic string, partitions int) (int64, error) {
	end, err := endOffsets(ctx, c, topic, partitions)
	var n int64
	for _, last := range end {
		n += last
	}
	return n, err
}

// webhookFor signs a webhook as the simulator merchant would, without a
// payment at the simulator (target mode, and the ingress-only run).
func webhookFor(notify, merchant string, secret, forgedSecret []byte) func(o *order, forged bool) (sim.Webhook, error) {
	return func(o *order, f bool) (sim.Webhook, error) {
		s := secret
		if f {
			s = forgedSecret
		}
		return sim.SignWebhook(notify, merchant, s, sim.WebhookEvent{PaymentID: o.pspRef, MerchantRef: o.code,
			Status: "succeeded", Amount: o.amount, Currency: "USD"}, time.Now())
	}
}

func printIngressOnly(w io.Writer, steps []IngressStep) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\ningress only: offered/s\tsent/s\taccepted/s\tanswer p50\tp99\tp99.9\tmax ms\tservice p99 ms\terrors\tshed\tlate starts\tstored\taccepted, not stored\t")
	for _, s := range steps {
		fmt.Fprintf(tw, "%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%.0f\t%.1f\t%d\t%d\t%d\t%d\t%d\t\n", s.Rate, s.AchievedSend, s.Sustained,
			s.Answer.P50, s.Answer.P99, s.Answer.P999, s.Answer.Max, s.Service.P99, s.SendErrors, s.SendShed, s.LateStarts, s.Stored, s.NotStored)
	}
	tw.Flush()
	for _, s := range steps {
		fmt.Fprintf(w, "  at %.0f/s:\n", s.Rate)
		if s.FirstError != "" {
			fmt.Fprintf(w, "    first send error: %s\n", s.FirstError)
		}
		printCPU(w, "during the sends", s.CPU)
	}
}
