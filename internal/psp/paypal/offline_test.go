package paypal

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// TestOffline: a channel built for offline verification never requests
// anything; a certificate it does not hold is named, as missing (not a
// temporary error to retry); one in the pinned directory is used, and is
// judged at the offline time, not today.
func TestOffline(t *testing.T) {
	keys()
	dir := t.TempDir()
	at := psptest.Epoch
	e := newEnv(t, "", false, func(c *ChannelConfig) {
		c.NoBackgroundFetch, c.CertDir, c.Now = true, dir, func() time.Time { return at }
	})
	e.ch.offline = true
	cb := callbackFor(e, psptest.Notifications()[0], at, signKey)
	cb.ReceivedAt = at

	_, err := e.ch.ParseCallback(cb)
	if !errors.Is(err, psp.ErrCertificateMissing) || psp.IsTemporary(err) || !strings.Contains(err.Error(), e.certURL) ||
		!strings.Contains(err.Error(), filepath.Join(dir)) || !strings.Contains(err.Error(), "CERT-360caa42-test.pem") {
		t.Fatalf("no certificate: %v; want it named as missing, with where it was looked for", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "CERT-360caa42-test.pem"), signCertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := e.ch.ParseCallback(cb); err != nil || n.TransactionCode != psptest.Notifications()[0].TransactionCode {
		t.Fatalf("with the certificate pinned in %s: %+v, %v", dir, n, err)
	}
	if e.cnt.n.Load() != 0 || e.cs.hits.Load() != 0 {
		t.Errorf("offline channel made %d requests", e.cnt.n.Load())
	}

	// A certificate valid in 2001 only: accepted when judged in 2001,
	// refused when judged today.
	old := selfSigned(signKey, sandboxCertDNSName, time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2002, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, c := range []struct {
		at time.Time
		ok bool
	}{{time.Date(2001, 6, 1, 12, 0, 0, 0, time.UTC), true}, {time.Now(), false}} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "CERT-360caa42-test"), old, 0o600); err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(old)
		e := newEnv(t, "", false, func(cfg *ChannelConfig) {
			cfg.NoBackgroundFetch, cfg.CertDir, cfg.CertRoots, cfg.Now = true, dir, roots, func() time.Time { return c.at }
		})
		e.ch.offline = true
		cb := callbackFor(e, psptest.Notifications()[0], c.at, signKey)
		cb.ReceivedAt = c.at
		_, err := e.ch.ParseCallback(cb)
		if c.ok != (err == nil) || (!c.ok && !errors.Is(err, psp.ErrBadSignature)) {
			t.Errorf("certificate of 2001 judged at %s: %v", c.at.Format(time.DateOnly), err)
		}
	}

	// Through the settings: no network, and the missing certificate named.
	raw, _ := json.Marshal(map[string]any{"client_id": "id", "client_secret": "s", "webhook_ids": testWebhookIDs, "cert_hosts": []string{e.cs.host()}})
	ch, err := FromSettingsOffline("paypal_us", raw, psp.Offline{At: at})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.ParseCallback(cb); !errors.Is(err, psp.ErrCertificateMissing) || psp.IsTemporary(err) {
		t.Errorf("offline channel from settings, no certificate: %v", err)
	}
	if err := ch.(*Channel).FetchCert(t.Context(), e.certURL); err == nil || !strings.Contains(err.Error(), "offline") {
		t.Errorf("offline channel's FetchCert: %v, want refused without a request", err)
	}
	if e.cs.hits.Load() != 0 {
		t.Errorf("the certificate server was asked %d times", e.cs.hits.Load())
	}
}
