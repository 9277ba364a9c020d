package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/paygate/paygate/internal/ingress"
)

// The three kinds of listener (DESIGN.md §13):
//
//   - public (Config.HTTPAddr): what PSPs and buyers' browsers reach,
//     /v1/callbacks/{channel} and /v1/return/{channel};
//   - API (Config.APIAddr): what the mall and finance reach, every
//     request signed: /v1/payments, /v1/refunds, /v1/recon/runs;
//   - admin (Config.AdminAddr): what operators and Prometheus reach,
//     /metrics, /healthz, /readyz, /debug/pprof/, and what HandleAdmin
//     adds (the console).
//
// The public and API ones are the ingress's; every role may have an
// admin one. Kinds configured on one address share one listener (port 0
// excepted: each such address is a port of its own).

// endpoint is one listening socket and the kinds of listener it serves.
type endpoint struct {
	addr  string
	ln    net.Listener
	kinds []ingress.Listener // the ingress's kinds on it
	admin bool
	ops   bool // served by serveOps, which closes it last
}

func (e *endpoint) url() string { return "http://" + e.ln.Addr().String() }

func (e *endpoint) name() string {
	var names []string
	for _, k := range e.kinds {
		names = append(names, k.String())
	}
	if e.admin {
		names = append(names, "admin")
	}
	return strings.Join(names, "+")
}

// listen opens the listeners the roles need, sharing a socket between
// kinds configured on one address, and sets IngressURL, APIURL and
// AdminURL. It runs before the channels are built: with port 0 the
// public address, which PSPs are told, is only known now.
func (a *App) listen(cfg Config, roles Roles) error {
	open := func(addr string) (*endpoint, error) {
		if !strings.HasSuffix(addr, ":0") {
			for _, e := range a.endpoints {
				if e.addr == addr {
					return e, nil
				}
			}
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		e := &endpoint{addr: addr, ln: ln}
		a.endpoints = append(a.endpoints, e)
		a.stops = append(a.stops, func() error {
			if e.ops {
				return nil // closed by its server's shutdown, last
			}
			return ln.Close()
		})
		return e, nil
	}
	var pub *endpoint
	if roles.Ingress {
		var err error
		pub, err = open(cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("ingress: listen %s (public): %w", cfg.HTTPAddr, err)
		}
		pub.kinds = append(pub.kinds, ingress.Public)
		a.IngressURL = pub.url()
		api := pub // unset in code: on the public listener
		if cfg.APIAddr != "" {
			if api, err = open(cfg.APIAddr); err != nil {
				return fmt.Errorf("ingress: listen %s (API): %w", cfg.APIAddr, err)
			}
		}
		api.kinds = append(api.kinds, ingress.API)
		a.APIURL = api.url()
	}
	var admin *endpoint
	switch {
	case cfg.AdminAddr != "":
		var err error
		if admin, err = open(cfg.AdminAddr); err != nil {
			return fmt.Errorf("admin: listen %s: %w", cfg.AdminAddr, err)
		}
	case pub != nil:
		admin = pub // unset in code: on the ingress's public address, as before the split
	default:
		return nil // no admin listener
	}
	admin.admin = true
	a.AdminURL = admin.url()
	return nil
}

// serveListeners serves every endpoint: the ingress's kinds through srv
// (nil without the ingress role), the admin routes through the admin
// mux. An endpoint with any of the ingress's kinds stops with the
// ingress, when the App's context ends; an admin one of its own serves
// until everything else has stopped (serveOps).
func (a *App) serveListeners(srv *ingress.Server) {
	for _, e := range a.endpoints {
		switch {
		case len(e.kinds) > 0 && e.admin:
			a.serve(e.name(), e.ln, a.adminOr(srv.Handler(e.kinds...)))
		case len(e.kinds) > 0:
			a.serve(e.name(), e.ln, srv.Handler(e.kinds...))
		default:
			e.ops = true
			a.serveOps(e.name(), e.ln, a.admin)
		}
	}
}

// HandleAdmin adds h to the admin listener under pattern (an
// http.ServeMux pattern, e.g. "GET /console/"), whichever roles the
// process runs; it is safe to call while the listener serves. The
// admin listener is for operators only: what is mounted there must
// authenticate its users itself, or rely on the network that reaches it.
func (a *App) HandleAdmin(pattern string, h http.Handler) { a.admin.Handle(pattern, h) }

// adminOr serves the admin routes on a listener shared with the
// ingress's kinds, and next the rest.
func (a *App) adminOr(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, pattern := a.admin.Handler(r); pattern != "" {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// adminMux serves /metrics, /healthz, /readyz and Go's runtime profiles.
// /readyz pings PostgreSQL only for the roles that cannot work without
// it: a process that runs only the ingress takes requests into Kafka
// while the database is down, and must stay in its Service meanwhile.
func (a *App) adminMux(roles Roles) *http.ServeMux {
	needsDB := roles.Payinit || roles.Callbacks || roles.Relay || roles.Sweep || roles.Refunds || roles.Recon
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{Registry: a.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if needsDB && a.Store != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := a.Store.Ping(ctx); err != nil {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "database: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	pprofRoutes(mux)
	return mux
}

// PprofHandler serves Go's runtime profiles (net/http/pprof) under
// /debug/pprof/: for PAYGATE_PPROF_ADDR and the harness's -pprof. The
// admin listener serves them too.
func PprofHandler() http.Handler {
	mux := http.NewServeMux()
	pprofRoutes(mux)
	return mux
}

func pprofRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
}
