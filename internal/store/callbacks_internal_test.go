package store

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// Each raw message is stored byte for byte, whatever its length (empty
// included) and content, though the batch sends them as one bytea; a
// message id stored before is not stored again.
func TestStoreCallbacksKeepsEachRawMessage(t *testing.T) {
	t.Parallel()
	ctx, s := context.Background(), testStore(t, Config{})
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	raws := map[string][]byte{
		"a": []byte(`{"id":"a"}`),
		"b": {},
		"c": {0x00, 0xff, '\\', 'x', '"', '{', '}', ',', 0x01},
		"d": bytes.Repeat([]byte("0123456789"), 1000),
		"e": nil,
	}
	var rs []callbackRow
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		rs = append(rs, callbackRow{id: id, channel: "sim", kind: "async", at: time.Now(), raw: raws[id]})
	}
	store := func(rs []callbackRow) map[string]bool {
		tx, err := s.db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := storeCallbacks(ctx, tx, "callbacks", rs)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		return fresh
	}
	if fresh := store(rs); len(fresh) != 5 {
		t.Fatalf("fresh %v; want all five", fresh)
	}
	again := []callbackRow{{id: "c", channel: "sim", kind: "async", at: time.Now(), raw: []byte("other")},
		{id: "f", channel: "sim", kind: "async", at: time.Now(), raw: []byte("f")}}
	if fresh := store(again); len(fresh) != 1 || !fresh["f"] {
		t.Fatalf("fresh %v; want only f", fresh)
	}
	raws["f"] = []byte("f")
	for id, want := range raws {
		var got []byte
		if err := s.db.GetContext(ctx, &got, `SELECT raw FROM callbacks WHERE message_id = $1`, id); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: stored %q, want %q", id, got, want)
		}
	}
}
