package schemas

import (
	"encoding/base64"
	"fmt"
	"slices"
	"unicode/utf8"
)

// EncodeRawCallback writes r as json.Marshal does, byte for byte (a fuzz
// test holds it to that), without reflection: the ingress encodes every
// callback it stores and the callbacks group every one it decodes
// (DecodeRawCallback's round trip), and json.Marshal's walk of the struct
// and its map was a twentieth of the ingress's CPU.
func EncodeRawCallback(r RawCallback) ([]byte, error) {
	b := make([]byte, 0, 256+len(r.Path)+len(r.Query)+base64.StdEncoding.EncodedLen(len(r.Body))+64*len(r.Headers))
	b = append(b, `{"id":`...)
	b = appendJSONString(b, r.ID)
	b = append(b, `,"channel":`...)
	b = appendJSONString(b, r.Channel)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, r.Kind)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, r.Method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, r.Path)
	if r.Query != "" {
		b = append(b, `,"query":`...)
		b = appendJSONString(b, r.Query)
	}
	if len(r.Headers) > 0 {
		b = append(b, `,"headers":{`...)
		keys := make([]string, 0, len(r.Headers))
		for k := range r.Headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			vs := r.Headers[k]
			if vs == nil {
				b = append(b, "null"...)
				continue
			}
			b = append(b, '[')
			for j, v := range vs {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, v)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if len(r.Body) > 0 {
		b = append(b, `,"body":"`...)
		b = base64.StdEncoding.AppendEncode(b, r.Body)
		b = append(b, '"')
	}
	b = append(b, `,"received_at":"`...)
	b, err := r.ReceivedAt.AppendText(b) // RFC 3339 with nanoseconds, as its MarshalJSON
	if err != nil {
		return nil, fmt.Errorf("encode raw callback: received_at: %w", err)
	}
	b = append(b, '"')
	if r.TransactionCode != "" {
		b = append(b, `,"transaction_code":`...)
		b = appendJSONString(b, r.TransactionCode)
	}
	if r.ExpireIfUnpaid {
		b = append(b, `,"expire_if_unpaid":true`...)
	}
	return append(b, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json quotes a string, its
// HTML escaping included: <, > and & as \u003c, \u003e, \u0026; control
// characters but \b, \f, \n, \r and \t as \u00XX; U+2028 and U+2029
// escaped; each byte of invalid UTF-8 as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
