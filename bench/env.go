package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/queue"
)

// natsEnv is one measurement's NATS: a fresh embedded server, or fresh
// streams on Config.NATSURL, plus the load generator's connection.
type natsEnv struct {
	url        string
	topo       queue.Topology
	state      string // attempt-state bucket
	jobSubject string

	srv      *queue.Embedded // nil on an external server
	storeDir string
	// mark is in the name of every stream this measurement creates on an
	// external server (the streams, and those behind its buckets).
	mark string

	nc *nats.Conn
	js jetstream.JetStream // asynchronous publishing, bounded

	mu     sync.Mutex
	pubErr error // first failed publish acknowledgement
}

// startNATS prepares a fresh NATS for one measurement and connects the
// load generator to it. The streams are created by the measurement.
func (r *runner) startNATS(ctx context.Context) (_ *natsEnv, err error) {
	n := &natsEnv{topo: r.cfg.Topology, state: r.cfg.StateBucket}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	if r.cfg.NATSURL == "" {
		if n.storeDir, err = os.MkdirTemp("", "worker-bench-nats-"); err != nil {
			return nil, fmt.Errorf("nats store: %w", err)
		}
		n.srv, err = queue.StartEmbedded(queue.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: n.storeDir})
		if err != nil {
			return nil, err
		}
		n.url = n.srv.ClientURL()
	} else {
		// Unique names, so that nothing of a deployment on the same server
		// is touched, and no two measurements share a stream.
		r.seq++
		tag := fmt.Sprintf("%s_%d", r.tag, r.seq)
		n.mark = "BENCH_" + tag + "_"
		t := &n.topo
		t.JobsStream = n.mark + "JOBS"
		t.ResultsStream = n.mark + "RESULTS"
		t.DLQStream = n.mark + "DLQ"
		t.JobBodies = n.mark + "JOB_BODIES"
		t.ResultBodies = n.mark + "RESULT_BODIES"
		t.JobsSubjects = []string{"bench." + tag + ".jobs.>"}
		t.ResultsPrefix = "bench." + tag + ".results"
		t.DLQPrefix = "bench." + tag + ".dlq"
		t.Durable = "bench-" + tag
		n.state = n.mark + "ATTEMPTS"
		n.url = r.cfg.NATSURL
	}
	n.topo = n.topo.WithDefaults()
	n.jobSubject = concreteSubject(n.topo.JobsSubjects[0])

	if n.nc, err = r.cfg.Connect(ctx, n.url); err != nil {
		return nil, err
	}
	n.js, err = jetstream.New(n.nc,
		jetstream.WithPublishAsyncMaxPending(r.cfg.maxPending()),
		// Without a timeout a lost acknowledgement would never resolve.
		jetstream.WithPublishAsyncTimeout(30*time.Second),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) { n.failed(err) }),
	)
	if err != nil {
		return nil, err
	}
	return n, nil
}

// concreteSubject turns a stream's subject pattern into a subject to
// publish on: invoke.jobs.> becomes invoke.jobs.bench.
func concreteSubject(pattern string) string {
	toks := strings.Split(pattern, ".")
	for i, t := range toks {
		if t == "*" || t == ">" {
			toks[i] = "bench"
		}
	}
	return strings.Join(toks, ".")
}

func (n *natsEnv) failed(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.pubErr == nil {
		n.pubErr = err
	}
}

func (n *natsEnv) publishError() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pubErr
}

// close deletes what the measurement created on an external server, or
// stops the embedded one and deletes its store.
func (n *natsEnv) close() {
	if n.mark != "" && n.js != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Found by name rather than listed: buckets live in streams of
		// their own (KV_<bucket>, OBJ_<bucket>).
		var ours []string
		names := n.js.StreamNames(ctx)
		for name := range names.Name() {
			if strings.Contains(name, n.mark) {
				ours = append(ours, name)
			}
		}
		for _, name := range ours {
			_ = n.js.DeleteStream(ctx, name)
		}
	}
	if n.nc != nil {
		n.nc.Close()
	}
	if n.srv != nil {
		n.srv.Shutdown()
	}
	if n.storeDir != "" {
		_ = os.RemoveAll(n.storeDir)
	}
}

// startEmulator starts a fresh emulator on a loopback port: verifying
// signatures made with the run's key when signed, recording every call
// so the function's own time can be taken out of the latency.
func (r *runner) startEmulator(signed bool) (*emulator.Emulator, error) {
	ec := emulator.Config{
		Default:     emulator.Behavior{Latency: r.cfg.Latency, ResponseSize: r.cfg.ResponseSize},
		RecordCalls: true,
		Logger:      zerolog.Nop(),
	}
	if signed {
		if r.creds.PublicKey == nil {
			return nil, errors.New("bench: signed emulator without credentials")
		}
		ec.PublicKey, ec.KeyID = r.creds.PublicKey, r.creds.KeyID()
	}
	emu, err := emulator.New(ec)
	if err != nil {
		return nil, err
	}
	if _, err := emu.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return emu, nil
}

func closeEmulator(emu *emulator.Emulator) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = emu.Close(ctx)
}

// randomTag names one run's streams on an external server.
func randomTag() string {
	const alphabet = "ABCDEFGHJKMNPQRSTVWXYZ0123456789"
	var b [6]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}
