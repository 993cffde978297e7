package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/worker"
)

// TestCutOffWorkersLateSuccessAfterAnotherWorkersDeadLetterIsDropped: a
// worker's connection to NATS stalls (a partition: nothing closed, nothing
// answered) while its call runs, for longer than the ack wait. JetStream
// gives the job to a second worker, whose call fails for good, and which
// dead-letters it. The first call then succeeds and the connection comes
// back: the late result must not be stored beside the record (one job,
// one outcome). The first worker knows its flushes went unanswered, so it
// looks for an outcome stored elsewhere before storing its own.
func TestCutOffWorkersLateSuccessAfterAnotherWorkersDeadLetterIsDropped(t *testing.T) {
	t.Parallel()
	h := &harness{t: t}
	h.nats = testenv.StartNATS(t, queue.Topology{AckWait: time.Second})
	h.creds = testenv.Credentials(t)
	h.emu = testenv.StartEmulator(t, h.creds, map[string]emulator.Behavior{fnEcho: {Latency: 2 * time.Second}})
	proxy := testenv.StartProxy(t, strings.TrimPrefix(h.nats.Server.ClientURL(), "nats://"))
	nc, err := queue.Connect(context.Background(), queue.ConnConfig{URLs: proxy.URL(), ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	h.conn = nc
	h.startWorker(worker.Config{ID: "cut-off", Concurrency: 1, ProgressInterval: 100 * time.Millisecond, AckWait: time.Second}, testenv.Signer(t, h.creds))

	h.publish("invoke.jobs.late", jobHeader(fnEcho, "late-1"), []byte("x"))
	testenv.Eventually(t, "the first call in flight", func() bool { return h.emu.Stats().InFlight == 1 })
	proxy.Stall()
	// The next call fails for good: the second worker dead-letters the job.
	if err := h.emu.SetBehavior(fnEcho, emulator.Behavior{Status: 404}); err != nil {
		t.Fatal(err)
	}
	other := &harness{t: t, nats: h.nats, creds: h.creds, emu: h.emu}
	other.startWorker(worker.Config{ID: "other", Concurrency: 1}, testenv.Signer(t, h.creds))
	testenv.Eventually(t, "the second worker's record", func() bool { return h.streamCount(h.nats.Topology.DLQStream) == 1 })
	testenv.Eventually(t, "the first call answered", func() bool { return h.emu.Stats().InFlight == 0 })

	proxy.Resume()
	testenv.Eventually(t, "the cut-off worker settled its job", func() bool { return h.w.InFlight() == 0 })
	if c := h.emu.Stats().Functions[fnEcho].Calls; c != 2 {
		t.Fatalf("%d calls, want 2 (one per worker)", c)
	}
	if n := h.streamCount(h.nats.Topology.ResultsStream); n != 0 {
		t.Fatalf("%d results stored beside the dead-letter record", n)
	}
	if n := h.streamCount(h.nats.Topology.DLQStream); n != 1 {
		t.Fatalf("%d records", n)
	}
}

// TestJobPulledIntoAStalledConnectionIsNotCharged: the server delivers a
// job into a pull the worker sent just before its connection stalled; the
// job reaches the worker only when the connection comes back, after its
// ack wait: it may have been given to another worker meanwhile, so the
// worker leaves it, and records that delivery as free. The redelivery
// then runs it as its first attempt, not its second.
func TestJobPulledIntoAStalledConnectionIsNotCharged(t *testing.T) {
	t.Parallel()
	h := &harness{t: t}
	h.nats = testenv.StartNATS(t, queue.Topology{AckWait: time.Second})
	h.creds = testenv.Credentials(t)
	h.emu = testenv.StartEmulator(t, h.creds, nil)
	proxy := testenv.StartProxy(t, strings.TrimPrefix(h.nats.Server.ClientURL(), "nats://"))
	nc, err := queue.Connect(context.Background(), queue.ConnConfig{URLs: proxy.URL(), ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	h.conn = nc
	h.startWorker(worker.Config{ID: "stalled", Concurrency: 1, ProgressInterval: 100 * time.Millisecond, AckWait: time.Second}, testenv.Signer(t, h.creds))
	testenv.Eventually(t, "the worker's pull waiting at the server", func() bool {
		info, err := h.nats.Consumer.Info(context.Background())
		return err == nil && info.NumWaiting > 0
	})

	proxy.Stall()
	h.publish("invoke.jobs.stalled", jobHeader(fnEcho, "stalled-1"), []byte("x"))
	testenv.Eventually(t, "the job delivered into the stalled pull", func() bool {
		info, err := h.nats.Consumer.Info(context.Background())
		return err == nil && info.Delivered.Stream > 0
	})
	time.Sleep(2 * time.Second) // past the ack wait
	proxy.Resume()

	h.waitSettled(1, 0)
	if c := h.emu.Stats().Functions[fnEcho].Calls; c != 1 {
		t.Fatalf("%d calls, want 1", c)
	}
	res := h.streamMsgs(h.nats.Topology.ResultsStream)[0]
	if a := res.Header.Get(job.HeaderAttempts); a != "1" {
		t.Fatalf("attempts %s, want 1: the delivery held across the stall was charged", a)
	}
}
