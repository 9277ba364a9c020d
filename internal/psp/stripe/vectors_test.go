package stripe

import (
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
)

// Stripe's published signature vector: stripe/stripe-dotnet
// src/StripeTests/Services/Events/EventUtilityTest.cs signs
// src/StripeTests/Resources/event_test_signature.json (copied byte for
// byte into testdata/) with secret "webhook_secret" at t=1533204620:
//
//	(echo -n "1533204620." && cat event_test_signature.json) | openssl sha256 -hmac "webhook_secret"
const (
	vectorSecret = "webhook_secret"
	vectorTime   = 1533204620
	vectorHeader = "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef"
)

func vectorPayload(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/event_test_signature.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPublishedVector(t *testing.T) {
	payload := vectorPayload(t)
	secrets := [][]byte{[]byte(vectorSecret)}
	at := time.Unix(vectorTime, 0)
	tol := 300 * time.Second
	cases := []struct {
		name    string
		payload []byte
		header  string
		secrets [][]byte
		at      time.Time
		want    error
	}{
		// EventUtilityTest.ConstructEvent: verified 100 s after signing.
		{"vector", payload, vectorHeader, secrets, at.Add(100 * time.Second), nil},
		{"vector, received at the signed second", payload, vectorHeader, secrets, at, nil},
		{"vector plus an unreadable v1 (ignored)", payload, vectorHeader + ",v1=invalid", secrets, at, nil},
		{"vector among rotated secrets", payload, vectorHeader, [][]byte{[]byte("whsec_new"), []byte(vectorSecret)}, at, nil},
		{"v0 alone is never trusted", payload, "t=1533204620,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef", secrets, at, ErrInvalidHeader},
		{"wrong secret", payload, vectorHeader, [][]byte{[]byte("webhook_secreT")}, at, ErrNoValidSignature},
		{"payload without its trailing newline", payload[:len(payload)-1], vectorHeader, secrets, at, ErrNoValidSignature},
		{"CRLF line ends", []byte(strings.ReplaceAll(string(payload), "\n", "\r\n")), vectorHeader, secrets, at, ErrNoValidSignature},
		{"another timestamp", payload, strings.Replace(vectorHeader, "t=1533204620", "t=1533204621", 1), secrets, at, ErrNoValidSignature},
		// EventUtilityTest: tolerance exceeded, both ways.
		{"301 s after", payload, vectorHeader, secrets, at.Add(301 * time.Second), ErrTooOld},
		{"301 s before", payload, vectorHeader, secrets, at.Add(-301 * time.Second), ErrTooNew},
		// stripe-go: time.Since(signed) > tolerance, to the nanosecond.
		{"exactly 300 s after", payload, vectorHeader, secrets, at.Add(300 * time.Second), nil},
		{"300 s and 1 ns after", payload, vectorHeader, secrets, at.Add(300*time.Second + 1), ErrTooOld},
		{"300.5 s after", payload, vectorHeader, secrets, at.Add(300*time.Second + 500*time.Millisecond), ErrTooOld},
		{"exactly 300 s before", payload, vectorHeader, secrets, at.Add(-300 * time.Second), nil},
		{"299.5 s before", payload, vectorHeader, secrets, at.Add(-299*time.Second - 500*time.Millisecond), nil},
		{"300.5 s before", payload, vectorHeader, secrets, at.Add(-300*time.Second - 500*time.Millisecond), ErrTooNew},
		{"centuries after", payload, vectorHeader, secrets, time.Unix(1<<40, 0), ErrTooOld},
		{"signed at the far end of int64", payload, "t=9223372036854775807,v1=" + strings.Split(sign(1<<63-1, payload, vectorSecret), "v1=")[1], secrets, at, ErrTooNew},
		{"signed at the epoch, received today", payload, "t=0,v1=" + strings.Split(sign(0, payload, vectorSecret), "v1=")[1], secrets, at, ErrTooOld},
		// stripe-go webhook/client_test.go TestTokenNew's malformed headers.
		{"no header", payload, "", secrets, at, ErrNotSigned},
		{"v1,t=1", payload, "v1,t=1", secrets, at, ErrInvalidHeader},
		{"t=", payload, "t=", secrets, at, ErrInvalidHeader},
		{"two timestamps", payload, "t=1," + vectorHeader, secrets, at, ErrInvalidHeader},
		{"signed timestamp", payload, strings.Replace(vectorHeader, "t=", "t=+", 1), secrets, at, ErrInvalidHeader},
	}
	for _, c := range cases {
		_, err := VerifySignature(c.payload, c.header, c.secrets, c.at, tol)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// TestPublishedVectorThroughParseCallback: the vector's event verifies
// through the channel, which then declines to act on a customer.created
// event (stored, changes nothing).
func TestPublishedVectorThroughParseCallback(t *testing.T) {
	e := newEnv(t, nil, func(c *ChannelConfig) { c.WebhookSecrets = []string{"whsec_other", vectorSecret} })
	cb := domain.Callback{Kind: domain.CallbackAsync, Method: http.MethodPost, Headers: http.Header{HeaderSignature: {vectorHeader}},
		Body: vectorPayload(t), ReceivedAt: time.Unix(vectorTime+100, 0)}
	_, err := e.ch.ParseCallback(cb)
	if !errors.Is(err, psp.ErrMalformed) || !strings.Contains(err.Error(), `"customer.created" is not one paygate acts on`) {
		t.Errorf("ParseCallback: %v, want ErrMalformed for the event type", err)
	}
	cb.ReceivedAt = time.Unix(vectorTime+301, 0)
	if _, err := e.ch.ParseCallback(cb); !errors.Is(err, psp.ErrStale) {
		t.Errorf("301 s late: %v, want ErrStale", err)
	}
}
