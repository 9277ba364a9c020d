package domain

import (
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// CallbackKind says how a callback reached paygate, a closed enum.
type CallbackKind struct{ s string }

// The callback kinds, as the wire form (psp-callback.json) spells them.
var (
	// CallbackAsync is the PSP's server-to-server webhook.
	CallbackAsync = CallbackKind{"async"}
	// CallbackSync is the buyer's browser returning from the PSP.
	CallbackSync = CallbackKind{"sync"}
	// CallbackStatusProbe is a status query paygate asks for itself (the
	// sweeper, reconciliation's heal, payinit's check of earlier
	// attempts), not a PSP's request: nothing to verify.
	CallbackStatusProbe = CallbackKind{"status_probe"}
)

// ParseCallbackKind reads a kind as the wire form and the callbacks table
// spell it.
func ParseCallbackKind(s string) (CallbackKind, error) {
	for _, k := range []CallbackKind{CallbackAsync, CallbackSync, CallbackStatusProbe} {
		if k.s == s {
			return k, nil
		}
	}
	return CallbackKind{}, fmt.Errorf("unknown callback kind %q", s)
}

// String is the kind as stored, logged and counted.
func (k CallbackKind) String() string { return k.s }

// Callback is one message of the callbacks topic after its raw bytes: a
// PSP's HTTP request exactly as the ingress received it, or a status
// probe. It is what a PSP adapter verifies (its signature is over Body,
// Query and Headers untouched) and what the callbacks group stores as
// evidence with what became of it. internal/wire converts it to and from
// the wire form, schemas.RawCallback.
type Callback struct {
	// MessageID is the message's id on the topic, unique per request
	// received or probe asked for: the callbacks table's key, so that a
	// redelivery is stored once.
	MessageID string
	Kind      CallbackKind
	// Channel is the configured channel the request came to (the path
	// segment of its URL), or the probe asks.
	Channel string
	// Method and Path are the request's; empty on a status probe.
	Method string
	Path   string
	// RawQuery is the query string as received, without the '?': kept as
	// evidence. Query is RawQuery parsed, which the adapters read; if
	// RawQuery is malformed, QueryErr says why and Query holds what
	// url.ParseQuery could read (such a callback is refused unread).
	RawQuery string
	Query    url.Values
	QueryErr error
	Headers  http.Header
	Body     []byte
	// ReceivedAt is when the ingress received it (or the probe was asked
	// for); verifiers judge a signed timestamp against it, not against
	// the time of processing.
	ReceivedAt time.Time
	// TransactionCode is the attempt a status probe asks about; set on
	// probes only.
	TransactionCode string
	// ExpireIfUnpaid is set on the sweeper's probe of an attempt past its
	// expiry: if the PSP still has nothing final, the attempt expires.
	ExpireIfUnpaid bool
}

// ProbeCallback is a status probe: ask the PSP about the attempt
// transactionCode of channel, at at.
func ProbeCallback(messageID, channel, transactionCode string, at time.Time, expireIfUnpaid bool) Callback {
	return Callback{MessageID: messageID, Kind: CallbackStatusProbe, Channel: channel, ReceivedAt: at,
		TransactionCode: transactionCode, ExpireIfUnpaid: expireIfUnpaid}
}

// Refusal is why an inbound callback changes nothing: forged, stale,
// unreadable, about nothing paygate acts on, or not confirmed by the
// PSP. The callback is stored all the same, as evidence, with the reason.
// The zero Refusal refuses nothing.
type Refusal struct{ reason string }

// Refuse is the refusal for reason, the text stored with the callback
// (callbacks.rejected) and logged. An empty reason still refuses.
func Refuse(reason string) Refusal {
	if reason == "" {
		reason = "refused"
	}
	return Refusal{reason}
}

// Refused reports whether r refuses the callback.
func (r Refusal) Refused() bool { return r.reason != "" }

// String is the reason as stored ("" when nothing is refused).
func (r Refusal) String() string { return r.reason }

// Inbound is one message on the callbacks topic as the callbacks group
// saw it: the callback (evidence, stored whatever happens) and what
// verification and confirmation made of it.
type Inbound struct {
	// Callback is the message: a PSP's callback or a status probe.
	Callback Callback
	// Raw is the message value as consumed (the whole raw callback),
	// stored as evidence.
	Raw []byte
	// Notified is what the callback itself says, nil if it was refused
	// or is a probe.
	Notified *Notification
	// Confirmed is what the PSP's status query said, nil if not queried.
	Confirmed *Notification
	// Refusal is why the message changes nothing: verification's (forged,
	// stale, unreadable) or confirmation's (the PSP refused the status
	// query, or answered about another attempt). Zero if not refused.
	Refusal Refusal
}

// Effective is the notification that decides: the confirmed one where the
// PSP was queried, else the notified one.
func (in Inbound) Effective() *Notification {
	if in.Confirmed != nil {
		return in.Confirmed
	}
	return in.Notified
}

// Applied is what became of one inbound message.
type Applied struct {
	MessageID string
	// Duplicate is true when the message had been applied before.
	Duplicate bool
	// Outcome is the decision's outcome (zero when rejected or duplicate).
	Outcome Outcome
	OrderID string
	// Rejected is the Inbound's refusal, or why the store could not
	// apply it (unknown transaction code); "" when it was applied.
	Rejected string
}
