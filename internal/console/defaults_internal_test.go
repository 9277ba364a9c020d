package console

import (
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/paygate/paygate/internal/settings"
)

// The default New fills in is the one the tag gives
// PAYGATE_CONSOLE_SESSION_TTL.
func TestDefaultsAreTheTags(t *testing.T) {
	t.Parallel()
	var c Config
	c.defaults()
	if err := settings.CheckDefaults(c); err != nil {
		t.Error(err)
	}
}

// PAYGATE_CONSOLE_USERS is read as ParseUsers reads it.
func TestUsersText(t *testing.T) {
	t.Parallel()
	h, err := bcrypt.GenerateFromPassword([]byte("a-long-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	var u Users
	if err := u.UnmarshalText([]byte("ana:viewer:" + string(h))); err != nil || len(u) != 1 || u[0].Name != "ana" || u[0].Role != RoleViewer {
		t.Errorf("%+v, %v", u, err)
	}
	if err := u.UnmarshalText([]byte("ana:viewer:secret")); err == nil {
		t.Error("a password instead of its hash: accepted")
	}
}
