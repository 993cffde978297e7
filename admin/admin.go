// Package admin owns the worker's admin HTTP endpoint: /healthz (the
// process is alive), /readyz (connected to NATS and bound to the consumer),
// /metrics (Prometheus text format, with invoke_worker_ready mirroring
// /readyz), /loglevel (read and change the log level) and, when enabled,
// /debug/pprof.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
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
	// Pprof mounts net/http/pprof under /debug/pprof/. Defaults to false.
	Pprof bool
	// LogLevel, when set, is served at /loglevel: GET reads it, PUT
	// changes it (loglevel.Level.Handler).
	LogLevel *loglevel.Level
	Logger   zerolog.Logger
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
	s := &Server{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
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

// Addr is the address it listens on.
func (s *Server) Addr() net.Addr { return s.addr }

// Shutdown stops serving and waits for the serve goroutine.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() { err = s.srv.Shutdown(ctx) })
	<-s.done
	return err
}
