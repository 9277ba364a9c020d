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
	log  *slog.Logger
}

// NewWaiter listens on databaseURL until ctx ends.
func NewWaiter(ctx context.Context, databaseURL string, log *slog.Logger) (*Waiter, error) {
	w := &Waiter{subs: map[string]map[chan struct{}]struct{}{}, log: log}
	// After a reconnect, notifications may have been missed: wake all.
	if err := store.Listen(ctx, databaseURL, "paygate_order", w.wake, w.wakeAll); err != nil {
		return nil, err
	}
	return w, nil
}

// wake wakes whoever waits on orderID.
func (w *Waiter) wake(orderID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
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
	c := make(chan struct{}, 1)
	w.mu.Lock()
	if w.subs[orderID] == nil {
		w.subs[orderID] = map[chan struct{}]struct{}{}
	}
	w.subs[orderID][c] = struct{}{}
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
		ok, err := done()
		if err != nil || ok {
			return err
		}
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
