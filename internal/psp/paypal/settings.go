package paypal

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/pemkey"
)

// FromSettings decodes a "paypal" channel's settings
// (docs/psp/paypal.md). Unknown keys are an error; the client secret and
// each pinned certificate are given inline or as a file, never both.
func FromSettings(name string, raw json.RawMessage) (psp.Channel, error) {
	cfg, err := settings(name, raw)
	if err != nil {
		return nil, err
	}
	return NewChannel(cfg)
}

// FromSettingsOffline builds the channel for offline verification
// (`paygate psp verify`): it makes no request (no certificate fetch, no
// API call), judges its certificates, pinned or in o.CertDir, at o.At
// rather than today — against cert_roots_file's roots if the settings
// name one, as the gateway does —, and says which certificate to pin
// when a callback names one it does not hold (an error matching
// psp.ErrCertificateMissing, not a temporary one).
func FromSettingsOffline(name string, raw json.RawMessage, o psp.Offline) (psp.Channel, error) {
	cfg, err := settings(name, raw)
	if err != nil {
		return nil, err
	}
	at := o.At
	cfg.Now = func() time.Time { return at }
	cfg.NoBackgroundFetch, cfg.Transport, cfg.CertDir = true, offlineTransport{}, o.CertDir
	ch, err := NewChannel(cfg)
	if err != nil {
		return nil, err
	}
	ch.offline = true
	return ch, nil
}

func settings(name string, raw json.RawMessage) (ChannelConfig, error) {
	var s struct {
		BaseURL          string   `json:"base_url"`
		ClientID         string   `json:"client_id"`
		ClientSecret     string   `json:"client_secret"`
		ClientSecretFile string   `json:"client_secret_file"`
		WebhookIDs       []string `json:"webhook_ids"`
		BrandName        string   `json:"brand_name"`
		CertHosts        []string `json:"cert_hosts"`
		CertRootsFile    string   `json:"cert_roots_file"`
		TLSRootsFile     string   `json:"tls_roots_file"`
		Certificates     []struct {
			URL  string `json:"url"`
			PEM  string `json:"pem"`
			File string `json:"file"`
		} `json:"certificates"`
		NoBackgroundFetch bool         `json:"no_background_fetch"`
		Timeout           psp.Duration `json:"timeout"`
		Tolerance         psp.Duration `json:"tolerance"`
	}
	if err := psp.DecodeSettings("paypal", raw, &s); err != nil {
		return ChannelConfig{}, err
	}
	cfg := ChannelConfig{Name: name, BaseURL: s.BaseURL, ClientID: s.ClientID, WebhookIDs: s.WebhookIDs,
		BrandName: s.BrandName, CertHosts: s.CertHosts, NoBackgroundFetch: s.NoBackgroundFetch,
		Timeout: s.Timeout.D(), Tolerance: s.Tolerance.D()}
	b, err := pemkey.Read("client_secret", s.ClientSecret, s.ClientSecretFile)
	if err != nil {
		return ChannelConfig{}, fmt.Errorf("paypal settings: %w", err)
	}
	cfg.ClientSecret = string(bytes.TrimSpace(b))
	// Absent, both keep the defaults exactly: a nil CertRoots (the
	// system's roots) and a nil Transport (http.DefaultTransport).
	if s.CertRootsFile != "" {
		if cfg.CertRoots, err = readRoots("cert_roots_file", s.CertRootsFile); err != nil {
			return ChannelConfig{}, err
		}
	}
	if s.TLSRootsFile != "" {
		roots, err := readRoots("tls_roots_file", s.TLSRootsFile)
		if err != nil {
			return ChannelConfig{}, err
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		cfg.Transport = t
	}
	for i, c := range s.Certificates {
		b, err := pemkey.Read(fmt.Sprintf("certificates[%d]", i), c.PEM, c.File)
		if err != nil {
			return ChannelConfig{}, fmt.Errorf("paypal settings: %w", err)
		}
		cfg.Certificates = append(cfg.Certificates, Certificate{URL: c.URL, PEM: b})
	}
	return cfg, nil
}

// readRoots reads a PEM file of CA certificates for the settings key
// key. Every PEM block in it must be a certificate, and there must be
// one at least: a file that trusts nothing, or holds a key by mistake,
// is an error at start rather than every webhook refused later. Text
// between the blocks (the comments of CA bundles) is skipped.
func readRoots(key, file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("paypal settings: %s: %w", key, err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		n++
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("paypal settings: %s %s: PEM block %d is %q, not a CERTIFICATE", key, file, n, blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("paypal settings: %s %s: certificate %d: %v", key, file, n, err)
		}
		pool.AddCert(c)
	}
	if n == 0 {
		return nil, fmt.Errorf("paypal settings: %s %s: no PEM certificate in it", key, file)
	}
	return pool, nil
}
