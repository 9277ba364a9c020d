// Package policydoc keeps an operator document in force in a paygate
// process: the routing policy and the risk rules share it. A document is
// versioned and audited in the store (Store.ApplyDocument: validated
// first, an identical one stored once); a Watcher puts the newest stored
// version in force and keeps it so:
//
//   - at Start it applies its file, if it has one (a bad file with nothing
//     stored to fall back on is an error; with a stored version, it is
//     logged and that version stays), stores its seed if no version was
//     ever stored, and puts the newest version in force;
//   - every Poll it applies the file again if it changed, and puts a newer
//     stored version in force. A stored version that no longer validates
//     (a channel it names was removed from the channels file) is refused
//     and logged, at every Poll while it is the newest: the version in
//     force stays.
//
// Refusals are counted (Config.ReloadErrors) and the version in force is a
// gauge (Config.Version), so that an alert can tell an operator.
package policydoc

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/internal/store"
)

// Store is where the documents are kept.
type Store interface {
	LatestDocument(ctx context.Context, kind store.DocumentKind) (store.Document, error)
	ApplyDocument(ctx context.Context, kind store.DocumentKind, doc []byte, by, source, note string, validate func([]byte) error) (store.Document, bool, error)
}

// Config configures a watcher of documents of one kind, parsed into T.
type Config[T any] struct {
	// Kind is the document's kind. Required.
	Kind store.DocumentKind
	// Label names the document in logs ("routing policy"). Default the kind.
	Label string
	// Parse validates a document and builds what is put in force.
	// Required.
	Parse func(doc []byte) (T, error)
	// InForce is called with each version put in force, from Start and
	// then from Run's goroutine. Required.
	InForce func(version int64, v T)
	// File, if set, is applied at Start and whenever it changes (checked
	// every Poll).
	File string
	// Seed, if set, is stored as the first version when none is stored
	// yet (a built-in document), so that every process and the CLI see
	// the document in force.
	Seed []byte
	// Member names this process in the audit of a file or seed it
	// applies. Default host:pid.
	Member string
	// Poll is how often the newest stored version is looked up. Default 1s.
	Poll time.Duration
	// ReloadErrors counts the documents refused on reload; Version is the
	// version in force (0: none stored). Both may be nil.
	ReloadErrors prometheus.Counter
	Version      prometheus.Gauge
}

// Watcher keeps the newest valid version of a document in force.
type Watcher[T any] struct {
	cfg   Config[T]
	store Store
	log   *slog.Logger

	version atomic.Int64
	mu      sync.Mutex // guards fileSum
	fileSum [32]byte
}

// New builds a watcher; Start puts the document in force.
func New[T any](cfg Config[T], st Store, log *slog.Logger) (*Watcher[T], error) {
	if cfg.Kind == "" || cfg.Parse == nil || cfg.InForce == nil {
		return nil, errors.New("policydoc: Kind, Parse and InForce are required")
	}
	if cfg.Label == "" {
		cfg.Label = string(cfg.Kind)
	}
	if cfg.Poll == 0 {
		cfg.Poll = time.Second
	}
	if cfg.Member == "" {
		host, _ := os.Hostname()
		cfg.Member = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	return &Watcher[T]{cfg: cfg, store: st, log: log.With("document", string(cfg.Kind))}, nil
}

// Validate parses a document as the watcher would put it in force.
func (w *Watcher[T]) Validate(doc []byte) error {
	_, err := w.cfg.Parse(doc)
	return err
}

// Version is the version in force (0: none stored, or none valid).
func (w *Watcher[T]) Version() int64 { return w.version.Load() }

// Start applies the file (if any) and the seed (if nothing is stored),
// and puts the newest stored version in force.
func (w *Watcher[T]) Start(ctx context.Context) error {
	if w.cfg.File != "" {
		if err := w.applyFile(ctx); err != nil {
			if _, lerr := w.store.LatestDocument(ctx, w.cfg.Kind); errors.Is(lerr, store.ErrNotFound) {
				return err // nothing stored to fall back on: say so now
			}
			w.log.Error(w.cfg.Label+" file refused; the stored version stays in force", "file", w.cfg.File, "err", err)
		}
	}
	if len(w.cfg.Seed) > 0 {
		if _, err := w.store.LatestDocument(ctx, w.cfg.Kind); errors.Is(err, store.ErrNotFound) {
			if _, _, err := w.store.ApplyDocument(ctx, w.cfg.Kind, w.cfg.Seed, "paygate on "+w.cfg.Member, "built-in",
				"the built-in "+w.cfg.Label+", as none was applied", w.Validate); err != nil {
				return err
			}
		}
	}
	return w.load(ctx)
}

// Run polls every Config.Poll until ctx ends.
func (w *Watcher[T]) Run(ctx context.Context) {
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Poll(ctx)
		}
	}
}

// Poll applies the file if it changed and puts a newer stored version in
// force; what fails is logged.
func (w *Watcher[T]) Poll(ctx context.Context) {
	if w.cfg.File != "" {
		if err := w.applyFile(ctx); err != nil && ctx.Err() == nil {
			w.log.Error(w.cfg.Label+" file refused; the version in force stays", "file", w.cfg.File, "err", err)
		}
	}
	if err := w.load(ctx); err != nil && ctx.Err() == nil {
		w.log.Warn("could not look up the "+w.cfg.Label, "err", err)
	}
}

// applyFile stores the file as a new version if it changed since it was
// last seen and differs from the version stored last.
func (w *Watcher[T]) applyFile(ctx context.Context) error {
	doc, err := os.ReadFile(w.cfg.File)
	if err != nil {
		w.countRefusal()
		return fmt.Errorf("%s file: %w", w.cfg.Label, err)
	}
	sum := sha256.Sum256(doc)
	w.mu.Lock()
	same := sum == w.fileSum
	w.mu.Unlock()
	if same {
		return nil
	}
	d, created, err := w.store.ApplyDocument(ctx, w.cfg.Kind, doc, "file "+w.cfg.File+" on "+w.cfg.Member, "file", "", w.Validate)
	if err != nil {
		w.countRefusal()
		return err
	}
	w.mu.Lock()
	w.fileSum = sum
	w.mu.Unlock()
	if created {
		w.log.Info(w.cfg.Label+" file applied", "file", w.cfg.File, "version", d.Version)
	}
	return nil
}

func (w *Watcher[T]) countRefusal() {
	if w.cfg.ReloadErrors != nil {
		w.cfg.ReloadErrors.Inc()
	}
}

// load puts the newest stored version in force, if it is not yet.
func (w *Watcher[T]) load(ctx context.Context) error {
	d, err := w.store.LatestDocument(ctx, w.cfg.Kind)
	if errors.Is(err, store.ErrNotFound) {
		if w.cfg.Version != nil {
			w.cfg.Version.Set(0)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if d.Version == w.version.Load() {
		return nil
	}
	v, err := w.cfg.Parse(d.Document)
	if err != nil {
		w.countRefusal()
		w.log.Error("stored "+w.cfg.Label+" refused; the version in force stays", "version", d.Version, "err", err)
		return nil
	}
	w.cfg.InForce(d.Version, v)
	w.version.Store(d.Version)
	if w.cfg.Version != nil {
		w.cfg.Version.Set(float64(d.Version))
	}
	w.log.Info(w.cfg.Label+" in force", "version", d.Version, "applied_by", d.AppliedBy, "applied_at", d.AppliedAt)
	return nil
}
