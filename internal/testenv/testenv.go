// Package testenv starts what integration tests talk to: a fresh embedded
// nats-server with JetStream (own port, own temp store) with the contract's
// streams and consumer, OCI API-key credentials on disk, and the emulator
// verifying every signature. Everything is stopped by t.Cleanup.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/internal/devcreds"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/queue"
)

// Wait bounds every wait in tests: long enough for a loaded CI machine
// running -race, short enough that a hang fails instead of stalling.
const Wait = 60 * time.Second

// NATS is a running server, a client connection and the provisioned
// topology.
type NATS struct {
	Server   *queue.Embedded
	Conn     *nats.Conn
	JS       jetstream.JetStream
	Topology queue.Topology
	Consumer jetstream.Consumer

	config queue.EmbeddedConfig // what Server was started with
}

// Option changes how StartNATS starts the server.
type Option func(*queue.EmbeddedConfig)

// MaxPayload sets the server's max_payload (the default is 8 MiB; a
// stock nats-server has 1 MiB), for claim-check tests.
func MaxPayload(n int32) Option {
	return func(c *queue.EmbeddedConfig) { c.MaxPayload = n }
}

// MaxPending sets the bytes the server buffers for a slow client before it
// disconnects it (the default is 64 MiB).
func MaxPending(n int64) Option {
	return func(c *queue.EmbeddedConfig) { c.MaxPending = n }
}

// StartNATS starts an embedded server on a free loopback port with its
// store in a temp dir, connects, and creates the streams and consumer.
// topo may be zero for the contract's defaults.
func StartNATS(t testing.TB, topo queue.Topology, opts ...Option) *NATS {
	t.Helper()
	ec := queue.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}
	for _, o := range opts {
		o(&ec)
	}
	srv, err := queue.StartEmbedded(ec)
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := queue.Connect(context.Background(), queue.ConnConfig{URLs: srv.ClientURL(), ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	topo = topo.WithDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	cons, err := queue.Ensure(ctx, js, topo)
	if err != nil {
		t.Fatalf("ensure topology: %v", err)
	}
	return &NATS{Server: srv, Conn: nc, JS: js, Topology: topo, Consumer: cons, config: ec}
}

// Restart shuts the server down (if it is running) and starts a new one on
// the same port and store, as after a restart of the process; Conn
// reconnects to it. Fault tests use it.
func (n *NATS) Restart(t testing.TB) {
	t.Helper()
	u, err := url.Parse(n.Server.ClientURL())
	if err != nil {
		t.Fatalf("restart nats: %v", err)
	}
	n.Server.Shutdown()
	ec := n.config
	ec.Listen = u.Host
	srv, err := queue.StartEmbedded(ec)
	if err != nil {
		t.Fatalf("restart nats: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	n.Server = srv
}

// testKey is generated once per test binary: RSA 2048 generation is slow
// under -race and the key's secrecy does not matter here.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// Key returns the shared test key pair.
func Key() *rsa.PrivateKey { return testKey() }

// Credentials writes an OCI config and key files into a temp dir.
func Credentials(t testing.TB) devcreds.Credentials {
	t.Helper()
	dir := t.TempDir()
	if err := devcreds.Write(dir, Key()); err != nil {
		t.Fatal(err)
	}
	c, err := devcreds.Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Signer loads the credentials through the production path (an OCI config
// file, profile DEFAULT).
func Signer(t testing.TB, c devcreds.Credentials) invoke.Signer {
	t.Helper()
	s, err := invoke.NewOCISigner(invoke.OCIAuth{Mode: invoke.AuthAPIKey, ConfigFile: c.ConfigFile, Profile: devcreds.Profile})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// StartEmulator starts an emulator that verifies signatures made with c and
// records calls.
func StartEmulator(t testing.TB, c devcreds.Credentials, functions map[string]emulator.Behavior) *emulator.Emulator {
	t.Helper()
	emu, err := emulator.New(emulator.Config{
		PublicKey:   c.PublicKey,
		KeyID:       c.KeyID(),
		Functions:   functions,
		RecordCalls: true,
		Seed:        1,
		Logger:      zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = emu.Close(ctx)
	})
	return emu
}

// Eventually polls cond every 10ms until it holds or Wait passes.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// StreamCount is the number of messages stream holds now.
func StreamCount(t testing.TB, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
