package stripe

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

func harness(e *env) psptest.Harness {
	return psptest.Harness{
		Channel: e.ch,
		Kinds:   []domain.CallbackKind{domain.CallbackAsync},
		Sign: func(_ domain.CallbackKind, n domain.Notification, at time.Time) domain.Callback {
			return signedWebhook(n, at, testWhsec)
		},
		Forge: func(_ domain.CallbackKind, n domain.Notification, at time.Time) domain.Callback {
			return signedWebhook(n, at, "whsec_not_ours")
		},
		// The signed time is inside Stripe-Signature itself.
		SignatureKeys: map[domain.CallbackKind][]string{domain.CallbackAsync: {HeaderSignature}},
		Requests:      e.calls.Load,
	}
}

// TestContract: webhooks pass the shared suite. The buyer's return is
// not in it: Stripe does not sign it, so it states no amount (the suite's
// changed-amount case cannot apply) — TestReturn covers it.
func TestContract(t *testing.T) {
	psptest.Run(t, harness(newEnv(t, nil)))
}

// BenchmarkParseCallback: the Stripe-Signature check and parse of an
// event.
func BenchmarkParseCallback(b *testing.B) {
	psptest.Bench(b, harness(newEnv(b, nil)))
}

func TestContractTolerance(t *testing.T) {
	e := newEnv(t, nil, func(c *ChannelConfig) { c.Tolerance = 30 * time.Second })
	h := harness(e)
	h.Tolerance = 30 * time.Second
	psptest.Run(t, h)
}

// TestSecretRotation: while a webhook secret is rolled, Stripe signs
// with both (two v1 values); every configured secret verifies.
func TestSecretRotation(t *testing.T) {
	const oldSecret = "whsec_old"
	e := newEnv(t, nil, func(c *ChannelConfig) { c.WebhookSecrets = []string{testWhsec, oldSecret} })
	n := psptest.Notifications()[0]
	for _, s := range []string{testWhsec, oldSecret} {
		cb := signedWebhook(n, psptest.Epoch, s)
		cb.ReceivedAt = psptest.Epoch
		if _, err := e.ch.ParseCallback(cb); err != nil {
			t.Errorf("signed with %q: %v", s, err)
		}
	}
	// Both values in one header, as Stripe sends them during a roll.
	cb := signedWebhook(n, psptest.Epoch, "whsec_retired")
	both := signedWebhook(n, psptest.Epoch, oldSecret)
	_, v1, _ := strings.Cut(both.Headers.Get(HeaderSignature), ",")
	cb.Headers.Set(HeaderSignature, cb.Headers.Get(HeaderSignature)+","+v1)
	cb.ReceivedAt = psptest.Epoch
	if _, err := e.ch.ParseCallback(cb); err != nil {
		t.Errorf("two v1 values, the second ours: %v", err)
	}
	cb = signedWebhook(n, psptest.Epoch, "whsec_retired")
	cb.ReceivedAt = psptest.Epoch
	if _, err := e.ch.ParseCallback(cb); !errors.Is(err, psp.ErrBadSignature) {
		t.Errorf("retired secret: %v, want ErrBadSignature", err)
	}
}

func TestWebhookRefusals(t *testing.T) {
	e := newEnv(t, nil)
	n := psptest.Notifications()[0]
	base := signedWebhook(n, psptest.Epoch, testWhsec)
	base.ReceivedAt = psptest.Epoch
	cases := []struct {
		name string
		edit func(*domain.Callback)
		want error
	}{
		{"two signature headers", func(cb *domain.Callback) { cb.Headers.Add(HeaderSignature, cb.Headers.Get(HeaderSignature)) }, psp.ErrBadSignature},
		{"v0 only", func(cb *domain.Callback) {
			cb.Headers.Set(HeaderSignature, strings.Replace(cb.Headers.Get(HeaderSignature), "v1=", "v0=", 1))
		}, psp.ErrBadSignature},
		{"sync kind", func(cb *domain.Callback) { cb.Kind = domain.CallbackSync }, psp.ErrBadSignature},
		{"status probe", func(cb *domain.Callback) { cb.Kind = domain.CallbackStatusProbe }, psp.ErrMalformed},
	}
	for _, c := range cases {
		cb := psptest.Clone(base)
		c.edit(&cb)
		if got, err := e.ch.ParseCallback(cb); !errors.Is(err, c.want) || got != (domain.Notification{}) {
			t.Errorf("%s: %+v, %v; want %v", c.name, got, err, c.want)
		}
	}
	// A correctly signed live-mode event reaching a test-mode channel.
	live := []byte(`{"id":"evt_1","object":"event","type":"payment_intent.succeeded","created":1795600000,"livemode":true,"data":{"object":{}}}`)
	cb := domain.Callback{Kind: domain.CallbackAsync, Headers: http.Header{HeaderSignature: {sign(psptest.Epoch.Unix(), live, testWhsec)}}, Body: live, ReceivedAt: psptest.Epoch}
	if _, err := e.ch.ParseCallback(cb); !errors.Is(err, psp.ErrMalformed) {
		t.Errorf("live event on a test channel: %v, want ErrMalformed", err)
	}
}

// TestReturn: the success and cancel URLs Initiate gives Stripe come back
// verified; a changed code or page, or a made-up MAC, does not.
func TestReturn(t *testing.T) {
	e := newEnv(t, nil)
	succ, err := url.Parse(e.ch.returnURL("https://pay.example/v1/return/stripe_test", "T1", resultSuccess) + "&session_id=cs_test_1")
	if err != nil {
		t.Fatal(err)
	}
	cancel, _ := url.Parse(e.ch.returnURL("https://pay.example/v1/return/stripe_test", "T1", resultCancel))
	parse := func(q url.Values) (domain.Notification, error) {
		return e.ch.ParseCallback(domain.Callback{Kind: domain.CallbackSync, Method: http.MethodGet, Query: q, Headers: http.Header{}, ReceivedAt: psptest.Epoch})
	}
	n, err := parse(succ.Query())
	if err != nil || n.TransactionCode != "T1" || n.Status != domain.PSPSucceeded || !n.Amount.IsZero() {
		t.Errorf("success return: %+v, %v", n, err)
	}
	n, err = parse(cancel.Query())
	if err != nil || n.TransactionCode != "T1" || n.Status != domain.PSPPending {
		t.Errorf("cancel return: %+v, %v", n, err)
	}
	for name, edit := range map[string]func(url.Values){
		"other code":     func(q url.Values) { q.Set(qCode, "T2") },
		"success→cancel": func(q url.Values) { q.Set(qResult, resultCancel) },
		"no MAC":         func(q url.Values) { q.Del(qMAC) },
		"two codes":      func(q url.Values) { q.Add(qCode, "T1") },
		"MAC of another channel key": func(q url.Values) {
			other := newEnv(t, nil, func(c *ChannelConfig) { c.SecretKey = "sk_test_other" })
			u, _ := url.Parse(other.ch.returnURL("https://x/", "T1", resultSuccess))
			q.Set(qMAC, u.Query().Get(qMAC))
		},
	} {
		q := succ.Query()
		edit(q)
		if n, err := parse(q); !errors.Is(err, psp.ErrBadSignature) {
			t.Errorf("%s: %+v, %v; want ErrBadSignature", name, n, err)
		}
	}
}
