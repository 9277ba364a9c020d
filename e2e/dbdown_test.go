package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/schemas"
)

// pgProxy is a TCP proxy between paygate and PostgreSQL that a test can
// cut, as a database that goes away: every connection it carries is
// dropped, and new ones are closed as soon as they are accepted, until it
// is restored. The shared server itself is never touched.
type pgProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
}

func newPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
	})
	return p
}

func (p *pgProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.mu.Unlock()
		go p.pipe(c)
	}
}

func (p *pgProxy) pipe(c net.Conn) {
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		c.Close()
		s.Close()
		return
	}
	p.conns[c], p.conns[s] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(s, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, s); done <- struct{}{} }()
	<-done
	c.Close()
	s.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

// Cut drops every connection and refuses new ones.
func (p *pgProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore lets connections through again.
func (p *pgProxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// via is databaseURL with its host and port replaced by the proxy's.
func (p *pgProxy) via(t *testing.T, databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// TestDatabaseOutageUnderLoad: PostgreSQL goes away for a while (a TCP
// proxy between paygate and it is cut) while the mall and finance keep
// sending pay requests (each with its Idempotency-Key) and refund
// requests. The ingress takes them into Kafka all the same: every
// request is answered 202, or 503 with Retry-After and then sent again,
// never anything else; reads are 503 while the database is gone. Once it
// is back, every accepted pay request is an order with exactly one
// attempt, every accepted refund is one refund at paygate and at the PSP,
// and nothing is doubled.
func TestDatabaseOutageUnderLoad(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	direct := cfg.Store.URL
	u, _ := url.Parse(direct)
	proxy := newPGProxy(t, u.Host)
	cfg.Store.URL = proxy.via(t, direct)
	e := startWith(t, cfg, app.All)
	// The test reads the database past the proxy.
	db, err := sql.Open("postgres", direct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db

	const paid, payAmount = 4, 1000
	codes := make([]string, paid)
	for i := range paid {
		codes[i] = e.paidOrder(orderID("DBD-PAID", i), payAmount).TransactionCode
	}

	var (
		mu        sync.Mutex
		statuses  = map[int]int{}
		bad       []string
		payOK     []string // order ids accepted
		refundOK  []string // refund ids accepted
		duringCut atomic.Int64
		cut       atomic.Bool
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	// send posts one request until it is accepted: a 503 must carry
	// Retry-After, and is sent again (the same body, the same key).
	send := func(path string, body []byte, key string) bool {
		for {
			h := signed(body, time.Now(), app.DevMallSecret)
			if key != "" {
				h.Set("Idempotency-Key", key)
			}
			req, _ := http.NewRequest(http.MethodPost, e.app.APIURL+path, strings.NewReader(string(body)))
			req.Header = h
			resp, err := noRedirect.Do(req)
			if err != nil {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s: %v", path, err))
				mu.Unlock()
				return false
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			switch {
			case resp.StatusCode == http.StatusAccepted:
				mu.Unlock()
				if cut.Load() {
					duringCut.Add(1)
				}
				return true
			case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
				mu.Unlock()
			default:
				bad = append(bad, fmt.Sprintf("%s: %d %s (Retry-After %q)", path, resp.StatusCode, b, resp.Header.Get("Retry-After")))
				mu.Unlock()
				return false
			}
			select {
			case <-stop:
				return false
			case <-time.After(100 * time.Millisecond): // a client's retry delay, not a wait for a result
			}
		}
	}
	wg.Add(2)
	go func() { // the mall: one new order after another
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			id := orderID("DBD", i)
			if send("/v1/payments", payBody(id, 500+int64(i)), "dbd-"+id) {
				mu.Lock()
				payOK = append(payOK, id)
				mu.Unlock()
			}
		}
	}()
	go func() { // finance: partial refunds of the paid orders, in turn
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < paid*9; i++ { // 9 × 100 of each 1000
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			id := fmt.Sprintf("dbd-r-%03d", i)
			if send("/v1/refunds", refundBody(id, orderID("DBD-PAID", i%paid), "", 100, "partial"), "") {
				mu.Lock()
				refundOK = append(refundOK, id)
				mu.Unlock()
			}
		}
	}()
	accepted := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(payOK) + len(refundOK)
	}
	e.eventually(20*time.Second, "requests accepted before the outage", func() bool { return accepted() >= 10 })

	proxy.Cut()
	cut.Store(true)
	cutAt := time.Now()
	// While the database is away, reads say so (503, Retry-After), and
	// the requests keep being taken.
	e.eventually(20*time.Second, "a read answered 503 during the outage", func() bool {
		code, b := e.do(http.MethodGet, "/v1/payments/"+orderID("DBD-PAID", 0), nil, nil)
		if code != http.StatusServiceUnavailable && code != http.StatusOK {
			t.Errorf("read during the outage: %d %s", code, b)
		}
		return code == http.StatusServiceUnavailable
	})
	e.eventually(30*time.Second, "requests accepted during the outage", func() bool {
		return duringCut.Load() >= 30 && time.Since(cutAt) >= 3*time.Second
	})
	cut.Store(false)
	proxy.Restore()
	outage := time.Since(cutAt)
	before := accepted()
	e.eventually(30*time.Second, "requests accepted after the outage", func() bool { return accepted() >= before+10 })
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("outage %s: %d pay and %d refund requests accepted, %d of them during it; answers %v",
		outage.Round(time.Millisecond), len(payOK), len(refundOK), duringCut.Load(), statuses)
	if len(bad) > 0 {
		t.Fatalf("%d requests answered other than 202 or 503 with Retry-After, e.g. %s", len(bad), bad[0])
	}
	// Nothing lost: every accepted pay request is an order with an
	// attempt, every accepted refund a final refund.
	e.eventually(60*time.Second, "every accepted pay request an order with its attempt", func() bool {
		return e.scalar(`SELECT count(DISTINCT order_id) FROM attempts WHERE order_id LIKE 'DBD-0%' AND status <> 'created'`) == int64(len(payOK))
	})
	e.eventually(60*time.Second, "every accepted refund final", func() bool {
		return e.scalar(`SELECT count(*) FROM refunds WHERE refund_id LIKE 'dbd-r-%' AND status IN ('succeeded', 'failed')`) == int64(len(refundOK))
	})
	e.quiet(60 * time.Second)
	// Nothing doubled.
	if n := e.scalar(`SELECT count(*) FROM (SELECT order_id FROM attempts WHERE order_id LIKE 'DBD-%' GROUP BY order_id HAVING count(*) > 1) d`); n != 0 {
		t.Errorf("%d orders with more than one attempt", n)
	}
	if n := e.scalar(`SELECT count(*) FROM orders WHERE order_id LIKE 'DBD-0%'`); n != int64(len(payOK)) {
		t.Errorf("%d orders, %d pay requests accepted", n, len(payOK))
	}
	if n := e.scalar(`SELECT count(*) FROM refunds WHERE refund_id LIKE 'dbd-r-%' AND status = 'succeeded'`); n != int64(len(refundOK)) {
		t.Errorf("%d refunds succeeded, %d accepted (each fits what was paid)", n, len(refundOK))
	}
	for i, code := range codes {
		var want int64
		for _, id := range refundOK {
			if n, _ := strconv.Atoi(strings.TrimPrefix(id, "dbd-r-")); n%paid == i {
				want += 100
			}
		}
		var got int64
		for _, r := range e.ledgerRefunds(code) {
			got += r.Amount.Minor()
		}
		if got != want {
			t.Errorf("the simulator refunded %d of %s, paygate accepted refunds of %d", got, code, want)
		}
	}
	code, b := e.do(http.MethodGet, "/v1/payments/"+orderID("DBD-PAID", 0), nil, nil)
	var p schemas.Payment
	if code != http.StatusOK || json.Unmarshal(b, &p) != nil || len(p.Refunds) == 0 {
		t.Errorf("after the outage, GET: %d %s", code, b)
	}
}
