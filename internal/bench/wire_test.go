package bench

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/psp/sim"
)

// rawServer answers each request it reads with the next of answers,
// written as given, and records what it read and on which connection.
// An answer of "" closes the connection without a word; one that ends in
// "|close" is written without that, then the connection is closed.
type rawServer struct {
	ln      net.Listener
	mu      sync.Mutex
	answers []string
	got     []*http.Request
	bodies  []string
	conns   []int // the connection (numbered from 1) of each request
}

func newRawServer(t *testing.T, answers ...string) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, answers: answers}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for n := 1; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c, n)
		}
	}()
	return s
}

func (s *rawServer) serve(c net.Conn, n int) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got, s.bodies, s.conns = append(s.got, r), append(s.bodies, string(b)), append(s.conns, n)
		var a string
		if len(s.answers) > 0 {
			a, s.answers = s.answers[0], s.answers[1:]
		}
		s.mu.Unlock()
		if a == "" {
			return
		}
		a, closing := strings.CutSuffix(a, "|close")
		if _, err := io.WriteString(c, a); err != nil || closing {
			return
		}
	}
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() + "/v1/callbacks/sim?x=1" }

// TestWireSpeaksHTTP: the request is the webhook's POST (path, query,
// Host, its headers, Content-Length, body); answers framed by
// Content-Length, by chunks, or with Connection: close are read to
// their end, with their status and Retry-After; a connection is reused
// until the server says close.
func TestWireSpeaksHTTP(t *testing.T) {
	s := newRawServer(t,
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n3\r\nabc\r\n0\r\nTrailer: t\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
	)
	w := sim.Webhook{URL: s.url(), Header: http.Header{"Sim-Signature": {"t=1,v1=ab"}, "Content-Type": {"application/json"}}, Body: []byte(`{"a":1}`)}
	var c wire
	defer c.close()
	want := []answer{{status: 200}, {status: 503, retryAfter: "1"}, {status: 204}, {status: 400}}
	for i, wa := range want {
		a, err := c.post(context.Background(), w)
		if err != nil || !reflect.DeepEqual(a, wa) {
			t.Fatalf("answer %d: %+v, %v; want %+v", i, a, err, wa)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if got := s.conns; len(got) != 4 || got[0] != 1 || got[1] != 1 || got[2] != 1 || got[3] != 2 {
		t.Errorf("requests went on connections %v; want 1, 1, 1 and, after Connection: close, 2", got)
	}
	r := s.got[0]
	if r.Method != http.MethodPost || r.URL.RequestURI() != "/v1/callbacks/sim?x=1" || r.Host != s.ln.Addr().String() ||
		r.ContentLength != 7 || s.bodies[0] != `{"a":1}` || r.Header.Get("Sim-Signature") != "t=1,v1=ab" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("the server read %s %s (Host %s, Content-Length %d, headers %v), body %q", r.Method, r.URL.RequestURI(), r.Host, r.ContentLength, r.Header, s.bodies[0])
	}
}

// TestWireReadsAndFollows: a GET goes without a body or Content-Length,
// and its answer's body is kept when asked for, whether framed by
// Content-Length or by chunks; a form POST's Location is read (the
// buyer's click at the pay page, answered 303).
func TestWireReadsAndFollows(t *testing.T) {
	s := newRawServer(t,
		"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"a\":\"bcd\"}",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"b\r\n3\r\n\":1\r\n1\r\n}\r\n0\r\n\r\n",
		"HTTP/1.1 303 See Other\r\nLocation: http://127.0.0.1:1/v1/return/sim?s=1\r\nContent-Length: 0\r\n\r\n",
	)
	var c wire
	defer c.close()
	get := request{method: http.MethodGet, url: s.url(), header: http.Header{"X-Paygate-Key-Id": {"k"}}, keepBody: true}
	for i, want := range []string{`{"a":"bcd"}`, `{"b":1}`} {
		a, err := c.do(context.Background(), get)
		if err != nil || a.status != 200 || string(a.body) != want {
			t.Fatalf("read %d: %d %q, %v; want 200 %s", i, a.status, a.body, err, want)
		}
	}
	click := request{method: http.MethodPost, url: s.url(), header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		body: []byte("result=success")}
	a, err := c.do(context.Background(), click)
	if err != nil || a.status != http.StatusSeeOther || a.location != "http://127.0.0.1:1/v1/return/sim?s=1" || a.body != nil {
		t.Fatalf("click: %+v, %v; want a 303 with its Location and no body kept", a, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.got[0]; r.Method != http.MethodGet || r.ContentLength != 0 || r.Header.Get("Content-Length") != "" || s.bodies[0] != "" ||
		r.Header.Get("X-Paygate-Key-Id") != "k" {
		t.Errorf("the server read %s, Content-Length %d (%q), body %q, headers %v", r.Method, r.ContentLength, r.Header.Get("Content-Length"), s.bodies[0], r.Header)
	}
	if r := s.got[2]; r.Method != http.MethodPost || s.bodies[2] != "result=success" {
		t.Errorf("the click was %s with body %q", r.Method, s.bodies[2])
	}
}

// TestWireSendsAgainOnAConnectionTheServerClosed: a reused connection
// that the server closed gets the request once more on a new one; a
// fresh connection that fails, or an answer cut short, is an error.
func TestWireSendsAgainOnAConnectionTheServerClosed(t *testing.T) {
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	s := newRawServer(t, ok, "", ok, "", "", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort|close")
	w := sim.Webhook{URL: s.url(), Body: []byte("x")}
	var c wire
	defer c.close()
	for i := range 2 {
		if a, err := c.post(context.Background(), w); err != nil || a.status != 200 {
			t.Fatalf("post %d: %+v, %v; want 200", i, a, err)
		}
	}
	s.mu.Lock()
	if got := s.conns; len(got) != 3 || got[0] != 1 || got[1] != 1 || got[2] != 2 {
		t.Errorf("requests went on connections %v; want 1, then 1 (closed unanswered), then again on 2", got)
	}
	s.mu.Unlock()
	// The reused connection is closed unanswered, and so is the new one:
	// an error, after one more try only.
	if a, err := c.post(context.Background(), w); err == nil {
		t.Errorf("two connections closed unanswered: %+v; want an error", a)
	}
	s.mu.Lock()
	if n := len(s.got); n != 5 {
		t.Errorf("the server read %d requests; want 5 (one more try, not two)", n)
	}
	s.mu.Unlock()
	if a, err := c.post(context.Background(), w); err == nil {
		t.Errorf("a body shorter than its Content-Length: %+v; want an error", a)
	}
}

// TestWireRefusesWhatIsNotHTTP: a status line or header it cannot read is
// an error, not an answer.
func TestWireRefusesWhatIsNotHTTP(t *testing.T) {
	for _, bad := range []string{
		"SMTP 220 hello\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	} {
		s := newRawServer(t, bad)
		var c wire
		a, err := c.post(context.Background(), sim.Webhook{URL: s.url()})
		c.close()
		if err == nil {
			t.Errorf("%q read as %+v; want an error", strings.SplitN(bad, "\r\n", 2)[0], a)
		}
	}
	var c wire
	if _, err := c.post(context.Background(), sim.Webhook{URL: "https://127.0.0.1:1/x"}); err == nil {
		t.Error("an https URL: no error; wire speaks plain http only")
	}
}

// TestDeliverClassifiesAnswersOnEitherClient: whichever client carries it,
// a 2xx is delivered, a 503's Retry-After is the wait asked, and a 4xx is
// final.
func TestDeliverClassifiesAnswersOnEitherClient(t *testing.T) {
	for _, std := range []bool{false, true} {
		s := newRawServer(t,
			"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
			"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n",
			"HTTP/1.1 409 Conflict\r\nContent-Length: 0\r\n\r\n",
		)
		var c *wire
		if !std {
			c = new(wire)
		}
		w := sim.Webhook{URL: s.url()}
		if err := deliver(context.Background(), c, w); err != nil {
			t.Errorf("std %v: a 202: %v", std, err)
		}
		var again retryable
		if err := deliver(context.Background(), c, w); !asRetryable(err, &again) || again.after != 2*time.Second {
			t.Errorf("std %v: a 503 with Retry-After: 2: %v (after %s); want retryable after 2s", std, err, again.after)
		}
		if err := deliver(context.Background(), c, w); err == nil || asRetryable(err, &again) {
			t.Errorf("std %v: a 409: %v; want a final error", std, err)
		}
		if c != nil {
			c.close()
		}
	}
}

func asRetryable(err error, r *retryable) bool { return errors.As(err, r) }
