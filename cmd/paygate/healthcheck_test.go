package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// healthcheck succeeds on a 2xx answer only, says why otherwise, and
// refuses a call it cannot make as a usage error (exit 2).
func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			_, _ = io.WriteString(w, "ok\n")
		case "/readyz":
			http.Error(w, "database: connection refused", http.StatusServiceUnavailable)
		case "/slow":
			time.Sleep(time.Second)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	if err := runHealthcheck(ctx, []string{srv.URL + "/healthz"}, io.Discard); err != nil {
		t.Errorf("healthy: %v", err)
	}
	if err := runHealthcheck(ctx, []string{srv.URL + "/readyz"}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "database") {
		t.Errorf("503: %v; want the status and the answer", err)
	}
	if err := runHealthcheck(ctx, []string{"-timeout", "100ms", srv.URL + "/slow"}, io.Discard); err == nil {
		t.Error("an answer slower than -timeout: no error")
	}
	down := srv.URL
	srv.Close()
	if err := runHealthcheck(ctx, []string{down + "/healthz"}, io.Discard); err == nil {
		t.Error("nothing listening: no error")
	}
	for _, args := range [][]string{nil, {"a", "b"}, {"localhost:9100/healthz"}, {"ftp://x/healthz"}, {"-timeout", "0s", "http://x/healthz"}, {"-nope"}} {
		var u usageError
		if err := runHealthcheck(ctx, args, io.Discard); !errors.As(err, &u) {
			t.Errorf("%q: %v; want a usage error", args, err)
		}
	}
}
