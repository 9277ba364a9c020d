package paypal

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// testCA is a private CA and a signing certificate it issued for
// messageverificationcerts.sandbox.paypal.com through an intermediate,
// served as PayPal serves its own: the leaf, then the intermediate.
type testCA struct {
	rootPEM, chainPEM []byte
	key               *rsa.PrivateKey // the leaf's
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	keys()
	mk := func(tmpl, parent *x509.Certificate, pub *rsa.PublicKey, signer *rsa.PrivateKey) ([]byte, *x509.Certificate) {
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
	from, to := testCertValidity[0], testCertValidity[1]
	ca := func(serial int64, name string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, NotBefore: from, NotAfter: to,
			KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	}
	// The CA keys are the package's test keys: generating more RSA keys
	// only costs time here.
	rootPEM, root := mk(ca(1, "paygate test root"), ca(1, "paygate test root"), &otherKey.PublicKey, otherKey)
	interPEM, inter := mk(ca(2, "paygate test intermediate"), root, &signKey.PublicKey, otherKey)
	leafPEM, _ := mk(&x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: sandboxCertDNSName},
		DNSNames: []string{sandboxCertDNSName}, NotBefore: from, NotAfter: to, KeyUsage: x509.KeyUsageDigitalSignature},
		inter, &signKey.PublicKey, signKey)
	return testCA{rootPEM: rootPEM, chainPEM: append(leafPEM, interPEM...), key: signKey}
}

func write(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func rootsSettings(edit func(m map[string]any)) json.RawMessage {
	m := map[string]any{"client_id": "AeA1QIZXiflr1", "client_secret": "ECYYrrSHdKfk", "webhook_ids": testWebhookIDs}
	edit(m)
	raw, _ := json.Marshal(m)
	return raw
}

// TestCertRootsSetting: without cert_roots_file the channel is exactly as
// before (the system's roots, the default transport); with it, a signing
// certificate chained to a private CA is accepted — pinned, fetched, or
// from psp verify's --certs DIR, judged at --at — and one chained to
// another CA still is not. A file that trusts nothing is an error at
// start, naming the key and the file.
func TestCertRootsSetting(t *testing.T) {
	ca := newTestCA(t)
	rootsFile := write(t, "roots.pem", append([]byte("# paygate test root\n"), ca.rootPEM...))
	const certURL = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-e2e-1"
	pinned := []map[string]string{{"url": certURL, "pem": string(ca.chainPEM)}}

	cfg, err := settings("paypal_us", rootsSettings(func(map[string]any) {}))
	if err != nil || cfg.CertRoots != nil || cfg.Transport != nil {
		t.Fatalf("without roots settings: CertRoots %v, Transport %v, %v; want both nil (the system's roots, http.DefaultTransport)",
			cfg.CertRoots, cfg.Transport, err)
	}
	if _, err := FromSettings("paypal_us", rootsSettings(func(m map[string]any) { m["certificates"] = pinned })); err == nil ||
		!strings.Contains(err.Error(), "certificate chain") {
		t.Fatalf("a certificate of a private CA, pinned, without cert_roots_file: %v; want its chain refused", err)
	}
	ch, err := FromSettings("paypal_us", rootsSettings(func(m map[string]any) {
		m["certificates"], m["cert_roots_file"] = pinned, rootsFile
	}))
	if err != nil {
		t.Fatalf("with cert_roots_file: %v", err)
	}
	if c := ch.(*Channel).cfg; c.Transport != nil {
		t.Errorf("cert_roots_file changed the transport")
	}
	other := selfSigned(signKey, sandboxCertDNSName, testCertValidity[0], testCertValidity[1])
	if _, err := FromSettings("paypal_us", rootsSettings(func(m map[string]any) {
		m["certificates"], m["cert_roots_file"] = []map[string]string{{"url": certURL, "pem": string(other)}}, rootsFile
	})); err == nil {
		t.Errorf("a certificate the roots did not issue was accepted")
	}

	// Offline, as psp verify builds it: the certificate from --certs DIR,
	// verified against cert_roots_file's roots at --at.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "CERT-e2e-1.pem"), ca.chainPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	n := psptest.Notifications()[0]
	cb := domain.Callback{Kind: domain.CallbackAsync, Method: http.MethodPost, Headers: http.Header{}, Body: captureEventFor(n), ReceivedAt: psptest.Epoch}
	signHeaders(cb.Headers, ca.key, certURL, testWebhookIDs[0], "tx-1", psptest.Epoch, cb.Body)
	for _, c := range []struct {
		roots bool
		ok    bool
	}{{true, true}, {false, false}} {
		ch, err := FromSettingsOffline("paypal_us", rootsSettings(func(m map[string]any) {
			if c.roots {
				m["cert_roots_file"] = rootsFile
			}
		}), psp.Offline{At: psptest.Epoch, CertDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		got, err := ch.ParseCallback(cb)
		switch {
		case c.ok && (err != nil || got.TransactionCode != n.TransactionCode):
			t.Errorf("offline, with cert_roots_file: %+v, %v", got, err)
		case !c.ok && !errors.Is(err, psp.ErrBadSignature):
			t.Errorf("offline, without cert_roots_file: %v; want the private CA's certificate refused", err)
		}
	}

	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(signKey)})
	for name, c := range map[string]struct {
		key, file, want string
	}{
		"missing file":   {"cert_roots_file", filepath.Join(t.TempDir(), "nope.pem"), "no such file"},
		"empty file":     {"cert_roots_file", write(t, "empty.pem", nil), "no PEM certificate"},
		"not PEM":        {"cert_roots_file", write(t, "der.cer", []byte("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA")), "no PEM certificate"},
		"a private key":  {"cert_roots_file", write(t, "key.pem", append(append([]byte{}, ca.rootPEM...), keyPEM...)), `PEM block 2 is "RSA PRIVATE KEY"`},
		"bad DER":        {"cert_roots_file", write(t, "bad.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})), "certificate 1"},
		"tls, empty":     {"tls_roots_file", write(t, "empty.pem", nil), "no PEM certificate"},
		"tls, a key":     {"tls_roots_file", write(t, "key.pem", keyPEM), `PEM block 1 is "RSA PRIVATE KEY"`},
		"tls, no file":   {"tls_roots_file", filepath.Join(t.TempDir(), "nope.pem"), "no such file"},
		"cert, is a dir": {"cert_roots_file", t.TempDir(), "is a directory"},
	} {
		_, err := FromSettings("paypal_us", rootsSettings(func(m map[string]any) { m[c.key] = c.file }))
		if err == nil || !strings.HasPrefix(err.Error(), "paypal settings: "+c.key) || !strings.Contains(err.Error(), c.want) ||
			strings.Contains(err.Error(), "ECYYrrSHdKfk") {
			t.Errorf("%s: %v; want a paypal settings error naming %s and saying %q", name, err, c.key, c.want)
		}
	}
}

// TestTLSRootsSetting: with tls_roots_file the channel reaches an API and
// certificate host whose TLS certificate those roots issued (a PayPal
// stand-in, or a TLS-inspecting egress proxy); without it, the system's
// roots decide and the same fetch fails, temporarily.
func TestTLSRootsSetting(t *testing.T) {
	ca := newTestCA(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != CertPathPrefix+"CERT-e2e-1" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(ca.chainPEM)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := srv.Listener.Addr().String()
	certURL := "https://" + host + CertPathPrefix + "CERT-e2e-1"
	tlsFile := write(t, "tls.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	rootsFile := write(t, "roots.pem", ca.rootPEM)

	build := func(tlsRoots bool) *Channel {
		ch, err := FromSettings("paypal_us", rootsSettings(func(m map[string]any) {
			m["base_url"], m["cert_hosts"], m["cert_roots_file"], m["no_background_fetch"] = srv.URL, []string{host}, rootsFile, true
			if tlsRoots {
				m["tls_roots_file"] = tlsFile
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		return ch.(*Channel)
	}
	if err := build(false).FetchCert(t.Context(), certURL); !psp.IsTemporary(err) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without tls_roots_file: %v; want a temporary TLS failure (the host's certificate is no system root's)", err)
	}
	ch := build(true)
	if err := ch.FetchCert(t.Context(), certURL); err != nil {
		t.Fatalf("with tls_roots_file: %v", err)
	}
	n := psptest.Notifications()[0]
	now := time.Now()
	cb := domain.Callback{Kind: domain.CallbackAsync, Method: http.MethodPost, Headers: http.Header{}, Body: captureEventFor(n), ReceivedAt: now}
	signHeaders(cb.Headers, ca.key, certURL, testWebhookIDs[1], "tx-2", now, cb.Body)
	if got, err := ch.ParseCallback(cb); err != nil || got.TransactionCode != n.TransactionCode {
		t.Errorf("a webhook under the fetched certificate: %+v, %v", got, err)
	}
}
