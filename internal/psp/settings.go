package psp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"time"
)

// DecodeSettings decodes a channel's settings (the "settings" object of
// its entry in the channels file) into v, strictly: an unknown key is an
// error, so a typo in a secret's name fails at start instead of leaving
// the secret unset, and so is anything after the first JSON value.
// Errors start with "<kind> settings: " and never quote the settings:
// they hold secrets. A malformed Duration is reported with its key, as
// "<kind> settings: <key>: <reason>".
func DecodeSettings(kind string, raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Type == durationType && te.Field != "" {
			return fmt.Errorf("%s settings: %s: %s", kind, te.Field, te.Value)
		}
		return fmt.Errorf("%s settings: %w", kind, err)
	}
	if dec.More() {
		return fmt.Errorf("%s settings: more than one JSON value", kind)
	}
	return nil
}

// Duration is a settings duration, written as a Go duration string
// ("5s", "15m", "1h30m"). An absent key, null and "" leave it zero, which
// adapters read as "use the default"; a number, or a string that
// time.ParseDuration refuses, is an error.
type Duration time.Duration

var durationType = reflect.TypeFor[Duration]()

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if len(b) == 0 || b[0] != '"' || json.Unmarshal(b, &s) != nil {
		return durationError(`not a duration string such as "5s"`)
	}
	if s == "" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return durationError(err.Error())
	}
	*d = Duration(v)
	return nil
}

// durationError is a *json.UnmarshalTypeError because encoding/json adds
// the path of the field being decoded to that error type only; Value
// carries the reason, which DecodeSettings reports after the key.
func durationError(reason string) error {
	return &json.UnmarshalTypeError{Value: reason, Type: durationType}
}

// PooledTransport returns a new connection pool for one PSP's API, to use
// as an adapter's ChannelConfig.Transport. http.DefaultTransport keeps 2
// idle connections per host, so the callbacks group's concurrent status
// queries (up to 128 per batch) opened and closed a connection for most of
// them: under load a dial, and a TIME_WAIT socket, per callback. This
// keeps 128, the consumers' default PSP concurrency.
func PooledTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 128
	t.MaxIdleConns = 128 // the default's 100 in all would cap the above
	return t
}
