package domain

import (
	"errors"
	"fmt"
	"slices"
)

// ChannelRule says which pay intents a channel may take (DESIGN.md §8).
// An empty list means any.
type ChannelRule struct {
	Name       string
	Countries  []string
	Currencies []string
	Methods    []string
	// Weight is the channel's share in the routing policy paygate uses
	// when none is applied (one catch-all segment, split by weight); a
	// channel of weight 0 takes only payments pinned to it there.
	Weight  int
	Enabled bool
}

// ErrNoChannel means no enabled channel takes the intent.
var ErrNoChannel = errors.New("no channel for this payment")

// Eligible reports whether the rule lets the channel take the intent. An
// intent without a method lets the router choose: any channel's method
// list takes it.
func (r ChannelRule) Eligible(in PayIntent) bool {
	ok := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	methodOK := in.Method == "" || ok(r.Methods, in.Method)
	return r.Enabled && ok(r.Countries, in.Country) &&
		ok(r.Currencies, in.Amount.Currency().Code()) && methodOK
}

// UsableBy says, for any channel, whether it can take the intent under
// the channels' rules: configured (in rules), enabled, and taking the
// intent's country, currency and method; nil, or why not. Routing leaves
// out the candidates it refuses, and says why.
func UsableBy(rules []ChannelRule, in PayIntent) func(channel string) error {
	return func(channel string) error {
		for _, r := range rules {
			if r.Name != channel {
				continue
			}
			if !r.Enabled {
				return errors.New("disabled")
			}
			if !r.Eligible(in) {
				return fmt.Errorf("does not take %s %s in %s", in.Method, in.Amount.Currency().Code(), in.Country)
			}
			return nil
		}
		return errors.New("not configured")
	}
}
