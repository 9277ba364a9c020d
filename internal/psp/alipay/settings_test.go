package alipay

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

func TestAlipaySettings(t *testing.T) {
	priv, pub := testPEMs(t)
	// Alipay's key tool prints bare base64 without PEM lines.
	bare := strings.Join(strings.Split(strings.TrimSpace(pub), "\n")[1:len(strings.Split(strings.TrimSpace(pub), "\n"))-1], "")
	dir := t.TempDir()
	pubFile := filepath.Join(dir, "alipay_public_key.txt")
	if err := os.WriteFile(pubFile, []byte(bare), 0o600); err != nil {
		t.Fatal(err)
	}
	good := map[string]any{
		"app_id": "2014072300007148", "app_private_key": priv,
		"alipay_public_keys": []map[string]string{{"file": pubFile}, {"pem": pub}}, "pay_timeout": "15m",
	}
	raw, _ := json.Marshal(good)
	ch, err := FromSettings("alipay_cn", raw)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Name() != "alipay_cn" || !ch.Capabilities().ConfirmByQuery || ch.Ack().Body != "success" {
		t.Fatalf("channel %s %+v", ch.Name(), ch.Capabilities())
	}
	for name, edit := range map[string]func(m map[string]any){
		"unknown key":        func(m map[string]any) { m["alipay_public_key"] = pub },
		"no app id":          func(m map[string]any) { delete(m, "app_id") },
		"no private key":     func(m map[string]any) { delete(m, "app_private_key") },
		"no alipay key":      func(m map[string]any) { delete(m, "alipay_public_keys") },
		"bad pay timeout":    func(m map[string]any) { m["pay_timeout"] = "10s" },
		"private key as pub": func(m map[string]any) { m["alipay_public_keys"] = []map[string]string{{"pem": "not a key"}} },
	} {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		edit(m)
		raw, _ := json.Marshal(m)
		if _, err := FromSettings("alipay_cn", raw); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "BEGIN") {
			t.Errorf("%s: error holds a key: %v", name, err)
		}
	}
}
