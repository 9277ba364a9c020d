package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/signature"
	"github.com/paygate/paygate/schemas"
)

// send is a raw request to base+path with exactly headers h.
func send(t *testing.T, method, base, path string, body []byte, h http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, base, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// Every route is served on its own kind of listener and on no other:
// PSPs and browsers cannot reach the mall's API or the operators'
// endpoints, nor the mall the operators'.
func TestRoutesAreOnTheirOwnListener(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	listeners := map[string]string{"public": e.app.IngressURL, "api": e.app.APIURL, "admin": e.app.AdminURL}
	if len(map[string]bool{e.app.IngressURL: true, e.app.APIURL: true, e.app.AdminURL: true}) != 3 {
		t.Fatalf("three listeners on %v", listeners)
	}
	body := payBody("LST-1", 100)
	routes := []struct {
		on, method, path string
		body             []byte
		h                http.Header
	}{
		{"public", "POST", "/v1/callbacks/sim", []byte(`{}`), nil},
		{"public", "GET", "/v1/return/sim", nil, nil},
		{"public", "POST", "/v1/return/sim", nil, nil},
		{"api", "POST", "/v1/payments", body, signed(body, time.Now(), app.DevMallSecret)},
		{"api", "GET", "/v1/payments/LST-1", nil, signedRead("GET", "/v1/payments/LST-1", time.Now(), app.DevMallSecret)},
		{"api", "POST", "/v1/refunds", []byte(`{}`), nil},
		{"api", "GET", "/v1/refunds/R1", nil, signedRead("GET", "/v1/refunds/R1", time.Now(), app.DevMallSecret)},
		{"api", "GET", "/v1/recon/runs", nil, signedRead("GET", "/v1/recon/runs", time.Now(), app.DevMallSecret)},
		{"admin", "GET", "/metrics", nil, nil},
		{"admin", "GET", "/healthz", nil, nil},
		{"admin", "GET", "/readyz", nil, nil},
		{"admin", "GET", "/debug/pprof/", nil, nil},
	}
	for _, r := range routes {
		for name, base := range listeners {
			code, b := send(t, r.method, base, r.path, r.body, r.h)
			switch {
			case name == r.on && code == http.StatusNotFound && !strings.Contains(string(b), "no order") && !strings.Contains(string(b), "no refund"):
				t.Errorf("%s %s on the %s listener: 404 %s, want it served", r.method, r.path, name, b)
			case name != r.on && code != http.StatusNotFound:
				t.Errorf("%s %s on the %s listener: %d %.100s, want 404 (it is the %s listener's)", r.method, r.path, name, code, b, r.on)
			}
		}
	}
}

// Reads of the API need the mall's (or finance's) v2 signature, which
// binds the method, the path and the query: unsigned, replayed, cross-
// path and stale reads are refused, and a refusal reads nothing.
func TestReadsAreSigned(t *testing.T) {
	t.Parallel()
	e := start(t, app.All)
	e.requestPayment("SR-1", 700)
	e.requestPayment("SR-2", 800)
	get := func(target string, h http.Header) (int, []byte) {
		t.Helper()
		return send(t, http.MethodGet, e.app.APIURL, target, nil, h)
	}
	now := time.Now()
	post := payBody("SR-3", 900)
	postHeaders := signed(post, now, app.DevMallSecret)
	postHeaders.Set("Idempotency-Key", "sr-3")
	if code, b := send(t, http.MethodPost, e.app.APIURL, "/v1/payments", post, postHeaders); code != http.StatusAccepted {
		t.Fatalf("signed post: %d %s", code, b)
	}
	v1Read := signed(nil, now, app.DevMallSecret) // v1 over the empty body: fits every read
	v1Read.Del("Content-Type")
	other := signedRead("GET", "/v1/payments/SR-1", now, app.DevMallSecret)
	other.Set("X-Paygate-Key-Id", "someone")
	withQuery := signedRead("GET", "/v1/payments/SR-1?wait=1s", now, app.DevMallSecret)
	for _, c := range []struct {
		name, target string
		h            http.Header
		detail       string
	}{
		{"unsigned", "/v1/payments/SR-1", nil, "unknown or missing X-Paygate-Key-Id"},
		{"a key id and no signature", "/v1/payments/SR-1", http.Header{"X-Paygate-Key-Id": {app.DevMallKeyID}}, "signature or timestamp missing"},
		{"an unknown key id", "/v1/payments/SR-1", other, "unknown or missing X-Paygate-Key-Id"},
		{"signed v1, over the empty body", "/v1/payments/SR-1", v1Read, "GET needs a v2 signature"},
		{"a post's signature replayed on a read", "/v1/payments/SR-3", postHeaders, "GET needs a v2 signature"},
		{"another order's signature", "/v1/payments/SR-2", signedRead("GET", "/v1/payments/SR-1", now, app.DevMallSecret), "no v2 value matches GET /v1/payments/SR-2"},
		{"a payment's signature on a refund", "/v1/refunds/SR-1", signedRead("GET", "/v1/payments/SR-1", now, app.DevMallSecret), "no v2 value matches"},
		{"the query dropped", "/v1/payments/SR-1", withQuery, "no v2 value matches"},
		{"a query added", "/v1/payments/SR-1?wait=1s", signedRead("GET", "/v1/payments/SR-1", now, app.DevMallSecret), "no v2 value matches"},
		{"the recon runs of another channel", "/v1/recon/runs?channel=sim2", signedRead("GET", "/v1/recon/runs?channel=sim", now, app.DevMallSecret), "no v2 value matches"},
		{"another secret", "/v1/payments/SR-1", signedRead("GET", "/v1/payments/SR-1", now, "not-the-secret"), "no v2 value matches"},
		{"stale", "/v1/payments/SR-1", signedRead("GET", "/v1/payments/SR-1", now.Add(-301*time.Second), app.DevMallSecret), "timestamp too old"},
		{"from the future", "/v1/payments/SR-1", signedRead("GET", "/v1/payments/SR-1", now.Add(330*time.Second), app.DevMallSecret), "timestamp too far in the future"},
	} {
		code, b := get(c.target, c.h)
		var er schemas.Error
		_ = json.Unmarshal(b, &er)
		if code != http.StatusUnauthorized || er.Error != "unauthenticated" || !strings.Contains(er.Detail, c.detail) {
			t.Errorf("%s: %d %s, want 401 saying %q", c.name, code, b, c.detail)
		}
		if bytes.Contains(b, []byte("transaction_code")) || bytes.Contains(b, []byte("pay_url")) {
			t.Errorf("%s: the refusal shows the order: %s", c.name, b)
		}
	}
	// Signed for what they read, they read it; a v2 signature is good on
	// a post too.
	for _, target := range []string{"/v1/payments/SR-1", "/v1/payments/SR-1?wait=1s", "/v1/refunds/none", "/v1/recon/runs?channel=sim"} {
		code, b := get(target, signedRead("GET", target, time.Now(), app.DevMallSecret))
		if code != http.StatusOK && code != http.StatusNotFound {
			t.Errorf("signed read of %s: %d %s", target, code, b)
		}
	}
	code, b := get("/v1/payments/SR-1", signedRead("GET", "/v1/payments/SR-1", time.Now(), app.DevMallSecret))
	var p schemas.Payment
	if code != http.StatusOK || json.Unmarshal(b, &p) != nil || p.OrderID != "SR-1" || p.Amount != 700 {
		t.Errorf("signed read: %d %s", code, b)
	}
	v2post := payBody("SR-4", 1000)
	h := http.Header{"Content-Type": {"application/json"}}
	for k, v := range signedRead("POST", "/v1/payments", time.Now(), app.DevMallSecret) {
		h[k] = v
	}
	ts := h.Get("X-Paygate-Timestamp")
	h.Set("X-Paygate-Signature", signature.RequestHeader([]byte(app.DevMallSecret), mustInt(t, ts), signature.Request{Method: "POST", Target: "/v1/payments", Body: v2post}))
	if code, b := send(t, http.MethodPost, e.app.APIURL, "/v1/payments", v2post, h); code != http.StatusAccepted {
		t.Errorf("a post signed v2: %d %s", code, b)
	}
	if code, b := send(t, http.MethodPost, e.app.APIURL, "/v1/payments", payBody("SR-5", 1000), h); code != http.StatusUnauthorized {
		t.Errorf("a post's v2 signature on another body: %d %s", code, b)
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Configured on one address, as paygate dev may be, the three kinds share
// one listener, and every route is served there.
func TestListenersOnOneAddress(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := testConfig(t)
	cfg.HTTPAddr, cfg.APIAddr, cfg.AdminAddr = addr, addr, addr
	e := startWith(t, cfg, app.All)
	if e.app.IngressURL != "http://"+addr || e.app.APIURL != e.app.IngressURL || e.app.AdminURL != e.app.IngressURL {
		t.Fatalf("public %s, API %s, admin %s; want all on %s", e.app.IngressURL, e.app.APIURL, e.app.AdminURL, addr)
	}
	a := e.requestPayment("ONE-1", 500) // POST and signed GET on the API's routes
	if loc := e.pay(a.PayURL, map[string][]string{"result": {"success"}}); loc != "https://shop.example/ok" {
		t.Errorf("the browser's return lands on %q", loc) // the public routes
	}
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		if code, b := send(t, http.MethodGet, e.app.IngressURL, path, nil, nil); code != http.StatusOK {
			t.Errorf("%s on the shared listener: %d %.100s", path, code, b)
		}
	}
	if code, _ := send(t, http.MethodGet, e.app.IngressURL, "/v1/payments/ONE-1", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("an unsigned read on the shared listener: %d, want 401", code)
	}
}
