package paypal

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
)

// PayPal publishes no private key its webhooks could be signed with, so
// the tests make their own: signKey plays PayPal's signing key behind a
// self-signed certificate served over TLS by an httptest server (whose
// host the tests allow-list), otherKey a forger. The published vectors
// with PayPal's own certificate are in vectors_test.go.
var (
	keysOnce           sync.Once
	signKey, otherKey  *rsa.PrivateKey
	signCertPEM        []byte
	wrongNameCertPEM   []byte
	testWebhookIDs     = []string{"8PT597110X687430LKGECATA", "1JE4291016473214C"}
	testCertValidity   = [2]time.Time{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)}
	sandboxCertDNSName = "messageverificationcerts.sandbox.paypal.com"
)

func keys() {
	keysOnce.Do(func() {
		var err error
		if signKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if otherKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		signCertPEM = selfSigned(signKey, sandboxCertDNSName, testCertValidity[0], testCertValidity[1])
		wrongNameCertPEM = selfSigned(signKey, "messageverificationcerts.evil.example", testCertValidity[0], testCertValidity[1])
	})
}

func selfSigned(k *rsa.PrivateKey, name string, from, to time.Time) []byte {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name, Organization: []string{"PayPal, Inc."}},
		DNSNames: []string{name}, NotBefore: from, NotAfter: to,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// counting wraps a transport and counts its requests, by URL.
type counting struct {
	n    atomic.Int64
	base http.RoundTripper
	mu   sync.Mutex
	urls []string
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	c.mu.Lock()
	c.urls = append(c.urls, r.URL.String())
	c.mu.Unlock()
	if c.base == nil {
		return nil, netErr("no network in this test")
	}
	return c.base.RoundTrip(r)
}

type netErr string

func (e netErr) Error() string { return string(e) }

// certServer serves signing certificates over TLS under CertPathPrefix.
type certServer struct {
	srv   *httptest.Server
	mu    sync.Mutex
	certs map[string][]byte // path → PEM
	hits  atomic.Int64
}

func newCertServer(t testing.TB) *certServer {
	keys()
	cs := &certServer{certs: map[string][]byte{
		CertPathPrefix + "CERT-360caa42-test": signCertPEM,
		CertPathPrefix + "CERT-wrong-name":    wrongNameCertPEM,
		CertPathPrefix + "CERT-redirect":      nil,
	}}
	cs.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.hits.Add(1)
		if r.URL.Path == CertPathPrefix+"CERT-redirect" {
			http.Redirect(w, r, "https://evil.example/cert.pem", http.StatusFound)
			return
		}
		cs.mu.Lock()
		b, ok := cs.certs[r.URL.Path]
		cs.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"name":"RESOURCE_NOT_FOUND","message":"The specified resource does not exist."}`))
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(b)
	}))
	t.Cleanup(cs.srv.Close)
	return cs
}

func (cs *certServer) host() string { return cs.srv.Listener.Addr().String() }

func (cs *certServer) url(name string) string { return "https://" + cs.host() + CertPathPrefix + name }

// testEnv is a channel with its certificate server and request counter.
type testEnv struct {
	ch      *Channel
	cnt     *counting
	cs      *certServer
	certURL string
}

// newEnv is a channel of the test app whose API is at apiURL ("" for
// none), allowing the certificate server's host; the signing certificate
// is fetched (once) unless edit says otherwise.
func newEnv(t testing.TB, apiURL string, prefetch bool, edit ...func(*ChannelConfig)) *testEnv {
	t.Helper()
	keys()
	cs := newCertServer(t)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(signCertPEM)
	roots.AppendCertsFromPEM(wrongNameCertPEM)
	cnt := &counting{base: cs.srv.Client().Transport}
	if apiURL == "" {
		apiURL = "http://127.0.0.1:1"
	}
	cfg := ChannelConfig{
		BaseURL: apiURL, ClientID: "AeA1QIZXiflr1_-r0U2UbWTziOWX1GRQer5jkUq4ZfWT5qwb6qQRPq7jDtv57TL4POEEezGLdutcxnkJ",
		ClientSecret: "ECYYrrSHdKfk_Q0EdvzdGkzj58a66kKaUQ5dZAEv4HvvtDId2_DpSuYDB088BZxGuMji7G4OFUnPog6p",
		WebhookIDs:   testWebhookIDs, CertHosts: []string{cs.host()}, CertRoots: roots, Transport: cnt,
	}
	for _, f := range edit {
		f(&cfg)
	}
	ch, err := NewChannel(cfg)
	if err != nil {
		t.Fatalf("NewChannel: %v", err)
	}
	e := &testEnv{ch: ch, cnt: cnt, cs: cs, certURL: cs.url("CERT-360caa42-test")}
	if prefetch {
		if err := ch.FetchCert(t.Context(), e.certURL); err != nil {
			t.Fatalf("FetchCert: %v", err)
		}
	}
	return e
}

// signHeaders sets the PAYPAL-* headers over body as PayPal would.
func signHeaders(h http.Header, key *rsa.PrivateKey, certURL, webhookID, transmissionID string, at time.Time, body []byte) {
	ts := at.UTC().Format(time.RFC3339)
	d := sha256.Sum256(signedMessage(transmissionID, ts, webhookID, body))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	if err != nil {
		panic(err)
	}
	h.Set(headerTransmissionID, transmissionID)
	h.Set(headerTransmissionTime, ts)
	h.Set(headerTransmissionSig, base64.StdEncoding.EncodeToString(sig))
	h.Set(headerCertURL, certURL)
	h.Set(headerAuthAlgo, authAlgo)
}

// captureEventFor is the PAYMENT.CAPTURE.* webhook PayPal would send
// stating n, shaped as PayPal's sample (vectors_test.go, sampleCaptureCompleted)
// with the custom_id, invoice_id and order id an Orders v2 capture carries.
func captureEventFor(n domain.Notification) []byte {
	typ, status := eventCaptureCompleted, captureCompleted
	switch n.Status {
	case domain.PSPFailed:
		typ, status = eventCaptureDenied, captureDeclined
	case domain.PSPPending:
		typ, status = eventCapturePending, capturePending
	}
	capID := "27M47624FP291604U"
	amt := map[string]string{"currency_code": n.Amount.Currency().Code(), "value": n.Amount.Decimal()}
	body, _ := json.Marshal(map[string]any{
		"id": n.EventID, "event_version": "1.0", "create_time": n.OccurredAt.Add(9 * time.Second).UTC().Format(time.RFC3339Nano),
		"resource_type": "capture", "resource_version": "2.0", "event_type": typ,
		"summary": "Payment completed for " + n.Amount.String(),
		"resource": map[string]any{
			"id": capID, "status": status, "amount": amt, "final_capture": true,
			"custom_id": n.TransactionCode, "invoice_id": n.TransactionCode,
			"seller_protection":  map[string]any{"status": "ELIGIBLE", "dispute_categories": []string{"ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"}},
			"supplementary_data": map[string]any{"related_ids": map[string]string{"order_id": n.PSPReference}},
			"create_time":        n.OccurredAt.UTC().Format(time.RFC3339), "update_time": n.OccurredAt.UTC().Format(time.RFC3339),
			"links": []map[string]string{{"href": "https://api.paypal.com/v2/payments/captures/" + capID, "rel": "self", "method": "GET"}},
		},
	})
	return body
}

// callbackFor is the webhook stating n, signed at at with key under the
// first webhook id.
func callbackFor(e *testEnv, n domain.Notification, at time.Time, key *rsa.PrivateKey) domain.Callback {
	body := captureEventFor(n)
	h := http.Header{"Content-Type": {"application/json"}}
	signHeaders(h, key, e.certURL, testWebhookIDs[0], "tx-"+n.EventID, at, body)
	return domain.Callback{Kind: domain.CallbackAsync, Method: http.MethodPost, Path: "/v1/callbacks/paypal", Headers: h, Body: body, Query: url.Values{}}
}
