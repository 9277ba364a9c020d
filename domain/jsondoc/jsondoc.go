// Package jsondoc reads operator documents (the routing policy, the risk
// rules) strictly: an unknown or repeated field, a value of the wrong type
// or out of range is a FieldError naming the field by its path (for
// example `segments[2].candidates[0].weight`), so that an operator who
// applies a document with a typo is told where, instead of having an
// option silently ignored. Each document's parser is a tree of Object
// calls whose fields read their values with the helpers here.
package jsondoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

// FieldError is a document error naming the field by its path. Doc is
// the document's name ("routing policy", "risk rules"); the helpers leave
// it empty and the document's parser sets it (Named).
type FieldError struct {
	Doc  string
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	prefix := ""
	if e.Doc != "" {
		prefix = e.Doc + ": "
	}
	if e.Path == "" {
		return prefix + e.Msg
	}
	return prefix + e.Path + ": " + e.Msg
}

// Errorf is a FieldError at path.
func Errorf(path, format string, args ...any) error {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Named gives a FieldError without a document name the name doc; other
// errors are returned as they are.
func Named(err error, doc string) error {
	if fe, ok := err.(*FieldError); ok && fe.Doc == "" {
		fe.Doc = doc
	}
	return err
}

// Check refuses a document that is larger than limit bytes or not UTF-8,
// before any of it is read.
func Check(doc []byte, limit int) error {
	if len(doc) > limit {
		return Errorf("", "the document is %d bytes; at most %d", len(doc), limit)
	}
	if !utf8.Valid(doc) {
		return Errorf("", "the document is not valid UTF-8")
	}
	return nil
}

// Fields maps an object's member names to what reads each member's value
// (with the member's path).
type Fields = map[string]func(path string, raw json.RawMessage) error

// Object reads a JSON object whose members are handled by fields; a
// member not in fields, a repeated member or a missing required one is
// an error naming it. Members are read in the document's order.
func Object(path string, raw []byte, fields Fields, required ...string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return Errorf(path, "not valid JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return Errorf(path, "must be an object, not %s", Kind(raw))
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Errorf(path, "not valid JSON: %v", err)
		}
		key := tok.(string) // object keys are strings
		fp := Join(path, key)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return Errorf(fp, "not valid JSON: %v", err)
		}
		if seen[key] {
			return Errorf(fp, "given twice")
		}
		seen[key] = true
		f, ok := fields[key]
		if !ok {
			return Errorf(fp, "unknown field")
		}
		if err := f(fp, val); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return Errorf(path, "not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(path, "data after the end of the object")
	}
	for _, r := range required {
		if !seen[r] {
			return Errorf(Join(path, r), "required")
		}
	}
	return nil
}

// Join is the path of member key of the value at path.
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Array reads a JSON array of at most limit entries, calling each with
// every entry's path (`path[i]`) and value.
func Array(path string, raw json.RawMessage, limit int, each func(string, json.RawMessage) error) error {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || raw[0] != '[' {
		return Errorf(path, "must be an array, not %s", Kind(raw))
	}
	if len(items) > limit {
		return Errorf(path, "%d entries; at most %d", len(items), limit)
	}
	for i, it := range items {
		if err := each(fmt.Sprintf("%s[%d]", path, i), it); err != nil {
			return err
		}
	}
	return nil
}

// String reads a JSON string.
func String(path string, raw json.RawMessage, dst *string) error {
	if err := json.Unmarshal(raw, dst); err != nil || raw[0] != '"' {
		return Errorf(path, "must be a string, not %s", Kind(raw))
	}
	return nil
}

// Strings reads an array of at most limit strings.
func Strings(path string, raw json.RawMessage, limit int, dst *[]string) error {
	var out []string
	err := Array(path, raw, limit, func(p string, r json.RawMessage) error {
		var s string
		if err := String(p, r, &s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	*dst = out
	return err
}

// Bool reads true or false.
func Bool(path string, raw json.RawMessage, dst *bool) error {
	if err := json.Unmarshal(raw, dst); err != nil || (raw[0] != 't' && raw[0] != 'f') {
		return Errorf(path, "must be true or false, not %s", Kind(raw))
	}
	return nil
}

// Number reads a finite JSON number.
func Number(path string, raw json.RawMessage, dst *float64) error {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil || !isNumber(raw) {
		return Errorf(path, "must be a number, not %s", Kind(raw))
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) {
		return Errorf(path, "%s is out of range", n)
	}
	*dst = f
	return nil
}

// Share reads a number from 0 to 1.
func Share(path string, raw json.RawMessage, dst *float64) error {
	if err := Number(path, raw, dst); err != nil {
		return err
	}
	if *dst < 0 || *dst > 1 {
		return Errorf(path, "%v: a share is from 0 to 1", *dst)
	}
	return nil
}

// Int64 reads an integer (no fraction, no exponent that makes one: money
// is minor units).
func Int64(path string, raw json.RawMessage, dst *int64) error {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil || !isNumber(raw) {
		return Errorf(path, "must be an integer, not %s", Kind(raw))
	}
	v, err := n.Int64()
	if err != nil {
		return Errorf(path, "%s: must be an integer (amounts are minor units)", n)
	}
	*dst = v
	return nil
}

// Int reads an integer within int32's range.
func Int(path string, raw json.RawMessage, dst *int) error {
	var v int64
	if err := Int64(path, raw, &v); err != nil {
		return err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return Errorf(path, "%d is out of range", v)
	}
	*dst = int(v)
	return nil
}

// Duration reads a Go duration string ("30s", "15m").
func Duration(path string, raw json.RawMessage, dst *time.Duration) error {
	var s string
	if err := String(path, raw, &s); err != nil {
		return Errorf(path, "must be a duration string such as \"30s\" or \"15m\", not %s", Kind(raw))
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return Errorf(path, "%q: not a duration (such as \"30s\" or \"15m\")", s)
	}
	*dst = d
	return nil
}

// Time reads an RFC 3339 time.
func Time(path string, raw json.RawMessage, dst *time.Time) error {
	var s string
	if err := String(path, raw, &s); err != nil {
		return Errorf(path, "must be an RFC 3339 time string such as \"2027-01-31T00:00:00Z\", not %s", Kind(raw))
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return Errorf(path, "%q: not an RFC 3339 time (such as \"2027-01-31T00:00:00Z\")", s)
	}
	*dst = t
	return nil
}

func isNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'))
}

// Kind names a JSON value's type, for errors.
func Kind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}
