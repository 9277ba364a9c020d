package store

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/pgtest"
)

// The store's connections use lib/pq's binary_parameters, which binds
// and executes a statement with parameters in one round trip. It shows
// in how []byte goes: in binary format, which lib/pq uses only in that
// mode, so jsonb (whose binary form starts with a version byte) refuses
// `{}` sent so. A URL that sets binary_parameters=no keeps lib/pq's
// default, where the same statement works.
func TestConnectionsUseBinaryParameters(t *testing.T) {
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
