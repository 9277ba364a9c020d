package app

import (
	"fmt"

	"github.com/paygate/paygate/internal/psp"
)

// BuildChannel reads the channels file at path (the ChannelsFile format,
// checked as at start-up) and builds the channel called name through the
// same kind registry the gateway uses, without metrics: for offline
// operator tools such as `paygate psp verify`. It does no I/O beyond
// reading the file; the channel makes none until an API method is called.
func BuildChannel(path, name string) (psp.Channel, error) {
	if path == "" {
		return nil, fmt.Errorf("no channels file given")
	}
	f, err := loadChannels(Config{ChannelsFile: path}, "")
	if err != nil {
		return nil, err
	}
	for _, e := range f.Channels {
		if e.Name != name {
			continue
		}
		mk, ok := channelKinds[e.Kind]
		if !ok {
			return nil, fmt.Errorf("channel %s: unknown kind %q", e.Name, e.Kind)
		}
		ch, err := mk(e.Name, e.Settings)
		if err != nil {
			return nil, fmt.Errorf("channel %s: %w", e.Name, err)
		}
		return ch, nil
	}
	return nil, fmt.Errorf("channels file %s: no channel %q", path, name)
}
