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
	// Weight is the channel's share among eligible channels; a channel of
	// weight 0 takes only payments pinned to it.
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

// Route picks a channel for the intent among the eligible rules, by
// weight; pick(n) must return a number in [0, n) (random in production,
// fixed in tests). A channel pinned by the intent must be eligible.
func Route(rules []ChannelRule, in PayIntent, pick func(n int) int) (string, error) {
	var eligible []ChannelRule
	total := 0
	for _, r := range rules {
		if !r.Eligible(in) {
			continue
		}
		if in.Channel == r.Name {
			return r.Name, nil
		}
		if in.Channel == "" && r.Weight > 0 {
			eligible, total = append(eligible, r), total+r.Weight
		}
	}
	if len(eligible) == 0 {
		if in.Channel != "" {
			return "", fmt.Errorf("%w: channel %q is unknown, disabled or does not take %s %s in %s", ErrNoChannel, in.Channel, in.Method, in.Amount.Currency().Code(), in.Country)
		}
		return "", fmt.Errorf("%w: %s %s in %s", ErrNoChannel, in.Method, in.Amount.Currency().Code(), in.Country)
	}
	n := pick(total)
	for _, r := range eligible {
		if n < r.Weight {
			return r.Name, nil
		}
		n -= r.Weight
	}
	return eligible[len(eligible)-1].Name, nil
}
