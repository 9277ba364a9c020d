package psp

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type testSettings struct {
	Secret  string   `json:"secret"`
	Timeout Duration `json:"timeout"`
	Count   int      `json:"count"`
}

func TestDecodeSettings(t *testing.T) {
	var s testSettings
	if err := DecodeSettings("acme", json.RawMessage(`{"secret":"hunter2","timeout":"1m30s","count":3}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.Secret != "hunter2" || s.Timeout.D() != 90*time.Second || s.Count != 3 {
		t.Fatalf("decoded %+v", s)
	}
	for _, c := range []struct {
		raw  string
		want string // the whole error text
	}{
		{`{"secret":"hunter2","secrets":"hunter2"}`, `acme settings: json: unknown field "secrets"`},
		{`{"secret":"hunter2"} {"secret":"hunter2"}`, `acme settings: more than one JSON value`},
		{`{"secret":"hunter2","timeout":"soon"}`, `acme settings: timeout: time: invalid duration "soon"`},
		{`{"secret":"hunter2","timeout":5}`, `acme settings: timeout: not a duration string such as "5s"`},
		{`{"secret":"hunter2","timeout":{"secret":"hunter2"}}`, `acme settings: timeout: not a duration string such as "5s"`},
		{`{"secret":"hunter2","count":"hunter2"}`, `acme settings: json: cannot unmarshal string into Go struct field testSettings.count of type int`},
		{`{"secret":"hunter2"`, `acme settings: unexpected EOF`},
		{``, `acme settings: EOF`},
	} {
		var s testSettings
		err := DecodeSettings("acme", json.RawMessage(c.raw), &s)
		if err == nil {
			t.Errorf("%s: accepted", c.raw)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("%s: error %q, want %q", c.raw, err, c.want)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error holds the secret: %v", c.raw, err)
		}
	}
}

func TestDuration(t *testing.T) {
	for raw, want := range map[string]time.Duration{
		`"5s"`: 5 * time.Second, `"1h30m"`: 90 * time.Minute, `"250ms"`: 250 * time.Millisecond,
		`""`: 0, `null`: 0, // unset: the adapter's default
	} {
		var d Duration
		if err := json.Unmarshal([]byte(raw), &d); err != nil || d.D() != want {
			t.Errorf("%s: %v, %v; want %v", raw, d.D(), err, want)
		}
	}
	for _, raw := range []string{`5`, `"5"`, `"soon"`, `true`, `[]`, `{}`, `"5 s"`} {
		var d Duration
		if err := json.Unmarshal([]byte(raw), &d); err == nil {
			t.Errorf("%s: accepted as %v", raw, d.D())
		}
	}
}

func TestPooledTransport(t *testing.T) {
	a, b := PooledTransport(), PooledTransport()
	if a == b {
		t.Fatal("PooledTransport shares one pool between channels")
	}
	if a.MaxIdleConnsPerHost != 128 || a.MaxIdleConns < 128 || a.Proxy == nil {
		t.Fatalf("MaxIdleConnsPerHost %d, proxy set %v", a.MaxIdleConnsPerHost, a.Proxy != nil)
	}
}
