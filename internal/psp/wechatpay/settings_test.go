package wechatpay

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testPEMs(t *testing.T) (priv, pub string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(k)
	pk, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}))
}

func TestWechatpaySettings(t *testing.T) {
	priv, pub := testPEMs(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "apiclient_key.pem")
	if err := os.WriteFile(keyFile, []byte(priv), 0o600); err != nil {
		t.Fatal(err)
	}
	good := map[string]any{
		"mchid": "1900006XXX", "appid": "wx1", "merchant_serial_no": "5157F09E",
		"merchant_private_key_file": keyFile, "apiv3_key": "0123456789abcdef0123456789ABCDEF",
		"platform_keys": []map[string]string{{"serial": "PUB_KEY_ID_1", "pem": pub}}, "timeout": "5s",
	}
	raw, _ := json.Marshal(good)
	ch, err := FromSettings("wx_cn", raw)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Name() != "wx_cn" || !ch.Capabilities().ConfirmByQuery {
		t.Fatalf("channel %s %+v", ch.Name(), ch.Capabilities())
	}
	for name, edit := range map[string]func(m map[string]any){
		"unknown key":     func(m map[string]any) { m["apiv3key"] = "x" },
		"key and file":    func(m map[string]any) { m["merchant_private_key"] = priv },
		"no private key":  func(m map[string]any) { delete(m, "merchant_private_key_file") },
		"public as priv":  func(m map[string]any) { delete(m, "merchant_private_key_file"); m["merchant_private_key"] = pub },
		"short apiv3 key": func(m map[string]any) { m["apiv3_key"] = "short" },
		"bad timeout":     func(m map[string]any) { m["timeout"] = "soon" },
		"no platform key": func(m map[string]any) { delete(m, "platform_keys") },
	} {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		edit(m)
		raw, _ := json.Marshal(m)
		_, err := FromSettings("wx_cn", raw)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "BEGIN") || strings.Contains(err.Error(), "0123456789abcdef") {
			t.Errorf("%s: error holds a secret: %v", name, err)
		}
	}
}
