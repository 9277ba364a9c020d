package store_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
)

// TestDocumentsAreVersionedPerKind: each kind counts its versions from 1;
// an identical document is not stored twice (even by appliers racing); a
// refused one is not stored; the audit trail keeps who, from where, why.
func TestDocumentsAreVersionedPerKind(t *testing.T) {
	t.Parallel()
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

// TestPruneRiskCounts deletes the counters before the cut, in batches.
func TestPruneRiskCounts(t *testing.T) {
	t.Parallel()
	s, url := openURL(t)
	ctx := context.Background()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC().Truncate(time.Minute)
	for i := 0; i < 5; i++ {
		if _, err := db.Exec(`INSERT INTO risk_counts (key, kind, currency, bucket, n, amount) VALUES ('buyer_id:u', 'request', 'USD', $1, 1, 1)`,
			now.Add(-time.Duration(i)*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PruneRiskCounts(ctx, now.Add(-36*time.Hour), 2)
	if err != nil || n != 2 {
		t.Fatalf("first batch: %d %v", n, err)
	}
	n, err = s.PruneRiskCounts(ctx, now.Add(-36*time.Hour), 2)
	if err != nil || n != 1 {
		t.Fatalf("second batch: %d %v", n, err)
	}
	var left int
	if err := db.QueryRow(`SELECT count(*) FROM risk_counts`).Scan(&left); err != nil || left != 2 {
		t.Fatalf("%d left, want the 2 within the cut", left)
	}
}
