package worker_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/internal/devcreds"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/worker"
)

// Function ids used across tests.
const (
	fnEcho   = "ocid1.fnfunc.oc1.phx.aaaaaaaaecho"
	fnOther  = "ocid1.fnfunc.oc1.phx.aaaaaaaaother"
	fnBroken = "ocid1.fnfunc.oc1.phx.aaaaaaaabroken"
)

type harness struct {
	t     *testing.T
	nats  *testenv.NATS
	creds devcreds.Credentials
	emu   *emulator.Emulator
	w     *worker.Worker
	stop  context.CancelFunc
	done  chan error

	readTimeout time.Duration
	// source, when set, is the worker's ConsumerSource instead of the
	// consumer StartNATS created.
	source worker.ConsumerSource
	// sampler wires the consumer-state gauges.
	sampler bool
	// conn, when set, is the worker's own connection to NATS (through a
	// testenv.Proxy, say) instead of the shared one; the worker then
	// watches its reach (Deps.Reach).
	conn *nats.Conn
}

// consumerSampler reads the consumer's state for the worker's gauges.
type consumerSampler struct{ n *testenv.NATS }

func (s consumerSampler) Sample(ctx context.Context) (worker.Sample, error) {
	cs, err := queue.ReadConsumerState(ctx, s.n.JS, s.n.Topology)
	return worker.Sample(cs), err
}

// fastRetry keeps retry tests quick without changing what they assert.
var fastRetry = worker.RetryConfig{
	MaxAttempts:     8,
	InitialInterval: 20 * time.Millisecond,
	MaxInterval:     200 * time.Millisecond,
	Multiplier:      2,
	MaxElapsed:      time.Minute,
	Randomization:   0.5,
}

func testLogger(t *testing.T) *zerolog.Logger {
	if os.Getenv("TEST_LOG") == "" {
		l := zerolog.Nop()
		return &l
	}
	l := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	return &l
}

// newHarness starts NATS, the emulator (verifying signatures) and a
// worker signing with the test credentials; functions not in fns echo.
func newHarness(t *testing.T, cfg worker.Config, fns map[string]emulator.Behavior) *harness {
	t.Helper()
	h := &harness{t: t}
	h.nats = testenv.StartNATS(t, queue.Topology{})
	h.creds = testenv.Credentials(t)
	h.emu = testenv.StartEmulator(t, h.creds, fns)
	h.startWorker(cfg, testenv.Signer(t, h.creds))
	return h
}

func (h *harness) startWorker(cfg worker.Config, signer invoke.Signer) {
	t := h.t
	t.Helper()
	endpoints := invoke.StaticEndpoints{}
	for _, fn := range []string{fnEcho, fnOther, fnBroken} {
		endpoints[fn] = h.emu.URL()
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 16
	}
	readTimeout := h.readTimeout
	if readTimeout == 0 {
		readTimeout = 10 * time.Second
	}
	client, err := invoke.New(invoke.Config{Resolver: endpoints, Signer: signer, MaxConns: cfg.Concurrency, ReadTimeout: readTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	if cfg.ID == "" {
		cfg.ID = "test-worker"
	}
	if cfg.Retry == (worker.RetryConfig{}) {
		cfg.Retry = fastRetry
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	topo := h.nats.Topology
	cfg.ResultsStream, cfg.ResultsPrefix = topo.ResultsStream, topo.ResultsPrefix
	nc, js := h.nats.Conn, h.nats.JS
	cons := h.nats.Consumer
	var reach worker.Reach
	if h.conn != nil {
		nc, reach = h.conn, h.conn
		if js, err = jetstream.New(nc); err != nil {
			t.Fatal(err)
		}
		if cons, err = js.Consumer(context.Background(), topo.JobsStream, topo.Durable); err != nil {
			t.Fatal(err)
		}
	}
	state, err := queue.EnsureStateStore(context.Background(), js, "", time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	source := h.source
	if source == nil {
		source = func(context.Context) (jetstream.Consumer, error) { return cons, nil }
	}
	var sampler worker.Sampler
	if h.sampler {
		sampler = consumerSampler{h.nats}
	}
	w, err := worker.New(cfg, worker.Deps{
		Sampler:       sampler,
		Consumer:      source,
		State:         state,
		StoredResults: stream(t, js, topo.ResultsStream),
		StoredRecords: stream(t, js, topo.DLQStream),
		Invoker:       client,
		Results:       js,
		DeadLetters:   dlq.NewWriter(js, topo.DLQStream, topo.DLQPrefix),
		Replies:       nc,
		Waits:         js,
		Reach:         reach,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.w, h.stop, h.done = w, cancel, make(chan error, 1)
	go func() { h.done <- w.Run(ctx) }()
	t.Cleanup(func() { h.stopWorker() })
}

// stopWorker stops the worker and waits for Run to return.
func (h *harness) stopWorker() {
	if h.stop == nil {
		return
	}
	h.stop()
	h.stop = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("worker.Run: %v", err)
		}
	case <-time.After(testenv.Wait):
		h.t.Errorf("worker did not stop")
	}
}

// publish enqueues a raw job and waits for JetStream's ack.
func (h *harness) publish(subject string, hdr nats.Header, body []byte) *jetstream.PubAck {
	h.t.Helper()
	msg := &nats.Msg{Subject: subject, Header: hdr, Data: body}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	ack, err := h.nats.JS.PublishMsg(ctx, msg)
	if err != nil {
		h.t.Fatalf("publish: %v", err)
	}
	return ack
}

func jobHeader(fn, id string) nats.Header {
	hdr := nats.Header{}
	if fn != "" {
		hdr.Set(job.HeaderFunctionID, fn)
	}
	if id != "" {
		hdr.Set(job.HeaderMsgID, id)
	}
	return hdr
}

// streamMsgs reads every message of a stream without changing it.
func (h *harness) streamMsgs(stream string) []*jetstream.RawStreamMsg {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	s, err := h.nats.JS.Stream(ctx, stream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (h *harness) streamCount(stream string) uint64 {
	h.t.Helper()
	return testenv.StreamCount(h.t, h.nats.JS, stream)
}

// waitCounts waits until the results and DLQ streams hold the given numbers
// of records and the jobs stream is empty (every job acknowledged).
func (h *harness) waitSettled(results, dead uint64) {
	h.t.Helper()
	topo := h.nats.Topology
	testenv.Eventually(h.t, fmt.Sprintf("%d results and %d dead letters", results, dead), func() bool {
		return h.streamCount(topo.ResultsStream) >= results && h.streamCount(topo.DLQStream) >= dead && h.streamCount(topo.JobsStream) == 0
	})
	if got := h.streamCount(topo.ResultsStream); got != results {
		h.t.Fatalf("results: %d, want %d", got, results)
	}
	if got := h.streamCount(topo.DLQStream); got != dead {
		h.t.Fatalf("dead letters: %d, want %d", got, dead)
	}
}

// replaceWorker stops the harness's worker and starts one whose invoke
// client uses readTimeout.
func (h *harness) replaceWorker(cfg worker.Config, readTimeout time.Duration) {
	h.stopWorker()
	h.readTimeout = readTimeout
	h.startWorker(cfg, testenv.Signer(h.t, h.creds))
}

func stream(t *testing.T, js jetstream.JetStream, name string) jetstream.Stream {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
