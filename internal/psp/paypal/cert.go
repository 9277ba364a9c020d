package paypal

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// How the signing certificates are had, given that ParseCallback does no
// I/O (the port's rule: parsing is replayable offline and fast):
//
//   - A PAYPAL-CERT-URL is usable only if it is https, has no user info,
//     query or fragment, names one of CertHosts exactly and a path under
//     CertPathPrefix. Any other URL is refused as a bad signature, and is
//     never fetched, by anyone.
//   - Certificates are kept in a per-channel cache by URL, filled ahead of
//     ParseCallback: from ChannelConfig.Certificates at start, by FetchCert
//     or Prefetch (for whoever can do I/O before parsing: the ingress, the
//     callbacks consumer, an operator's tool), and by a background fetch
//     that ParseCallback starts when it meets an allowed URL it has not got.
//   - ParseCallback verifies with cached certificates only. For an allowed
//     URL not cached yet it returns a psp.TemporaryError (ErrCertNotCached):
//     the consumer retries the stored callback with backoff, and by then
//     the background fetch has filled the cache. A certificate that failed
//     its checks, or that PayPal says does not exist (4xx), is remembered,
//     and callbacks naming it are refused as bad signatures.
//   - A fetched certificate is checked before it is cached: PEM, the first
//     block the leaf with an RSA key, valid for one of CertNames, its
//     chain verified against CertRoots (the system's by default) with the
//     rest of the PEM as intermediates. ParseCallback then requires the
//     transmission time to fall inside the leaf's validity period.
//   - Fetches go through the channel's http.Client (psp.Transport, no
//     redirects, Timeout), one at a time per URL, and the cache is
//     bounded: an attacker naming many allowed URLs costs PayPal a few
//     404s, not us memory.

// ErrCertNotCached is the cause of the temporary error ParseCallback
// returns for an allowed certificate URL it has no certificate for yet.
// It matches psp.ErrCertificateMissing.
var ErrCertNotCached error = certNotCached{}

type certNotCached struct{}

func (certNotCached) Error() string        { return "signing certificate not fetched yet" }
func (certNotCached) Is(target error) bool { return target == psp.ErrCertificateMissing }

// fromDir loads the certificate of an allowed URL from the pinned
// certificate directory (ChannelConfig.CertDir), if a file is there named
// like the URL's last path segment, with or without ".pem". It reports
// whether it found one; a file that fails the checks is a bad signature.
func (s *certStore) fromDir(raw string) (bool, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return false, nil // checked by checkCertURL before
	}
	name := path.Base(u.Path)
	for _, f := range []string{name, name + ".pem"} {
		b, err := os.ReadFile(filepath.Join(s.ch.cfg.CertDir, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("paypal certificate %s: %w", raw, err)
		}
		if len(b) > maxCertBytes {
			return false, s.reject(raw, filepath.Join(s.ch.cfg.CertDir, f)+" too large")
		}
		return true, s.add(raw, b)
	}
	return false, nil
}

// offlineTransport is the transport of a channel built for offline
// verification: any request is an error.
type offlineTransport struct{}

func (offlineTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("paypal channel built for offline verification: no request to %s", r.URL.Host)
}

// maxCerts bounds the cache (PayPal signs with one or two certificates at
// a time); maxCertBytes one certificate answer.
const (
	maxCerts     = 64
	maxCertBytes = 64 << 10
	// maxInflight bounds the background fetches running at once.
	maxInflight = 4
	// retryFailedFetch is how long a fetch that failed temporarily keeps
	// the URL from being fetched again in the background.
	retryFailedFetch = 30 * time.Second
)

type cachedCert struct {
	leaf *x509.Certificate
	key  *rsa.PublicKey
}

type certStore struct {
	ch *Channel

	mu       sync.Mutex
	certs    map[string]cachedCert
	rejected map[string]string    // URL → why (permanent)
	retryAt  map[string]time.Time // URL → earliest next background fetch
	inflight map[string]bool
	// bg counts the background fetches running: tests wait on it before
	// asserting that none was made.
	bg sync.WaitGroup
}

func newCertStore(ch *Channel) *certStore {
	return &certStore{ch: ch, certs: map[string]cachedCert{}, rejected: map[string]string{},
		retryAt: map[string]time.Time{}, inflight: map[string]bool{}}
}

// checkCertURL is the allow-list: the URL as it must be to be fetched.
func (c *Channel) checkCertURL(raw string) error {
	if len(raw) > 512 {
		return errors.New("certificate URL too long")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("certificate URL does not parse")
	}
	if u.Scheme != "https" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("certificate URL %q is not a plain https URL", raw)
	}
	if !slices.Contains(c.cfg.CertHosts, strings.ToLower(u.Host)) {
		return fmt.Errorf("certificate host %q is not allowed", u.Host)
	}
	if !strings.HasPrefix(u.EscapedPath(), CertPathPrefix) || strings.Contains(u.EscapedPath(), "..") {
		return fmt.Errorf("certificate path %q is not under %s", u.EscapedPath(), CertPathPrefix)
	}
	return nil
}

// lookup returns the cached certificate of an allowed URL: ok false and
// a nil error when it is not cached yet; an error wrapping
// psp.ErrBadSignature when it was rejected.
func (s *certStore) lookup(raw string) (cachedCert, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cc, ok := s.certs[raw]; ok {
		return cc, true, nil
	}
	if why, ok := s.rejected[raw]; ok {
		return cachedCert{}, false, fmt.Errorf("%w: certificate %s was rejected: %s", psp.ErrBadSignature, raw, why)
	}
	return cachedCert{}, false, nil
}

// background starts a fetch of raw unless one runs, the cache is full, or
// a recent one failed. It returns at once.
func (s *certStore) background(raw string) {
	now := s.ch.cfg.Now()
	s.mu.Lock()
	// Only good certificates count against the cache bound: URLs that
	// PayPal does not know (an attacker can name any number on an allowed
	// host) must not keep PayPal's next certificate out.
	if s.inflight[raw] || len(s.inflight) >= maxInflight || len(s.certs) >= maxCerts || now.Before(s.retryAt[raw]) {
		s.mu.Unlock()
		return
	}
	s.inflight[raw] = true
	s.bg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), s.ch.cfg.Timeout)
		defer cancel()
		_ = s.fetch(ctx, raw)
	}()
}

// fetch gets, checks and caches the certificate at raw (allowed by the
// caller). The caller has marked it in flight.
func (s *certStore) fetch(ctx context.Context, raw string) (err error) {
	defer func() {
		s.mu.Lock()
		delete(s.inflight, raw)
		if err != nil && !errors.Is(err, psp.ErrBadSignature) {
			if len(s.retryAt) >= 4*maxCerts {
				clear(s.retryAt)
			}
			s.retryAt[raw] = s.ch.cfg.Now().Add(retryFailedFetch)
		}
		s.mu.Unlock()
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return fmt.Errorf("paypal certificate: %w", err)
	}
	req.Header.Set("Accept", "application/x-pem-file, */*")
	req.Header.Set("User-Agent", "paygate")
	resp, err := s.ch.client.Do(req)
	if err != nil {
		return &psp.TemporaryError{Op: "paypal certificate", Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCertBytes+1))
	if err != nil {
		return &psp.TemporaryError{Op: "paypal certificate", Err: err}
	}
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return &psp.TemporaryError{Op: "paypal certificate", Err: fmt.Errorf("HTTP %d", resp.StatusCode)}
	case resp.StatusCode != http.StatusOK:
		return s.reject(raw, fmt.Sprintf("HTTP %d", resp.StatusCode))
	case len(b) > maxCertBytes:
		return s.reject(raw, "answer too large")
	}
	return s.add(raw, b)
}

func (s *certStore) reject(raw, why string) error {
	s.mu.Lock()
	if len(s.rejected) >= maxCerts {
		clear(s.rejected) // forget old refusals rather than keep new ones out
	}
	s.rejected[raw] = why
	if len(s.retryAt) >= 4*maxCerts {
		clear(s.retryAt)
	}
	s.mu.Unlock()
	return fmt.Errorf("%w: certificate %s: %s", psp.ErrBadSignature, raw, why)
}

// add checks a PEM certificate chain and caches it under raw. A chain
// that fails its checks is remembered as rejected.
func (s *certStore) add(raw string, pemBytes []byte) error {
	if err := s.ch.checkCertURL(raw); err != nil {
		return fmt.Errorf("%w: %v", psp.ErrBadSignature, err)
	}
	cc, err := s.ch.checkChain(pemBytes)
	if err != nil {
		return s.reject(raw, err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.certs[raw]; !ok && len(s.certs) >= maxCerts {
		return &psp.TemporaryError{Op: "paypal certificate", Err: errors.New("certificate cache full")}
	}
	s.certs[raw] = cc
	delete(s.retryAt, raw)
	return nil
}

// checkChain reads the leaf and intermediates and checks them.
func (c *Channel) checkChain(pemBytes []byte) (cachedCert, error) {
	var chain []*x509.Certificate
	for rest := pemBytes; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return cachedCert{}, fmt.Errorf("certificate does not parse: %v", err)
		}
		chain = append(chain, cert)
	}
	if len(chain) == 0 {
		return cachedCert{}, errors.New("no PEM certificate")
	}
	leaf := chain[0]
	key, ok := leaf.PublicKey.(*rsa.PublicKey)
	if !ok {
		return cachedCert{}, fmt.Errorf("certificate key is %T, not RSA", leaf.PublicKey)
	}
	named := false
	for _, n := range c.cfg.CertNames {
		if leaf.VerifyHostname(n) == nil {
			named = true
			break
		}
	}
	if !named {
		return cachedCert{}, fmt.Errorf("certificate is not issued to %v", c.cfg.CertNames)
	}
	if !c.cfg.InsecureSkipChainVerify {
		inter := x509.NewCertPool()
		for _, x := range chain[1:] {
			inter.AddCert(x)
		}
		opts := x509.VerifyOptions{Roots: c.cfg.CertRoots, Intermediates: inter, CurrentTime: c.cfg.Now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
		if _, err := leaf.Verify(opts); err != nil {
			return cachedCert{}, fmt.Errorf("certificate chain: %v", err)
		}
	}
	return cachedCert{leaf: leaf, key: key}, nil
}

// FetchCert fetches, checks and caches the signing certificate at
// certURL, if the URL is allowed and the certificate not cached already.
// A URL that is not allowed is refused (psp.ErrBadSignature) without a
// request. Errors are temporary (psp.IsTemporary) when a retry may pass.
func (c *Channel) FetchCert(ctx context.Context, certURL string) error {
	if err := c.checkCertURL(certURL); err != nil {
		return fmt.Errorf("paypal certificate: %w: %v", psp.ErrBadSignature, err)
	}
	if _, ok, err := c.certs.lookup(certURL); ok || err != nil {
		return err
	}
	c.certs.mu.Lock()
	c.certs.inflight[certURL] = true
	c.certs.mu.Unlock()
	return c.certs.fetch(ctx, certURL)
}

// Prefetch makes sure the certificate a callback names is cached, so that
// ParseCallback can verify it: call it where I/O is allowed, before
// parsing. A callback without PAYPAL-CERT-URL is left to ParseCallback.
func (c *Channel) Prefetch(ctx context.Context, cb domain.Callback) error {
	v := cb.Headers.Values(headerCertURL)
	if len(v) != 1 {
		return nil
	}
	return c.FetchCert(ctx, v[0])
}
