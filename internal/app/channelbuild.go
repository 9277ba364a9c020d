package app

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/paygate/paygate/internal/psp"
)

// ChannelKinds are the adapter kinds a channels file may name, sorted.
func ChannelKinds() []string { return slices.Sorted(maps.Keys(channelKinds)) }

// ErrUnknownChannel is returned by BuildOfflineChannel for a name the
// channels file does not have; the message lists the ones it has.
var ErrUnknownChannel = errors.New("no such channel")

// BuildOfflineChannel reads the channels file at path (the ChannelsFile
// format, checked as at start-up) and builds the channel called name
// through the same kind registry the gateway uses, without metrics, for
// offline operator tools such as `paygate psp verify`: it never reaches
// the network, and a kind whose verification needs material the gateway
// would fetch (offlineKinds: PayPal's certificates) judges what it holds
// at o.At and reads pinned material from o.CertDir. It does no I/O
// beyond reading files.
func BuildOfflineChannel(path, name string, o psp.Offline) (psp.Channel, error) {
	if path == "" {
		return nil, fmt.Errorf("no channels file given")
	}
	f, err := loadChannels(Config{ChannelsFile: path}, "")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range f.Channels {
		names = append(names, e.Name+" ("+e.Kind+")")
		if e.Name != name {
			continue
		}
		var ch psp.Channel
		if mk, ok := offlineKinds[e.Kind]; ok {
			ch, err = mk(e.Name, e.Settings, o)
		} else if mk, ok := channelKinds[e.Kind]; ok {
			ch, err = mk(e.Name, e.Settings)
		} else {
			return nil, fmt.Errorf("channel %s: unknown kind %q (kinds: %s)", e.Name, e.Kind, strings.Join(ChannelKinds(), ", "))
		}
		if err != nil {
			return nil, fmt.Errorf("channel %s: %w", e.Name, err)
		}
		return ch, nil
	}
	has := "none"
	if len(names) > 0 {
		has = strings.Join(names, ", ")
	}
	return nil, fmt.Errorf("channels file %s: %w %q; it has: %s", path, ErrUnknownChannel, name, has)
}
