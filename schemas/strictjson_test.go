package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckJSON(t *testing.T) {
	tests := []struct {
		name, doc string
		// want is the whole error text, "" for none.
		want   string
		offset int
	}{
		{name: "a plain document", doc: `{"order_id":"A1","amount":1999,"buyer":{"id":"u"},"l":[1,{"a":2},"x"]}`},
		{name: "the same key in sibling objects", doc: `{"a":{"id":1},"b":{"id":2},"c":[{"id":3},{"id":4}]}`},
		{name: "characters and escapes", doc: `{"é":"\u00e9 é \ud83d\ude00 😀 \"\\\/\b\f\n\r\t"}`},
		{name: "a literal U+FFFD is a character", doc: "{\"a\":\"\xef\xbf\xbd\"}"},
		{name: "empty object and array", doc: `{"a":{},"b":[],"c":[[],{}]}`},
		{name: "scalars at the root", doc: `1999`},
		{
			name: "repeated key", doc: `{"amount":1,"amount":1000}`,
			want: `/amount: key "amount" repeated at byte 12 (first at byte 1)`, offset: 12,
		},
		{
			name: "repeated key in a nested object", doc: `{"buyer":{"id":"a","email":"e","id":"b"}}`,
			want: `/buyer/id: key "id" repeated at byte 31 (first at byte 10)`, offset: 31,
		},
		{
			name: "repeated key in an array's object", doc: `{"l":[{"a":1},{"a":1,"b":2,"a":3}]}`,
			want: `/l/1/a: key "a" repeated at byte 27 (first at byte 15)`, offset: 27,
		},
		{
			name: "repeated key spelt with an escape", doc: `{"amount":1,"am\u006funt":2}`,
			want: `/amount: key "amount" repeated at byte 12 (first at byte 1)`, offset: 12,
		},
		{
			name: "repeated key after many others", doc: manyKeys(40) + `,"k7":0}`,
			want: `/k7: key "k7" repeated at byte ` + strconv.Itoa(len(manyKeys(40))+1) + ` (first at byte 50)`, offset: len(manyKeys(40)) + 1,
		},
		{
			name: "keys that differ in letter case", doc: `{"amount":1,"Amount":1000}`,
			want:   `/Amount: key "Amount" at byte 12 differs from key "amount" (byte 1) only in letter case, which decoders that match keys case-insensitively (Go's does) take for the same key`,
			offset: 12,
		},
		{
			name: "the Kelvin sign folds to k", doc: "{\"k\":1,\"\u212a\":2}",
			want: "/\u212a: key \"\u212a\" at byte 7 differs from key \"k\" (byte 1) only in letter case, which decoders that match keys case-insensitively (Go's does) take for the same key", offset: 7,
		},
		{
			name: "invalid UTF-8 in a value", doc: "{\"buyer\":{\"email\":\"a\xffb\"}}",
			want: `/buyer/email: not valid UTF-8: byte 0xff at byte 20`, offset: 20,
		},
		{
			name: "invalid UTF-8 in a key", doc: "{\"buyer\":{\"e\xc3\":1}}",
			want: `/buyer: a key: not valid UTF-8: byte 0xc3 at byte 12`, offset: 12,
		},
		{
			name: "a surrogate encoded in UTF-8", doc: "[\"\xed\xa0\x80\"]",
			want: `/0: not valid UTF-8: byte 0xed at byte 2`, offset: 2,
		},
		{
			name: "an overlong encoding", doc: "\"\xc0\xaf\"",
			want: `(root): not valid UTF-8: byte 0xc0 at byte 1`, offset: 1,
		},
		{
			name: "invalid UTF-8 outside a string", doc: "{\"a\":1\xff}",
			want: `/a: not valid UTF-8: byte 0xff at byte 6`, offset: 6,
		},
		{
			name: "a lone high surrogate escape", doc: `{"d":"x\ud800y"}`,
			want: `/d: \ud800 at byte 7 is half of a UTF-16 surrogate pair without its other half: not a character`, offset: 7,
		},
		{
			name: "a lone low surrogate escape", doc: `{"d":"\udc00"}`,
			want: `/d: \udc00 at byte 6 is half of a UTF-16 surrogate pair without its other half: not a character`, offset: 6,
		},
		{
			name: "two high surrogates", doc: `{"d":"\ud800\ud800"}`,
			want: `/d: \ud800 at byte 6 is half of a UTF-16 surrogate pair without its other half: not a character`, offset: 6,
		},
		{
			name: "the first problem in document order wins", doc: "{\"a\":\"\xff\",\"a\":1}",
			want: `/a: not valid UTF-8: byte 0xff at byte 6`, offset: 6,
		},
		// Syntax is the decoder's to report: CheckJSON stops there.
		{name: "syntax error before a repeat", doc: `{"a":1,,"a":2}`},
		{name: "truncated", doc: `{"a":"x`},
		{name: "empty", doc: ``},
		{name: "a raw control character", doc: "{\"a\":\"\x01\",\"a\":2}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckJSON([]byte(tt.doc))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckJSON = %v, want nil", err)
				}
				return
			}
			var je *JSONError
			if !errors.As(err, &je) {
				t.Fatalf("CheckJSON = %v, want a *JSONError", err)
			}
			if je.Error() != tt.want || je.Offset != tt.offset {
				t.Errorf("CheckJSON =\n %s (offset %d)\nwant\n %s (offset %d)", je, je.Offset, tt.want, tt.offset)
			}
		})
	}
}

// manyKeys is an object of n members k0..k(n-1), left open.
func manyKeys(n int) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"k` + strconv.Itoa(i) + `":0`)
	}
	return sb.String()
}

// Every schema refuses what CheckJSON refuses, with CheckJSON's problem
// alone: the consumers and the ingress read JSON through Validate.
func TestValidateRefusesWhatCheckJSONRefuses(t *testing.T) {
	good, err := os.ReadFile("examples/pay-request/full.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, from, to, want string }{
		{"repeated amount", `"amount": 900719925474099,`, `"amount": 1, "amount": 900719925474099,`, `/amount: key "amount" repeated at byte`},
		{"repeated buyer id", `"id": "cust-8812",`, `"id": "cust-8812", "id": "u43",`, `/buyer/id: key "id" repeated at byte`},
		{"amount in another case", `"amount": 900719925474099,`, `"amount": 900719925474099, "AMOUNT": 1,`, `/AMOUNT: key "AMOUNT" at byte`},
		{"invalid UTF-8", `"Bücherregal`, "\"B\xfccherregal", `/description: not valid UTF-8: byte 0xfc at byte`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc := bytes.Replace(good, []byte(tt.from), []byte(tt.to), 1)
			if bytes.Equal(doc, good) {
				t.Fatalf("%q is not in the example", tt.from)
			}
			got := problemsOf(t, PayRequestSchema, doc)
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
				t.Errorf("problems = %q, want one starting %q", got, tt.want)
			}
		})
	}
}

// FuzzCheckJSON holds CheckJSON to what a decoder would do with the same
// bytes: what it accepts is UTF-8 without unpaired surrogates, and
// decodes with no key lost; a repeated key it reports is one a token
// walk finds at the same place; it never panics, whatever the bytes.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":[1,{"c":1,"C":2}]}}`, `{"\u00e9":1,"é":2}`, "{\"a\":\"\xff\"}",
		`["\ud800"]`, `{"k":1,"\u212a":2}`, `{"a":"\ud83d\ude00"}`, `[[[[]]]]`, `{"a":1 , "b" : [ true, null ] }`} {
		f.Add([]byte(s))
	}
	files, _ := filepath.Glob("examples/*/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := CheckJSON(doc)
		var je *JSONError
		if err != nil && !errors.As(err, &je) {
			t.Fatalf("CheckJSON returned %T %v", err, err)
		}
		if err != nil && (je.Offset < 0 || je.Offset >= len(doc)) {
			t.Fatalf("offset %d outside a document of %d bytes", je.Offset, len(doc))
		}
		if !json.Valid(doc) {
			return
		}
		ref := walkKeys(t, doc)
		switch {
		case err == nil:
			if !utf8.Valid(doc) {
				t.Fatalf("accepted invalid UTF-8: %q", doc)
			}
			if ref.replaced {
				t.Fatalf("accepted a string that decodes with U+FFFD it does not spell: %q", doc)
			}
			if ref.repeat != "" {
				t.Fatalf("accepted a repeated key at %s: %q", ref.repeat, doc)
			}
		case strings.Contains(je.Problem, "UTF-8") || strings.Contains(je.Problem, "surrogate"):
			if utf8.Valid(doc) && !ref.replaced {
				t.Fatalf("refused %q for %v, yet it is UTF-8 and decodes without replacement", doc, err)
			}
		default:
			if ref.repeat != je.Pointer && utf8.Valid(doc) && !ref.replaced {
				t.Fatalf("refused %q for %v; a token walk finds the first repeat at %q", doc, err, ref.repeat)
			}
		}
	})
}

// keyWalk is what a token walk with encoding/json finds in a document.
type keyWalk struct {
	// repeat is the pointer of the first key equal (under EqualFold) to
	// an earlier key of its object, "" if none.
	repeat string
	// replaced is set if a decoded string holds U+FFFD more often than
	// its raw spelling has it (a byte or surrogate replaced).
	replaced bool
}

func walkKeys(t *testing.T, doc []byte) keyWalk {
	var w keyWalk
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   []string
		n      int
		key    bool // the next string token is a key
	}
	var stack []frame
	var path []string
	// fffd counts the U+FFFD a raw string spells, literally or escaped.
	fffd := func(raw []byte) int {
		return bytes.Count(raw, []byte("\uFFFD")) + bytes.Count(bytes.ToLower(raw), []byte(`\ufffd`))
	}
	rawString := func(end int64) []byte {
		// The token just read ends at end; walk back to its opening quote.
		i := int(end) - 2
		for ; i >= 0; i-- {
			if doc[i] == '"' {
				bs := 0
				for j := i - 1; j >= 0 && doc[j] == '\\'; j-- {
					bs++
				}
				if bs%2 == 0 {
					break
				}
			}
		}
		return doc[i+1 : end-1]
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return w
		}
		if err != nil {
			t.Fatalf("token walk of a valid document: %v", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok {
			if strings.Count(s, "\uFFFD") > fffd(rawString(dec.InputOffset())) {
				w.replaced = true
			}
		}
		if k, ok := tok.(string); ok && top != nil && top.object && top.key {
			for _, prev := range top.keys {
				if strings.EqualFold(prev, k) && w.repeat == "" {
					w.repeat = pointer(append(append([]string(nil), path...), k))
				}
			}
			top.keys = append(top.keys, k)
			top.key = false
			path = append(path, k)
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if top != nil && !top.object {
				path = append(path, strconv.Itoa(top.n))
				top.n++
			}
			stack = append(stack, frame{object: tok == json.Delim('{'), key: true})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if top != nil && !top.object {
				top.n++
				continue
			}
		}
		// A value of an object member (or a container) ended.
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
			if len(path) > 0 {
				path = path[:len(path)-1]
			}
			if top.object {
				top.key = true
			}
		}
	}
}

func TestDigest(t *testing.T) {
	base := `{"order_id":"A1","amount":1999,"buyer":{"id":"u","email":"a@example.com"},"description":"café"}`
	same := []string{
		base,
		"{\n  \"amount\": 1999,\n  \"order_id\": \"A1\",\n  \"description\": \"caf\\u00e9\",\n  \"buyer\": {\"email\": \"a@example.com\", \"id\": \"u\"}\n}",
		`{"buyer":{"email":"a@example.com","id":"\u0075"},"description":"café","order_id":"A1","amount":1999}`,
	}
	other := []string{
		`{"order_id":"A1","amount":1998,"buyer":{"id":"u","email":"a@example.com"},"description":"café"}`,
		`{"order_id":"A1","amount":1999.0,"buyer":{"id":"u","email":"a@example.com"},"description":"café"}`,
		`{"order_id":"A1","amount":1999,"buyer":{"id":"u","email":"a@example.com"},"description":"cafe"}`,
		`{"order_id":"A1","amount":1999,"buyer":{"id":"u","email":"a@example.com"}}`,
		`{"order_id":"A1","amount":1999,"buyer":{"id":"u","email":"a@example.com"},"description":"café","channel":""}`,
	}
	want, err := Digest([]byte(base))
	if err != nil || len(want) != 32 {
		t.Fatalf("Digest = %x, %v", want, err)
	}
	for _, d := range same {
		if got, err := Digest([]byte(d)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("Digest(%s) = %x, %v; want the base's %x", d, got, err, want)
		}
	}
	for _, d := range other {
		if got, err := Digest([]byte(d)); err != nil || bytes.Equal(got, want) {
			t.Errorf("Digest(%s) = %x, %v; want another digest", d, got, err)
		}
	}
	if _, err := Digest([]byte(`{"a":`)); err == nil {
		t.Error("Digest of a broken document: no error")
	}
}
