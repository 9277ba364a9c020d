package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/paygate/paygate/internal/psp/sim"
)

// wire is one load sender's own HTTP/1.1 connection to the ingress, as a
// lean load generator (wrk, h2load) keeps one: a request is one write of
// bytes built in a reused buffer, its answer is read from one buffered
// reader, and no goroutine but the sender's own is involved. net/http's
// client runs a read and a write goroutine per connection and hands every
// request and answer between them and the caller over channels, through
// a pool shared by all senders: on the two cores the gateway runs on, that
// was about a third of the machine's CPU in an ingress-only run, so the
// load generator, not the ingress, set the ceiling measured. The request
// sent is byte for byte what net/http sends for a sim.Webhook's Request
// but for the User-Agent.
//
// Plain http only; a target behind https is driven through net/http
// (deliver does the choosing).
type wire struct {
	host string // host:port connected to
	conn net.Conn
	br   *bufio.Reader
	buf  []byte
	used time.Time // when the last answer was read
}

// wireIdle is how long a connection may have been idle before it is not
// trusted with a request: below the ingress's 30 s idle limit (its
// ReadTimeout), so that the server never closes one just as a request
// goes out on it.
const wireIdle = 20 * time.Second

// wireTimeout bounds a request and its answer, as httpClient's Timeout does.
const wireTimeout = 60 * time.Second

// maxAnswer bounds what is read of an answer's body and headers: the
// ingress's answers are a few hundred bytes.
const maxAnswer = 1 << 20

// answer is what a request got back.
type answer struct {
	status     int
	retryAfter string
	location   string // the Location header, if any
	body       []byte // the body, when the request asked for it (request.keepBody)
}

// request is one HTTP/1.1 request a wire sends: a webhook, a pay request,
// a read of an order, a buyer's click or browser return.
type request struct {
	method string
	url    string
	header http.Header
	body   []byte
	// keepBody keeps the answer's body in answer.body (a fresh slice);
	// otherwise it is discarded.
	keepBody bool
}

// hookRequest is the POST that delivers w.
func hookRequest(w sim.Webhook) request {
	return request{method: http.MethodPost, url: w.URL, header: w.Header, body: w.Body}
}

// post delivers w on c's connection, dialing one if it has none (or an
// idle or closed one), and reads the answer to its end so that the
// connection can carry the next. A connection that was reused and
// failed before any of the answer was read is replaced and the request
// sent once more, as net/http does: the server may have closed it.
func (c *wire) post(ctx context.Context, w sim.Webhook) (answer, error) {
	return c.do(ctx, hookRequest(w))
}

// do sends r on c's connection as post does a webhook.
func (c *wire) do(ctx context.Context, r request) (answer, error) {
	u, err := url.Parse(r.url)
	if err != nil {
		return answer{}, err
	}
	if u.Scheme != "http" {
		return answer{}, fmt.Errorf("wire: %s: plain http only", r.url)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	c.buf = appendRequest(c.buf[:0], u, r)
	for attempt := 0; ; attempt++ {
		reused := c.conn != nil && c.host == host && time.Since(c.used) < wireIdle
		if !reused {
			if err := c.dial(ctx, host); err != nil {
				return answer{}, err
			}
		}
		a, started, err := c.roundTrip(ctx, r.keepBody)
		if err == nil {
			return a, nil
		}
		c.close()
		if !reused || started || attempt > 0 || ctx.Err() != nil {
			return answer{}, err
		}
	}
}

func (c *wire) dial(ctx context.Context, host string) error {
	c.close()
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	c.host, c.conn = host, conn
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, 4096)
	} else {
		c.br.Reset(conn)
	}
	return nil
}

func (c *wire) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// roundTrip writes c.buf and reads the answer. started says whether any
// of the answer had arrived when it failed.
func (c *wire) roundTrip(ctx context.Context, keepBody bool) (a answer, started bool, err error) {
	deadline := time.Now().Add(wireTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.conn.SetDeadline(deadline); err != nil {
		return a, false, err
	}
	if _, err := c.conn.Write(c.buf); err != nil {
		return a, false, err
	}
	if _, err := c.br.Peek(1); err != nil {
		return a, false, err
	}
	a, keep, err := readAnswer(c.br, keepBody)
	if err != nil {
		return a, true, err
	}
	if !keep {
		c.close()
	}
	c.used = time.Now()
	return a, true, nil
}

// appendRequest appends r as an HTTP/1.1 request to u. A request without
// a body (a GET) carries no Content-Length, as net/http sends it.
func appendRequest(b []byte, u *url.URL, r request) []byte {
	b = append(b, r.method...)
	b = append(b, ' ')
	b = append(b, u.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, u.Host...)
	b = append(b, "\r\nUser-Agent: paygate-bench\r\n"...)
	if len(r.body) > 0 || r.method == http.MethodPost {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(r.body)), 10)
		b = append(b, "\r\n"...)
	}
	for k, vs := range r.header {
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	return append(b, r.body...)
}

// readAnswer reads one HTTP/1.1 answer from br, its body kept in
// a.body if keepBody, else discarded; keep says whether the connection
// may carry another request.
func readAnswer(br *bufio.Reader, keepBody bool) (a answer, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return a, false, fmt.Errorf("wire: status line: %w", err)
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return a, false, fmt.Errorf("wire: malformed status line %q", line)
	}
	if a.status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return a, false, fmt.Errorf("wire: malformed status line %q", line)
	}
	keep = line[7] == '1'
	length, chunked, read := int64(-1), false, 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return a, false, fmt.Errorf("wire: headers: %w", err)
		}
		if read += len(line); read > maxAnswer {
			return a, false, errors.New("wire: headers too large")
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return a, false, fmt.Errorf("wire: malformed header %q", line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case headerIs(k, "Content-Length"):
			if length, err = strconv.ParseInt(string(v), 10, 64); err != nil || length < 0 || length > maxAnswer {
				return a, false, fmt.Errorf("wire: Content-Length %q", v)
			}
		case headerIs(k, "Transfer-Encoding"):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case headerIs(k, "Connection"):
			if bytes.EqualFold(v, []byte("close")) {
				keep = false
			}
		case headerIs(k, "Retry-After"):
			a.retryAfter = string(v)
		case headerIs(k, "Location"):
			a.location = string(v)
		}
	}
	var sink io.Writer = io.Discard
	var kept bytes.Buffer
	if keepBody {
		sink = &kept
	}
	defer func() { a.body = kept.Bytes() }()
	switch {
	case a.status/100 == 1 || a.status == 204 || a.status == 304:
		return a, keep, nil
	case chunked:
		return a, keep, copyChunked(sink, br)
	case length >= 0:
		_, err := io.CopyN(sink, br, length)
		return a, keep, err
	default: // the body runs to the connection's end
		_, err := io.Copy(sink, io.LimitReader(br, maxAnswer))
		return a, false, err
	}
}

// headerIs says whether a header's name is name, in any case.
func headerIs(k []byte, name string) bool { return bytes.EqualFold(k, []byte(name)) }

// copyChunked copies a chunked body from br to w.
func copyChunked(w io.Writer, br *bufio.Reader) error {
	for total := 0; ; {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("wire: chunk size: %w", err)
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 || n > maxAnswer {
			return fmt.Errorf("wire: chunk size %q", line)
		}
		if total += int(n); total > maxAnswer {
			return errors.New("wire: answer too large")
		}
		if n == 0 { // trailers, then an empty line
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return fmt.Errorf("wire: trailer: %w", err)
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := io.CopyN(w, br, n); err != nil {
			return err
		}
		if _, err := br.Discard(2); err != nil { // the chunk's CRLF
			return err
		}
	}
}
