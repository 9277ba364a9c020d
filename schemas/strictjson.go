package schemas

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// JSONError is what CheckJSON finds wrong with a document's bytes: a
// problem that decoding would hide rather than report.
type JSONError struct {
	// Pointer is the JSON pointer (RFC 6901) of the member or value at
	// fault, "" for the document itself.
	Pointer string
	// Offset is the byte offset of the fault in the document.
	Offset int
	// Problem says what is wrong, e.g. `key "amount" repeated at byte
	// 27 (first at byte 2)`.
	Problem string
}

// Error is "<pointer>: <problem>", the root written "(root)", as
// ValidationError's problems are.
func (e *JSONError) Error() string {
	ptr := e.Pointer
	if ptr == "" {
		ptr = "(root)"
	}
	return ptr + ": " + e.Problem
}

// maxCheckDepth bounds the nesting CheckJSON follows; encoding/json
// refuses deeper documents itself ("exceeded max depth").
const maxCheckDepth = 10000

// CheckJSON is paygate's one check of the bytes of a JSON document it
// reads from outside, before any decoder sees them. It refuses (with a
// *JSONError) what a decoder would silently rewrite or choose for us:
//
//   - bytes that are not UTF-8 (RFC 8259 §8.1 requires it; encoding/json
//     would store U+FFFD in their place), and \u escapes of an unpaired
//     UTF-16 surrogate, which are no character (RFC 7493 §2.1) and decode
//     to U+FFFD as well;
//   - an object with a repeated key, at any depth (`"amount":1,
//     "amount":1000`: encoding/json keeps the last, other parsers the
//     first, so the signer and the reader could disagree on the amount),
//     keys compared after unescaping ("am\u006fount" is "amount");
//   - an object with two keys that differ only in letter case (Unicode
//     simple folding, as bytes.EqualFold): encoding/json matches struct
//     fields case-insensitively, so "Amount" after "amount" would
//     overwrite it in a Go struct while a schema sees another field.
//
// It reports the first problem in document order. A document that is not
// JSON at all is left to the decoder, which says where its syntax breaks:
// CheckJSON stops at the first syntax error it meets and returns nil (or
// what it found before). Validate runs it first, so every consumer and
// the ingress refuse such documents the same way; use it directly only
// for JSON no schema covers.
func CheckJSON(doc []byte) error {
	c := jsonChecker{b: doc}
	c.ws()
	c.value(0)
	if c.err == nil {
		return nil // not a typed nil in an error
	}
	return c.err
}

// jsonChecker walks a document once. err is the problem found; stop is
// set on a syntax error (the decoder reports those) or a problem, after
// which nothing more is read.
type jsonChecker struct {
	b    []byte
	i    int
	path []string
	err  *JSONError
	stop bool
}

func (c *jsonChecker) fail(offset int, ptr, format string, args ...any) {
	c.err = &JSONError{Pointer: ptr, Offset: offset, Problem: fmt.Sprintf(format, args...)}
	c.stop = true
}

func (c *jsonChecker) pointer() string { return pointer(c.path) }

func (c *jsonChecker) ws() {
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

// value reads one value at c.i (whitespace before it skipped).
func (c *jsonChecker) value(depth int) {
	if c.i >= len(c.b) || depth > maxCheckDepth {
		c.stop = true
		return
	}
	switch c.b[c.i] {
	case '{':
		c.object(depth)
	case '[':
		c.array(depth)
	case '"':
		c.str(false)
	default:
		c.scalar()
	}
}

// member is a key read in an object: its text, its fold, where it starts.
type member struct {
	key, fold string
	at        int
}

func (c *jsonChecker) object(depth int) {
	c.i++ // {
	c.ws()
	if c.i < len(c.b) && c.b[c.i] == '}' {
		c.i++
		return
	}
	var seen []member
	var index map[string]int // fold → index in seen, once seen is long
	for !c.stop {
		if c.i >= len(c.b) || c.b[c.i] != '"' {
			c.stop = true
			return
		}
		at := c.i
		key := c.str(true)
		if c.stop {
			return
		}
		m := member{key: key, fold: fold(key), at: at}
		first := -1
		if index != nil {
			if j, ok := index[m.fold]; ok {
				first = j
			}
		} else {
			for j := range seen {
				if seen[j].fold == m.fold {
					first = j
					break
				}
			}
		}
		if first >= 0 {
			ptr := pointer(append(c.path, key))
			if prev := seen[first]; prev.key == key {
				c.fail(at, ptr, "key %s repeated at byte %d (first at byte %d)", strconv.Quote(key), at, prev.at)
			} else {
				c.fail(at, ptr, "key %s at byte %d differs from key %s (byte %d) only in letter case, which decoders that match keys case-insensitively (Go's does) take for the same key",
					strconv.Quote(key), at, strconv.Quote(prev.key), prev.at)
			}
			return
		}
		seen = append(seen, m)
		if index == nil && len(seen) > 16 {
			index = make(map[string]int, 2*len(seen))
			for j, s := range seen {
				index[s.fold] = j
			}
		} else if index != nil {
			index[m.fold] = len(seen) - 1
		}
		c.ws()
		if c.i >= len(c.b) || c.b[c.i] != ':' {
			c.stop = true
			return
		}
		c.i++
		c.ws()
		c.path = append(c.path, key)
		c.value(depth + 1)
		c.path = c.path[:len(c.path)-1]
		if c.stop {
			return
		}
		c.ws()
		if c.i < len(c.b) && c.b[c.i] == '}' {
			c.i++
			return
		}
		if c.i >= len(c.b) || c.b[c.i] != ',' {
			c.stop = true
			return
		}
		c.i++
		c.ws()
	}
}

func (c *jsonChecker) array(depth int) {
	c.i++ // [
	c.ws()
	if c.i < len(c.b) && c.b[c.i] == ']' {
		c.i++
		return
	}
	for n := 0; !c.stop; n++ {
		c.path = append(c.path, strconv.Itoa(n))
		c.value(depth + 1)
		c.path = c.path[:len(c.path)-1]
		if c.stop {
			return
		}
		c.ws()
		if c.i < len(c.b) && c.b[c.i] == ']' {
			c.i++
			return
		}
		if c.i >= len(c.b) || c.b[c.i] != ',' {
			c.stop = true
			return
		}
		c.i++
		c.ws()
	}
}

// scalar skips a number or literal; the decoder judges its spelling.
// A byte outside ASCII there is a syntax error, unless it is not even
// UTF-8, which is said first.
func (c *jsonChecker) scalar() {
	for ; c.i < len(c.b); c.i++ {
		switch b := c.b[c.i]; {
		case b == ',' || b == ']' || b == '}' || b == ' ' || b == '\t' || b == '\n' || b == '\r':
			return
		case b >= utf8.RuneSelf:
			if r, size := utf8.DecodeRune(c.b[c.i:]); r == utf8.RuneError && size == 1 {
				c.fail(c.i, c.pointer(), "not valid UTF-8: byte 0x%02x at byte %d", b, c.i)
				return
			}
			c.stop = true
			return
		}
	}
}

// str reads a string at c.i (its opening quote), checking its UTF-8 and
// its escapes; with decode it returns the string's value (a key's).
func (c *jsonChecker) str(decode bool) string {
	c.i++ // "
	var sb strings.Builder
	what := "" // what is at fault, named for a key (its pointer is the object's)
	if decode {
		what = "a key: "
	}
	for c.i < len(c.b) {
		b := c.b[c.i]
		switch {
		case b == '"':
			c.i++
			return sb.String()
		case b == '\\':
			if c.i+1 >= len(c.b) {
				c.stop = true
				return ""
			}
			e := c.b[c.i+1]
			if e != 'u' {
				if decode {
					switch e {
					case '"', '\\', '/':
						sb.WriteByte(e)
					case 'b':
						sb.WriteByte('\b')
					case 'f':
						sb.WriteByte('\f')
					case 'n':
						sb.WriteByte('\n')
					case 'r':
						sb.WriteByte('\r')
					case 't':
						sb.WriteByte('\t')
					default:
						c.stop = true
						return ""
					}
				}
				c.i += 2
				continue
			}
			r, ok := hex4(c.b[c.i+2:])
			if !ok {
				c.stop = true
				return ""
			}
			at := c.i
			c.i += 6
			if utf16.IsSurrogate(r) {
				var low rune = -1
				if r < 0xdc00 && c.i+1 < len(c.b) && c.b[c.i] == '\\' && c.b[c.i+1] == 'u' {
					if l, ok := hex4(c.b[c.i+2:]); ok && l >= 0xdc00 && l <= 0xdfff {
						low = l
					}
				}
				if low < 0 {
					c.fail(at, c.pointer(), `%s\u%04x at byte %d is half of a UTF-16 surrogate pair without its other half: not a character`, what, r, at)
					return ""
				}
				r = utf16.DecodeRune(r, low)
				c.i += 6
			}
			if decode {
				sb.WriteRune(r)
			}
		case b < utf8.RuneSelf:
			if b < 0x20 {
				c.stop = true // a raw control character: the decoder says so
				return ""
			}
			if decode {
				sb.WriteByte(b)
			}
			c.i++
		default:
			r, size := utf8.DecodeRune(c.b[c.i:])
			if r == utf8.RuneError && size == 1 {
				c.fail(c.i, c.pointer(), "%snot valid UTF-8: byte 0x%02x at byte %d", what, b, c.i)
				return ""
			}
			if decode {
				sb.Write(c.b[c.i : c.i+size])
			}
			c.i += size
		}
	}
	c.stop = true
	return ""
}

// fold maps s to one representative of its case-folding class, so that
// fold(a) == fold(b) exactly when bytes.EqualFold(a, b): each rune
// becomes the lower-case ASCII letter of its unicode.SimpleFold orbit if
// it has one ("K", "k" and the Kelvin sign all become "k"), else the
// orbit's smallest rune.
func fold(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var sb strings.Builder
	sb.Grow(len(s))
	for _, r := range s {
		sb.WriteRune(foldRune(r))
	}
	return sb.String()
}

func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < utf8.RuneSelf {
			return foldRune(f)
		}
		least = min(least, f)
	}
	return least
}
