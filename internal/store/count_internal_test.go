package store

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/internal/pgtest"
)

// The store's connections use lib/pq's binary_parameters, which binds
// and executes a statement with parameters in one round trip. It shows
// in how []byte goes: in binary format, which lib/pq uses only in that
// mode, so jsonb (whose binary form starts with a version byte) refuses
// `{}` sent so. A URL that sets binary_parameters=no keeps lib/pq's
// default, where the same statement works.
func TestConnectionsUseBinaryParameters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.New(t)
	exec := func(u string) error {
		s, err := Open(ctx, Config{URL: u}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, err = s.db.ExecContext(ctx, `SELECT $1::jsonb`, []byte(`{}`))
		return err
	}
	if err := exec(dbURL); err == nil || !strings.Contains(err.Error(), "jsonb version") {
		t.Fatalf("[]byte to jsonb: %v; want jsonb to refuse a binary parameter", err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("binary_parameters", "no")
	u.RawQuery = q.Encode()
	if err := exec(u.String()); err != nil {
		t.Fatalf("with binary_parameters=no: %v", err)
	}
}

// Round trips are counted by the caller named in the context
// (WithCaller): a transaction's BEGIN, statements and COMMIT under its
// name, a statement under none as "other"; the totals still count all,
// and the registry exports the split.
func TestRoundTripsByCaller(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	s, err := Open(ctx, Config{URL: pgtest.New(t)}, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := s.Counts()
	err = s.inTx(WithCaller(ctx, "payinit"), func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(WithCaller(ctx, "payinit"), `SELECT $1::int`, 1)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	after := s.Counts()
	// BEGIN, the statement (prepared on first use: one more), COMMIT.
	if got := after.ByCaller["payinit"] - before.ByCaller["payinit"]; got != 4 {
		t.Errorf("payinit: %d round trips; want 4 (BEGIN, PREPARE, the statement, COMMIT)", got)
	}
	if got := after.ByCaller["other"] - before.ByCaller["other"]; got != 1 {
		t.Errorf("other: %d round trips; want 1", got)
	}
	var sum int64
	for _, n := range after.ByCaller {
		sum += n
	}
	if sum != after.RoundTrips() {
		t.Errorf("by caller %v add up to %d; total %d", after.ByCaller, sum, after.RoundTrips())
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var exported bool
	for _, mf := range mfs {
		if mf.GetName() != "paygate_store_round_trips_by_caller_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if l := m.GetLabel(); len(l) == 1 && l[0].GetValue() == "payinit" && int64(m.GetCounter().GetValue()) == after.ByCaller["payinit"] {
				exported = true
			}
		}
	}
	if !exported {
		t.Errorf("paygate_store_round_trips_by_caller_total{caller=\"payinit\"} not exported as %d", after.ByCaller["payinit"])
	}
}
