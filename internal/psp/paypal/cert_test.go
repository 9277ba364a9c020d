package paypal

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

// TestCertURLAllowList: a callback naming a certificate anywhere but an
// allowed host's https CertPathPrefix is refused as a bad signature, and
// no request is made, by ParseCallback, FetchCert or Prefetch.
func TestCertURLAllowList(t *testing.T) {
	e := newEnv(t, "", false)
	n := psptest.Notifications()[0]
	for _, u := range []string{
		"https://evil.example/cert.pem",
		"http://" + e.cs.host() + CertPathPrefix + "CERT-360caa42-test",
		"https://" + e.cs.host() + "/cert.pem",
		"https://" + e.cs.host() + CertPathPrefix + "../../evil",
		"https://" + e.cs.host() + CertPathPrefix + "CERT-1?x=https://evil.example/",
		"https://" + e.cs.host() + CertPathPrefix + "CERT-1#frag",
		"https://user:pw@" + e.cs.host() + CertPathPrefix + "CERT-1",
		"https://" + e.cs.host() + ".evil.example" + CertPathPrefix + "CERT-1",
		"https://api.paypal.com" + CertPathPrefix + "CERT-1", // allowed by default, not by this test's config
		"//evil.example/cert.pem",
		"file:///etc/passwd",
		"",
	} {
		cb := callbackFor(e, n, psptest.Epoch, signKey)
		cb.Headers.Set(headerCertURL, u)
		cb.ReceivedAt = psptest.Epoch
		got, err := e.ch.ParseCallback(cb)
		if !errors.Is(err, psp.ErrBadSignature) || psp.IsTemporary(err) || !psptest.SameNotification(got, domain.Notification{}) {
			t.Errorf("%q: ParseCallback = %+v, %v; want a bad signature", u, got, err)
		}
		if err := e.ch.FetchCert(t.Context(), u); !errors.Is(err, psp.ErrBadSignature) {
			t.Errorf("%q: FetchCert = %v; want a bad signature", u, err)
		}
		if err := e.ch.Prefetch(t.Context(), cb); u != "" && !errors.Is(err, psp.ErrBadSignature) {
			t.Errorf("%q: Prefetch = %v; want a bad signature", u, err)
		}
	}
	e.ch.certs.bg.Wait() // a background fetch, were one started, has ended
	if got := e.cnt.n.Load(); got != 0 {
		t.Fatalf("%d requests made (%v), want none", got, e.cnt.urls)
	}
}

// TestDefaultCertHosts: the default allow-list is PayPal's four API hosts.
func TestDefaultCertHosts(t *testing.T) {
	ch, err := NewChannel(ChannelConfig{ClientID: "id", ClientSecret: "s", WebhookIDs: []string{"W"}, NoBackgroundFetch: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"api.paypal.com", "api-m.paypal.com", "api.sandbox.paypal.com", "api-m.sandbox.paypal.com", "API.PAYPAL.COM"} {
		if err := ch.checkCertURL("https://" + h + CertPathPrefix + "CERT-360caa42-fca2a594-a5cafa77"); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	for _, h := range []string{"www.paypal.com", "paypal.com", "api.paypal.com:8443", "api.paypal.com.evil.example", "evil.example"} {
		if err := ch.checkCertURL("https://" + h + CertPathPrefix + "CERT-1"); err == nil {
			t.Errorf("%s allowed", h)
		}
	}
}

// TestCertFetchedInBackground: an allowed certificate not cached yet is
// a temporary error, with one background fetch; the retry verifies.
func TestCertFetchedInBackground(t *testing.T) {
	e := newEnv(t, "", false)
	n := psptest.Notifications()[0]
	cb := callbackFor(e, n, psptest.Epoch, signKey)
	cb.ReceivedAt = psptest.Epoch
	_, err := e.ch.ParseCallback(cb)
	if !psp.IsTemporary(err) || !errors.Is(err, ErrCertNotCached) {
		t.Fatalf("first parse: %v, want a temporary ErrCertNotCached", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := e.ch.ParseCallback(cb)
		if err == nil {
			if !psptest.SameNotification(got, n) {
				t.Fatalf("read %+v, want %+v", got, n)
			}
			break
		}
		if !psp.IsTemporary(err) || time.Now().After(deadline) {
			t.Fatalf("after the background fetch: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if hits := e.cs.hits.Load(); hits != 1 {
		t.Fatalf("certificate fetched %d times, want once", hits)
	}
}

// TestNoBackgroundFetch: with NoBackgroundFetch, ParseCallback only
// reports; Prefetch fills the cache.
func TestNoBackgroundFetch(t *testing.T) {
	e := newEnv(t, "", false, func(c *ChannelConfig) { c.NoBackgroundFetch = true })
	n := psptest.Notifications()[0]
	cb := callbackFor(e, n, psptest.Epoch, signKey)
	cb.ReceivedAt = psptest.Epoch
	for range 3 {
		if _, err := e.ch.ParseCallback(cb); !psp.IsTemporary(err) {
			t.Fatalf("parse: %v, want temporary", err)
		}
	}
	e.ch.certs.bg.Wait() // a background fetch, were one started, has ended
	if got := e.cnt.n.Load(); got != 0 {
		t.Fatalf("%d requests made, want none", got)
	}
	if err := e.ch.Prefetch(t.Context(), cb); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ch.ParseCallback(cb); err != nil {
		t.Fatal(err)
	}
	if err := e.ch.Prefetch(t.Context(), cb); err != nil || e.cnt.n.Load() != 1 {
		t.Fatalf("second Prefetch: %v, %d requests", err, e.cnt.n.Load())
	}
}

// TestRejectedCerts: certificates that fail their checks, or do not
// exist, make callbacks naming them bad signatures; redirects are not
// followed.
func TestRejectedCerts(t *testing.T) {
	cases := []struct {
		name string
		edit func(*ChannelConfig)
	}{
		{"CERT-wrong-name", nil},
		{"CERT-missing", nil},
		{"CERT-redirect", nil},
		{"CERT-360caa42-test", func(c *ChannelConfig) { c.CertRoots = nil }}, // self-signed, not in the system roots
		{"CERT-360caa42-test", func(c *ChannelConfig) {
			c.Now = func() time.Time { return time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC) }
		}},
	}
	for i, c := range cases {
		edits := []func(*ChannelConfig){func(cfg *ChannelConfig) { cfg.NoBackgroundFetch = true }}
		if c.edit != nil {
			edits = append(edits, c.edit)
		}
		e := newEnv(t, "", false, edits...)
		u := e.cs.url(c.name)
		err := e.ch.FetchCert(t.Context(), u)
		if !errors.Is(err, psp.ErrBadSignature) || psp.IsTemporary(err) {
			t.Errorf("%d %s: FetchCert = %v, want a bad signature", i, c.name, err)
			continue
		}
		cb := callbackFor(e, psptest.Notifications()[0], psptest.Epoch, signKey)
		cb.Headers.Set(headerCertURL, u)
		cb.ReceivedAt = psptest.Epoch
		if _, err := e.ch.ParseCallback(cb); !errors.Is(err, psp.ErrBadSignature) || psp.IsTemporary(err) {
			t.Errorf("%d %s: ParseCallback = %v, want a bad signature", i, c.name, err)
		}
		for _, x := range e.cnt.urls {
			if x != u {
				t.Errorf("%d %s: requested %s", i, c.name, x)
			}
		}
	}
}

// TestCertValidityAtTransmission: a callback transmitted outside the
// certificate's validity period is refused even when received at once.
func TestCertValidityAtTransmission(t *testing.T) {
	e := newEnv(t, "", true)
	at := testCertValidity[1].Add(time.Hour)
	cb := callbackFor(e, psptest.Notifications()[0], at, signKey)
	cb.ReceivedAt = at
	if _, err := e.ch.ParseCallback(cb); !errors.Is(err, psp.ErrBadSignature) {
		t.Fatalf("transmitted after the certificate expired: %v", err)
	}
}

// TestManyUnknownCertURLs: an attacker naming many certificates that do
// not exist on an allowed host does not keep PayPal's real one out.
func TestManyUnknownCertURLs(t *testing.T) {
	e := newEnv(t, "", false, func(c *ChannelConfig) { c.NoBackgroundFetch = true })
	for i := range 3 * maxCerts {
		u := e.cs.url(fmt.Sprintf("CERT-junk-%d", i))
		if err := e.ch.FetchCert(t.Context(), u); !errors.Is(err, psp.ErrBadSignature) {
			t.Fatalf("%s: %v", u, err)
		}
	}
	if err := e.ch.FetchCert(t.Context(), e.certURL); err != nil {
		t.Fatalf("the real certificate after %d junk ones: %v", 3*maxCerts, err)
	}
	cb := callbackFor(e, psptest.Notifications()[0], psptest.Epoch, signKey)
	cb.ReceivedAt = psptest.Epoch
	if _, err := e.ch.ParseCallback(cb); err != nil {
		t.Fatal(err)
	}
}
