package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// DecodeRawCallback decodes a value of paygate.psp-callbacks.v1 that
// psp-callback.json accepts. It returns Validate's *ValidationError for a
// value the schema refuses, or a decoding error for one the schema accepts
// but RawCallback cannot hold (a leap second, say).
//
// The callbacks group decodes every raw callback, and the generic schema
// validator (a decode into interfaces, then the walk of the schema) cost
// more than the rest of verification together. So a value in the form
// paygate itself writes, json.Marshal of a RawCallback (EncodeRawCallback
// writes the same bytes faster), is checked here against the schema's
// rules directly: it decodes (parseRawCallback, without reflection: the
// whole check 8–10 → 3 µs), encodes back to the very same bytes (no
// unknown, repeated, differently cased or null member, no other spelling
// of a string, time or body), and its values keep the schema's limits.
// Anything else, and every refusal, goes through the schema itself, so
// what is refused and why is the schema's answer. A fuzz test holds the
// fast path to never accepting what the schema refuses, and to decoding
// exactly what json.Unmarshal does.
func DecodeRawCallback(doc []byte) (RawCallback, error) {
	if raw, ok := decodeCanonicalRawCallback(doc); ok {
		return raw, nil
	}
	if err := Validate(PSPCallbackSchema, doc); err != nil {
		return RawCallback{}, err
	}
	var raw RawCallback
	if err := json.Unmarshal(doc, &raw); err != nil {
		return RawCallback{}, fmt.Errorf("decode raw callback: %w", err)
	}
	return raw, nil
}

// decodeCanonicalRawCallback is DecodeRawCallback's fast path: ok only
// for a document the schema accepts.
func decodeCanonicalRawCallback(doc []byte) (RawCallback, bool) {
	raw, ok := parseRawCallback(doc)
	if !ok || !rawCallbackWithinSchema(raw) {
		return RawCallback{}, false
	}
	back, err := EncodeRawCallback(raw)
	if err != nil || !bytes.Equal(back, doc) {
		return RawCallback{}, false
	}
	return raw, true
}

// rawCallbackWithinSchema checks psp-callback.json's rules on the values
// of a RawCallback that json.Marshal writes back unchanged. That form
// settles the rest: every member required is written, each with the type
// the schema wants; body is standard base64; and received_at, a UTC time
// json.Marshal wrote, is an RFC 3339 date-time.
func rawCallbackWithinSchema(r RawCallback) bool {
	if n := utf8.RuneCountInString(r.ID); n < 1 || n > 128 {
		return false
	}
	if !channelName(r.Channel) {
		return false
	}
	if utf8.RuneCountInString(r.Method) > 16 || utf8.RuneCountInString(r.Path) > 8192 {
		return false
	}
	switch r.Kind {
	case "async", "sync":
		if !upperLetters(r.Method) || len(r.Path) == 0 || r.Path[0] != '/' {
			return false
		}
	case "status_probe":
		if r.TransactionCode == "" {
			return false
		}
	default:
		return false
	}
	if r.TransactionCode != "" && utf8.RuneCountInString(r.TransactionCode) > 64 {
		return false
	}
	for _, vs := range r.Headers {
		if vs == nil { // written back as null, which is not an array
			return false
		}
	}
	return r.ReceivedAt.Location() == time.UTC
}

// channelName is the schema's ^[a-z0-9_-]{1,32}$.
func channelName(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// upperLetters is the schema's ^[A-Z]+$.
func upperLetters(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
