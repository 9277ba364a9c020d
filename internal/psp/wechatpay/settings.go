package wechatpay

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/pemkey"
)

// FromSettings decodes a "wechatpay" channel's settings
// (docs/psp/wechatpay.md). Unknown keys are an error; each key and the
// APIv3 key is given inline or as a file, never both.
func FromSettings(name string, raw json.RawMessage) (psp.Channel, error) {
	var s struct {
		BaseURL                string `json:"base_url"`
		MchID                  string `json:"mchid"`
		AppID                  string `json:"appid"`
		MerchantSerialNo       string `json:"merchant_serial_no"`
		MerchantPrivateKey     string `json:"merchant_private_key"`
		MerchantPrivateKeyFile string `json:"merchant_private_key_file"`
		APIv3Key               string `json:"apiv3_key"`
		APIv3KeyFile           string `json:"apiv3_key_file"`
		PlatformKeys           []struct {
			Serial string `json:"serial"`
			PEM    string `json:"pem"`
			File   string `json:"file"`
		} `json:"platform_keys"`
		Mode      string       `json:"mode"`
		Timeout   psp.Duration `json:"timeout"`
		Tolerance psp.Duration `json:"tolerance"`
	}
	if err := psp.DecodeSettings("wechatpay", raw, &s); err != nil {
		return nil, err
	}
	cfg := ChannelConfig{Name: name, BaseURL: s.BaseURL, MchID: s.MchID, AppID: s.AppID,
		MerchantSerialNo: s.MerchantSerialNo, Mode: s.Mode, Timeout: s.Timeout.D(), Tolerance: s.Tolerance.D()}
	b, err := pemkey.Read("merchant_private_key", s.MerchantPrivateKey, s.MerchantPrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("wechatpay settings: %w", err)
	}
	if cfg.MerchantKey, err = pemkey.ParsePrivate(b); err != nil {
		return nil, fmt.Errorf("wechatpay settings: merchant_private_key: %w", err)
	}
	if b, err = pemkey.Read("apiv3_key", s.APIv3Key, s.APIv3KeyFile); err != nil {
		return nil, fmt.Errorf("wechatpay settings: %w", err)
	}
	cfg.APIv3Key = string(bytes.TrimSpace(b))
	for i, k := range s.PlatformKeys {
		b, err := pemkey.Read(fmt.Sprintf("platform_keys[%d]", i), k.PEM, k.File)
		if err != nil {
			return nil, fmt.Errorf("wechatpay settings: %w", err)
		}
		pub, err := pemkey.ParsePublic(b)
		if err != nil {
			return nil, fmt.Errorf("wechatpay settings: platform_keys[%d]: %w", i, err)
		}
		cfg.PlatformKeys = append(cfg.PlatformKeys, PlatformKey{Serial: k.Serial, Key: pub})
	}
	return NewChannel(cfg)
}
