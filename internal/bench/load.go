package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/psp/sim"
	"github.com/paygate/paygate/internal/signature"
	"github.com/paygate/paygate/schemas"
)

// order is one prepared order: its attempt at the simulator, paid there
// (or, for forgeries, never paid), and what the load did with it.
type order struct {
	id     string
	code   string // transaction code (the simulator's merchant_ref)
	pspRef string // the simulator's payment id
	amount int64
	forged bool

	once sync.Once
	hook sim.Webhook
	err  error

	// first is the scheduled time of its first webhook (unix ns).
	first atomic.Int64
	// paidAt is when the order center read its paid event (unix ns);
	// events counts the paid events read.
	paidAt atomic.Int64
	events atomic.Int32
}

// webhook is built once per order, on first use: a duplicate is the same
// bytes with the same signature.
func (o *order) webhook(t *target) (sim.Webhook, error) {
	o.once.Do(func() { o.hook, o.err = t.webhook(o, o.forged) })
	return o.hook, o.err
}

var httpClient = &http.Client{
	Timeout: 60 * time.Second,
	Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        8192,
		MaxIdleConnsPerHost: 8192,
		// Below the ingress's 30 s idle limit (its ReadTimeout): a
		// connection the server closes just as a request goes out on it
		// fails with EOF (13 of 1.2 million webhooks in a 10-minute run).
		IdleConnTimeout: 20 * time.Second,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// prepare makes n orders through the pipeline: a signed pay request at
// the ingress, the session payinit creates, and — unless forged — the
// buyer's click at the simulator with callbacks=none.
func prepare(ctx context.Context, cfg *Config, t *target, prefix string, n int, forged func(i int) bool) ([]*order, error) {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return prepareSome(ctx, cfg, t, prefix, idx, forged)
}

// prepareSome makes the orders with the given indices as prepare does,
// in that order.
func prepareSome(ctx context.Context, cfg *Config, t *target, prefix string, idx []int, forged func(i int) bool) ([]*order, error) {
	n := len(idx)
	orders := make([]*order, n)
	var (
		next     atomic.Int64
		done     atomic.Int64
		firstErr error
		mu       sync.Mutex
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	for range min(cfg.PrepareWorkers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= n || ctx.Err() != nil {
					return
				}
				i := idx[k]
				o := &order{id: orderID(prefix, i), amount: orderAmount(i), forged: forged(i)}
				if err := prepareOne(ctx, cfg, t, o); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				orders[k] = o
				if d := done.Add(1); d%5000 == 0 {
					cfg.logf("prepared %d/%d orders (%.0f/s)", d, n, float64(d)/time.Since(start).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("prepare orders: %w", firstErr)
	}
	return orders, ctx.Err()
}

func orderID(prefix string, i int) string { return fmt.Sprintf("%s-%07d", prefix, i) }

func orderAmount(i int) int64 { return 1000 + int64(i%9000) }

func prepareOne(ctx context.Context, cfg *Config, t *target, o *order) error {
	body, _ := json.Marshal(schemas.PayRequest{OrderID: o.id, Amount: o.amount, Currency: "USD", Country: "US", Method: "card",
		Channel: cfg.Channel, Buyer: schemas.Buyer{ID: "bench"},
		ReturnURLs: schemas.ReturnURLs{Success: "https://shop.example/ok", Failure: "https://shop.example/fail", Pending: "https://shop.example/wait"}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, t.apiURL+"/v1/payments", bytes.NewReader(body))
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Paygate-Key-Id", app.DevMallKeyID)
	req.Header.Set("X-Paygate-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Paygate-Signature", signature.Header([]byte(app.DevMallSecret), ts, body))
	req.Header.Set("Idempotency-Key", o.id)
	if code, b, err := do(req); err != nil || code != http.StatusAccepted {
		return fmt.Errorf("pay request %s: %d %s %v", o.id, code, b, err)
	}
	var payURL string
	for deadline := time.Now().Add(60 * time.Second); payURL == ""; {
		if time.Now().After(deadline) {
			return fmt.Errorf("no pay session for %s", o.id)
		}
		target := "/v1/payments/" + o.id + "?wait=10s"
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.apiURL+target, nil)
		ts := time.Now().Unix() // a read is signed over its method and target too (v2)
		req.Header.Set("X-Paygate-Key-Id", app.DevMallKeyID)
		req.Header.Set("X-Paygate-Timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("X-Paygate-Signature", signature.RequestHeader([]byte(app.DevMallSecret), ts, signature.Request{Method: http.MethodGet, Target: target}))
		code, b, err := do(req)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			if code == http.StatusNotFound {
				continue
			}
			return fmt.Errorf("order %s: %d %s", o.id, code, b)
		}
		var p schemas.Payment
		if err := json.Unmarshal(b, &p); err != nil {
			return err
		}
		if n := len(p.Attempts); n > 0 && p.Attempts[n-1].PayURL != "" {
			payURL, o.code = p.Attempts[n-1].PayURL, p.Attempts[n-1].TransactionCode
		}
	}
	u, err := url.Parse(payURL)
	if err != nil {
		return err
	}
	o.pspRef = path.Base(u.Path) // the pay page is /pay/{payment id}
	if o.forged {
		return nil
	}
	resp, err := sim.Pay(ctx, httpClient, payURL, url.Values{"result": {"success"}, "callbacks": {"none"}})
	if err != nil {
		return fmt.Errorf("pay %s: %w", o.id, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pay %s at the simulator: %s", o.id, resp.Status)
	}
	return nil
}

func do(req *http.Request) (int, []byte, error) {
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// send is one scheduled webhook.
type send struct {
	at  time.Duration // from the step's start
	o   *order
	dup bool
}

// schedule lays out a step's webhooks at a constant rate: each slot is a
// first delivery, a duplicate of a first delivery 0.5–2 s earlier, or a
// forgery, drawn with a fixed seed.
func schedule(cfg *Config, rate float64, d time.Duration, paid, forged []*order) []send {
	n := int(rate * d.Seconds())
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	out := make([]send, 0, n)
	var firsts []int // indexes in out of first deliveries
	pi, fi := 0, 0
	for i := range n {
		at := time.Duration(float64(i) / rate * float64(time.Second))
		x := rng.Float64()
		switch {
		case x < cfg.ForgedShare && fi < len(forged):
			out = append(out, send{at: at, o: forged[fi]})
			fi++
			continue
		case x < cfg.ForgedShare+cfg.DuplicateShare && len(firsts) > 0:
			// a first delivery 0.5–2 s before, if there is one that old
			back := time.Duration((0.5 + 1.5*rng.Float64()) * float64(time.Second))
			lo := 0
			for j := len(firsts) - 1; j >= 0; j-- {
				if out[firsts[j]].at <= at-back {
					lo = j
					break
				}
			}
			if out[firsts[lo]].at <= at-back/4 {
				out = append(out, send{at: at, o: out[firsts[lo]].o, dup: true})
				continue
			}
		}
		if pi < len(paid) {
			firsts = append(firsts, len(out))
			out = append(out, send{at: at, o: paid[pi]})
			pi++
		}
	}
	return out
}

// counts of a schedule: first deliveries, duplicates, forgeries.
func scheduleCounts(s []send) (first, dup, forged int) {
	for _, x := range s {
		switch {
		case x.o.forged:
			forged++
		case x.dup:
			dup++
		default:
			first++
		}
	}
	return
}

// need says how many paid and forged orders a step at rate for d uses.
func need(cfg *Config, rate float64, d time.Duration) (paid, forged int) {
	n := rate * d.Seconds()
	return int(n*(1-cfg.DuplicateShare-cfg.ForgedShare)*1.1) + 64, int(n*cfg.ForgedShare*1.2) + 16
}

// signLead is how far ahead of its slot a webhook is built and signed:
// well within the ingress's 300 s timestamp tolerance.
const signLead = 60 * time.Second

// presign builds and signs the schedule's webhooks ahead of their slots,
// as a PSP has a notification ready before it sends it. Signing is the
// PSP's work: done in each send's goroutine, it put the load generator's
// JSON encoding, HMAC and stack growth (a fifth of the process's CPU at
// 4,500/s, ingress only) on the gateway's cores inside the measured
// window and inside the measured latency. Everything due in the first
// signLead is built before presign returns; the rest is built signLead
// ahead of its slot until stop is called. A send whose webhook is not
// built yet builds it itself (order.webhook), so nothing waits on this.
func presign(ctx context.Context, t *target, sched []send) (stop func()) {
	return ahead(ctx, len(sched), func(i int) time.Duration { return sched[i].at },
		func(i int) { _, _ = sched[i].o.webhook(t) }) // an error is the send's to report
}

// ahead runs build(i) for the n items of a schedule (in slot order, item
// i's slot at(i) from its start) signLead ahead of their slots: those
// due within signLead before it returns, the rest in the background
// until stop is called.
func ahead(ctx context.Context, n int, at func(i int) time.Duration, do func(i int)) (stop func()) {
	next := 0
	build := func(until time.Duration) {
		for ; next < n && at(next) < until && ctx.Err() == nil; next++ {
			do(next)
		}
	}
	build(signLead)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		base := time.Now()
		for next < n && sleepCtx(ctx, 100*time.Millisecond) {
			build(time.Since(base) + signLead)
		}
	}()
	return func() { cancel(); <-done }
}

// result of one load step's sends.
type sent struct {
	ingress      []time.Duration // answer time from the scheduled time
	ingressSvc   []time.Duration // answer time from the actual send
	errors       atomic.Int64
	firstErr     atomic.Value
	lateStarts   atomic.Int64 // sends that started > 10 ms after their slot
	maxLate      atomic.Int64 // the latest start after its slot, in ns
	tries        tries        // tries after a first that failed (postWebhook)
	start, ended time.Time
}

// drive sends the schedule open-loop: every send is started at its
// scheduled time, whatever the earlier ones are doing. Senders are kept
// and reused: an idle one takes the next due send, and a new one starts
// only when all are busy (MaxInFlight at most). A goroutine per send grew
// a fresh stack through the HTTP client every time, which cost the load
// generator a tenth of its CPU on the gateway's cores.
func drive(ctx context.Context, cfg *Config, t *target, sched []send) *sent {
	res := &sent{ingress: make([]time.Duration, len(sched)), ingressSvc: make([]time.Duration, len(sched))}
	start := time.Now().Add(200 * time.Millisecond)
	res.start = start
	// A job is one webhook's delivery: its first try, due at its slot,
	// and any later ones (delivery.next), each taken by a sender when
	// due. A webhook waiting to be tried again holds no sender (one that
	// waited out a Retry-After would hold back the sends due meanwhile)
	// and no connection.
	type job struct {
		i     int
		began time.Time
		d     delivery
		w     sim.Webhook
		err   error
		tried bool
	}
	var (
		jobs    = make(chan *job)
		open    sync.WaitGroup // jobs not finished
		wg      sync.WaitGroup // senders
		mu      sync.Mutex
		senders int
	)
	finish := func(j *job) {
		now := time.Now()
		res.ingress[j.i], res.ingressSvc[j.i] = now.Sub(start.Add(sched[j.i].at)), now.Sub(j.began)
		if j.err != nil {
			res.errors.Add(1)
			res.firstErr.CompareAndSwap(nil, j.err.Error())
		}
		open.Done()
	}
	var dispatch func(j *job)
	try := func(j *job, c *wire) {
		if !j.tried {
			j.tried, j.began = true, time.Now()
			late := j.began.Sub(start.Add(sched[j.i].at))
			if late > 10*time.Millisecond {
				res.lateStarts.Add(1)
			}
			for cur := res.maxLate.Load(); int64(late) > cur && !res.maxLate.CompareAndSwap(cur, int64(late)); cur = res.maxLate.Load() {
			}
			if j.w, j.err = sched[j.i].o.webhook(t); j.err != nil {
				finish(j)
				return
			}
		}
		j.err = deliver(ctx, c, j.w)
		wait, again := j.d.next(j.err, &res.tries)
		if !again || ctx.Err() != nil {
			finish(j)
			return
		}
		go func() {
			if sleepCtx(ctx, wait) {
				dispatch(j)
			} else {
				finish(j)
			}
		}()
	}
	dispatch = func(j *job) {
		select {
		case jobs <- j:
			return
		default:
		}
		mu.Lock()
		if senders == cfg.MaxInFlight {
			mu.Unlock()
			jobs <- j // every sender busy: this try starts late
			return
		}
		senders++
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *wire
			if !cfg.StdClient {
				c = new(wire)
				defer c.close()
			}
			for ok := true; ok; j, ok = <-jobs {
				try(j, c)
			}
		}()
	}
	for i := range sched {
		s := &sched[i]
		due := start.Add(s.at)
		if d := time.Until(due); d > 0 {
			if !sleepCtx(ctx, d) {
				break
			}
		}
		if !s.dup {
			s.o.first.Store(due.UnixNano())
		}
		open.Add(1)
		dispatch(&job{i: i})
	}
	open.Wait() // every job finished: no try is due any more
	close(jobs)
	wg.Wait()
	res.ended = time.Now()
	return res
}

// postWebhook delivers an order's webhook as a PSP does (delivery.next),
// waiting between its tries. The latency counts from the first try's
// slot.
func postWebhook(ctx context.Context, t *target, o *order, tries *tries) error {
	w, err := o.webhook(t)
	if err != nil {
		return err
	}
	var d delivery
	for {
		err = deliver(ctx, nil, w)
		wait, again := d.next(err, tries)
		if !again || ctx.Err() != nil || !sleepCtx(ctx, wait) {
			return err
		}
	}
}

// delivery is one webhook's tries so far.
type delivery struct{ failed, shed int }

// next says whether, and after how long, a PSP tries a webhook again
// after err: a network error or a 5xx answer twice, 100 ms apart; a 503
// with Retry-After, the ingress shedding load, after what it asks,
// doubling up to 8 s (each wait up to a quarter longer), nine times
// (about 45 s in all: PSPs go on for hours). It counts the tries it
// grants in tries.
func (d *delivery) next(err error, tries *tries) (time.Duration, bool) {
	var again retryable
	if err == nil || !errors.As(err, &again) {
		return 0, false
	}
	wait := 100 * time.Millisecond
	if again.after > 0 {
		if d.shed == 9 {
			return 0, false
		}
		// Never sooner than asked; up to a quarter later, so that the
		// webhooks shed together do not all come back together.
		wait = min(again.after<<d.shed, 8*time.Second)
		wait += rand.N(wait / 4)
		d.shed++
		tries.shed.Add(1)
	} else {
		if d.failed == 2 {
			return 0, false
		}
		d.failed++
	}
	tries.retries.Add(1)
	return wait, true
}

// tries counts a load step's tries after a first that failed, and of
// them those answered 503 with Retry-After (shed by the ingress).
type tries struct{ retries, shed atomic.Int64 }

// retryable marks a delivery failure a PSP would try again; after is the
// answer's Retry-After, if it gave one.
type retryable struct {
	error
	after time.Duration
}

func (r retryable) Unwrap() error { return r.error }

// deliver posts w once, on c's own connection when c is given and w is
// plain http (wire), else through httpClient, and says what a PSP would
// make of the answer (delivery.next).
func deliver(ctx context.Context, c *wire, w sim.Webhook) error {
	if c != nil && strings.HasPrefix(w.URL, "http://") {
		a, err := c.post(ctx, w)
		if err != nil {
			return retryable{error: err}
		}
		return a.err()
	}
	req, err := w.Request(ctx)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return retryable{error: err}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}.err()
}

// err is what the answer means to a PSP: nil for a 2xx, retryable for a
// 5xx (with the wait a 503's Retry-After asks for), final otherwise.
func (a answer) err() error {
	switch {
	case a.status >= 500:
		again := retryable{error: fmt.Errorf("ingress answered %d %s", a.status, http.StatusText(a.status))}
		if n, err := strconv.Atoi(a.retryAfter); err == nil && n > 0 && a.status == http.StatusServiceUnavailable {
			again.after = time.Duration(n) * time.Second
		}
		return again
	case a.status/100 != 2:
		return fmt.Errorf("ingress answered %d %s", a.status, http.StatusText(a.status))
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// orderCenter reads paygate.payments.v1 with its own consumer group, as
// the order center would, and records when each paid event is read.
type orderCenter struct {
	mu      sync.Mutex
	orders  map[string]*order
	foreign atomic.Int64 // paid events for orders of no run of ours
	read    atomic.Int64
	cancel  context.CancelFunc
	done    chan struct{}
}

func startOrderCenter(k cluster, group string) *orderCenter {
	ctx, cancel := context.WithCancel(context.Background())
	oc := &orderCenter{orders: map[string]*order{}, cancel: cancel, done: make(chan struct{})}
	r := k.reader(group, schemas.TopicPayments)
	go func() {
		defer close(oc.done)
		defer r.Close()
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				return
			}
			now := time.Now().UnixNano()
			oc.read.Add(1)
			var typ string
			for _, h := range m.Headers {
				if h.Key == schemas.HeaderType {
					typ = string(h.Value)
				}
			}
			if typ != schemas.TypePaymentPaid {
				continue
			}
			oc.mu.Lock()
			o := oc.orders[string(m.Key)]
			oc.mu.Unlock()
			if o == nil {
				oc.foreign.Add(1)
				continue
			}
			if o.events.Add(1) == 1 {
				o.paidAt.Store(now)
			}
			_ = r.CommitMessages(ctx, m) // asynchronous (CommitInterval): cheap
		}
	}()
	return oc
}

// watch makes the order center attribute the orders' paid events.
func (oc *orderCenter) watch(orders []*order) {
	oc.mu.Lock()
	defer oc.mu.Unlock()
	for _, o := range orders {
		oc.orders[o.id] = o
	}
}

func (oc *orderCenter) stop() {
	oc.cancel()
	<-oc.done
}

// lagSample is the callbacks group's lag at a moment.
type lagSample struct {
	At  float64 `json:"t_s"` // seconds since the load started
	Lag int64   `json:"lag"`
}

// groupLag is the number of messages of topic the group has not
// committed.
func groupLag(ctx context.Context, c *kafka.Client, group, topic string, partitions int) (int64, error) {
	end, err := endOffsets(ctx, c, topic, partitions)
	if err != nil {
		return 0, err
	}
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	com, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return 0, err
	}
	committed := map[int]int64{}
	for _, p := range com.Topics[topic] {
		committed[p.Partition] = max(p.CommittedOffset, 0)
	}
	var lag int64
	for p, last := range end {
		lag += max(last-committed[p], 0)
	}
	return lag, nil
}

// endOffsets is each partition's end offset.
func endOffsets(ctx context.Context, c *kafka.Client, topic string, partitions int) (map[int]int64, error) {
	reqs := make([]kafka.OffsetRequest, partitions)
	for i := range reqs {
		reqs[i] = kafka.LastOffsetOf(i)
	}
	resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, err
	}
	out := make(map[int]int64, partitions)
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("end offset of %s/%d: %w", topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.LastOffset
	}
	return out, nil
}
