package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/psp"
)

// TestChannelKinds: every kind is registered and reaches its adapter's
// strict settings decoder, and those that need no key material build from
// minimal settings (alipay and wechatpay need RSA keys; their cases, and
// every decoder's, are in internal/psp/<kind>/settings_test.go).
func TestChannelKinds(t *testing.T) {
	for _, kind := range []string{"alipay", "wechatpay", "paypal", "adyen", "payu", "razorpay", "stripe", "sim"} {
		if _, ok := channelKinds[kind]; !ok {
			t.Errorf("kind %q not registered", kind)
		}
	}
	for kind, mk := range channelKinds {
		_, err := mk("ch", json.RawMessage(`{"no_such_setting":"x"}`))
		if err == nil || !strings.HasPrefix(err.Error(), kind+" settings: ") {
			t.Errorf("%s: unknown key gave %v", kind, err)
		}
	}
	for kind, settings := range map[string]string{
		"sim":      `{"base_url":"http://127.0.0.1:8090","merchant_id":"m_sim","secrets":["s"]}`,
		"adyen":    `{"environment":"test","api_key":"k","merchant_account":"M","hmac_keys":["00"]}`,
		"payu":     `{"environment":"test","key":"k","salts":["s"]}`,
		"stripe":   `{"secret_key":"sk_test_k","webhook_secrets":["whsec_a"]}`,
		"razorpay": `{"key_id":"rzp_test_k","key_secret":"s","webhook_secrets":["w"]}`,
		"paypal":   `{"client_id":"c","client_secret":"s","webhook_ids":["w"]}`,
	} {
		ch, err := channelKinds[kind]("ch_"+kind, json.RawMessage(settings))
		if err != nil {
			t.Errorf("%s: %v", kind, err)
		} else if ch.Name() != "ch_"+kind {
			t.Errorf("%s: Name() = %q", kind, ch.Name())
		}
	}
}

func TestChannelsFileRefusesNamesTheSchemasRefuse(t *testing.T) {
	for name, ok := range map[string]bool{"sim-2": true, "Sim": false, "a b": false, "x/y": false, "": false} {
		path := filepath.Join(t.TempDir(), "channels.json")
		b, _ := json.Marshal(ChannelsFile{Channels: []ChannelEntry{{Name: name, Kind: "sim", Enabled: true,
			Settings: json.RawMessage(`{"base_url":"http://127.0.0.1:1","merchant_id":"m","secrets":["s"]}`)}}})
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := BuildOfflineChannel(path, name, psp.Offline{})
		if ok != (err == nil) {
			t.Errorf("channel name %q: err = %v, want ok = %v", name, err, ok)
		}
	}
}
