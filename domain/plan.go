package domain

import "time"

// AttemptPlan is what payinit decided for one pay intent in its first
// transaction: the attempt to start, or why the intent was rejected.
type AttemptPlan struct {
	Intent  PayIntent
	Order   Order
	Attempt Attempt
	// Rejected is why the intent was refused ("" when an attempt was planned).
	Rejected string
	// Resumed is true when the intent's message had been planned before
	// (a redelivery): the stored plan is returned, nothing new was minted.
	Resumed bool
}

// AttemptStart is the result of asking the PSP to start an attempt.
type AttemptStart struct {
	Attempt   Attempt
	PayURL    string
	Token     string
	Form      map[string]string
	ExpiresAt time.Time
	// InitiateError is why the PSP did not start the attempt ("" if it did).
	InitiateError string
}

// Failover moves a pay request from an attempt whose Initiate failed for a
// reason that may pass (an error, a timeout, a 5xx) to a new attempt at
// the next channel (DESIGN.md §8). The PSP may have started the failed
// attempt all the same, so it stays pending and is probed: if it turns out
// paid, the decision table refunds it as a duplicate payment.
type Failover struct {
	// MessageID is the pay request's message: its plan now points at To.
	MessageID string
	// From is the attempt that could not start, as it is to be stored.
	From Attempt
	// FromError is why its Initiate failed.
	FromError string
	// To is the new attempt (created), with its routing decision.
	To Attempt
}

// Inbound is one message on the callbacks topic as the callbacks consumer
// saw it: the raw callback (evidence, stored whatever happens) and what
// verification and confirmation made of it.
type Inbound struct {
	MessageID  string
	Channel    string
	Kind       string
	ReceivedAt time.Time
	// Raw is the message value as consumed (the whole raw callback).
	Raw []byte
	// Notified is what the callback itself says, nil if it was rejected.
	Notified *Notification
	// Confirmed is what the PSP's status query said, nil if not queried.
	Confirmed *Notification
	// Rejected is why the callback changes nothing ("" if verified).
	Rejected string
	// ExpireIfUnpaid is set on the sweeper's last probe of an attempt
	// past its expiry: if the PSP still has nothing final, give it up.
	ExpireIfUnpaid bool
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
	// Rejected repeats Inbound.Rejected, or says why the store could not
	// apply it (unknown transaction code).
	Rejected string
}

// DueProbe is an open attempt whose PSP status the sweeper asks about now.
type DueProbe struct {
	Attempt Attempt
	// Probes is how many probes were sent before this one.
	Probes int
	// ExpiresAt is when the attempt expires: the PSP's expiry, or the
	// attempt's creation plus the configured lifetime.
	ExpiresAt time.Time
}
