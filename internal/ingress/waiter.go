package ingress

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/store"
)

// Waiter lets requests wait for an order to change without polling: one
// LISTEN connection per process receives the order ids that the database
// triggers announce (channel paygate_order), and wakes whoever waits on
// them.
type Waiter struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
	// seq counts the notifications received (Mark). recent and older
	// hold, by order id, the seq of its latest notification for
	// recentFor to twice that (rotate); all is the seq of the last wake
	// of every order (a reconnect), floor the highest seq that may have
	// been forgotten.
	seq, all, floor uint64
	recent, older   map[string]uint64
	rotated         time.Time
	log             *slog.Logger
}

// recentFor is how long the Waiter remembers which orders it heard of: a
// caller's read and its wait are milliseconds apart; one that took longer
// is told that its order may have changed.
const recentFor = 10 * time.Second

// NewWaiter listens on databaseURL until ctx ends.
func NewWaiter(ctx context.Context, databaseURL string, log *slog.Logger) (*Waiter, error) {
	w := newWaiter(log)
	// After a reconnect, notifications may have been missed: wake all.
	if err := store.Listen(ctx, databaseURL, "paygate_order", w.wake, w.wakeAll); err != nil {
		return nil, err
	}
	return w, nil
}

func newWaiter(log *slog.Logger) *Waiter {
	return &Waiter{subs: map[string]map[chan struct{}]struct{}{}, recent: map[string]uint64{}, older: map[string]uint64{},
		rotated: time.Now(), log: log}
}

// Mark says where the notifications are now: a caller that then reads an
// order can wait for it to change since (UntilChanged) without reading
// it again at once.
func (w *Waiter) Mark() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq
}

// rotate forgets what the Waiter heard more than recentFor to twice that
// ago. Under mu.
func (w *Waiter) rotate(now time.Time) {
	if now.Sub(w.rotated) < recentFor {
		return
	}
	for _, s := range w.older {
		w.floor = max(w.floor, s)
	}
	w.older, w.recent, w.rotated = w.recent, map[string]uint64{}, now
}

// changedSince says whether orderID may have changed after the mark
// since: a notification for it, or for every order, came after it, or
// what came then is forgotten. Under mu.
func (w *Waiter) changedSince(orderID string, since uint64) bool {
	return since < w.floor || w.all > since || w.recent[orderID] > since || w.older[orderID] > since
}

// wake wakes whoever waits on orderID.
func (w *Waiter) wake(orderID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	w.rotate(time.Now())
	w.recent[orderID] = w.seq
	for c := range w.subs[orderID] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (w *Waiter) wakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	w.all = w.seq
	for _, cs := range w.subs {
		for c := range cs {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
}

// Until calls done until it reports true, an error, or ctx ends; between
// calls it sleeps until the order changes (or a second passes, a safety
// net for a lost notification).
func (w *Waiter) Until(ctx context.Context, orderID string, done func() (bool, error)) error {
	return w.until(ctx, orderID, func() bool { return true }, done)
}

// UntilChanged is Until for a caller that has read the order since Mark
// returned since, and found it not done: done is first called once the
// order changed after since — at once if a notification for it came
// meanwhile — instead of at once, so the order is not read twice in a
// row. (A browser's return: read to learn its order, then waited on.)
func (w *Waiter) UntilChanged(ctx context.Context, orderID string, since uint64, done func() (bool, error)) error {
	return w.until(ctx, orderID, func() bool { return w.changedSince(orderID, since) }, done)
}

// until is Until and UntilChanged: first, called under mu once the
// caller is subscribed, says whether to call done before the first wait.
func (w *Waiter) until(ctx context.Context, orderID string, first func() bool, done func() (bool, error)) error {
	c := make(chan struct{}, 1)
	w.mu.Lock()
	if w.subs[orderID] == nil {
		w.subs[orderID] = map[chan struct{}]struct{}{}
	}
	w.subs[orderID][c] = struct{}{}
	check := first()
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.subs[orderID], c)
		if len(w.subs[orderID]) == 0 {
			delete(w.subs, orderID)
		}
		w.mu.Unlock()
	}()
	for {
		if check {
			ok, err := done()
			if err != nil || ok {
				return err
			}
		}
		check = true
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-c:
		case <-t.C:
		}
		t.Stop()
	}
}
