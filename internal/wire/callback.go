package wire

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/schemas"
)

// Callback is the domain callback a raw callback (the value on
// paygate.psp-callbacks.v1) carries: the one conversion, which the
// ingress runs on what it is about to write and the callbacks group on
// what it read, so that both verify the same callback. The query is
// parsed; a malformed one is not an error here but the callback's
// QueryErr, for verification to refuse (the callback is still stored, as
// evidence). A kind the schema does not know is an error. The headers
// and body are shared with raw, not copied.
func Callback(raw schemas.RawCallback) (domain.Callback, error) {
	kind, err := domain.ParseCallbackKind(raw.Kind)
	if err != nil {
		return domain.Callback{}, fmt.Errorf("raw callback %s: %w", raw.ID, err)
	}
	q, qerr := url.ParseQuery(raw.Query)
	return domain.Callback{MessageID: raw.ID, Kind: kind, Channel: raw.Channel, Method: raw.Method, Path: raw.Path,
		RawQuery: raw.Query, Query: q, QueryErr: qerr, Headers: http.Header(raw.Headers), Body: raw.Body,
		ReceivedAt: raw.ReceivedAt, TransactionCode: raw.TransactionCode, ExpireIfUnpaid: raw.ExpireIfUnpaid}, nil
}

// RawCallback is cb's wire form, the reverse of Callback: the query
// written is RawQuery, as received (Query is what was read from it).
func RawCallback(cb domain.Callback) schemas.RawCallback {
	return schemas.RawCallback{ID: cb.MessageID, Channel: cb.Channel, Kind: cb.Kind.String(), Method: cb.Method, Path: cb.Path,
		Query: cb.RawQuery, Headers: map[string][]string(cb.Headers), Body: cb.Body, ReceivedAt: cb.ReceivedAt,
		TransactionCode: cb.TransactionCode, ExpireIfUnpaid: cb.ExpireIfUnpaid}
}

// DecodeCallback reads a value of paygate.psp-callbacks.v1: checked
// against psp-callback.json (schemas.DecodeRawCallback, whose errors word
// every refusal), then converted by Callback.
func DecodeCallback(value []byte) (domain.Callback, error) {
	raw, err := schemas.DecodeRawCallback(value)
	if err != nil {
		return domain.Callback{}, err
	}
	return Callback(raw)
}

// EncodeCallback writes cb as the value of paygate.psp-callbacks.v1: how
// the sweeper, reconciliation's heal and payinit's check of earlier
// attempts write their status probes.
func EncodeCallback(cb domain.Callback) ([]byte, error) {
	return schemas.EncodeRawCallback(RawCallback(cb))
}
