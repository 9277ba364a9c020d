package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/crc32"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPSPVerifyHelper is the paygate binary for TestPSPVerifyPayPal: a
// process of its own, so that the test can give it a root of trust
// (SSL_CERT_FILE) and read its real exit status.
func TestPSPVerifyHelper(t *testing.T) {
	raw := os.Getenv("PAYGATE_VERIFY_HELPER")
	if raw == "" {
		t.Skip("the paygate process of TestPSPVerifyPayPal")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		panic(err)
	}
	if err := realMain(context.Background(), args); err != nil {
		fmt.Fprintln(os.Stderr, "paygate:", err)
		os.Exit(exitCode(err))
	}
	os.Exit(0)
}

func certPEM(t *testing.T, tmpl, parent *x509.Certificate, pub *rsa.PublicKey, signer *rsa.PrivateKey) ([]byte, *x509.Certificate) {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), c
}

// `paygate psp verify` of a PayPal webhook, offline: the signing
// certificate comes from the channels file or --certs DIR, never from
// the network; when neither has it, it says so (exit 2); a pinned
// certificate is judged at --at, so a capture from 2020 verifies under
// the certificate PayPal used then, though it has expired since.
func TestPSPVerifyPayPal(t *testing.T) {
	dir := t.TempDir()
	rootKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "paygate test root"},
		NotBefore: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	rootPEM, root := certPEM(t, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	leafPEM, _ := certPEM(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "messageverificationcerts.paypal.com"},
		DNSNames:  []string{"messageverificationcerts.paypal.com"},
		NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, root, &signKey.PublicKey, rootKey)
	rootFile := writeFile(t, dir, "root.pem", string(rootPEM))

	const (
		certURL  = "https://api.paypal.com/v1/notifications/certs/CERT-test-1"
		webhook  = "8PT597110X687430LKGECATA"
		sentAt   = "2020-06-01T00:00:00Z"
		received = "2020-06-01T00:00:05Z"
	)
	body := `{"id":"WH-58D329510W468432D-8HN650336L201105X","event_version":"1.0","create_time":"2020-06-01T00:00:00Z",` +
		`"resource_type":"capture","event_type":"PAYMENT.CAPTURE.COMPLETED","resource":{"id":"27M47624FP291604U","status":"COMPLETED",` +
		`"amount":{"currency_code":"USD","value":"20.00"},"final_capture":true,"custom_id":"T200601000000123ABCDEFGH",` +
		`"supplementary_data":{"related_ids":{"order_id":"5O190127TN364715T"}},"create_time":"2020-05-31T23:59:58Z","update_time":"2020-05-31T23:59:59Z"}}`
	msg := fmt.Sprintf("tx-1|%s|%s|%d", sentAt, webhook, crc32.ChecksumIEEE([]byte(body)))
	d := sha256.Sum256([]byte(msg))
	sig, err := rsa.SignPKCS1v15(rand.Reader, signKey, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	headers := writeFile(t, dir, "headers.txt", "POST /v1/callbacks/paypal_us HTTP/1.1\nContent-Type: application/json\n"+
		"Paypal-Transmission-Id: tx-1\nPaypal-Transmission-Time: "+sentAt+"\nPaypal-Transmission-Sig: "+base64.StdEncoding.EncodeToString(sig)+
		"\nPaypal-Cert-Url: "+certURL+"\nPaypal-Auth-Algo: SHA256withRSA\n")
	bodyFile := writeFile(t, dir, "body.json", body)
	settings := func(pinned bool) map[string]any {
		s := map[string]any{"client_id": "id", "client_secret": "secret", "webhook_ids": []string{webhook}}
		if pinned {
			s["certificates"] = []map[string]string{{"url": certURL, "pem": string(leafPEM)}}
		}
		return s
	}
	channels, _ := json.Marshal(map[string]any{"channels": []map[string]any{
		{"name": "paypal_us", "kind": "paypal", "enabled": true, "settings": settings(true)},
		{"name": "paypal_new", "kind": "paypal", "enabled": true, "settings": settings(false)},
	}})
	config := writeFile(t, dir, "channels.json", string(channels))
	certDir := filepath.Join(dir, "certs")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		t.Fatal(err)
	}

	run := func(channel string, extra ...string) (string, int) {
		t.Helper()
		args, _ := json.Marshal(append([]string{"psp", "verify", "--channel", channel, "--config", config, "--headers", headers, "--body", bodyFile}, extra...))
		cmd := exec.Command(os.Args[0], "-test.run=^TestPSPVerifyHelper$")
		cmd.Env = append(os.Environ(), "PAYGATE_VERIFY_HELPER="+string(args), "SSL_CERT_FILE="+rootFile)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return out.String(), 0
	}
	expect := func(what string, out string, code, want int, lines ...string) {
		t.Helper()
		if code != want {
			t.Errorf("%s: exit %d, want %d\n%s", what, code, want, out)
		}
		for _, l := range lines {
			if !strings.Contains(out, l) {
				t.Errorf("%s: output lacks %q:\n%s", what, l, out)
			}
		}
	}

	out, code := run("paypal_us", "--at", received)
	expect("pinned in the file, judged at --at", out, code, 0, "ACCEPTED by channel paypal_us", "transaction_code: T200601000000123ABCDEFGH",
		"2000 minor units (20.00 USD)")
	out, code = run("paypal_us")
	expect("pinned in the file, judged today", out, code, 2, "certificate", "expired")
	out, code = run("paypal_new", "--at", received)
	expect("not pinned", out, code, 2, "CANNOT VERIFY with channel paypal_new", certURL, "--certs DIR", "signing certificate missing")
	out, code = run("paypal_new", "--at", received, "--certs", certDir)
	expect("not pinned, not in the directory", out, code, 2, "CANNOT VERIFY", filepath.Join(certDir)+" (as CERT-test-1 or CERT-test-1.pem)")
	if err := os.WriteFile(filepath.Join(certDir, "CERT-test-1.pem"), leafPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = run("paypal_new", "--at", received, "--certs", certDir)
	expect("in the pinned directory", out, code, 0, "ACCEPTED by channel paypal_new")
	out, code = run("paypal_new", "--at", "1590969605000", "--certs", certDir)
	expect("--at in milliseconds", out, code, 2, "in milliseconds", "--at 1590969605")
}
