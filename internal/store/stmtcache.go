package store

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"

	"github.com/lib/pq"
)

// DefaultStatementCache is how many prepared statements a connection
// keeps by default (Config.StatementCache).
const DefaultStatementCache = 256

// planEachTime starts a statement that is never prepared, so that
// PostgreSQL plans it for its parameters and the table's current size
// every time it runs.
const planEachTime = "/* plan each time */ "

// stmtCache is one connection's prepared statements, by query text.
//
// lib/pq sends a statement with parameters unnamed, so the server parses
// and plans it on every execution. For the callbacks group's statements
// that was about 1.2 ms of parsing and 1.4 ms of binding (planning) per
// batch, on the lone payment's path and on PostgreSQL's CPU under load. A
// statement prepared once per connection is then only bound and executed:
// one round trip, as before, and the server may keep a generic plan.
//
// At most max statements are kept; the least recently used is closed to
// make room. Not safe for concurrent use: database/sql uses a connection
// from one goroutine at a time.
type stmtCache struct {
	max   int
	byQ   map[string]*list.Element
	order list.List // of *cachedStmt, most recently used first
}

type cachedStmt struct {
	q  string
	st driver.Stmt
}

func newStmtCache(max int) *stmtCache {
	return &stmtCache{max: max, byQ: make(map[string]*list.Element, max)}
}

// get returns q's statement on the connection, preparing it (one round
// trip, counted) the first time.
func (sc *stmtCache) get(ctx context.Context, cn *conn, q string) (driver.Stmt, error) {
	if e, ok := sc.byQ[q]; ok {
		sc.order.MoveToFront(e)
		return e.Value.(*cachedStmt).st, nil
	}
	cn.c.statement(ctx)
	st, err := cn.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if sc.order.Len() >= sc.max {
		sc.drop(ctx, cn, sc.order.Back())
	}
	sc.byQ[q] = sc.order.PushFront(&cachedStmt{q: q, st: st})
	return st, nil
}

// forget closes q's statement after it failed in a way that says the
// server no longer has it as prepared: the table it reads changed shape
// (0A000, "cached plan must not change result type"), or a pooler in
// front of the server dropped it (26000, "prepared statement does not
// exist"). The next use prepares it again.
func (sc *stmtCache) forget(ctx context.Context, cn *conn, q string, err error) {
	var pe *pq.Error
	if !errors.As(err, &pe) || (pe.Code != "0A000" && pe.Code != "26000") {
		return
	}
	if e, ok := sc.byQ[q]; ok {
		sc.drop(ctx, cn, e)
	}
}

func (sc *stmtCache) drop(ctx context.Context, cn *conn, e *list.Element) {
	c := sc.order.Remove(e).(*cachedStmt)
	delete(sc.byQ, c.q)
	cn.c.statement(ctx) // lib/pq closes a statement with a round trip
	_ = c.st.Close()    // a failure leaves a statement on a connection that is going anyway
}
