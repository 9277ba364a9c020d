package signature_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/signature"
)

var (
	secret  = []byte("dev-mall-secret")
	body    = []byte(`{"order_id":"A1001","amount":1999,"currency":"USD"}`)
	nowUnix = int64(1700000000)
	now     = time.Unix(nowUnix, 0)
)

// mac is HMAC-SHA256("<ts>.<body>") computed here straight from crypto/hmac.
func mac(key []byte, ts string, b []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts + "."))
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

// flipHex returns the hex of the byte h (two hex digits) with its low bit flipped.
func flipHex(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 1 {
		panic("flipHex: " + h)
	}
	return hex.EncodeToString([]byte{b[0] ^ 1})
}

func TestCompute(t *testing.T) {
	tests := []struct {
		secret []byte
		ts     int64
		body   []byte
		want   string // from `openssl dgst -sha256 -hmac`, where given
	}{
		{secret, nowUnix, body, "8380b100eaa312189c4b4d223af028bfa5b114864e418dbbd6c3ffaa18d43ca2"},
		{[]byte(""), 0, nil, "b849d5a581847b281957065739df36df2463d1977ea8d6e1e4e6cf33fadc68c3"},
		{[]byte("k"), -5, []byte("x"), "bb37629728762e2c6ee7834ab2032390a78036f097a83c7e352a333cc28f5c2a"},
		{[]byte("another secret"), nowUnix, body, ""},
		{secret, nowUnix + 1, body, ""},
		{secret, nowUnix, []byte{0, 0xff, '.', '\n'}, ""},
	}
	for _, tt := range tests {
		got := signature.Compute(tt.secret, tt.ts, tt.body)
		want := mac(tt.secret, strconv.FormatInt(tt.ts, 10), tt.body)
		if got != want {
			t.Errorf("Compute(%q, %d, %q) = %s, want %s", tt.secret, tt.ts, tt.body, got, want)
		}
		if tt.want != "" && got != tt.want {
			t.Errorf("Compute(%q, %d, %q) = %s, want the known vector %s", tt.secret, tt.ts, tt.body, got, tt.want)
		}
		if h := signature.Header(tt.secret, tt.ts, tt.body); h != "v1="+want {
			t.Errorf("Header = %q, want %q", h, "v1="+want)
		}
	}
	// The timestamp and body are separated: moving the dot changes the MAC.
	if signature.Compute(secret, 12, []byte("3.x")) == signature.Compute(secret, 123, []byte("x")) {
		t.Errorf("Compute(12, \"3.x\") == Compute(123, \"x\")")
	}
}

func TestVerify(t *testing.T) {
	good := "v1=" + mac(secret, strconv.FormatInt(nowUnix, 10), body)
	goodHex := strings.TrimPrefix(good, "v1=")
	oldSecret, newSecret := []byte("old-secret"), []byte("new-secret")
	withOld := "v1=" + mac(oldSecret, strconv.FormatInt(nowUnix, 10), body)
	withNew := "v1=" + mac(newSecret, strconv.FormatInt(nowUnix, 10), body)
	ts := strconv.FormatInt(nowUnix, 10)
	at := func(d int64) (string, string) { // header and timestamp signed d seconds from now
		s := strconv.FormatInt(nowUnix+d, 10)
		return "v1=" + mac(secret, s, body), s
	}
	sig300ago, ts300ago := at(-300)
	sig300ahead, ts300ahead := at(300)
	sig301ago, ts301ago := at(-301)
	sig301ahead, ts301ahead := at(301)
	tampered := append([]byte{}, body...)
	tampered[len(tampered)-2] ^= 1
	wrong := "v1=" + mac([]byte("wrong"), ts, body)
	bad := "v1=" + strings.Repeat("0", 64)

	tests := []struct {
		name    string
		sig, ts string
		body    []byte
		secrets [][]byte
		want    error
	}{
		{"good", good, ts, body, [][]byte{secret}, nil},
		{"good among bad values", bad + "," + good + ",v1=zz", ts, body, [][]byte{secret}, nil},
		{"good first", good + "," + bad, ts, body, [][]byte{secret}, nil},
		{"spaces around values", " " + bad + " , " + good + " ", ts, body, [][]byte{secret}, nil},
		{"unknown schemes beside v1", "v0=abc,t=1," + good + ",v2=" + goodHex, ts, body, [][]byte{secret}, nil},
		{"rotation: signed with the old secret", withOld, ts, body, [][]byte{oldSecret, newSecret}, nil},
		{"rotation: signed with the new secret", withNew, ts, body, [][]byte{oldSecret, newSecret}, nil},
		{"rotation: both values", withOld + "," + withNew, ts, body, [][]byte{newSecret}, nil},
		{"rotation: retired secret", withOld, ts, body, [][]byte{newSecret}, signature.ErrNoValidSignature},
		{"exactly 300 s old", sig300ago, ts300ago, body, [][]byte{secret}, nil},
		{"exactly 300 s ahead", sig300ahead, ts300ahead, body, [][]byte{secret}, nil},
		{"301 s old", sig301ago, ts301ago, body, [][]byte{secret}, signature.ErrTooOld},
		{"301 s ahead", sig301ahead, ts301ahead, body, [][]byte{secret}, signature.ErrTooNew},
		{"tampered body", good, ts, tampered, [][]byte{secret}, signature.ErrNoValidSignature},
		{"body with a byte more", good, ts, append(append([]byte{}, body...), ' '), [][]byte{secret}, signature.ErrNoValidSignature},
		{"body cut short", good, ts, body[:len(body)-1], [][]byte{secret}, signature.ErrNoValidSignature},
		{"empty body", good, ts, nil, [][]byte{secret}, signature.ErrNoValidSignature},
		{"wrong secret", wrong, ts, body, [][]byte{secret}, signature.ErrNoValidSignature},
		{"no secrets", good, ts, body, nil, signature.ErrNoValidSignature},
		{"timestamp header differs from the signed one", good, strconv.FormatInt(nowUnix+1, 10), body, [][]byte{secret}, signature.ErrNoValidSignature},
		{"missing signature", "", ts, body, [][]byte{secret}, signature.ErrMissing},
		{"missing timestamp", good, "", body, [][]byte{secret}, signature.ErrMissing},
		{"both missing", "", "", body, [][]byte{secret}, signature.ErrMissing},
		{"timestamp not a number", good, "yesterday", body, [][]byte{secret}, signature.ErrBadTimestamp},
		{"timestamp with fraction", good, ts + ".5", body, [][]byte{secret}, signature.ErrBadTimestamp},
		{"timestamp with exponent", good, "1.7e9", body, [][]byte{secret}, signature.ErrBadTimestamp},
		{"timestamp with space", good, " " + ts, body, [][]byte{secret}, signature.ErrBadTimestamp},
		{"timestamp in hex", good, "0x6553f100", body, [][]byte{secret}, signature.ErrBadTimestamp},
		{"timestamp overflows int64", good, "99999999999999999999", body, [][]byte{secret}, signature.ErrBadTimestamp},
		// A signer sending milliseconds is ~54,000 years ahead (see TestVerifyFarFuture).
		{"timestamp in milliseconds", good, ts + "000", body, [][]byte{secret}, signature.ErrTooNew},
		{"timestamp zero", good, "0", body, [][]byte{secret}, signature.ErrTooOld},
		{"timestamp negative", good, "-1", body, [][]byte{secret}, signature.ErrTooOld},
		{"v0 only", "v0=" + goodHex, ts, body, [][]byte{secret}, signature.ErrNoValidSignature},
		{"no scheme", goodHex, ts, body, [][]byte{secret}, signature.ErrNoValidSignature},
		{"empty v1", "v1=", ts, body, [][]byte{secret}, signature.ErrNoValidSignature},
		{"malformed hex", "v1=" + strings.Repeat("zz", 32), ts, body, [][]byte{secret}, signature.ErrNoValidSignature},
		{"odd-length hex", "v1=" + goodHex[:63], ts, body, [][]byte{secret}, signature.ErrNoValidSignature},
		{"short hex (prefix of good)", "v1=" + goodHex[:62], ts, body, [][]byte{secret}, signature.ErrNoValidSignature},
		{"long hex (good plus a byte)", "v1=" + goodHex + "00", ts, body, [][]byte{secret}, signature.ErrNoValidSignature},
		{"only commas", ",,,", ts, body, [][]byte{secret}, signature.ErrNoValidSignature},
		{"good first half, zero second half", "v1=" + goodHex[:32] + strings.Repeat("0", 32), ts, body, [][]byte{secret}, signature.ErrNoValidSignature},
		{"last byte flipped", "v1=" + goodHex[:62] + flipHex(goodHex[62:]), ts, body, [][]byte{secret}, signature.ErrNoValidSignature},
		{"first byte flipped", "v1=" + flipHex(goodHex[:2]) + goodHex[2:], ts, body, [][]byte{secret}, signature.ErrNoValidSignature},
		{"v1 with the secret itself", "v1=" + hex.EncodeToString(secret), ts, body, [][]byte{secret}, signature.ErrNoValidSignature},
	}
	for _, tt := range tests {
		err := signature.Verify(tt.sig, tt.ts, tt.body, tt.secrets, now, signature.DefaultTolerance)
		if tt.want == nil {
			if err != nil {
				t.Errorf("%s: Verify = %v, want nil", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: Verify = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestVerifyFarFuture: a correctly signed timestamp far in the future is
// too new, however far. time.Time.Sub saturates at about ±292 years, and
// negating the saturated minimum Duration overflows back to itself, so a
// naive "-skew > tolerance" would accept it.
func TestVerifyFarFuture(t *testing.T) {
	const year = 365 * 24 * 3600
	for _, d := range []int64{301, 3600, 100 * year, 291 * year, 293 * year, 300 * year, 1000 * year, 1 << 40, math.MaxInt64 - nowUnix} {
		tsv := nowUnix + d
		ts := strconv.FormatInt(tsv, 10)
		sig := "v1=" + mac(secret, ts, body)
		err := signature.Verify(sig, ts, body, [][]byte{secret}, now, signature.DefaultTolerance)
		if !errors.Is(err, signature.ErrTooNew) {
			t.Errorf("signed timestamp %d s ahead (%s): Verify = %v, want ErrTooNew", d, ts, err)
		}
	}
}

// TestVerifyFarPast: a correctly signed timestamp far in the past is too old.
func TestVerifyFarPast(t *testing.T) {
	const year = 365 * 24 * 3600
	for _, d := range []int64{301, 3600, 100 * year, 300 * year, 1 << 40} {
		ts := strconv.FormatInt(nowUnix-d, 10)
		sig := "v1=" + mac(secret, ts, body)
		err := signature.Verify(sig, ts, body, [][]byte{secret}, now, signature.DefaultTolerance)
		if !errors.Is(err, signature.ErrTooOld) {
			t.Errorf("signed timestamp %d s ago (%s): Verify = %v, want ErrTooOld", d, ts, err)
		}
	}
	ts := strconv.FormatInt(math.MinInt64, 10)
	if err := signature.Verify("v1="+mac(secret, ts, body), ts, body, [][]byte{secret}, now, signature.DefaultTolerance); !errors.Is(err, signature.ErrTooOld) {
		t.Errorf("signed timestamp MinInt64: Verify = %v, want ErrTooOld", err)
	}
}

// TestVerifyRoundTrip: what Header produces, Verify accepts, for several
// bodies and timestamps, and nothing else verifies.
func TestVerifyRoundTrip(t *testing.T) {
	for _, b := range [][]byte{nil, {}, []byte("x"), body, []byte(strings.Repeat("é", 10000))} {
		for _, d := range []int64{-300, -1, 0, 1, 300} {
			ts := nowUnix + d
			h := signature.Header(secret, ts, b)
			if err := signature.Verify(h, strconv.FormatInt(ts, 10), b, [][]byte{secret}, now, signature.DefaultTolerance); err != nil {
				t.Errorf("Verify(Header(%d, %d bytes)) = %v", ts, len(b), err)
			}
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(body, uint(0), byte(1), int64(0), "")
	f.Add([]byte(""), uint(0), byte(0), int64(-300), "v1=00")
	f.Add([]byte("{}"), uint(7), byte(0x80), int64(300), ",v1=,v0=ab")
	f.Fuzz(func(t *testing.T, b []byte, pos uint, flip byte, d int64, extra string) {
		d %= 301 // stay within the tolerance, so only the body decides
		ts := strconv.FormatInt(nowUnix+d, 10)
		good := signature.Header(secret, nowUnix+d, b)

		// Arbitrary headers never panic.
		_ = signature.Verify(extra, extra, b, [][]byte{secret}, now, signature.DefaultTolerance)
		_ = signature.Verify(extra+","+good, ts, b, [][]byte{secret, []byte(extra)}, now, signature.DefaultTolerance)

		if err := signature.Verify(good, ts, b, [][]byte{secret}, now, signature.DefaultTolerance); err != nil {
			t.Fatalf("Verify of its own signature: %v", err)
		}
		// The good value among arbitrary junk still verifies.
		junk := strings.ReplaceAll(extra, "v1=", "")
		if err := signature.Verify(junk+","+good, ts, b, [][]byte{secret}, now, signature.DefaultTolerance); err != nil {
			t.Fatalf("Verify(%q + good): %v", junk, err)
		}

		// Any mutation of the body fails: a flipped byte, a byte added, a byte removed.
		var mutated [][]byte
		if len(b) > 0 && flip != 0 {
			m := append([]byte{}, b...)
			m[pos%uint(len(b))] ^= flip
			mutated = append(mutated, m)
		}
		mutated = append(mutated, append(append([]byte{}, b...), flip))
		if len(b) > 0 {
			i := pos % uint(len(b))
			mutated = append(mutated, append(append([]byte{}, b[:i]...), b[i+1:]...))
		}
		for _, m := range mutated {
			err := signature.Verify(good, ts, m, [][]byte{secret}, now, signature.DefaultTolerance)
			if !errors.Is(err, signature.ErrNoValidSignature) {
				t.Fatalf("mutated body %q (from %q) verified: %v", m, b, err)
			}
		}
	})
}

func TestComputeRequest(t *testing.T) {
	// From `printf '%s.%s.%s.%s' "$ts" "$method" "$target" "$body" |
	// openssl dgst -sha256 -hmac dev-mall-secret`, as docs/api.md signs.
	read := signature.Request{Method: "GET", Target: "/v1/payments/A1001?wait=5s"}
	if got := signature.ComputeRequest(secret, nowUnix, read); got != "11b87b72865ed005e4d59c803406b455cc8c60670adb186613fcea91bc48a8a0" {
		t.Errorf("GET: %s", got)
	}
	post := signature.Request{Method: "POST", Target: "/v1/payments", Body: body}
	if got := signature.ComputeRequest(secret, nowUnix, post); got != "cb8123b3705014860afbe3f20a89930c723733fb77738ba1651fa8ef32c3c5ee" {
		t.Errorf("POST: %s", got)
	}
	if h := signature.RequestHeader(secret, nowUnix, read); h != "v2=11b87b72865ed005e4d59c803406b455cc8c60670adb186613fcea91bc48a8a0" {
		t.Errorf("RequestHeader = %s", h)
	}
}

func TestVerifyRequest(t *testing.T) {
	ts := strconv.FormatInt(nowUnix, 10)
	read := signature.Request{Method: "GET", Target: "/v1/payments/A1001?wait=5s"}
	post := signature.Request{Method: "POST", Target: "/v1/payments", Body: body}
	v2 := func(r signature.Request) string { return signature.RequestHeader(secret, nowUnix, r) }
	v1 := signature.Header(secret, nowUnix, body)
	secrets := [][]byte{[]byte("old-secret"), secret}
	tests := []struct {
		name     string
		header   string
		ts       string
		r        signature.Request
		bodyOnly bool
		want     error // nil, or what errors.Is must find
		detail   string
	}{
		{"a signed read", v2(read), ts, read, false, nil, ""},
		{"a signed post, v2", v2(post), ts, post, true, nil, ""},
		{"a signed post, v1", v1, ts, post, true, nil, ""},
		{"rotation: v2 among others", "v2=" + strings.Repeat("0", 64) + ", " + v2(read) + ",v9=zz", ts, read, false, nil, ""},
		{"a read signed v1 (over its empty body)", signature.Header(secret, nowUnix, nil), ts, read, false, signature.ErrNoValidSignature, "GET needs a v2 signature"},
		{"another order's read", v2(read), ts, signature.Request{Method: "GET", Target: "/v1/payments/A1002?wait=5s"}, false, signature.ErrNoValidSignature, "no v2 value matches GET /v1/payments/A1002?wait=5s"},
		{"the query dropped", v2(read), ts, signature.Request{Method: "GET", Target: "/v1/payments/A1001"}, false, signature.ErrNoValidSignature, ""},
		{"another query", v2(read), ts, signature.Request{Method: "GET", Target: "/v1/payments/A1001?wait=30s"}, false, signature.ErrNoValidSignature, ""},
		{"another path", v2(read), ts, signature.Request{Method: "GET", Target: "/v1/refunds/A1001?wait=5s"}, false, signature.ErrNoValidSignature, ""},
		{"another method", v2(read), ts, signature.Request{Method: "POST", Target: "/v1/payments/A1001?wait=5s"}, true, signature.ErrNoValidSignature, ""},
		{"a post's v2 on another body", v2(post), ts, signature.Request{Method: "POST", Target: "/v1/payments", Body: []byte(`{}`)}, true, signature.ErrNoValidSignature, ""},
		{"a post's v2 on a read", v2(post), ts, read, false, signature.ErrNoValidSignature, ""},
		{"a post's v1 replayed on a read", v1, ts, read, false, signature.ErrNoValidSignature, "needs a v2 signature"},
		{"another timestamp", v2(read), strconv.FormatInt(nowUnix+1, 10), read, false, signature.ErrNoValidSignature, ""},
		{"stale", signature.RequestHeader(secret, nowUnix-301, read), strconv.FormatInt(nowUnix-301, 10), read, false, signature.ErrTooOld, ""},
		{"from the future", signature.RequestHeader(secret, nowUnix+301, read), strconv.FormatInt(nowUnix+301, 10), read, false, signature.ErrTooNew, ""},
		{"unsigned", "", ts, read, false, signature.ErrMissing, ""},
		{"no timestamp", v2(read), "", read, false, signature.ErrMissing, ""},
		{"malformed v2 only", "v2=xyz", ts, read, false, signature.ErrNoValidSignature, "no well-formed v2 value"},
		{"nothing well-formed on a post", "v3=" + strings.Repeat("ab", 32), ts, post, true, signature.ErrNoValidSignature, "no well-formed v1 or v2 value"},
		{"another secret", signature.RequestHeader([]byte("not-it"), nowUnix, read), ts, read, false, signature.ErrNoValidSignature, ""},
	}
	for _, tt := range tests {
		err := signature.VerifyRequest(tt.header, tt.ts, tt.r, secrets, now, signature.DefaultTolerance, tt.bodyOnly)
		switch {
		case tt.want == nil && err != nil:
			t.Errorf("%s: %v, want nil", tt.name, err)
		case tt.want != nil && !errors.Is(err, tt.want):
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		case tt.detail != "" && (err == nil || !strings.Contains(err.Error(), tt.detail)):
			t.Errorf("%s: %v, want it to say %q", tt.name, err, tt.detail)
		}
	}
}
