package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/paygate/paygate/internal/store"
)

// TestDocumentsAreVersionedPerKind: each kind counts its versions from 1;
// an identical document is not stored twice (even by appliers racing); a
// refused one is not stored; the audit trail keeps who, from where, why.
func TestDocumentsAreVersionedPerKind(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	ok := func([]byte) error { return nil }
	if _, err := s.LatestDocument(ctx, store.DocRisk); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no risk rules yet: %v", err)
	}
	r1, created, err := s.ApplyDocument(ctx, store.DocRouting, []byte(`{"v":1}`), "ops", "cli a.json", "first", ok)
	if err != nil || !created || r1.Version != 1 {
		t.Fatalf("routing v1: %+v %v %v", r1, created, err)
	}
	// Ten appliers of one new document at once: one version.
	var wg sync.WaitGroup
	versions := make([]int64, 10)
	for i := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, _, err := s.ApplyDocument(ctx, store.DocRisk, []byte(`{"thresholds":{"deny":1}}`), "ops", "", "", ok)
			if err != nil {
				t.Error(err)
			}
			versions[i] = d.Version
		}()
	}
	wg.Wait()
	for _, v := range versions {
		if v != 1 {
			t.Fatalf("racing appliers stored versions %v, want all 1", versions)
		}
	}
	if _, _, err := s.ApplyDocument(ctx, store.DocRisk, []byte(`bad`), "ops", "", "", func([]byte) error { return errors.New("refused") }); err == nil {
		t.Fatal("a refused document was stored")
	}
	r2, created, err := s.ApplyDocument(ctx, store.DocRouting, []byte(`{"v":2}`), "ops2", "file p.json", "", ok)
	if err != nil || !created || r2.Version != 2 {
		t.Fatalf("routing v2: %+v %v %v", r2, created, err)
	}
	again, created, err := s.ApplyDocument(ctx, store.DocRouting, []byte(`{"v":2}`), "ops3", "", "", ok)
	if err != nil || created || again.Version != 2 || again.AppliedBy != "ops2" {
		t.Fatalf("the same document again: %+v %v %v", again, created, err)
	}
	latest, err := s.LatestDocument(ctx, store.DocRisk)
	if err != nil || latest.Version != 1 || latest.Kind != store.DocRisk {
		t.Fatalf("latest risk: %+v %v", latest, err)
	}
	hist, err := s.RoutingPolicies(ctx, 10)
	if err != nil || len(hist) != 2 || hist[0].Version != 2 || hist[1].Note != "first" || hist[1].Source != "cli a.json" {
		t.Fatalf("routing audit trail %+v %v", hist, err)
	}
	if _, err := s.DocumentVersion(ctx, store.DocRisk, 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("risk v2: %v", err)
	}
}
