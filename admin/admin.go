// Package admin owns the worker's admin HTTP endpoint: /healthz (the
// process is alive), /readyz (connected to NATS and bound to the consumer),
// /metrics (Prometheus text format, with invoke_worker_ready mirroring
// /readyz), /loglevel (read and change the log level) and, when enabled,
// /debug/pprof; and who may read them: with a bearer token, everything but
// /healthz and /readyz needs it, and /debug/pprof is served off loopback
// only with one.
package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/internal/loglevel"
)

// Config configures the admin endpoint.
type Config struct {
	// Listen is host:port. Required.
	Listen string
	// Ready returns nil when the process can take work, else why not.
	// Defaults to always ready.
	Ready func() error
	// Gatherer serves /metrics. Defaults to an empty registry.
	Gatherer prometheus.Gatherer
	// Pprof mounts net/http/pprof under /debug/pprof/. Off loopback it
	// needs Token (ErrPprofNeedsToken). Defaults to false.
	Pprof bool
	// LogLevel, when set, is served at /loglevel: GET reads it, PUT
	// changes it (loglevel.Level.Handler).
	LogLevel *loglevel.Level
	// Token, when set, is the bearer token every request but /healthz and
	// /readyz must carry (Authorization: Bearer <token>). Probes stay open
	// because orchestrators call them without credentials and they reveal
	// nothing but up or down.
	Token  string
	Logger zerolog.Logger
}

// ErrPprofNeedsToken refuses /debug/pprof on a non-loopback address
// without a token: profiles and the command line are for operators only.
var ErrPprofNeedsToken = errors.New("/debug/pprof on an address other than loopback needs a bearer token")

// OnLoopback reports whether listen (host:port) accepts connections from
// this machine only. An empty host listens on every interface.
func OnLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Server is a running admin endpoint.
type Server struct {
	srv  *http.Server
	addr net.Addr
	done chan struct{}
	once sync.Once
}

// Start listens and serves in a goroutine owned by the Server.
func Start(c Config) (*Server, error) {
	if c.Ready == nil {
		c.Ready = func() error { return nil }
	}
	if c.Gatherer == nil {
		c.Gatherer = prometheus.NewRegistry()
	}
	loopback := OnLoopback(c.Listen)
	if c.Pprof && c.Token == "" && !loopback {
		return nil, fmt.Errorf("admin endpoint on %s: %w", c.Listen, ErrPprofNeedsToken)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := c.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	// Readiness is a metric too, so an alert can see a worker that is up
	// but not taking jobs.
	own := prometheus.NewRegistry()
	own.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "invoke_worker_ready",
		Help: "1 when /readyz answers 200 (connected to NATS and consuming), else 0.",
	}, func() float64 {
		if c.Ready() != nil {
			return 0
		}
		return 1
	}))
	mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.Gatherers{c.Gatherer, own}, promhttp.HandlerOpts{}))
	if c.LogLevel != nil {
		mux.Handle("/loglevel", c.LogLevel.Handler(c.Logger))
	}
	if c.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	l, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin endpoint: listen on %s: %w (set http.listen to another address, or empty to turn it off)", c.Listen, err)
	}
	var handler http.Handler = mux
	if c.Token != "" {
		handler = requireToken(c.Token, mux)
	} else if !loopback {
		c.Logger.Warn().Str("addr", c.Listen).Msg("admin endpoint listens beyond loopback without a token: anyone who can reach it reads /metrics (set http.token_file)")
	}
	s := &Server{
		srv:  &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second},
		addr: l.Addr(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.Logger.Error().Err(err).Msg("admin endpoint stopped")
		}
	}()
	return s, nil
}

// requireToken lets /healthz and /readyz through and everything else only
// with the bearer token, compared in constant time.
func requireToken(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="invoke-worker admin"`)
			http.Error(w, "a bearer token is required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Addr is the address it listens on.
func (s *Server) Addr() net.Addr { return s.addr }

// Shutdown stops serving and waits for the serve goroutine.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() { err = s.srv.Shutdown(ctx) })
	<-s.done
	return err
}
