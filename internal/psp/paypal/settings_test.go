package paypal

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPaypalSettings(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "paypal_secret")
	if err := os.WriteFile(secretFile, []byte("ECYYrrSHdKfk_Q0EdvzdGkzj58a66kKaUQ5dZAEv4Hvv\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := map[string]any{
		"base_url": "https://api-m.sandbox.paypal.com", "client_id": "AeA1QIZXiflr1", "client_secret_file": secretFile,
		"webhook_ids": []string{"8PT597110X687430LKGECATA", "1JE4291016473214C"}, "brand_name": "Shop",
		"timeout": "5s", "tolerance": "5m",
	}
	raw, _ := json.Marshal(good)
	ch, err := FromSettings("paypal_us", raw)
	if err != nil {
		t.Fatal(err)
	}
	if c := ch.Capabilities(); ch.Name() != "paypal_us" || !c.ConfirmByQuery || !c.PartialRefund || !c.Settlement {
		t.Fatalf("channel %s %+v", ch.Name(), c)
	}
	for name, edit := range map[string]func(m map[string]any){
		"unknown key":     func(m map[string]any) { m["webhook_id"] = "x" },
		"secret and file": func(m map[string]any) { m["client_secret"] = "ECYYrrSHdKfk" },
		"no secret":       func(m map[string]any) { delete(m, "client_secret_file") },
		"no client id":    func(m map[string]any) { delete(m, "client_id") },
		"no webhook id":   func(m map[string]any) { delete(m, "webhook_ids") },
		"bad timeout":     func(m map[string]any) { m["timeout"] = "soon" },
		"bad base url":    func(m map[string]any) { m["base_url"] = "api-m.paypal.com" },
		"not a certificate": func(m map[string]any) {
			m["certificates"] = []map[string]string{{"url": "https://api.paypal.com/v1/notifications/certs/C", "pem": "junk"}}
		},
		"cert outside hosts": func(m map[string]any) {
			m["certificates"] = []map[string]string{{"url": "https://evil.example/c.pem", "pem": "junk"}}
		},
		"cert host with path": func(m map[string]any) { m["cert_hosts"] = []string{"evil.example/x"} },
	} {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		edit(m)
		raw, _ := json.Marshal(m)
		_, err := FromSettings("paypal_us", raw)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "ECYYrrSHdKfk") {
			t.Errorf("%s: error holds the secret: %v", name, err)
		}
	}
}
