package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/paygate/paygate/internal/store"
)

// Roles: a viewer reads every page; an operator also acts (replays dead
// letters, and what later pages add).
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
)

// User is an account that may sign in: a name, a role and a bcrypt hash
// of the password.
type User struct {
	Name         string
	Role         string
	PasswordHash []byte
}

var userName = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// Users are the accounts that may sign in (Config.Users); their text is
// PAYGATE_CONSOLE_USERS's, as ParseUsers reads it.
type Users []User

// UnmarshalText reads name:role:bcrypt-hash entries (ParseUsers).
func (u *Users) UnmarshalText(b []byte) error {
	users, err := ParseUsers(string(b))
	if err != nil {
		return err
	}
	*u = users
	return nil
}

// ParseUsers reads PAYGATE_CONSOLE_USERS: comma-separated
// name:role:bcrypt-hash entries (role viewer or operator; the hash as
// `paygate console hash-password` or `htpasswd -nbBC 12 "" PASSWORD`
// print it). A bcrypt hash holds no comma or colon.
func ParseUsers(v string) ([]User, error) {
	var out []User
	seen := map[string]bool{}
	for _, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.SplitN(entry, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("console user %q: want name:role:bcrypt-hash", cut(entry, 20))
		}
		name, role, hash := parts[0], parts[1], strings.TrimPrefix(parts[2], ":")
		if !userName.MatchString(name) {
			return nil, fmt.Errorf("console user %q: a name is 1-64 of A-Z a-z 0-9 . _ @ -", cut(name, 20))
		}
		if seen[name] {
			return nil, fmt.Errorf("console user %q given twice", name)
		}
		if role != RoleViewer && role != RoleOperator {
			return nil, fmt.Errorf("console user %s: role %q: viewer or operator", name, role)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("console user %s: the password hash is not a bcrypt hash (paygate console hash-password makes one): %w", name, err)
		}
		seen[name] = true
		out = append(out, User{Name: name, Role: role, PasswordHash: []byte(hash)})
	}
	return out, nil
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// HashPassword returns the bcrypt hash of a password, for
// PAYGATE_CONSOLE_USERS.
func HashPassword(password string) (string, error) {
	if len(password) < 12 {
		return "", errors.New("a console password has at least 12 characters")
	}
	b, err := bcrypt.GenerateFromPassword([]byte(password), 12)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(b), nil
}

// dummyHash is compared against when the user does not exist, so that a
// login for an unknown name takes as long as one for a known name.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("paygate-console-no-such-user"), bcrypt.DefaultCost)

// checkPassword returns the user if name and password match.
func (c *Console) checkPassword(name, password string) (User, bool) {
	u, ok := c.users[name]
	hash := dummyHash
	if ok {
		hash = u.PasswordHash
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !ok {
		return User{}, false
	}
	return u, true
}

// limiter refuses logins for a name or from an address after maxFailures
// failures within failureWindow, until the window has passed.
type limiter struct {
	mu       sync.Mutex
	failures map[string][]time.Time
}

const (
	maxFailures   = 5
	failureWindow = 10 * time.Minute
)

func (l *limiter) blocked(now time.Time, keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		n := 0
		for _, t := range l.failures[k] {
			if now.Sub(t) < failureWindow {
				n++
			}
		}
		if n >= maxFailures {
			return true
		}
	}
	return false
}

func (l *limiter) fail(now time.Time, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 10000 { // bounded: forget the oldest story rather than grow
		clear(l.failures)
	}
	for _, k := range keys {
		kept := l.failures[k][:0]
		for _, t := range l.failures[k] {
			if now.Sub(t) < failureWindow {
				kept = append(kept, t)
			}
		}
		l.failures[k] = append(kept, now)
	}
}

func (l *limiter) reset(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.failures, k)
	}
}

// randomToken is 32 random bytes, URL-safe.
func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// Cookie names. The session cookie carries a random token whose SHA-256
// keys the session row; the login cookie carries the login form's CSRF
// token (double submit), before there is a session.
const (
	sessionCookie = "paygate_console"
	loginCookie   = "paygate_console_login"
)

func (c *Console) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: c.base + "/", MaxAge: maxAge, HttpOnly: true,
		Secure: !c.cfg.InsecureCookies, SameSite: http.SameSiteStrictMode}
}

type sessionKey struct{}

// session is the signed-in user of a request.
type session struct {
	store.ConsoleSession
	hash []byte
}

func sessionOf(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// currentSession reads the request's session, nil if none is live.
func (c *Console) currentSession(r *http.Request) (*session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	h := tokenHash(ck.Value)
	s, err := c.store.Session(r.Context(), h)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &session{ConsoleSession: s, hash: h}, nil
}

// remoteAddr is the client's address as the listener saw it (the admin
// listener is reached directly by operators, or through a proxy that the
// operator configures; X-Forwarded-For is not trusted).
func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func actorOf(r *http.Request, s *session) store.Actor {
	a := store.Actor{RemoteAddr: remoteAddr(r)}
	if s != nil {
		a.Name, a.Role = "console:"+s.Username, s.Role
	}
	return a
}
