package app

import (
	"context"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Now is the process's clock: time.Now, shifted by Config.ClockOffset
// (fault injection only).
func (a *App) Now() time.Time { return time.Now().Add(a.Config.ClockOffset) }

// clockSkewWarn is how far this process's clock may be from PostgreSQL's
// before it says so: well within the 300 s the mall's and the PSPs'
// signatures are judged by, well above what NTP leaves.
const clockSkewWarn = 30 * time.Second

// clockCheckEvery is how often the clocks are compared.
const clockCheckEvery = 30 * time.Second

// clockCheck compares this process's clock with PostgreSQL's every
// clockCheckEvery, exports the difference (paygate_clock_skew_seconds;
// the ClockSkew alert) and logs an error while it exceeds clockSkewWarn.
// A clock minutes off makes the mall's signed requests refused (a
// timestamp outside the tolerance), webhooks judged stale (they change
// nothing; the sweeper's probes recover the payments), and probes and
// expiries early or late: the log says so in those words, so that the
// cause is found from the symptom.
func (a *App) clockCheck(ctx context.Context) error {
	skew := prometheus.NewGauge(prometheus.GaugeOpts{Name: "paygate_clock_skew_seconds",
		Help: "This process's clock minus PostgreSQL's (positive: ahead), measured every 30 s."})
	a.Registry.MustRegister(skew)
	t := time.NewTicker(clockCheckEvery)
	defer t.Stop()
	for {
		before := a.Now()
		db, err := a.Store.Now(ctx)
		after := a.Now()
		if err == nil {
			// The database's time stands for the middle of the round trip.
			d := before.Add(after.Sub(before) / 2).Sub(db)
			skew.Set(d.Seconds())
			if math.Abs(d.Seconds()) > clockSkewWarn.Seconds() {
				way := "ahead of"
				if d < 0 {
					way = "behind"
				}
				a.Log.Error("this process's clock is off: fix its time synchronisation (NTP)",
					"skew", d.Round(time.Second).String(), "way", way+" PostgreSQL's",
					"effects", "signed requests of the mall and finance refused as outside the 300 s tolerance; PSP callbacks judged stale (the sweeper's probes recover their payments); probes and expiries early or late")
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
