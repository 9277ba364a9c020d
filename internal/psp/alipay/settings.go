package alipay

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"

	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/pemkey"
)

// FromSettings decodes an "alipay" channel's settings
// (docs/psp/alipay.md). Unknown keys are an error; keys are PEM or
// Alipay's bare base64, inline or in a file, never both.
func FromSettings(name string, raw json.RawMessage) (psp.Channel, error) {
	var s struct {
		GatewayURL        string `json:"gateway_url"`
		AppID             string `json:"app_id"`
		AppPrivateKey     string `json:"app_private_key"`
		AppPrivateKeyFile string `json:"app_private_key_file"`
		AlipayPublicKeys  []struct {
			PEM  string `json:"pem"`
			File string `json:"file"`
		} `json:"alipay_public_keys"`
		SellerID    string       `json:"seller_id"`
		ProductCode string       `json:"product_code"`
		PayTimeout  psp.Duration `json:"pay_timeout"`
		Timeout     psp.Duration `json:"timeout"`
		Tolerance   psp.Duration `json:"tolerance"`
	}
	if err := psp.DecodeSettings("alipay", raw, &s); err != nil {
		return nil, err
	}
	cfg := ChannelConfig{Name: name, GatewayURL: s.GatewayURL, AppID: s.AppID, SellerID: s.SellerID, ProductCode: s.ProductCode,
		PayTimeout: s.PayTimeout.D(), Timeout: s.Timeout.D(), Tolerance: s.Tolerance.D()}
	b, err := pemkey.Read("app_private_key", s.AppPrivateKey, s.AppPrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("alipay settings: %w", err)
	}
	if cfg.PrivateKey, err = pemkey.ParsePrivate(b); err != nil {
		return nil, fmt.Errorf("alipay settings: app_private_key: %w", err)
	}
	for i, k := range s.AlipayPublicKeys {
		b, err := pemkey.Read(fmt.Sprintf("alipay_public_keys[%d]", i), k.PEM, k.File)
		if err != nil {
			return nil, fmt.Errorf("alipay settings: %w", err)
		}
		var pub *rsa.PublicKey
		if pub, err = pemkey.ParsePublic(b); err != nil {
			return nil, fmt.Errorf("alipay settings: alipay_public_keys[%d]: %w", i, err)
		}
		cfg.AlipayPublicKeys = append(cfg.AlipayPublicKeys, pub)
	}
	return NewChannel(cfg)
}
