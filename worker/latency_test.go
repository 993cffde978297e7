package worker_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/worker"
)

// TestJobLatencyRunsFromTheFirstStore: a job that failed once and waited
// as a copy for its retry is timed from when the original was stored, not
// from its copy: the latency covers at least the retry's pause.
func TestJobLatencyRunsFromTheFirstStore(t *testing.T) {
	t.Parallel()
	const pause = time.Second
	h := &harness{t: t}
	h.nats = testenv.StartNATS(t, queue.Topology{})
	h.creds = testenv.Credentials(t)
	h.emu = testenv.StartEmulator(t, h.creds, map[string]emulator.Behavior{fnEcho: {FailFirst: 1}})
	reg := prometheus.NewRegistry()
	h.startWorker(worker.Config{
		Metrics: reg,
		Retry:   worker.RetryConfig{MaxAttempts: 3, InitialInterval: pause, MaxInterval: pause, Multiplier: 1},
	}, testenv.Signer(t, h.creds))
	h.publish("invoke.jobs.e", jobHeader(fnEcho, "late"), []byte("x"))
	h.waitSettled(1, 0)

	count, sum := histogram(t, reg, "invoke_worker_job_latency_seconds")
	if count != 1 || sum < pause.Seconds() {
		t.Fatalf("job latency: %d observations summing %.3fs, want 1 of at least %s (the retry's pause)", count, sum, pause)
	}
	if count, _ := histogram(t, reg, "invoke_worker_result_publish_seconds"); count != 1 {
		t.Fatalf("result publish: %d observations, want 1", count)
	}
}

func histogram(t *testing.T, reg *prometheus.Registry, name string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("no %s", name)
	return 0, 0
}
