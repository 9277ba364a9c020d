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
