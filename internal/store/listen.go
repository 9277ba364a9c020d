package store

import (
	"context"
	"time"

	"github.com/lib/pq"
)

// Listen LISTENs on a PostgreSQL notification channel over a connection
// of its own until ctx ends, reconnecting (100 ms, backing off to 10 s)
// when the connection is lost. notify gets each notification's payload,
// in order, from one goroutine; reconnected, if not nil, is called when a
// lost connection came back, since notifications sent meanwhile are lost.
// Listen returns once the LISTEN is in place, or why it is not.
//
// Notifications come at commit: who is notified reads committed state.
func Listen(ctx context.Context, databaseURL, channel string, notify func(payload string), reconnected func()) error {
	l := pq.NewListener(databaseURL, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		if ev == pq.ListenerEventReconnected && reconnected != nil {
			reconnected()
		}
	})
	if err := l.Listen(channel); err != nil {
		_ = l.Close()
		return err
	}
	go func() {
		<-ctx.Done()
		_ = l.Close()
	}()
	go func() {
		for n := range l.Notify {
			if n != nil {
				notify(n.Extra)
			}
		}
	}()
	return nil
}
