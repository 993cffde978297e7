package main

import (
	"context"
	"strings"
	"testing"
	"time"

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

// TestZeroMaxAgesKeepForever: streams.results_max_age and
// streams.dlq_max_age are documented as "0 is unlimited": `worker run`
// with them at 0 sets the streams and their claim-check buckets to keep
// everything, rather than to a default age.
func TestZeroMaxAgesKeepForever(t *testing.T) {
	t.Parallel()
	f := newFleet(t, emulator.Behavior{})
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	topo := f.nats.Topology
	// Start from limited ages, so that only the worker can have cleared them.
	for _, name := range []string{topo.ResultsStream, topo.DLQStream} {
		s, err := f.nats.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		sc := s.CachedInfo().Config
		sc.MaxAge = time.Hour
		if _, err := f.nats.JS.UpdateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	f.start("ages", "streams.results_max_age=0", "streams.dlq_max_age=0")
	for _, name := range []string{topo.ResultsStream, topo.DLQStream} {
		s, err := f.nats.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if age := s.CachedInfo().Config.MaxAge; age != 0 {
			t.Errorf("stream %s: max age %s, want 0 (unlimited)", name, age)
		}
	}
	for _, bucket := range []string{topo.JobBodies, topo.ResultBodies} {
		os, err := f.nats.JS.ObjectStore(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ttl := st.TTL(); ttl != 0 {
			t.Errorf("bucket %s: TTL %s, want 0 (unlimited)", bucket, ttl)
		}
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
