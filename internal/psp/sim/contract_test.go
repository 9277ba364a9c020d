package sim

import (
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/domain"
	"github.com/paygate/paygate/internal/psp"
	"github.com/paygate/paygate/internal/psp/psptest"
)

func harness(e *env) psptest.Harness {
	return psptest.Harness{
		Channel: e.ch,
		Kinds:   []domain.CallbackKind{domain.CallbackAsync, domain.CallbackSync},
		Sign: func(k domain.CallbackKind, n domain.Notification, at time.Time) domain.Callback {
			return signedCallback(k, n, at, testSecret)
		},
		Forge: func(k domain.CallbackKind, n domain.Notification, at time.Time) domain.Callback {
			return signedCallback(k, n, at, "not-"+testSecret)
		},
		SignatureKeys: map[domain.CallbackKind][]string{domain.CallbackAsync: {headerSignature}, domain.CallbackSync: {qSignature}},
		TimestampKeys: map[domain.CallbackKind][]string{domain.CallbackAsync: {headerTimestamp}, domain.CallbackSync: {qTimestamp}},
		Want: func(k domain.CallbackKind, n domain.Notification) domain.Notification {
			if k == domain.CallbackSync { // a sync return has no event id and no time of its own
				n.EventID, n.OccurredAt = "", time.Time{}
			}
			return n
		},
		Requests: e.calls.Load,
	}
}

func TestContract(t *testing.T) {
	psptest.Run(t, harness(newEnv(t, ServerConfig{})))
}

// TestContractTolerance runs the suite against a channel configured with
// a shorter tolerance, so that the channel's own setting is what is
// enforced.
func TestContractTolerance(t *testing.T) {
	e := newEnv(t, ServerConfig{}, func(c *ChannelConfig) { c.Tolerance = 30 * time.Second })
	h := harness(e)
	h.Tolerance = 30 * time.Second
	psptest.Run(t, h)
}

// TestKeyRotation: the first secret signs API calls; every secret
// verifies callbacks, so callbacks signed before a rotation still pass.
func TestKeyRotation(t *testing.T) {
	const oldSecret = "old-secret-m1"
	e := newEnv(t, ServerConfig{}, func(c *ChannelConfig) { c.Secrets = []string{testSecret, oldSecret} })
	// The server knows only the new secret: API calls must be signed with it.
	if _, err := e.ch.Query(t.Context(), "T-rotation"); err != nil {
		t.Fatalf("Query signed with the first secret: %v", err)
	}
	n := psptest.Notifications()[0]
	for _, secret := range []string{testSecret, oldSecret} {
		for _, kind := range []domain.CallbackKind{domain.CallbackAsync, domain.CallbackSync} {
			cb := signedCallback(kind, n, psptest.Epoch, secret)
			cb.ReceivedAt = psptest.Epoch
			if _, err := e.ch.ParseCallback(cb); err != nil {
				t.Errorf("%s callback signed with %q: %v", kind, secret, err)
			}
		}
	}
	cb := signedCallback(domain.CallbackAsync, n, psptest.Epoch, "retired-secret")
	cb.ReceivedAt = psptest.Epoch
	if _, err := e.ch.ParseCallback(cb); !errors.Is(err, psp.ErrBadSignature) {
		t.Errorf("callback signed with a secret not configured: %v, want ErrBadSignature", err)
	}
}

func TestParseCallbackRefusesOtherKinds(t *testing.T) {
	e := newEnv(t, ServerConfig{})
	cb := signedCallback(domain.CallbackAsync, psptest.Notifications()[0], psptest.Epoch, testSecret)
	cb.ReceivedAt = psptest.Epoch
	cb.Kind = domain.CallbackStatusProbe
	if _, err := e.ch.ParseCallback(cb); !errors.Is(err, psp.ErrMalformed) {
		t.Errorf("status_probe callback: %v, want ErrMalformed", err)
	}
}
