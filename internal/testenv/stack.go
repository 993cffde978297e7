package testenv

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/internal/devcreds"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/worker"
)

// StackConfig configures a Stack. The zero value is a usable stack whose
// functions all echo.
type StackConfig struct {
	// Functions sets emulator behaviours by function id; every other
	// function echoes. Every function id is routed to the emulator.
	Functions map[string]emulator.Behavior
	// MaxPayload is the server's max_payload; 0 keeps the embedded
	// server's 8 MiB.
	MaxPayload int32
	// Concurrency is the worker's. Defaults to 16.
	Concurrency int
	// Logger receives the worker's lines. Defaults to zerolog.Nop().
	Logger *zerolog.Logger
	// Unsigned turns request signing (and the emulator's verification)
	// off, for tests about volume rather than signatures: RSA under -race
	// is slow.
	Unsigned bool
}

// Stack is everything a publisher talks to, in one process: an embedded
// NATS server with the contract's topology, the emulator verifying every
// signature, and a worker signing with throwaway credentials, wired as
// `worker dev` wires them (claim check included).
type Stack struct {
	Server   *queue.Embedded
	Conn     *nats.Conn
	JS       jetstream.JetStream
	Topology queue.Topology
	Emulator *emulator.Emulator
	Worker   *worker.Worker

	closers []func()
}

// anyFunction routes every function to one endpoint.
type anyFunction string

func (a anyFunction) Endpoint(context.Context, string) (string, error) { return string(a), nil }

// RunStack starts a Stack; Close stops it. Tests use StartStack; examples,
// which have no *testing.T, use this.
func RunStack(cfg StackConfig) (st *Stack, err error) {
	st = &Stack{}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	dir, err := os.MkdirTemp("", "invoke-stack-")
	if err != nil {
		return nil, err
	}
	st.closers = append(st.closers, func() { _ = os.RemoveAll(dir) })

	// Servers.
	st.Server, err = queue.StartEmbedded(queue.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: dir + "/nats", MaxPayload: cfg.MaxPayload})
	if err != nil {
		return nil, err
	}
	st.closers = append(st.closers, st.Server.Shutdown)
	if err := devcreds.Write(dir+"/creds", Key()); err != nil {
		return nil, err
	}
	creds, err := devcreds.Ensure(dir + "/creds")
	if err != nil {
		return nil, err
	}
	ec := emulator.Config{PublicKey: creds.PublicKey, KeyID: creds.KeyID(), Functions: cfg.Functions, RecordCalls: true, Seed: 1}
	if cfg.Unsigned {
		ec.PublicKey, ec.KeyID = nil, ""
	}
	st.Emulator, err = emulator.New(ec)
	if err != nil {
		return nil, err
	}
	if _, err := st.Emulator.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	st.closers = append(st.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = st.Emulator.Close(ctx)
	})

	// Topology.
	st.Conn, err = queue.Connect(context.Background(), queue.ConnConfig{URLs: st.Server.ClientURL(), ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	st.closers = append(st.closers, st.Conn.Close)
	if st.JS, err = jetstream.New(st.Conn); err != nil {
		return nil, err
	}
	st.Topology = queue.Topology{}.WithDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	cons, err := queue.Ensure(ctx, st.JS, st.Topology)
	if err != nil {
		return nil, err
	}
	state, err := queue.EnsureStateStore(ctx, st.JS, "", time.Hour, 1)
	if err != nil {
		return nil, err
	}
	results, err := st.JS.Stream(ctx, st.Topology.ResultsStream)
	if err != nil {
		return nil, err
	}

	// Worker.
	var signer invoke.Signer
	if !cfg.Unsigned {
		if signer, err = invoke.NewOCISigner(invoke.OCIAuth{Mode: invoke.AuthAPIKey, ConfigFile: creds.ConfigFile, Profile: devcreds.Profile}); err != nil {
			return nil, err
		}
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 16
	}
	ic, err := invoke.New(invoke.Config{Resolver: anyFunction(st.Emulator.URL()), Signer: signer, MaxConns: cfg.Concurrency, ReadTimeout: 20 * time.Second})
	if err != nil {
		return nil, err
	}
	st.closers = append(st.closers, ic.CloseIdleConnections)
	maxMsg := st.Conn.MaxPayload()
	if m := int64(st.Topology.MaxMsgSize); m < maxMsg {
		maxMsg = m
	}
	st.Worker, err = worker.New(worker.Config{
		ID:            "stack-worker",
		Concurrency:   cfg.Concurrency,
		ResultsStream: st.Topology.ResultsStream,
		ResultsPrefix: st.Topology.ResultsPrefix,
		MaxMessage:    maxMsg,
		Retry:         worker.RetryConfig{MaxAttempts: 3, InitialInterval: 20 * time.Millisecond, MaxInterval: 200 * time.Millisecond, Multiplier: 2, MaxElapsed: time.Minute, Randomization: 0.5},
		Logger:        cfg.Logger,
	}, worker.Deps{
		Consumer:      func(context.Context) (jetstream.Consumer, error) { return cons, nil },
		State:         state,
		StoredResults: results,
		Invoker:       ic,
		Results:       st.JS,
		DeadLetters:   dlq.NewWriter(st.JS, st.Topology.DLQStream, st.Topology.DLQPrefix),
		Replies:       st.Conn,
		Waits:         st.JS,
		Bodies:        queue.NewBodies(st.JS, st.Topology),
	})
	if err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Worker.Run(wctx) }()
	st.closers = append(st.closers, func() {
		stop()
		<-done
	})
	deadline := time.Now().Add(Wait)
	for !st.Worker.Running() {
		if time.Now().After(deadline) {
			return nil, errors.New("testenv: worker not running")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return st, nil
}

// StartStack starts a Stack stopped by t.Cleanup.
func StartStack(t testing.TB, cfg StackConfig) *Stack {
	t.Helper()
	st, err := RunStack(cfg)
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(st.Close)
	return st
}

// Close stops everything, last started first. It may be called twice.
func (st *Stack) Close() {
	for i := len(st.closers) - 1; i >= 0; i-- {
		st.closers[i]()
	}
	st.closers = nil
}
