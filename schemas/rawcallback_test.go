package schemas

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// bySchema is the reference DecodeRawCallback must agree with: the
// schema, then json.Unmarshal.
func bySchema(doc []byte) (RawCallback, error) {
	if err := Validate(PSPCallbackSchema, doc); err != nil {
		return RawCallback{}, err
	}
	var raw RawCallback
	err := json.Unmarshal(doc, &raw)
	return raw, err
}

// agree fails t unless DecodeRawCallback and its fast path agree with
// the schema on doc: the fast path accepts nothing the schema refuses and
// decodes what json.Unmarshal decodes; DecodeRawCallback accepts exactly
// what the schema and json.Unmarshal accept, refusing with the schema's
// own problems.
func agree(t *testing.T, doc []byte) (fast bool) {
	t.Helper()
	want, wantErr := bySchema(doc)
	got, fast := decodeCanonicalRawCallback(doc)
	if fast {
		if wantErr != nil {
			t.Fatalf("fast path accepted what the schema refuses (%v):\n%s", wantErr, doc)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fast path decoded\n%+v\nwant\n%+v", got, want)
		}
	}
	got, err := DecodeRawCallback(doc)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("DecodeRawCallback error %v, schema and json.Unmarshal say %v:\n%s", err, wantErr, doc)
	}
	var ve, wantVE *ValidationError
	if errors.As(wantErr, &wantVE) && (!errors.As(err, &ve) || !reflect.DeepEqual(ve.Problems, wantVE.Problems)) {
		t.Fatalf("DecodeRawCallback refused with %v, the schema with %v", err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeRawCallback decoded\n%+v\nwant\n%+v", got, want)
	}
	return fast
}

func mustMarshal(t testing.TB, r RawCallback) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// What the ingress and the sweeper write takes the fast path.
func TestDecodeRawCallbackFastPathTakesWhatPaygateWrites(t *testing.T) {
	at := time.Date(2026, 11, 25, 23, 59, 59, 123456789, time.UTC)
	for name, r := range map[string]RawCallback{
		"async": {ID: "psp_callback/01J", Channel: "stripe_eu", Kind: "async", Method: "POST", Path: "/v1/callbacks/stripe_eu",
			Headers: map[string][]string{"Content-Type": {"application/json"}, "Stripe-Signature": {"t=1,v1=ab"}, "X-Empty": {}},
			Body:    []byte(`{"id":"evt_1","amount":1999,"note":"<&>"}`), ReceivedAt: at},
		"sync": {ID: "psp_callback/02J", Channel: "sim", Kind: "sync", Method: "GET", Path: "/v1/return/sim",
			Query: "order=o-1&sig=a%2Bb", ReceivedAt: at},
		"status probe": {ID: "probe/ABC-1/3", Channel: "sim2", Kind: "status_probe", ReceivedAt: at,
			TransactionCode: "ABC-1", ExpireIfUnpaid: true},
		"long and non-ASCII": {ID: strings.Repeat("é", 128), Channel: strings.Repeat("a", 32), Kind: "async",
			Method: strings.Repeat("P", 16), Path: "/" + strings.Repeat("ü", 8191), ReceivedAt: at,
			Headers: map[string][]string{"X-Name": {"José", "\u2028"}}},
	} {
		t.Run(name, func(t *testing.T) {
			doc := mustMarshal(t, r)
			if !agree(t, doc) {
				t.Fatalf("not on the fast path:\n%s", doc)
			}
		})
	}
}

// Every example of the schema, valid or not, gets the schema's answer;
// the valid ones as written by hand are not in json.Marshal's form.
func TestDecodeRawCallbackAgreesOnTheSchemaExamples(t *testing.T) {
	files, _ := filepath.Glob("examples/psp-callback/*.json")
	invalid, _ := filepath.Glob("examples/psp-callback/invalid/*.json")
	if len(files) == 0 || len(invalid) == 0 {
		t.Fatal("no psp-callback examples")
	}
	for _, f := range append(files, invalid...) {
		doc, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(f), func(t *testing.T) { agree(t, doc) })
	}
}

// Documents one step away from json.Marshal's form: the fast path must
// leave each to the schema, and the answer must be the schema's.
func TestDecodeRawCallbackLeavesTheRestToTheSchema(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	good := RawCallback{ID: "cb-1", Channel: "sim", Kind: "async", Method: "POST", Path: "/cb",
		Headers: map[string][]string{"X-A": {"1"}}, Body: []byte("hi"), ReceivedAt: at}
	base := string(mustMarshal(t, good))
	edit := func(old, new string) []byte {
		if !strings.Contains(base, old) {
			t.Fatalf("%q not in %s", old, base)
		}
		return []byte(strings.Replace(base, old, new, 1))
	}
	with := func(f func(r *RawCallback)) []byte {
		r := good
		f(&r)
		return mustMarshal(t, r)
	}
	cases := map[string][]byte{
		"header value null":        edit(`"X-A":["1"]`, `"X-A":null`),
		"header value a string":    edit(`"X-A":["1"]`, `"X-A":"1"`),
		"id in upper case":         edit(`"id":`, `"ID":`),
		"id twice":                 edit(`"id":"cb-1"`, `"id":"","id":"cb-1"`),
		"unknown member":           edit(`"id":`, `"future":1,"id":`),
		"id null":                  edit(`"id":"cb-1"`, `"id":null`),
		"id a number":              edit(`"id":"cb-1"`, `"id":1`),
		"escaped letter":           edit(`"cb-1"`, `"cb\u002d1"`),
		"space":                    edit(`{`, `{ `),
		"received_at with offset":  edit(`"2026-11-25T12:00:00Z"`, `"2026-11-25T13:00:00+01:00"`),
		"received_at leap second":  edit(`"2026-11-25T12:00:00Z"`, `"2026-11-25T23:59:60Z"`),
		"received_at date only":    edit(`"2026-11-25T12:00:00Z"`, `"2026-11-25"`),
		"body not base64":          edit(`"aGk="`, `"aGk"`),
		"body with a newline":      edit(`"aGk="`, `"aG\nk="`),
		"empty headers object":     edit(`"headers":{"X-A":["1"]}`, `"headers":{}`),
		"expire_if_unpaid false":   edit(`"received_at"`, `"expire_if_unpaid":false,"received_at"`),
		"trailing data":            append([]byte(base), ' '),
		"not an object":            []byte(`[]`),
		"empty id":                 with(func(r *RawCallback) { r.ID = "" }),
		"id of 129 characters":     with(func(r *RawCallback) { r.ID = strings.Repeat("é", 129) }),
		"channel upper case":       with(func(r *RawCallback) { r.Channel = "Sim" }),
		"channel of 33":            with(func(r *RawCallback) { r.Channel = strings.Repeat("a", 33) }),
		"channel empty":            with(func(r *RawCallback) { r.Channel = "" }),
		"channel with a newline":   with(func(r *RawCallback) { r.Channel = "sim\n" }),
		"kind unknown":             with(func(r *RawCallback) { r.Kind = "webhook" }),
		"method lower case":        with(func(r *RawCallback) { r.Method = "post" }),
		"method empty":             with(func(r *RawCallback) { r.Method = "" }),
		"method of 17":             with(func(r *RawCallback) { r.Method = strings.Repeat("P", 17) }),
		"path relative":            with(func(r *RawCallback) { r.Path = "cb" }),
		"path of 8193":             with(func(r *RawCallback) { r.Path = "/" + strings.Repeat("a", 8192) }),
		"probe without code":       with(func(r *RawCallback) { r.Kind = "status_probe" }),
		"probe with a long code":   with(func(r *RawCallback) { r.Kind, r.TransactionCode = "status_probe", strings.Repeat("c", 65) }),
		"async with a long code":   with(func(r *RawCallback) { r.TransactionCode = strings.Repeat("c", 65) }),
		"probe, method lower case": with(func(r *RawCallback) { r.Kind, r.TransactionCode, r.Method, r.Path = "status_probe", "c", "get", "x" }),
		"received_at not UTC":      with(func(r *RawCallback) { r.ReceivedAt = at.In(time.FixedZone("", 3600)) }),
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			if agree(t, doc) {
				if name == "probe, method lower case" {
					return // the schema allows any method on a probe
				}
				t.Fatalf("fast path took:\n%s", doc)
			}
		})
	}
}

// Any bytes: the fast path never accepts what the schema refuses, and
// DecodeRawCallback answers as the schema does.
func FuzzDecodeRawCallbackBytes(f *testing.F) {
	files, _ := filepath.Glob("examples/psp-callback/*.json")
	invalid, _ := filepath.Glob("examples/psp-callback/invalid/*.json")
	for _, p := range append(files, invalid...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
			var r RawCallback
			if json.Unmarshal(b, &r) == nil {
				r.ReceivedAt = r.ReceivedAt.UTC()
				if c, err := json.Marshal(r); err == nil {
					f.Add(c)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, doc []byte) { agree(t, doc) })
}

// Any values, written as paygate writes them: the fast path accepts
// exactly what the schema accepts (so it is taken whenever it can be),
// and decodes it as json.Unmarshal does.
func FuzzDecodeRawCallbackValues(f *testing.F) {
	f.Add("cb-1", "sim", uint8(0), "POST", "/cb", "a=1", "X-A", "v", []byte("body"), int64(1764115200123456789), "", false)
	f.Add("p-1", "sim2", uint8(2), "", "", "", "", "", []byte(nil), int64(0), "CODE-1", true)
	f.Add("é", "a_b-9", uint8(1), "GET", "/", "", "X-Null", "\u2028<>&", []byte{0, 255}, int64(-62135596800000000000/1000), "c", false)
	kinds := []string{"async", "sync", "status_probe", "other", ""}
	f.Fuzz(func(t *testing.T, id, channel string, kind uint8, method, path, query, hk, hv string, body []byte, ns int64, code string, expire bool) {
		r := RawCallback{ID: id, Channel: channel, Kind: kinds[int(kind)%len(kinds)], Method: method, Path: path, Query: query,
			Body: body, ReceivedAt: time.Unix(0, ns).UTC(), TransactionCode: code, ExpireIfUnpaid: expire}
		if hk != "" {
			r.Headers = map[string][]string{hk: {hv}}
		}
		doc, err := json.Marshal(r)
		if err != nil {
			return
		}
		fast := agree(t, doc)
		if _, err := bySchema(doc); err == nil && !fast {
			// Accepted by the schema, yet off the fast path: only if the
			// document is not json.Marshal's own form of what it decodes
			// to (invalid UTF-8 comes back as U+FFFD, say).
			var back RawCallback
			if json.Unmarshal(doc, &back) == nil {
				if again, err := json.Marshal(back); err == nil && string(again) == string(doc) {
					t.Fatalf("the schema accepts, the fast path does not:\n%s", doc)
				}
			}
		}
	})
}

// EncodeRawCallback writes what json.Marshal writes, byte for byte, for
// every kind of value a member can hold.
func TestEncodeRawCallbackIsJSONMarshal(t *testing.T) {
	at := time.Date(2026, 11, 25, 23, 59, 59, 123456789, time.UTC)
	odd := "a\"b\\c<d>e&f\b\f\n\r\t\x00\x1f\x7f é \u2028\u2029 \xff\xfe end"
	for name, r := range map[string]RawCallback{
		"empty":     {},
		"async":     {ID: "psp_callback/01J", Channel: "stripe_eu", Kind: "async", Method: "POST", Path: "/v1/callbacks/stripe_eu", Body: []byte(`{"a":"<&>"}`), ReceivedAt: at},
		"odd bytes": {ID: odd, Channel: odd, Kind: odd, Method: odd, Path: odd, Query: odd, TransactionCode: odd, Body: []byte(odd), ReceivedAt: at},
		"headers": {Headers: map[string][]string{"Zeta": {"1", odd}, "alpha": {}, "Beta": nil, "": {""}, odd: {odd}, "É": {"x"}},
			ReceivedAt: at.In(time.FixedZone("x", -5*3600))},
		"empty map and body": {Headers: map[string][]string{}, Body: []byte{}, ReceivedAt: at},
		"probe":              {ID: "probe/ABC-1/3", Channel: "sim2", Kind: "status_probe", TransactionCode: "ABC-1", ExpireIfUnpaid: true, ReceivedAt: at},
		"no fraction":        {ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		"year out of range":  {ReceivedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"year before year 0": {ReceivedAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		"zone with seconds":  {ReceivedAt: at.In(time.FixedZone("odd", 3600+30))},
	} {
		t.Run(name, func(t *testing.T) { encodeAgrees(t, r) })
	}
}

func encodeAgrees(t *testing.T, r RawCallback) {
	t.Helper()
	want, wantErr := json.Marshal(r)
	got, err := EncodeRawCallback(r)
	if (err == nil) != (wantErr == nil) || string(got) != string(want) {
		t.Fatalf("EncodeRawCallback:\n%s (%v)\njson.Marshal:\n%s (%v)", got, err, want, wantErr)
	}
}

// Any values: EncodeRawCallback writes what json.Marshal writes.
func FuzzEncodeRawCallback(f *testing.F) {
	f.Add("cb-1", "sim", "async", "POST", "/cb", "a=1", "X-A", "v", "X-B", "w", []byte("body"), int64(1764115200123456789), "", false, true)
	f.Add("\u2028<>&", "\xff", "", "", "", "", "\x00", "\"\\", "", "", []byte(nil), int64(-62135596800000000000/1000), "c", true, false)
	f.Fuzz(func(t *testing.T, id, channel, kind, method, path, query, hk, hv, hk2, hv2 string, body []byte, ns int64, code string, expire, nilValues bool) {
		r := RawCallback{ID: id, Channel: channel, Kind: kind, Method: method, Path: path, Query: query,
			Body: body, ReceivedAt: time.Unix(0, ns).UTC(), TransactionCode: code, ExpireIfUnpaid: expire}
		if hk != "" || hk2 != "" {
			r.Headers = map[string][]string{hk: {hv, hv2}, hk2: {hv2}}
			if nilValues {
				r.Headers[hv] = nil
			}
		}
		encodeAgrees(t, r)
	})
}

// parseRawCallback reads what EncodeRawCallback writes as json.Unmarshal
// does — escapes, U+FFFD for invalid UTF-8, empty header lists, zones —
// and refuses, without panicking, every document cut short.
func TestParseRawCallbackReadsWhatEncodeWrites(t *testing.T) {
	at := time.Date(2026, 11, 25, 23, 59, 59, 123456789, time.UTC)
	odd := "a\"b\\c<d>e&f\b\f\n\r\t\x00\x1f\x7f é \u2028\u2029 \xff\xfe end"
	for name, r := range map[string]RawCallback{
		"async": {ID: "psp_callback/01J", Channel: "stripe_eu", Kind: "async", Method: "POST", Path: "/v1/callbacks/stripe_eu",
			Headers: map[string][]string{"Content-Type": {"application/json"}, "X-Empty": {}, "X-Two": {"1", "2"}},
			Body:    []byte(`{"a":"<&>"}`), ReceivedAt: at},
		"odd bytes": {ID: odd, Channel: odd, Kind: odd, Method: odd, Path: odd, Query: odd, TransactionCode: odd,
			Headers: map[string][]string{odd: {odd, ""}, "": {odd}}, Body: []byte(odd), ReceivedAt: at},
		"probe":    {ID: "probe/ABC-1/3", Channel: "sim2", Kind: "status_probe", TransactionCode: "ABC-1", ExpireIfUnpaid: true, ReceivedAt: at},
		"zone":     {ID: "z", ReceivedAt: at.In(time.FixedZone("x", -5*3600))},
		"one byte": {Body: []byte{0xff}, ReceivedAt: at},
		"nothing":  {},
	} {
		t.Run(name, func(t *testing.T) {
			doc := mustEncode(t, r)
			var want RawCallback
			if err := json.Unmarshal(doc, &want); err != nil {
				t.Fatal(err)
			}
			got, ok := parseRawCallback(doc)
			if !ok || !reflect.DeepEqual(got, want) {
				t.Fatalf("parsed %v\n%+v\njson.Unmarshal\n%+v\nfrom %s", ok, got, want, doc)
			}
			for n := range len(doc) {
				if _, ok := parseRawCallback(doc[:n]); ok {
					t.Fatalf("took the first %d bytes: %s", n, doc[:n])
				}
			}
		})
	}
	refused := map[string]string{
		"a header's null":     `{"id":"a","channel":"b","kind":"c","method":"d","path":"e","headers":{"X":null},"received_at":"2026-11-25T12:00:00Z"}`,
		"a surrogate escape":  `{"id":"\ud83d\ude00","channel":"b","kind":"c","method":"d","path":"e","received_at":"2026-11-25T12:00:00Z"}`,
		"an unknown escape":   `{"id":"\x","channel":"b","kind":"c","method":"d","path":"e","received_at":"2026-11-25T12:00:00Z"}`,
		"a short escape":      `{"id":"\u12","channel":"b","kind":"c","method":"d","path":"e","received_at":"2026-11-25T12:00:00Z"}`,
		"members reordered":   `{"channel":"b","id":"a","kind":"c","method":"d","path":"e","received_at":"2026-11-25T12:00:00Z"}`,
		"a space":             `{"id": "a","channel":"b","kind":"c","method":"d","path":"e","received_at":"2026-11-25T12:00:00Z"}`,
		"body not base64":     `{"id":"a","channel":"b","kind":"c","method":"d","path":"e","body":"!!","received_at":"2026-11-25T12:00:00Z"}`,
		"a bad time":          `{"id":"a","channel":"b","kind":"c","method":"d","path":"e","received_at":"2026-11-25"}`,
		"expire false":        `{"id":"a","channel":"b","kind":"c","method":"d","path":"e","received_at":"2026-11-25T12:00:00Z","expire_if_unpaid":false}`,
		"trailing data":       `{"id":"a","channel":"b","kind":"c","method":"d","path":"e","received_at":"2026-11-25T12:00:00Z"} `,
		"headers not closed":  `{"id":"a","channel":"b","kind":"c","method":"d","path":"e","headers":{"X":["1"],"received_at":"2026-11-25T12:00:00Z"}`,
		"values not a string": `{"id":"a","channel":"b","kind":"c","method":"d","path":"e","headers":{"X":[1]},"received_at":"2026-11-25T12:00:00Z"}`,
	}
	for name, doc := range refused {
		if r, ok := parseRawCallback([]byte(doc)); ok {
			t.Errorf("%s: took %+v", name, r)
		}
	}
}

func mustEncode(t *testing.T, r RawCallback) []byte {
	t.Helper()
	b, err := EncodeRawCallback(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
