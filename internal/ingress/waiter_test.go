package ingress

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// waitUntilChanged runs UntilChanged for order from mark in a goroutine,
// with a done that reports what ready says, and returns the
// calls counter and a channel closed when UntilChanged returns. It returns
// once the waiter has the goroutine subscribed, or it returned.
func waitUntilChanged(t *testing.T, w *Waiter, order string, mark uint64, ready func() bool) (*atomic.Int64, chan struct{}) {
	t.Helper()
	var calls atomic.Int64
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		_ = w.UntilChanged(context.Background(), order, mark, func() (bool, error) { calls.Add(1); return ready(), nil })
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		w.mu.Lock()
		subscribed := len(w.subs[order]) > 0
		w.mu.Unlock()
		select {
		case <-returned: // done at once, and gone
			return &calls, returned
		default:
		}
		if subscribed {
			return &calls, returned
		}
		if time.Now().After(deadline) {
			t.Fatal("never subscribed")
		}
	}
}

// UntilChanged reads an order again only once it changed after the
// caller's mark: a notification after the wait began wakes it for one
// read; one that came between the mark and the wait (or for every order,
// after a reconnect) is read at once; one for another order is not its
// own. Until, for a caller that has not read the order, reads it at once.
func TestUntilChangedReadsOnlyAfterAChange(t *testing.T) {
	w := newWaiter(slog.New(slog.NewTextHandler(io.Discard, nil)))
	settle := func(returned chan struct{}) {
		t.Helper()
		select {
		case <-returned:
		case <-time.After(10 * time.Second):
			t.Fatal("UntilChanged did not return")
		}
	}

	// Done only once the order changed: a read at once would find it not
	// done and be counted.
	var changed atomic.Bool
	always := func() bool { return true }
	mark := w.Mark()
	w.wake("other")
	calls, returned := waitUntilChanged(t, w, "A1", mark, changed.Load)
	changed.Store(true)
	w.wake("A1")
	settle(returned)
	if n := calls.Load(); n != 1 {
		t.Errorf("no change since the mark, then one: %d reads; want 1 (after the change)", n)
	}

	mark = w.Mark()
	w.wake("A2") // between the caller's read and its wait
	calls, returned = waitUntilChanged(t, w, "A2", mark, always)
	settle(returned)
	if n := calls.Load(); n != 1 {
		t.Errorf("changed before the wait: %d reads; want 1, at once", n)
	}

	mark = w.Mark()
	w.wakeAll() // a reconnect: anything may have changed
	calls, returned = waitUntilChanged(t, w, "A3", mark, always)
	settle(returned)
	if n := calls.Load(); n != 1 {
		t.Errorf("after a reconnect: %d reads; want 1, at once", n)
	}

	var plain atomic.Int64
	if err := w.Until(context.Background(), "A4", func() (bool, error) { return plain.Add(1) >= 1, nil }); err != nil || plain.Load() != 1 {
		t.Errorf("Until: %d reads, %v; want one, at once", plain.Load(), err)
	}
}

// What the Waiter heard of is forgotten after recentFor to twice that; a
// mark older than what was forgotten may have missed a change, and is
// read again at once.
func TestUntilChangedForgetsOldNotifications(t *testing.T) {
	w := newWaiter(slog.New(slog.NewTextHandler(io.Discard, nil)))
	mark := w.Mark()
	w.wake("B1")
	w.mu.Lock()
	w.rotate(time.Now().Add(recentFor))     // B1 now older
	w.rotate(time.Now().Add(2 * recentFor)) // and forgotten
	changed, forgotten := w.changedSince("B1", mark), w.recent["B1"] == 0 && w.older["B1"] == 0
	later := w.changedSince("B2", w.seq)
	w.mu.Unlock()
	if !forgotten || !changed {
		t.Errorf("forgotten %v, changed since the old mark %v; want both", forgotten, changed)
	}
	if later {
		t.Error("a mark taken after what was forgotten counts as changed")
	}
}
