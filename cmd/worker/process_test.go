package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/internal/devcreds"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
)

// workerBin is the worker binary built once for the process tests.
var workerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "worker-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workerBin = filepath.Join(dir, "worker")
	build := exec.Command("go", "build", "-o", workerBin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build worker: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const procFn = "ocid1.fnfunc.oc1.phx.aaaaaaaaproc"

// fleet is the NATS server, emulator and credentials worker processes use.
type fleet struct {
	t     *testing.T
	nats  *testenv.NATS
	creds devcreds.Credentials
	emu   *emulator.Emulator
}

func newFleet(t *testing.T, b emulator.Behavior) *fleet {
	f := &fleet{t: t}
	f.nats = testenv.StartNATS(t, queue.Topology{})
	f.creds = testenv.Credentials(t)
	f.emu = testenv.StartEmulator(t, f.creds, map[string]emulator.Behavior{procFn: b})
	return f
}

// proc is a worker process.
type proc struct {
	cmd   *exec.Cmd
	admin string
	mu    sync.Mutex
	out   bytes.Buffer
	done  chan struct{}
	err   error
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs `worker run` against the fleet; extra are --set overrides.
func (f *fleet) start(id string, extra ...string) *proc {
	t := f.t
	t.Helper()
	p := &proc{admin: freeAddr(t), done: make(chan struct{})}
	args := []string{"run", "--nats", f.nats.Server.ClientURL(), "--log-level", "info",
		"--set", "worker.id=" + id,
		"--set", "invoke.oci.config_file=" + f.creds.ConfigFile,
		"--set", "invoke.endpoints=" + procFn + "=" + f.emu.URL(),
		"--set", "http.listen=" + p.admin,
	}
	for _, e := range extra {
		args = append(args, "--set", e)
	}
	p.cmd = exec.Command(workerBin, args...)
	p.cmd.Env = cleanEnv()
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("worker %s output:\n%s", id, tail(p.logs(), 4000))
		}
	})
	testenv.Eventually(t, "worker "+id+" ready", func() bool { return p.ready() })
	return p
}

func (p *proc) ready() bool {
	resp, err := http.Get("http://" + p.admin + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(testenv.Wait):
		t.Fatal("worker process did not exit")
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("wait: %v", p.err)
	return -1
}

// cleanEnv keeps WORKER_ variables (and the Go runtime's GOGC and
// GOMEMLIMIT) of the test environment out of the child, whose
// configuration the test sets explicitly.
func cleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "WORKER_") && !strings.HasPrefix(e, "GOGC=") && !strings.HasPrefix(e, "GOMEMLIMIT=") {
			env = append(env, e)
		}
	}
	return env
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

func (f *fleet) publishJobs(n int, prefix string) []string {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s-%04d", prefix, i)
		msg := nats.NewMsg("invoke.jobs.proc")
		msg.Header.Set(job.HeaderFunctionID, procFn)
		msg.Header.Set(job.HeaderMsgID, ids[i])
		msg.Data = []byte(ids[i])
		if _, err := f.nats.JS.PublishMsgAsync(msg); err != nil {
			f.t.Fatal(err)
		}
	}
	select {
	case <-f.nats.JS.PublishAsyncComplete():
	case <-ctx.Done():
		f.t.Fatal("publishing timed out")
	}
	return ids
}

func (f *fleet) count(stream string) uint64 {
	f.t.Helper()
	return testenv.StreamCount(f.t, f.nats.JS, stream)
}

// outcomes maps job id to the subjects of its results and records.
func (f *fleet) outcomes() map[string][]string {
	f.t.Helper()
	out := map[string][]string{}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	for _, name := range []string{f.nats.Topology.ResultsStream, f.nats.Topology.DLQStream} {
		cons, err := f.nats.JS.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{})
		if err != nil {
			f.t.Fatal(err)
		}
		n := f.count(name)
		for range n {
			m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
			if err != nil {
				f.t.Fatal(err)
			}
			id := m.Headers().Get(job.HeaderJobID)
			out[id] = append(out[id], m.Subject())
		}
	}
	return out
}

// callsPerJob counts invocations at the emulator per job id, from the
// opc-request-id <job-id>-<attempt> the worker sends.
func (f *fleet) callsPerJob() map[string]int {
	calls := map[string]int{}
	for _, c := range f.emu.Calls(procFn) {
		rid := c.RequestID
		if i := strings.LastIndexByte(rid, '-'); i > 0 {
			rid = rid[:i]
		}
		calls[rid]++
	}
	return calls
}

// TestKilledWorkerProcessLosesNoJobAndNoJobExceedsMaxAttempts: a worker
// process is killed with SIGKILL in the middle of 2,000 jobs (some of them
// failing and retried), then restarted. Every job ends with exactly one
// result or one dead-letter record, and no job was invoked more than
// retry.max_attempts times (counted at the emulator).
func TestKilledWorkerProcessLosesNoJobAndNoJobExceedsMaxAttempts(t *testing.T) {
	t.Parallel()
	f := newFleet(t, emulator.Behavior{Latency: 2 * time.Millisecond, FailRatio: 0.3, FailStatus: 503})
	const n, maxAttempts = 2000, 3
	ids := f.publishJobs(n, "k")
	settings := []string{"worker.concurrency=32", fmt.Sprintf("retry.max_attempts=%d", maxAttempts),
		"retry.initial_interval=10ms", "retry.max_interval=50ms", "consumer.ack_wait=2s", "consumer.update=true", "invoke.timeout.read=1s", "worker.progress_interval=500ms"}
	p := f.start("victim", settings...)
	testenv.Eventually(t, "a third of the jobs settled", func() bool {
		return f.count(f.nats.Topology.ResultsStream)+f.count(f.nats.Topology.DLQStream) > n/3
	})
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(t)
	settled := f.count(f.nats.Topology.ResultsStream) + f.count(f.nats.Topology.DLQStream)
	if settled >= n {
		t.Fatalf("all %d jobs settled before the kill; the test proves nothing", n)
	}
	f.start("survivor", settings...)
	testenv.Eventually(t, "every job settled", func() bool {
		return f.count(f.nats.Topology.ResultsStream)+f.count(f.nats.Topology.DLQStream) >= n && f.count(f.nats.Topology.JobsStream) == 0
	})
	outcomes := f.outcomes()
	for _, id := range ids {
		if len(outcomes[id]) != 1 {
			t.Fatalf("job %s has outcomes %v, want exactly one", id, outcomes[id])
		}
	}
	if len(outcomes) != n {
		t.Fatalf("%d outcomes for %d jobs", len(outcomes), n)
	}
	for id, c := range f.callsPerJob() {
		if c > maxAttempts {
			t.Fatalf("job %s was invoked %d times, more than retry.max_attempts %d", id, c, maxAttempts)
		}
	}
	t.Logf("killed after %d of %d jobs settled", settled, n)
}

// TestSIGTERMFinishesInFlightJobsHandsTheRestToAnotherWorkerAndExitsZero.
func TestSIGTERMFinishesInFlightJobsHandsTheRestToAnotherWorkerAndExitsZero(t *testing.T) {
	t.Parallel()
	f := newFleet(t, emulator.Behavior{Latency: 400 * time.Millisecond})
	const n = 30
	ids := f.publishJobs(n, "t")
	a := f.start("first", "worker.concurrency=4")
	testenv.Eventually(t, "4 invocations in flight", func() bool { return f.emu.Stats().InFlight == 4 })
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := a.wait(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0\n%s", code, tail(a.logs(), 2000))
	}
	st := f.emu.Stats().Functions[procFn]
	if st.Abandoned != 0 || st.Dropped != 0 || st.Statuses[200] != st.Calls {
		t.Fatalf("in-flight invocations were cut off: %+v", st)
	}
	done := f.count(f.nats.Topology.ResultsStream)
	if done < 4 || done >= n {
		t.Fatalf("%d results after the first worker stopped", done)
	}
	f.start("second", "worker.concurrency=8")
	testenv.Eventually(t, "every job settled", func() bool {
		return f.count(f.nats.Topology.ResultsStream) >= n && f.count(f.nats.Topology.JobsStream) == 0
	})
	outcomes := f.outcomes()
	for _, id := range ids {
		if len(outcomes[id]) != 1 {
			t.Fatalf("job %s: %v", id, outcomes[id])
		}
	}
	if c := f.emu.Stats().Functions[procFn].Calls; c != n {
		t.Fatalf("%d invocations for %d jobs", c, n)
	}
}

// TestReadinessFollowsTheNATSConnection: /readyz turns 503 while NATS is
// down and 200 again once the worker reconnected and is consuming.
func TestReadinessFollowsTheNATSConnection(t *testing.T) {
	t.Parallel()
	f := newFleet(t, emulator.Behavior{})
	p := f.start("ready", "nats.reconnect_wait=50ms")
	f.nats.Server.Shutdown()
	testenv.Eventually(t, "readiness to turn false", func() bool { return !p.ready() })
	f.nats.Restart(t)
	testenv.Eventually(t, "readiness to return", p.ready)
	f.publishJobs(5, "r")
	testenv.Eventually(t, "jobs to complete after the reconnect", func() bool { return f.count(f.nats.Topology.ResultsStream) == 5 })
}

// TestSecondSignalExitsAtOnce: a stuck invocation would hold the first
// SIGTERM for the whole drain timeout; a second signal ends the process
// immediately, and the job comes back to the next worker.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	f := newFleet(t, emulator.Behavior{FailFirst: 1, Hang: true})
	f.publishJobs(1, "h")
	p := f.start("stuck", "worker.drain_timeout=1m", "consumer.ack_wait=6s", "consumer.update=true", "invoke.timeout.read=5s", "worker.progress_interval=200ms")
	testenv.Eventually(t, "the invocation to hang", func() bool { return f.emu.Stats().InFlight == 1 })
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	testenv.Eventually(t, "the worker to start draining", func() bool { return strings.Contains(p.logs(), "worker stopping") })
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != exitFailed {
		t.Fatalf("exit code %d after a second signal, want %d", code, exitFailed)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %s to exit after the second signal", d)
	}
	f.start("next", "consumer.ack_wait=6s", "invoke.timeout.read=5s", "worker.progress_interval=200ms")
	testenv.Eventually(t, "the job to complete on the next worker", func() bool { return f.count(f.nats.Topology.ResultsStream) == 1 })
}

// metrics reads the process's /metrics page ("" while it does not answer).
func (p *proc) metrics() string {
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String()
}

// TestMetricsEndpointExposesWorkerMetrics.
func TestMetricsEndpointExposesWorkerMetrics(t *testing.T) {
	t.Parallel()
	f := newFleet(t, emulator.Behavior{})
	p := f.start("metrics")
	f.publishJobs(3, "m")
	testenv.Eventually(t, "jobs to complete", func() bool { return f.count(f.nats.Topology.ResultsStream) == 3 })
	// The counters move just after the result is stored: poll.
	for _, want := range []string{`invoke_worker_jobs_total{outcome="completed"} 3`, "invoke_worker_breaker_state{key=\"" + procFn + "\"} 0", "invoke_worker_attempt_duration_seconds_count 3"} {
		testenv.Eventually(t, "/metrics to show "+want, func() bool { return strings.Contains(p.metrics(), want) })
	}
}

// worker.gc_min_heap raises GOGC while the live heap is small (a few MiB
// here: the default 32 MiB takes GOGC 800 for a live heap under 3.5 MiB),
// visible as go_gc_gogc_percent; 0 leaves Go's 100.
func TestGCMinHeapRaisesGOGCWhileTheHeapIsSmall(t *testing.T) {
	t.Parallel()
	f := newFleet(t, emulator.Behavior{})
	raised := f.start("gc-floor")
	testenv.Eventually(t, "GOGC to be raised", func() bool { return gogc(raised.metrics()) > 100 })
	plain := f.start("gc-default", "worker.gc_min_heap=0")
	testenv.Eventually(t, "/metrics", func() bool { return plain.metrics() != "" })
	if p := gogc(plain.metrics()); p != 100 {
		t.Errorf("with worker.gc_min_heap=0 GOGC is %d, want 100", p)
	}
}

// gogc is go_gc_gogc_percent from a /metrics page, -1 if absent.
func gogc(metrics string) int {
	for _, l := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(l, "go_gc_gogc_percent "); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
	}
	return -1
}
