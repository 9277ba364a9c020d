package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/paygate/paygate/consumers/recon"
	"github.com/paygate/paygate/internal/broker"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/producers"
	"github.com/paygate/paygate/producers/settlement"
	"github.com/paygate/paygate/producers/sweeper"
	"github.com/paygate/paygate/schemas"
)

// channelZones reads each channel's "timezone" (IANA name; default UTC):
// the zone of its PSP's business days, which reconciliation follows.
func channelZones(f ChannelsFile) (map[string]*time.Location, error) {
	zones := make(map[string]*time.Location, len(f.Channels))
	for _, c := range f.Channels {
		if c.Timezone == "" {
			zones[c.Name] = time.UTC
			continue
		}
		loc, err := time.LoadLocation(c.Timezone)
		if err != nil {
			return nil, fmt.Errorf("channel %s: timezone %q: %w", c.Name, c.Timezone, err)
		}
		zones[c.Name] = loc
	}
	return zones, nil
}

// startRecon builds the settlement fetcher (when this process has a store
// and a writer), registers the daily reconciliation with the sweeper, and
// runs the recon consumer group if asked to. Call it before the sweeper
// starts.
func (a *App) startRecon(roles Roles, zones map[string]*time.Location) error {
	if a.Store == nil || a.Writer == nil {
		return nil
	}
	var scheduled []string
	for name, ch := range a.Channels {
		if ch.Capabilities().Settlement {
			scheduled = append(scheduled, name)
		}
	}
	cfg := a.Config.Recon
	cfg.Zones, cfg.Scheduled = zones, scheduled
	f, err := settlement.New(cfg, a.Store, a.Writer, a.Channels, a.Log, a.Registry)
	if err != nil {
		return err
	}
	a.Settlement = f
	if roles.Sweep && !bool(a.Config.ReconSchedulingOff) {
		if a.sweepTasks == nil {
			a.sweepTasks = map[string]sweeper.Task{}
		}
		a.sweepTasks["reconciliation"] = f.Task()
	}
	if roles.Recon {
		h := recon.New(a.Store, a.Log, a.Registry)
		return a.Consume("recon", schemas.TopicReconciliation, h.Handle, nil)
	}
	return nil
}

// Recon is what `paygate recon` needs: the store, and the fetcher that
// starts runs (with the channels and a writer).
type Recon struct {
	Store      *store.Store
	Settlement *settlement.Fetcher
	Zones      map[string]*time.Location
	writer     *producers.Writer
}

// OpenRecon connects to the database (and, if withKafka, to Kafka) and
// builds the channels and the fetcher, without starting any role.
func OpenRecon(ctx context.Context, cfg Config, withKafka bool, log *slog.Logger) (*Recon, error) {
	st, err := store.Open(ctx, store.Config{URL: cfg.Store.URL, MaxConns: 4, StatementCache: cfg.Store.StatementCache}, nil)
	if err != nil {
		return nil, err
	}
	r := &Recon{Store: st}
	files, err := loadChannels(cfg, "http://"+cfg.SimAddr)
	if err == nil {
		r.Zones, err = channelZones(files)
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	if !withKafka {
		return r, nil
	}
	if len(cfg.Brokers) == 0 {
		r.Close()
		return nil, errors.New("KAFKA_BROKERS is not set")
	}
	channels, _, err := buildChannels(files, psp.NewMetrics(nil))
	var sec broker.Security
	if err == nil {
		sec, err = cfg.Kafka.Build()
	}
	if err == nil {
		r.writer, err = producers.NewWriter(producers.WriterConfig{Brokers: cfg.Brokers, Transport: sec.Transport()})
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	rc := cfg.Recon
	rc.Zones = r.Zones
	if r.Settlement, err = settlement.New(rc, st, r.writer, channels, log, nil); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close closes the writer and the store.
func (r *Recon) Close() {
	if r.writer != nil {
		_ = r.writer.Close()
	}
	_ = r.Store.Close()
}
