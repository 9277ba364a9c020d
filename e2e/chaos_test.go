package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/segmentio/kafka-go"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/psp/sim"
	"github.com/paygate/paygate/schemas"
)

// TestChaos runs paygate as production does — every role in its own
// process: two ingresses, two members of each consumer group, two relays,
// two sweepers, the broker and the simulator apart (a PSP does not die
// with the gateway), on a PostgreSQL server of its own — under a steady
// load of whole payments and refunds, while it SIGKILLs members of every
// role, adds a member and removes one, restarts every role one by one,
// stops PostgreSQL for 30 s and the broker for 30 s. Then it checks what
// must hold: every paid order has exactly one distinct paid event id; no
// order is paid twice; captured minus refunded is the simulator's books;
// each refund has one final result; the outbox drains; every group's lag
// returns to 0.
//
// It takes a few minutes: `make chaos` (PAYGATE_CHAOS=1), which .ci/run
// runs after `make test`.
func TestChaos(t *testing.T) {
	if os.Getenv("PAYGATE_CHAOS") == "" {
		t.Skip("the production topology under faults runs with `make chaos` (PAYGATE_CHAOS=1)")
	}
	c := newChaos(t)
	c.startAll()
	c.logf("topology up: %d processes", c.count())

	load := c.startLoad(5)
	c.phase("warm-up", 15*time.Second)

	// SIGKILL members of every role, one at a time, each back 3 s later.
	for round := range 2 {
		for _, role := range []string{"payinit", "callbacks", "refunds", "recon", "relay", "sweep", "ingress"} {
			p := c.pick(role)
			c.logf("round %d: SIGKILL %s", round+1, p.name)
			p.signal(syscall.SIGKILL)
			c.kills.Add(1)
			c.sleep(3 * time.Second)
			p.start()
			c.sleep(2 * time.Second)
		}
	}
	// A member joins, and one leaves: two rebalances of payinit, two of
	// callbacks.
	for _, role := range []string{"payinit", "callbacks"} {
		extra := c.add(role, role+"-3")
		c.rebalances.Add(1)
		c.sleep(8 * time.Second)
		c.pick(role).stopAndWait(syscall.SIGTERM)
		c.rebalances.Add(1)
		c.sleep(4 * time.Second)
		_ = extra
	}
	// A rolling deploy: every role restarted, one process at a time.
	for _, p := range c.roles() {
		if p.stopped() {
			continue
		}
		c.logf("rolling restart: %s", p.name)
		p.stopAndWait(syscall.SIGTERM)
		p.start()
		c.sleep(1500 * time.Millisecond)
	}
	// PostgreSQL down for 30 s.
	c.logf("stopping PostgreSQL for 30s")
	c.pg.stop(t)
	c.sleep(30 * time.Second)
	c.pg.start(t)
	c.pgBack = time.Now()
	c.phase("after PostgreSQL came back", 20*time.Second)
	// The broker down for 30 s.
	c.logf("stopping the broker for 30s")
	stopping := time.Now()
	c.broker.stopAndWait(syscall.SIGTERM)
	c.logf("the broker stopped in %s", time.Since(stopping).Round(10*time.Millisecond))
	c.sleep(30 * time.Second)
	c.broker.start()
	c.waitListening(c.brokers[0], time.Minute)
	c.brokerBack = time.Now()
	c.phase("after the broker came back", 20*time.Second)

	load.stop()
	c.logf("load stopped: %s", load.summary())
	c.drain(load, 5*time.Minute)
	c.check(load)
}

// chaos is the topology and what happened to it.
type chaos struct {
	t          *testing.T
	bin        string
	dir        string
	pg         *privatePG
	env        []string
	broker     *process
	sim        *process
	mu         sync.Mutex
	procs      []*process
	ingresses  []string // API listeners
	publics    []string
	admins     []string
	simURL     string
	started    time.Time
	kills      atomic.Int64
	rebalances atomic.Int64
	pgBack     time.Time
	brokerBack time.Time
	db         *sql.DB
	brokers    []string
}

func newChaos(t *testing.T) *chaos {
	dir, err := os.MkdirTemp("", "paygate-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &chaos{t: t, dir: dir, started: time.Now()}
	c.bin = filepath.Join(dir, "paygate")
	build := exec.Command("go", "build", "-o", c.bin, "../cmd/paygate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build paygate: %v\n%s", err, out)
	}
	c.pg = startPrivatePG(t, dir)
	ports := chaosPorts(t, 8)
	brokerAddr, simAddr := ports[0], ports[1]
	// Each ingress: its public listener (PSPs, browsers), its API
	// listener (the mall), its admin listener.
	c.publics = []string{ports[2], ports[3]}
	c.ingresses = []string{ports[4], ports[5]}
	c.admins = []string{ports[6], ports[7]}
	c.brokers = []string{brokerAddr}
	c.simURL = "http://" + simAddr
	dbURL := c.pg.url("paygate")
	c.env = []string{
		"DATABASE_URL=" + dbURL,
		"KAFKA_BROKERS=" + brokerAddr,
		"PAYGATE_SIM_ADDR=" + simAddr,
		"PAYGATE_PUBLIC_URL=http://" + c.publics[0],
		"PAYGATE_PARTITIONS=8",
		"PAYGATE_LOG_FORMAT=json",
		"PAYGATE_LOG_LEVEL=warn",
		"PAYGATE_REFUND_MIN_BACKOFF=200ms",
		"PAYGATE_REFUND_MAX_BACKOFF=2s",
	}
	c.broker = c.process("broker", []string{"PAYGATE_KAFKA_ADDR=" + brokerAddr, "PAYGATE_DATA_DIR=" + filepath.Join(dir, "kafka")}, "broker")
	c.sim = c.process("sim", nil, "sim")
	c.db, err = sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.db.Close() })
	return c
}

func (c *chaos) logf(format string, a ...any) {
	c.t.Logf("[%6.1fs] %s", time.Since(c.started).Seconds(), fmt.Sprintf(format, a...))
}

func (c *chaos) sleep(d time.Duration) { time.Sleep(d) } // pacing the faults, not waiting for a result

func (c *chaos) phase(what string, d time.Duration) {
	c.logf("%s: %s", what, d)
	c.sleep(d)
}

// startAll starts the broker, creates the schema and the topics, then
// the simulator and every role.
func (c *chaos) startAll() {
	c.broker.start()
	c.waitListening(c.brokers[0], 30*time.Second)
	migrate := exec.Command(c.bin, "migrate")
	migrate.Env = append(os.Environ(), c.env...)
	if out, err := migrate.CombinedOutput(); err != nil {
		c.t.Fatalf("migrate: %v\n%s", err, out)
	}
	c.sim.start()
	c.waitListening(strings.TrimPrefix(c.simURL, "http://"), 30*time.Second)
	for i, addr := range c.ingresses {
		c.add("ingress", fmt.Sprintf("ingress-%d", i+1), "PAYGATE_HTTP_ADDR="+c.publics[i], "PAYGATE_API_ADDR="+addr, "PAYGATE_ADMIN_ADDR="+c.admins[i])
	}
	for _, role := range []string{"payinit", "callbacks", "refunds", "recon", "relay", "sweep"} {
		for i := 1; i <= 2; i++ {
			c.add(role, fmt.Sprintf("%s-%d", role, i))
		}
	}
	for _, addr := range c.ingresses {
		c.waitListening(addr, 60*time.Second)
	}
}

func (c *chaos) waitListening(addr string, within time.Duration) {
	deadline := time.Now().Add(within)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("nothing listens on %s after %s", addr, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// add starts a member of a role.
func (c *chaos) add(role, name string, env ...string) *process {
	args := []string{role}
	switch role {
	case "payinit", "callbacks", "refunds", "recon":
		args = []string{"consume", role}
	}
	p := c.process(name, env, args...)
	p.role = role
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	p.start()
	return p
}

// roles are the role processes, in start order.
func (c *chaos) roles() []*process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*process(nil), c.procs...)
}

func (c *chaos) count() int { return len(c.roles()) + 2 }

// pick is a running member of role, at random.
func (c *chaos) pick(role string) *process {
	var running []*process
	for _, p := range c.roles() {
		if p.role == role && !p.stopped() {
			running = append(running, p)
		}
	}
	if len(running) == 0 {
		c.t.Fatalf("no %s is running", role)
	}
	return running[rand.IntN(len(running))]
}

// process is one paygate process of the topology.
type process struct {
	c    *chaos
	name string
	role string
	args []string
	env  []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

func (c *chaos) process(name string, env []string, args ...string) *process {
	f, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		c.t.Fatal(err)
	}
	p := &process{c: c, name: name, args: args, env: env, log: f}
	c.t.Cleanup(func() {
		p.stopAndWait(syscall.SIGKILL)
		f.Close()
	})
	return p
}

func (p *process) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.c.bin, p.args...)
	cmd.Env = append(append(os.Environ(), p.c.env...), p.env...)
	if p.name == "broker" {
		// The broker runs the embedded broker: no KAFKA_BROKERS.
		cmd.Env = append(cmd.Env, "KAFKA_BROKERS=")
	}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		p.c.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
}

func (p *process) stopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) signal(s syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(s)
	}
	if p.done != nil {
		<-p.done
	}
}

// stopAndWait signals the process and waits for it to exit (a SIGTERM
// that takes over 30 s is followed by a SIGKILL).
func (p *process) stopAndWait(s syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(s)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// privatePG is a PostgreSQL server of the test's own, so that it can be
// stopped without stopping anyone else's.
type privatePG struct {
	bin, data, port string
	asPostgres      bool
}

func startPrivatePG(t *testing.T, dir string) *privatePG {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		t.Skip("no PostgreSQL server binaries (pg_ctl) to run a private server with")
	}
	sort.Strings(bins)
	pg := &privatePG{bin: filepath.Dir(bins[len(bins)-1]), data: filepath.Join(dir, "pg"), port: strings.Split(chaosPorts(t, 1)[0], ":")[1]}
	if u, err := user.Current(); err == nil && u.Uid == "0" {
		// initdb refuses root: the server runs as postgres.
		pg.asPostgres = true
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(pg.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if pg.asPostgres {
		if out, err := exec.Command("chown", "postgres:postgres", pg.data).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	pg.run(t, "initdb", "-D", pg.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
	pg.start(t)
	t.Cleanup(func() { pg.ctl(t, "stop", "-m", "immediate") })
	return pg
}

func (pg *privatePG) run(t *testing.T, name string, args ...string) {
	t.Helper()
	path := filepath.Join(pg.bin, name)
	var cmd *exec.Cmd
	if pg.asPostgres {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func (pg *privatePG) ctl(t *testing.T, args ...string) {
	pg.run(t, "pg_ctl", append([]string{"-D", pg.data, "-w", "-t", "60"}, args...)...)
}

func (pg *privatePG) start(t *testing.T) {
	pg.ctl(t, "-l", filepath.Join(pg.data, "..", "pg.log"), "-o",
		fmt.Sprintf("-p %s -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=400", pg.port), "start")
}

func (pg *privatePG) stop(t *testing.T) { pg.ctl(t, "stop", "-m", "fast") }

func (pg *privatePG) url(db string) string {
	return "postgres://postgres@127.0.0.1:" + pg.port + "/" + db + "?sslmode=disable"
}

func chaosPorts(t *testing.T, n int) []string {
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// chaosLoad is the mall and its buyers: whole payments at a steady rate,
// each retried as a mall retries (the same Idempotency-Key, the other
// ingress) until it is accepted, its session read, the buyer's click at
// the simulator, and for one paid order in five a partial refund.
type chaosLoad struct {
	c       *chaos
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	sent    int
	clicked map[string]int64 // order → amount
	refunds map[string]int64 // refund id → amount
	retries atomic.Int64
	failed  []string
}

func (c *chaos) startLoad(rate int) *chaosLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &chaosLoad{c: c, cancel: cancel, clicked: map[string]int64{}, refunds: map[string]int64{}}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			l.mu.Lock()
			l.sent++
			l.mu.Unlock()
			l.wg.Add(1)
			go func(i int) {
				defer l.wg.Done()
				if err := l.pay(i); err != nil {
					l.mu.Lock()
					l.failed = append(l.failed, err.Error())
					l.mu.Unlock()
				}
			}(i)
		}
	}()
	return l
}

func (l *chaosLoad) stop() {
	l.cancel()
	l.wg.Wait()
}

func (l *chaosLoad) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d pay requests sent, %d clicked, %d refunds requested, %d retries, %d gave up", l.sent, len(l.clicked), len(l.refunds), l.retries.Load(), len(l.failed))
}

var chaosClient = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// post sends a signed request to the ingresses in turn until one accepts
// it (202), for up to 3 minutes: what a mall does through an outage.
func (l *chaosLoad) post(path string, body []byte, key string) error {
	deadline := time.Now().Add(3 * time.Minute)
	for try := 0; ; try++ {
		addr := l.c.ingresses[try%len(l.c.ingresses)]
		req, _ := http.NewRequest("POST", "http://"+addr+path, bytes.NewReader(body))
		req.Header = signed(body, time.Now(), app.DevMallSecret)
		req.Header.Set("Idempotency-Key", key)
		resp, err := chaosClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusAccepted:
				return nil
			case resp.StatusCode < 500:
				return fmt.Errorf("%s %s: %d %s", path, key, resp.StatusCode, b)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s %s: not accepted within 3 minutes (last: %v)", path, key, err)
		}
		l.retries.Add(1)
		time.Sleep(time.Duration(200+rand.IntN(300)) * time.Millisecond)
	}
}

// get reads an order, through either ingress, until until() holds.
func (l *chaosLoad) get(order string, within time.Duration, until func(schemas.Payment) bool) (schemas.Payment, error) {
	deadline := time.Now().Add(within)
	var p schemas.Payment
	for try := 0; ; try++ {
		addr := l.c.ingresses[try%len(l.c.ingresses)]
		target := "/v1/payments/" + order + "?wait=2s"
		req, _ := http.NewRequest("GET", "http://"+addr+target, nil)
		req.Header = signedRead("GET", target, time.Now(), app.DevMallSecret)
		resp, err := chaosClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && json.Unmarshal(b, &p) == nil && until(p) {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("order %s: not as awaited within %s (last %+v, %v)", order, within, p, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (l *chaosLoad) pay(i int) error {
	order := fmt.Sprintf("CH-%06d", i)
	amount := int64(1000 + rand.IntN(4000))
	b, _ := json.Marshal(schemas.PayRequest{OrderID: order, Amount: amount, Currency: "USD", Country: "US", Method: "card",
		Buyer:      schemas.Buyer{ID: "u" + strconv.Itoa(i%50)},
		ReturnURLs: schemas.ReturnURLs{Success: "https://shop.example/ok", Failure: "https://shop.example/fail", Pending: "https://shop.example/wait"}})
	if err := l.post("/v1/payments", b, "pay-"+order); err != nil {
		return err
	}
	p, err := l.get(order, 3*time.Minute, func(p schemas.Payment) bool {
		return len(p.Attempts) > 0 && p.Attempts[len(p.Attempts)-1].PayURL != ""
	})
	if err != nil {
		return err
	}
	if i%20 == 7 {
		return nil // abandoned: the buyer never pays
	}
	resp, err := sim.Pay(context.Background(), chaosClient, p.Attempts[len(p.Attempts)-1].PayURL, url.Values{"result": {"success"}})
	if err != nil {
		return fmt.Errorf("click %s: %w", order, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("click %s: %s", order, resp.Status)
	}
	l.mu.Lock()
	l.clicked[order] = amount
	l.mu.Unlock()
	if i%5 != 0 {
		return nil
	}
	if _, err := l.get(order, 3*time.Minute, func(p schemas.Payment) bool { return p.Status == "paid" }); err != nil {
		return err
	}
	refundID := "RF-" + order
	rb, _ := json.Marshal(schemas.RefundRequest{RefundID: refundID, OrderID: order, Amount: amount / 2, Currency: "USD", Reason: "chaos: a partial refund"})
	if err := l.post("/v1/refunds", rb, "refund-"+refundID); err != nil {
		return err
	}
	l.mu.Lock()
	l.refunds[refundID] = amount / 2
	l.mu.Unlock()
	return nil
}

// drain waits until every clicked order is paid, every refund final,
// the outbox published and every group's lag 0.
func (c *chaos) drain(l *chaosLoad, within time.Duration) {
	start := time.Now()
	deadline := start.Add(within)
	for {
		var unpaid, open, unpublished int
		orders := make([]string, 0, len(l.clicked))
		for o := range l.clicked {
			orders = append(orders, o)
		}
		refunds := make([]string, 0, len(l.refunds))
		for r := range l.refunds {
			refunds = append(refunds, r)
		}
		err := c.db.QueryRow(`SELECT
		    (SELECT count(*) FROM unnest($1::text[]) o LEFT JOIN orders x ON x.order_id = o WHERE x.status IS NULL OR x.status NOT IN ('paid','partially_refunded','refunded')),
		    (SELECT count(*) FROM unnest($2::text[]) r LEFT JOIN refunds x ON x.refund_id = r WHERE x.status IS NULL OR x.status NOT IN ('succeeded','failed')),
		    (SELECT count(*) FROM outbox WHERE published_at IS NULL)`, pq.Array(orders), pq.Array(refunds)).Scan(&unpaid, &open, &unpublished)
		lag := c.lag()
		if err == nil && unpaid == 0 && open == 0 && unpublished == 0 && lag == 0 {
			c.logf("drained in %s", time.Since(start).Round(100*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("not drained after %s: %d clicked orders unpaid, %d refunds not final, %d outbox events unpublished, lag %d (%v)",
				within, unpaid, open, unpublished, lag, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// lag is the consumer groups' lag, summed; -1 if it cannot be read.
func (c *chaos) lag() int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(c.brokers...), Timeout: 10 * time.Second}
	var total int64
	for group, topic := range map[string]string{"payinit": schemas.TopicPayRequests, "callbacks": schemas.TopicPSPCallbacks,
		"refunds": schemas.TopicRefundRequests, "recon": schemas.TopicReconciliation} {
		parts := make([]int, 8)
		for i := range parts {
			parts[i] = i
		}
		var reqs []kafka.OffsetRequest
		for _, p := range parts {
			reqs = append(reqs, kafka.LastOffsetOf(p))
		}
		end, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
		if err != nil {
			return -1
		}
		com, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
		if err != nil {
			return -1
		}
		committed := map[int]int64{}
		for _, p := range com.Topics[topic] {
			committed[p.Partition] = max(p.CommittedOffset, 0)
		}
		for _, p := range end.Topics[topic] {
			total += max(p.LastOffset-committed[p.Partition], 0)
		}
	}
	return total
}

// topicEvents reads a whole topic: per key, the distinct ce_ids of each
// ce_type.
func (c *chaos) topicEvents(topic string) map[string]map[string]map[string]bool {
	out := map[string]map[string]map[string]bool{}
	cl := &kafka.Client{Addr: kafka.TCP(c.brokers...), Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for p := range 8 {
		end, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(p)}}})
		if err != nil {
			c.t.Fatal(err)
		}
		last := end.Topics[topic][0].LastOffset
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.brokers, Topic: topic, Partition: p, MaxWait: 200 * time.Millisecond})
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				c.t.Fatalf("read %s/%d: %v", topic, p, err)
			}
			var id, typ string
			for _, h := range m.Headers {
				switch h.Key {
				case schemas.HeaderID:
					id = string(h.Value)
				case schemas.HeaderType:
					typ = string(h.Value)
				}
			}
			k := string(m.Key)
			if out[k] == nil {
				out[k] = map[string]map[string]bool{}
			}
			if out[k][typ] == nil {
				out[k][typ] = map[string]bool{}
			}
			out[k][typ][id] = true
			if m.Offset+1 >= last {
				break
			}
		}
		r.Close()
	}
	return out
}

// check asserts the invariants and prints the figures.
func (c *chaos) check(l *chaosLoad) {
	t := c.t
	if len(l.failed) > 0 {
		t.Errorf("%d payments the load gave up on (first: %s)", len(l.failed), l.failed[0])
	}
	// Every clicked order is paid, with exactly one distinct paid event id;
	// no other order has one.
	payments := c.topicEvents(schemas.TopicPayments)
	var paidOrders int
	rows, err := c.db.Query(`SELECT order_id FROM orders WHERE status IN ('paid','partially_refunded','refunded')`)
	if err != nil {
		t.Fatal(err)
	}
	paid := map[string]bool{}
	for rows.Next() {
		var o string
		_ = rows.Scan(&o)
		paid[o] = true
		paidOrders++
	}
	rows.Close()
	for o := range l.clicked {
		if !paid[o] {
			t.Errorf("order %s was clicked and is not paid", o)
		}
	}
	for o := range paid {
		if n := len(payments[o][schemas.TypePaymentPaid]); n != 1 {
			t.Errorf("order %s has %d distinct paid event ids, want 1", o, n)
		}
	}
	for o, types := range payments {
		if len(types[schemas.TypePaymentPaid]) > 0 && !paid[o] {
			t.Errorf("order %s has a paid event and is not paid", o)
		}
	}
	// The simulator's books: no order paid twice unless refunded in
	// whole; captured minus refunded is ours.
	resp, err := http.Get(c.simURL + "/control/ledger")
	if err != nil {
		t.Fatal(err)
	}
	var ledger struct {
		Payments []struct {
			ID          string `json:"id"`
			MerchantRef string `json:"merchant_ref"`
			Status      string `json:"status"`
			PaidAmount  int64  `json:"paid_amount"`
		} `json:"payments"`
		Refunds []struct {
			PaymentID string `json:"payment_id"`
			Status    string `json:"status"`
			Amount    int64  `json:"amount"`
		} `json:"refunds"`
	}
	err = json.NewDecoder(resp.Body).Decode(&ledger)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var simCaptured, simRefunded int64
	refundedOf := map[string]int64{}
	for _, r := range ledger.Refunds {
		if r.Status == "succeeded" {
			simRefunded += r.Amount
			refundedOf[r.PaymentID] += r.Amount
		}
	}
	succeededBy := map[string][]string{} // order → sim payment ids
	for _, p := range ledger.Payments {
		if p.Status != "succeeded" {
			continue
		}
		simCaptured += p.PaidAmount
		var order string
		if err := c.db.QueryRow(`SELECT order_id FROM attempts WHERE transaction_code = $1`, p.MerchantRef).Scan(&order); err != nil {
			t.Errorf("the simulator has a payment %s (%s) paygate has no attempt for: %v", p.ID, p.MerchantRef, err)
			continue
		}
		succeededBy[order] = append(succeededBy[order], p.ID)
	}
	for o, ids := range succeededBy {
		if len(ids) > 1 {
			kept := 0
			for _, id := range ids {
				var amount int64
				for _, p := range ledger.Payments {
					if p.ID == id {
						amount = p.PaidAmount
					}
				}
				if refundedOf[id] < amount {
					kept++
				}
			}
			if kept > 1 {
				t.Errorf("order %s was paid %d times at the simulator and more than one payment was kept", o, len(ids))
			}
		}
	}
	var ourCaptured, ourRefunded int64
	if err := c.db.QueryRow(`SELECT coalesce(sum(amount), 0) FROM attempts WHERE status = 'paid'`).Scan(&ourCaptured); err != nil {
		t.Fatal(err)
	}
	if err := c.db.QueryRow(`SELECT coalesce(sum(amount), 0) FROM refunds WHERE status = 'succeeded'`).Scan(&ourRefunded); err != nil {
		t.Fatal(err)
	}
	if ourCaptured-ourRefunded != simCaptured-simRefunded {
		t.Errorf("captured minus refunded: paygate %d - %d = %d, the simulator %d - %d = %d",
			ourCaptured, ourRefunded, ourCaptured-ourRefunded, simCaptured, simRefunded, simCaptured-simRefunded)
	}
	// Each refund one final result, published once.
	results := c.topicEvents(schemas.TopicRefundResults)
	var finals int
	if err := c.db.QueryRow(`SELECT count(*) FROM refunds WHERE status IN ('succeeded','failed')`).Scan(&finals); err != nil {
		t.Fatal(err)
	}
	published := 0
	for _, types := range results {
		for _, ids := range types {
			published += len(ids)
		}
	}
	if published != finals {
		t.Errorf("%d refunds are final and %d distinct refund results were published", finals, published)
	}
	for rf := range l.refunds {
		var status string
		if err := c.db.QueryRow(`SELECT status FROM refunds WHERE refund_id = $1`, rf).Scan(&status); err != nil || (status != "succeeded" && status != "failed") {
			t.Errorf("refund %s: %q (%v)", rf, status, err)
		}
	}
	c.logf("sent %d pay requests; %d paid orders; %d refunds (%d final); %d SIGKILLs; %d rebalances; %d mall retries; "+
		"captured %d, refunded %d at both ends", l.sent, paidOrders, len(l.refunds), finals, c.kills.Load(), c.rebalances.Load(),
		l.retries.Load(), simCaptured, simRefunded)
	c.logf("recovery: first payment paid %s after PostgreSQL came back, %s after the broker did",
		c.firstPaidAfter(c.pgBack), c.firstPaidAfter(c.brokerBack))
}

// firstPaidAfter is how long after t the first order was paid.
func (c *chaos) firstPaidAfter(t time.Time) time.Duration {
	var at time.Time
	if err := c.db.QueryRow(`SELECT min(paid_at) FROM orders WHERE paid_at >= $1`, t).Scan(&at); err != nil {
		return -1
	}
	return at.Sub(t).Round(10 * time.Millisecond)
}

// TestBrokerDiskFull: the broker's disk fills while pay requests come in.
// The broker refuses what it cannot store, so the ingress answers 503
// with Retry-After — never 202 for a request it did not keep — and once
// space is freed the mall's retries are accepted, each once, and paid
// for as usual. A data directory the broker cannot write stops it at
// start with an error that says so. (Needs root, to mount a small tmpfs:
// part of `make chaos`.)
func TestBrokerDiskFull(t *testing.T) {
	if os.Getenv("PAYGATE_CHAOS") == "" {
		t.Skip("runs with `make chaos` (PAYGATE_CHAOS=1)")
	}
	dir, err := os.MkdirTemp("", "paygate-disk-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	c := &chaos{t: t, dir: t.TempDir(), started: time.Now()}
	c.bin = filepath.Join(c.dir, "paygate")
	if out, err := exec.Command("go", "build", "-o", c.bin, "../cmd/paygate").CombinedOutput(); err != nil {
		t.Fatalf("build paygate: %v\n%s", err, out)
	}

	// An unwritable data directory: the broker does not start, and says why.
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+i", locked).CombinedOutput(); err == nil {
		cmd := exec.Command(c.bin, "broker")
		cmd.Env = append(os.Environ(), "KAFKA_BROKERS=", "PAYGATE_KAFKA_ADDR="+chaosPorts(t, 1)[0], "PAYGATE_DATA_DIR="+filepath.Join(locked, "kafka"))
		out, err := cmd.CombinedOutput()
		_ = exec.Command("chattr", "-i", locked).Run()
		if err == nil || !strings.Contains(string(out), "operation not permitted") || !strings.Contains(string(out), "start embedded broker") {
			t.Errorf("a broker on an unwritable data directory: %v\n%s", err, out)
		}
	} else {
		t.Logf("chattr not available (%v %s): the unwritable start is not tried", err, out)
	}

	addr := chaosPorts(t, 1)[0]
	c.brokers = []string{addr}
	c.broker = c.process("broker", []string{"KAFKA_BROKERS=", "PAYGATE_KAFKA_ADDR=" + addr, "PAYGATE_DATA_DIR=" + filepath.Join(dir, "kafka"),
		"PAYGATE_PARTITIONS=2", "PAYGATE_LOG_LEVEL=warn"}, "broker")
	c.broker.start()
	c.waitListening(addr, 30*time.Second)
	cfg := testConfig(t)
	cfg.Brokers = []string{addr}
	cfg.Topics.Partitions = 2
	e := startWith(t, cfg, app.Roles{Migrate: true, Sim: true, Ingress: true, Payinit: true, Callbacks: true, Relay: true})

	pay := func(order string) (int, http.Header, []byte) {
		body := payBody(order, 1999)
		h := signed(body, time.Now(), app.DevMallSecret)
		h.Set("Idempotency-Key", "k-"+order)
		req, _ := http.NewRequest("POST", e.app.APIURL+"/v1/payments", bytes.NewReader(body))
		req.Header = h
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	for i := range 3 {
		if code, _, b := pay(fmt.Sprintf("DF-OK-%d", i)); code != http.StatusAccepted {
			t.Fatalf("before the disk filled: %d %s", code, b)
		}
	}
	// Fill the disk.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			break
		}
	}
	filler.Close()
	var refused []string
	for i := range 20 {
		order := fmt.Sprintf("DF-FULL-%d", i)
		code, h, b := pay(order)
		switch code {
		case http.StatusAccepted:
			// A record small enough for the space left: kept.
		case http.StatusServiceUnavailable:
			if h.Get("Retry-After") == "" || !strings.Contains(string(b), "retry") {
				t.Errorf("a 503 without Retry-After or a word of what to do: %v %s", h, b)
			}
			refused = append(refused, order)
		default:
			t.Fatalf("with the broker's disk full: %d %s; want 202 or 503", code, b)
		}
	}
	if len(refused) == 0 {
		t.Fatal("20 pay requests on a full disk were all accepted: the broker kept what it could not store?")
	}
	c.logf("%d of 20 pay requests refused with 503 while the disk was full", len(refused))
	// Free the space: the mall's retries (same Idempotency-Key) go in.
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "the refused pay requests accepted once space was freed", func() bool {
		for len(refused) > 0 {
			if code, _, _ := pay(refused[0]); code != http.StatusAccepted {
				return false
			}
			refused = refused[1:]
		}
		return true
	})
	for i := range 20 {
		e.waitSession(fmt.Sprintf("DF-FULL-%d", i), 0)
	}
	if n := e.scalar(`SELECT count(*) FROM attempts WHERE order_id LIKE 'DF-%'`); n != 23 {
		t.Fatalf("%d attempts for 23 pay requests: one each, no more, no fewer", n)
	}
}
