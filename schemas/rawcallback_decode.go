package schemas

import (
	"bytes"
	"encoding/base64"
	"unicode/utf16"
	"unicode/utf8"
)

// parseRawCallback reads a document laid out as EncodeRawCallback writes
// it — its members in its order, nothing between the tokens — without
// reflection; ok is false for any other layout, which the caller leaves
// to json.Unmarshal and the schema. It decodes what it accepts as
// json.Unmarshal would; it need not refuse every document that differs
// from EncodeRawCallback's form, as its caller encodes each value back
// and compares (a string with a raw control character or invalid UTF-8,
// say, comes back escaped, so unequal).
func parseRawCallback(doc []byte) (r RawCallback, ok bool) {
	p := rawParser{b: doc}
	ok = p.member(`{"id":`, &r.ID) && p.member(`,"channel":`, &r.Channel) && p.member(`,"kind":`, &r.Kind) &&
		p.member(`,"method":`, &r.Method) && p.member(`,"path":`, &r.Path)
	if ok && p.lit(`,"query":`) {
		r.Query, ok = p.str()
	}
	if ok && p.lit(`,"headers":{`) {
		r.Headers, ok = p.headers()
	}
	if ok && p.lit(`,"body":"`) {
		r.Body, ok = p.body()
	}
	ok = ok && p.lit(`,"received_at":"`)
	if ok {
		end := bytes.IndexByte(p.b[p.i:], '"')
		ok = end >= 0 && r.ReceivedAt.UnmarshalText(p.b[p.i:p.i+end]) == nil
		p.i += end + 1
	}
	if ok && p.lit(`,"transaction_code":`) {
		r.TransactionCode, ok = p.str()
	}
	if ok && p.lit(`,"expire_if_unpaid":true`) {
		r.ExpireIfUnpaid = true
	}
	if !ok || !p.lit("}") || p.i != len(p.b) {
		return RawCallback{}, false
	}
	return r, true
}

// rawParser is a cursor over a document. lit consumes nothing unless it
// matches, so it can test for an optional member; after any other method
// fails the cursor is left anywhere, and the parse is over.
type rawParser struct {
	b []byte
	i int
}

// lit consumes s if the document goes on with it.
func (p *rawParser) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// member reads a string member that must come next, key its text up to
// the value.
func (p *rawParser) member(key string, dst *string) bool {
	if !p.lit(key) {
		return false
	}
	var ok bool
	*dst, ok = p.str()
	return ok
}

// str reads a JSON string and unescapes it as json.Unmarshal does, but
// for a UTF-16 surrogate escape, which json.Marshal never writes.
func (p *rawParser) str() (string, bool) {
	if !p.lit(`"`) {
		return "", false
	}
	start := p.i
	for i := start; i < len(p.b); i++ {
		switch p.b[i] {
		case '"':
			p.i = i + 1
			return string(p.b[start:i]), true
		case '\\':
			return p.unescape(start, i)
		}
	}
	return "", false
}

// unescape reads the rest of a string whose first escape is at esc.
func (p *rawParser) unescape(start, esc int) (string, bool) {
	out := append(make([]byte, 0, len(p.b)-start), p.b[start:esc]...)
	for i := esc; i < len(p.b); {
		c := p.b[i]
		switch {
		case c == '"':
			p.i = i + 1
			return string(out), true
		case c != '\\':
			out = append(out, c)
			i++
			continue
		case i+1 == len(p.b):
			return "", false
		}
		switch e := p.b[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(p.b[i+2:])
			if !ok || utf16.IsSurrogate(r) {
				return "", false
			}
			out = utf8.AppendRune(out, r)
			i += 4
		default:
			return "", false
		}
		i += 2
	}
	return "", false
}

// hex4 reads the four hexadecimal digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// headers reads the members of the headers object, its opening brace
// read: each a string array (null is json.Marshal's nil slice, which the
// schema refuses, so it is left to the schema).
func (p *rawParser) headers() (map[string][]string, bool) {
	h := map[string][]string{}
	for first := true; ; first = false {
		if p.lit("}") {
			return h, true
		}
		if !first && !p.lit(",") {
			return nil, false
		}
		k, ok := p.str()
		if !ok || !p.lit(":[") {
			return nil, false
		}
		vs := []string{}
		for !p.lit("]") {
			if len(vs) > 0 && !p.lit(",") {
				return nil, false
			}
			v, ok := p.str()
			if !ok {
				return nil, false
			}
			vs = append(vs, v)
		}
		h[k] = vs
	}
}

// body reads the base64 of the body up to its closing quote, its opening
// quote read, and decodes it as json.Unmarshal decodes a []byte.
func (p *rawParser) body() ([]byte, bool) {
	end := bytes.IndexByte(p.b[p.i:], '"')
	if end < 0 {
		return nil, false
	}
	src := p.b[p.i : p.i+end]
	p.i += end + 1
	b := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	n, err := base64.StdEncoding.Decode(b, src)
	return b[:n], err == nil
}
