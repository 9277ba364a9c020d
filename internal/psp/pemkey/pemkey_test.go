package pemkey

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestForms(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(k)
	p1 := x509.MarshalPKCS1PrivateKey(k)
	pkix1, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"}, NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1, 0)}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	for name, in := range map[string][]byte{
		"PKCS8 PEM": enc("PRIVATE KEY", p8), "PKCS1 PEM": enc("RSA PRIVATE KEY", p1),
		"bare base64 PKCS8 (Alipay's key tool)": []byte(base64.StdEncoding.EncodeToString(p8) + "\n"),
	} {
		got, err := ParsePrivate(in)
		if err != nil || !got.Equal(k) {
			t.Errorf("ParsePrivate %s: %v", name, err)
		}
	}
	for name, in := range map[string][]byte{
		"PKIX PEM": enc("PUBLIC KEY", pkix1), "PKCS1 PEM": enc("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.PublicKey)),
		"certificate (expired: not judged here)": enc("CERTIFICATE", cert), "bare base64 PKIX": []byte(base64.StdEncoding.EncodeToString(pkix1)),
	} {
		got, err := ParsePublic(in)
		if err != nil || !got.Equal(&k.PublicKey) {
			t.Errorf("ParsePublic %s: %v", name, err)
		}
	}
	for _, bad := range []string{"", "not a key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"} {
		if _, err := ParsePrivate([]byte(bad)); err == nil {
			t.Errorf("ParsePrivate(%q) accepted", bad)
		}
		if _, err := ParsePublic([]byte(bad)); err == nil {
			t.Errorf("ParsePublic(%q) accepted", bad)
		}
	}
	if _, err := ParsePrivate(enc("PUBLIC KEY", pkix1)); err == nil {
		t.Error("a public key read as private")
	}
}

func TestRead(t *testing.T) {
	f := filepath.Join(t.TempDir(), "k")
	_ = os.WriteFile(f, []byte("file"), 0o600)
	if b, err := Read("k", "inline", ""); err != nil || string(b) != "inline" {
		t.Error(b, err)
	}
	if b, err := Read("k", "", f); err != nil || string(b) != "file" {
		t.Error(b, err)
	}
	for _, c := range [][2]string{{"", ""}, {"a", f}, {"", f + ".missing"}} {
		if _, err := Read("k", c[0], c[1]); err == nil {
			t.Errorf("Read(%q, %q) accepted", c[0], c[1])
		}
	}
}
