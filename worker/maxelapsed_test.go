package worker_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/worker"
)

// jobAge is how long ago the jobs of the max-elapsed tests were first
// stored: longer than the default cap (10m), so that a 0 taken for the
// default would show.
const jobAge = 11 * time.Minute

// agedJob is a job first stored jobAge ago, as a waiting copy of it
// carries (Invoke-Wait-Enqueued-At): the retry budget runs from then.
func agedJob(id string) nats.Header {
	h := jobHeader(fnEcho, id)
	h.Set(job.HeaderWaitEnqueuedAt, time.Now().Add(-jobAge).UTC().Format(time.RFC3339Nano))
	return h
}

// waitOne waits until the one job published has a result or a record.
func (h *harness) waitOne() {
	h.t.Helper()
	topo := h.nats.Topology
	testenv.Eventually(h.t, "the job to settle", func() bool {
		return h.streamCount(topo.ResultsStream)+h.streamCount(topo.DLQStream) == 1 && h.streamCount(topo.JobsStream) == 0
	})
}

// TestZeroMaxElapsedPutsNoCapOnRetries: Retry.MaxElapsed 0 (retry.max_elapsed:
// 0) is documented as no limit, so a job stored long ago is still retried
// until MaxAttempts.
func TestZeroMaxElapsedPutsNoCapOnRetries(t *testing.T) {
	t.Parallel()
	retry := fastRetry
	retry.MaxElapsed = 0
	h := newHarness(t, worker.Config{Retry: retry}, map[string]emulator.Behavior{fnEcho: {FailFirst: 2, FailStatus: 503}})
	h.publish("invoke.jobs.e", agedJob("no-cap"), []byte("x"))
	h.waitOne()
	if recs := h.streamMsgs(h.nats.Topology.DLQStream); len(recs) != 0 {
		t.Fatalf("dead-lettered: %s", recs[0].Header.Get(job.HeaderError))
	}
	if got := h.streamMsgs(h.nats.Topology.ResultsStream)[0].Header.Get(job.HeaderAttempts); got != "3" {
		t.Fatalf("result after %s attempts, want 3", got)
	}
}

// TestMaxElapsedCapsRetries is the control for the test above: the same job
// under a cap it has already passed is dead-lettered as exhausted after its
// first attempt.
func TestMaxElapsedCapsRetries(t *testing.T) {
	t.Parallel()
	retry := fastRetry
	retry.MaxElapsed = jobAge - time.Minute
	h := newHarness(t, worker.Config{Retry: retry}, map[string]emulator.Behavior{fnEcho: {FailFirst: 2, FailStatus: 503}})
	h.publish("invoke.jobs.e", agedJob("capped"), []byte("x"))
	h.waitOne()
	h.waitSettled(0, 1)
	rec := h.streamMsgs(h.nats.Topology.DLQStream)[0]
	if got := rec.Header.Get(job.HeaderDLQReason); got != string(dlq.ReasonExhausted) {
		t.Fatalf("dead-lettered as %q, want %q", got, dlq.ReasonExhausted)
	}
	if n := len(h.emu.Calls(fnEcho)); n != 1 {
		t.Fatalf("%d attempts, want 1", n)
	}
}
