package dlqops_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/worker"
)

// harness is a real worker against the emulator, as in worker's own
// tests: jobs really fail into the dead-letter stream, and replayed jobs
// really run.
type harness struct {
	t    *testing.T
	nats *testenv.NATS
	emu  *emulator.Emulator
}

func newHarness(t *testing.T, fns map[string]emulator.Behavior) *harness {
	t.Helper()
	h := &harness{t: t, nats: testenv.StartNATS(t, queue.Topology{})}
	creds := testenv.Credentials(t)
	h.emu = testenv.StartEmulator(t, creds, fns)
	endpoints := invoke.StaticEndpoints{}
	for _, fn := range []string{fnA, fnB, fnC, fnD} {
		endpoints[fn] = h.emu.URL()
	}
	client, err := invoke.New(invoke.Config{Resolver: endpoints, Signer: testenv.Signer(t, creds), MaxConns: 16, ReadTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	log := zerolog.Nop()
	if os.Getenv("TEST_LOG") != "" {
		log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	}
	topo := h.nats.Topology
	state, err := queue.EnsureStateStore(ctxT(t), h.nats.JS, "", time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	results, err := h.nats.JS.Stream(ctxT(t), topo.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	cons := h.nats.Consumer
	w, err := worker.New(worker.Config{
		ID: "test-worker", Concurrency: 16, ResultsStream: topo.ResultsStream, ResultsPrefix: topo.ResultsPrefix,
		Retry:  worker.RetryConfig{MaxAttempts: 3, InitialInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond, Multiplier: 2, MaxElapsed: time.Minute, Randomization: 0.2},
		Logger: &log,
	}, worker.Deps{
		Consumer:      func(context.Context) (jetstream.Consumer, error) { return cons, nil },
		State:         state,
		StoredResults: results,
		Invoker:       client,
		Results:       h.nats.JS,
		DeadLetters:   dlq.NewWriter(h.nats.JS, topo.DLQStream, topo.DLQPrefix),
		Replies:       h.nats.Conn,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker.Run: %v", err)
			}
		case <-time.After(testenv.Wait):
			t.Errorf("worker did not stop")
		}
	})
	return h
}

// publish enqueues a job as a publisher would.
func (h *harness) publish(fn, id string, body []byte) {
	h.t.Helper()
	hdr := nats.Header{}
	hdr.Set(job.HeaderFunctionID, fn)
	hdr.Set(job.HeaderMsgID, id)
	hdr.Set(job.HeaderContentType, "application/octet-stream")
	if _, err := h.nats.JS.PublishMsg(ctxT(h.t), &nats.Msg{Subject: "invoke.jobs.test", Header: hdr, Data: body}); err != nil {
		h.t.Fatalf("publish: %v", err)
	}
}

func (h *harness) count(stream string) uint64 {
	h.t.Helper()
	return stateOf(h.t, h.nats, stream).Msgs
}

// waitSettled waits until the results and DLQ streams hold the given
// numbers of messages and every job was acknowledged.
func (h *harness) waitSettled(results, dead uint64) {
	h.t.Helper()
	topo := h.nats.Topology
	testenv.Eventually(h.t, fmt.Sprintf("%d results and %d dead letters", results, dead), func() bool {
		return h.count(topo.ResultsStream) >= results && h.count(topo.DLQStream) >= dead && h.count(topo.JobsStream) == 0
	})
	if got := h.count(topo.ResultsStream); got != results {
		h.t.Fatalf("results: %d, want %d", got, results)
	}
	if got := h.count(topo.DLQStream); got != dead {
		h.t.Fatalf("dead letters: %d, want %d", got, dead)
	}
}
