package policydoc_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/paygate/paygate/internal/policydoc"
	"github.com/paygate/paygate/internal/store"
)

// memStore keeps documents in memory, as the store does in PostgreSQL.
type memStore struct {
	mu   sync.Mutex
	docs []store.Document
}

func (m *memStore) LatestDocument(_ context.Context, kind store.DocumentKind) (store.Document, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.docs) - 1; i >= 0; i-- {
		if m.docs[i].Kind == kind {
			return m.docs[i], nil
		}
	}
	return store.Document{}, store.ErrNotFound
}

func (m *memStore) ApplyDocument(ctx context.Context, kind store.DocumentKind, doc []byte, by, source, note string, validate func([]byte) error) (store.Document, bool, error) {
	if err := validate(doc); err != nil {
		return store.Document{}, false, err
	}
	sum := sha256.Sum256(doc)
	if d, err := m.LatestDocument(ctx, kind); err == nil && d.SHA256 == hex.EncodeToString(sum[:]) {
		return d, false, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, d := range m.docs {
		if d.Kind == kind {
			n = d.Version
		}
	}
	d := store.Document{Kind: kind, Version: n + 1, Document: doc, SHA256: hex.EncodeToString(sum[:]), AppliedBy: by, Source: source, Note: note}
	m.docs = append(m.docs, d)
	return d, true, nil
}

// put stores a document without validating it (one that validated when
// stored and no longer does).
func (m *memStore) put(kind store.DocumentKind, doc string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, d := range m.docs {
		if d.Kind == kind {
			n = d.Version
		}
	}
	m.docs = append(m.docs, store.Document{Kind: kind, Version: n + 1, Document: []byte(doc)})
}

// number documents: a positive integer is valid.
func parse(doc []byte) (int, error) {
	n, err := strconv.Atoi(string(doc))
	if err != nil || n <= 0 {
		return 0, errors.New("not a positive number")
	}
	return n, nil
}

type inForce struct {
	mu      sync.Mutex
	version int64
	value   int
}

func (f *inForce) set(v int64, n int) { f.mu.Lock(); f.version, f.value = v, n; f.mu.Unlock() }
func (f *inForce) get() (int64, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.version, f.value
}

func watcher(t *testing.T, st *memStore, file string, seed []byte) (*policydoc.Watcher[int], *inForce, prometheus.Counter) {
	t.Helper()
	f := &inForce{}
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "errs"})
	w, err := policydoc.New(policydoc.Config[int]{Kind: store.DocRisk, Parse: parse, InForce: f.set, File: file, Seed: seed,
		Member: "test", ReloadErrors: errs, Version: prometheus.NewGauge(prometheus.GaugeOpts{Name: "v"})}, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return w, f, errs
}

func TestWatcherSeedsLoadsAndRefuses(t *testing.T) {
	ctx := context.Background()
	st := &memStore{}
	w, f, errs := watcher(t, st, "", []byte("7"))
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if v, n := f.get(); v != 1 || n != 7 || w.Version() != 1 {
		t.Fatalf("the seed is version 1 in force: %d %d", v, n)
	}
	if d, _ := st.LatestDocument(ctx, store.DocRisk); d.Source != "built-in" {
		t.Fatalf("the seed's audit: %+v", d)
	}
	if _, _, err := st.ApplyDocument(ctx, store.DocRisk, []byte("9"), "ops", "", "", w.Validate); err != nil {
		t.Fatal(err)
	}
	w.Poll(ctx)
	if v, n := f.get(); v != 2 || n != 9 {
		t.Fatalf("a newer version is put in force at the next poll: %d %d", v, n)
	}
	st.put(store.DocRisk, "nine") // stored, and no longer valid
	w.Poll(ctx)
	w.Poll(ctx)
	if v, n := f.get(); v != 2 || n != 9 || value(errs) != 2 {
		t.Fatalf("an invalid stored version is refused at every poll, the one in force stays: %d %d, %v refusals", v, n, value(errs))
	}
	// A second watcher seeds nothing when a version is stored.
	w2, f2, _ := watcher(t, st, "", []byte("1"))
	if err := w2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := f2.get(); v != 0 {
		t.Fatalf("the newest stored version is invalid and nothing else is in force: %d", v)
	}
}

func TestWatcherAppliesItsFile(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "doc")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	st := &memStore{}
	write("x")
	w, _, _ := watcher(t, st, file, nil)
	if err := w.Start(ctx); err == nil {
		t.Fatal("a bad file with nothing stored to fall back on starts")
	}
	write("3")
	w, f, errs := watcher(t, st, file, nil)
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if v, n := f.get(); v != 1 || n != 3 {
		t.Fatalf("the file is version 1: %d %d", v, n)
	}
	w.Poll(ctx) // unchanged: nothing stored
	write("4")
	w.Poll(ctx)
	if v, n := f.get(); v != 2 || n != 4 {
		t.Fatalf("the changed file is version 2: %d %d", v, n)
	}
	write("-1")
	w.Poll(ctx)
	if v, _ := f.get(); v != 2 || value(errs) != 1 {
		t.Fatalf("a bad file is refused and counted: v%d, %v", v, value(errs))
	}
	d, _ := st.LatestDocument(ctx, store.DocRisk)
	if d.AppliedBy != "file "+file+" on test" || d.Source != "file" {
		t.Fatalf("the file's audit: %+v", d)
	}
}

func value(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
