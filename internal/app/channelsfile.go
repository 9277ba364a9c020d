package app

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
)

// ChannelsFile is the channels file's shape (docs/configuration.md).
type ChannelsFile struct {
	Channels []ChannelEntry `json:"channels"`
}

// ChannelEntry is one configured channel: which PSP adapter (kind), its
// routing rule and the adapter's own settings.
type ChannelEntry struct {
	Name       string          `json:"name"`
	Kind       string          `json:"kind"`
	Enabled    bool            `json:"enabled"`
	Weight     int             `json:"weight"`
	Countries  []string        `json:"countries"`
	Currencies []string        `json:"currencies"`
	Methods    []string        `json:"methods"`
	Settings   json.RawMessage `json:"settings"`
	// Timezone is the IANA zone of the PSP's business days (its
	// settlement lists), which reconciliation follows. Default UTC.
	Timezone string `json:"timezone,omitempty"`
}

// devChannels are two simulator merchant accounts, so that the demo and
// the tests can pay one order on two channels.
func devChannels(simURL string) ChannelsFile {
	mk := func(name, merchant, secret string, weight int) ChannelEntry {
		s, _ := json.Marshal(map[string]any{"base_url": simURL, "merchant_id": merchant, "secrets": []string{secret}})
		return ChannelEntry{Name: name, Kind: "sim", Enabled: true, Weight: weight, Settings: s}
	}
	return ChannelsFile{Channels: []ChannelEntry{mk("sim", "m_sim", "sim-secret", 1), mk("sim2", "m_sim2", "sim2-secret", 0)}}
}

var channelName = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// loadChannels reads the channels file, or the dev channels (at the
// simulator's URL) if none.
func loadChannels(cfg Config, simURL string) (ChannelsFile, error) {
	if cfg.ChannelsFile == "" {
		return devChannels(simURL), nil
	}
	b, err := os.ReadFile(cfg.ChannelsFile)
	if err != nil {
		return ChannelsFile{}, fmt.Errorf("channels file: %w", err)
	}
	var f ChannelsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("channels file %s: %w", cfg.ChannelsFile, err)
	}
	seen := map[string]bool{}
	for _, c := range f.Channels {
		if c.Name == "" || seen[c.Name] {
			return f, fmt.Errorf("channels file %s: empty or repeated channel name %q", cfg.ChannelsFile, c.Name)
		}
		if !channelName.MatchString(c.Name) {
			// The name travels in URLs, Kafka keys and every message schema.
			return f, fmt.Errorf("channels file %s: channel name %q: 1-32 of a-z 0-9 _ -", cfg.ChannelsFile, c.Name)
		}
		seen[c.Name] = true
	}
	return f, nil
}

// simMerchants are the simulator's merchant accounts: those of every
// channel of kind sim, so that the simulator and the channels agree.
func simMerchants(f ChannelsFile) map[string]string {
	m := map[string]string{}
	for _, c := range f.Channels {
		if c.Kind != "sim" {
			continue
		}
		var s struct {
			MerchantID string   `json:"merchant_id"`
			Secrets    []string `json:"secrets"`
		}
		if json.Unmarshal(c.Settings, &s) == nil && s.MerchantID != "" && len(s.Secrets) > 0 {
			m[s.MerchantID] = s.Secrets[0]
		}
	}
	return m
}

// DevMall is the key id and secret `paygate dev` configures for the mall.
const (
	DevMallKeyID  = "dev-mall"
	DevMallSecret = "dev-mall-secret"
)
