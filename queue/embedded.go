package queue

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// EmbeddedConfig configures the in-process nats-server.
type EmbeddedConfig struct {
	// Listen is the loopback host:port clients reach it on. Port 0 or -1
	// picks a free port (tests). Defaults to EmbeddedListenDefault.
	Listen string
	// StoreDir holds JetStream's data. Required: without it the server
	// shares a directory under os.TempDir with every other instance.
	StoreDir string
	// MaxPayload is the largest message, in bytes. Defaults to
	// MaxPayloadDefault.
	MaxPayload int32
	// MaxPending is how many bytes the server buffers for one client that
	// reads too slowly before it disconnects it as a slow consumer.
	// Defaults to the server's own 64 MiB.
	MaxPending int64
	// Logger receives the server's own log lines at matching levels.
	// Defaults to zerolog.Nop().
	Logger zerolog.Logger
}

// Defaults of EmbeddedConfig.
const (
	EmbeddedListenDefault = "127.0.0.1:4222"
	// MaxPayloadDefault lets a 6 MiB function body and its headers through.
	MaxPayloadDefault = 8 << 20
)

// ErrAddrInUse means the embedded server's port is taken, most often by
// another worker or nats-server on the same machine.
var ErrAddrInUse = errors.New("address already in use")

// Embedded is a running in-process nats-server with JetStream.
type Embedded struct {
	srv  *server.Server
	opts *server.Options
}

// StartEmbedded starts the server and waits until it accepts clients.
func StartEmbedded(c EmbeddedConfig) (*Embedded, error) {
	if c.StoreDir == "" {
		return nil, errors.New("embedded nats: StoreDir is required")
	}
	c.Listen = cmp.Or(c.Listen, EmbeddedListenDefault)
	c.MaxPayload = cmp.Or(c.MaxPayload, MaxPayloadDefault)
	host, portStr, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen address %q: %w", c.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if port > 0 {
		// The server only logs a failed listen and never becomes ready; a
		// trial listen turns that into an error that says what happened.
		l, err := net.Listen("tcp", net.JoinHostPort(host, portStr))
		if err != nil {
			return nil, fmt.Errorf("embedded nats: cannot listen on %s (%w): another NATS server or worker is probably running there; set nats.url to use it, or nats.embedded.listen to move", c.Listen, ErrAddrInUse)
		}
		_ = l.Close()
	}
	storeDir, err := filepath.Abs(c.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: store dir: %w", err)
	}
	if err := os.MkdirAll(storeDir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded nats: store dir: %w", err)
	}
	opts := &server.Options{
		ServerName:            "invoke-worker-embedded",
		Host:                  host,
		Port:                  port,
		JetStream:             true,
		StoreDir:              storeDir,
		MaxPayload:            c.MaxPayload,
		MaxPending:            c.MaxPending,
		NoSigs:                true, // signals belong to the worker, not to the library
		NoLog:                 false,
		DisableShortFirstPing: true,
	}
	return startServer(opts, c.Logger)
}

func startServer(opts *server.Options, log zerolog.Logger) (*Embedded, error) {
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.SetLoggerV2(serverLogger{log: log.With().Str("component", "nats-server").Logger()}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 15s on %s:%d", opts.Host, opts.Port)
	}
	return &Embedded{srv: srv, opts: opts}, nil
}

// Server returns the running server, for in-process connections.
func (e *Embedded) Server() *server.Server { return e.srv }

// ClientURL is the nats:// URL clients connect to.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// StoreDir is where JetStream keeps its data.
func (e *Embedded) StoreDir() string { return e.opts.StoreDir }

// Shutdown stops the server and waits for it.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// serverLogger adapts zerolog to the server's logger. Fatalf must not exit:
// the embedding process decides that.
type serverLogger struct{ log zerolog.Logger }

func (l serverLogger) Noticef(format string, v ...any) { l.log.Debug().Msgf(format, v...) }
func (l serverLogger) Warnf(format string, v ...any)   { l.log.Warn().Msgf(format, v...) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l serverLogger) Errorf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l serverLogger) Debugf(format string, v ...any)  { l.log.Trace().Msgf(format, v...) }
func (l serverLogger) Tracef(format string, v ...any)  { l.log.Trace().Msgf(format, v...) }
