package main

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
)

// TestWorkerRunRetriesATimeout: `worker run` with the default
// configuration retries an attempt that timed out (the function hangs the
// first time) instead of dead-lettering it as permanent.
func TestWorkerRunRetriesATimeout(t *testing.T) {
	t.Parallel()
	f := newFleet(t, emulator.Behavior{FailFirst: 1, Hang: true})
	ids := f.publishJobs(1, "to")
	f.start("timeout", "invoke.timeout.read=300ms", "retry.initial_interval=10ms", "retry.max_interval=50ms")
	testenv.Eventually(t, "the job to settle", func() bool {
		return f.count(f.nats.Topology.ResultsStream)+f.count(f.nats.Topology.DLQStream) == 1
	})
	if out := f.outcomes()[ids[0]]; len(out) != 1 || !strings.HasPrefix(out[0], f.nats.Topology.ResultsPrefix+".") {
		t.Fatalf("job %s ended as %v, want a result after a retry", ids[0], out)
	}
	m := lastResult(t, f, ids[0])
	if got := m.Header.Get(job.HeaderAttempts); got != "2" {
		t.Fatalf("result after %s attempts, want 2", got)
	}
}

// lastResult reads the result stored for jobID.
func lastResult(t *testing.T, f *fleet, jobID string) *jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	s, err := f.nats.JS.Stream(ctx, f.nats.Topology.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, f.nats.Topology.ResultsPrefix+"."+jobID)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
