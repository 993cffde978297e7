package worker_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/worker"
)

// TestTwo503sThenSuccessGivesOneResultAfterThreeAttemptsWithBackoffInBounds
// checks the retry schedule on the times the emulator recorded: the gap
// before attempt n+1 is at least the shortest jittered backoff after
// attempt n.
func TestTwo503sThenSuccessGivesOneResultAfterThreeAttemptsWithBackoffInBounds(t *testing.T) {
	t.Parallel()
	retry := worker.RetryConfig{MaxAttempts: 8, InitialInterval: 200 * time.Millisecond, MaxInterval: time.Second, Multiplier: 2, MaxElapsed: time.Minute, Randomization: 0.5}
	h := newHarness(t, worker.Config{Retry: retry}, map[string]emulator.Behavior{fnEcho: {FailFirst: 2, FailStatus: 503}})
	h.publish("invoke.jobs.r", jobHeader(fnEcho, "retry-1"), []byte("again"))
	h.waitSettled(1, 0)
	res := h.streamMsgs(h.nats.Topology.ResultsStream)[0]
	if res.Header.Get(job.HeaderAttempts) != "3" || string(res.Data) != "again" {
		t.Fatalf("result %v %q, want 3 attempts", res.Header, res.Data)
	}
	calls := h.emu.Calls(fnEcho)
	if len(calls) != 3 {
		t.Fatalf("%d calls at the emulator, want 3", len(calls))
	}
	for i := 0; i < 2; i++ {
		interval := retry.InitialInterval * time.Duration(1<<i)
		lo := time.Duration(float64(interval) * (1 - retry.Randomization))
		hi := time.Duration(float64(interval)*(1+retry.Randomization)) + 2*time.Second // + redelivery and scheduling under -race
		gap := calls[i+1].Start.Sub(calls[i].End)
		if gap < lo || gap > hi {
			t.Fatalf("gap before attempt %d is %s, want within [%s, %s]", i+2, gap, lo, hi)
		}
	}
}

// TestAlways500IsDeadLetteredAsExhaustedAfterExactlyMaxAttempts counts the
// invocations at the emulator.
func TestAlways500IsDeadLetteredAsExhaustedAfterExactlyMaxAttempts(t *testing.T) {
	t.Parallel()
	retry := fastRetry
	retry.MaxAttempts = 4
	h := newHarness(t, worker.Config{Retry: retry}, map[string]emulator.Behavior{fnBroken: {Status: 500}})
	h.publish("invoke.jobs.x", jobHeader(fnBroken, "always-500"), []byte("x"))
	h.waitSettled(0, 1)
	r := h.streamMsgs(h.nats.Topology.DLQStream)[0]
	if r.Subject != "invoke.dlq.exhausted.always-500" || r.Header.Get(job.HeaderAttempts) != "4" || r.Header.Get(job.HeaderStatus) != "500" {
		t.Fatalf("record %s %v", r.Subject, r.Header)
	}
	if calls := h.emu.Stats().Functions[fnBroken].Calls; calls != 4 {
		t.Fatalf("%d invocations, want exactly 4", calls)
	}
	hist, err := dlq.DecodeHistory(r.Header.Get(dlq.HeaderAttemptHistory))
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 4 {
		t.Fatalf("history has %d attempts, want 4: %+v", len(hist), hist)
	}
	for i, a := range hist {
		if a.N != i+1 || a.Status != 500 || a.Code != "InternalServerError" || a.Worker == "" || a.Breaker != "closed" {
			t.Fatalf("history[%d] = %+v", i, a)
		}
	}
}

// TestRetryAfterFromA429IsHonoured: the backoff would retry after ~20ms;
// the service asked for 1s.
func TestRetryAfterFromA429IsHonoured(t *testing.T) {
	t.Parallel()
	h := newHarness(t, worker.Config{}, map[string]emulator.Behavior{fnEcho: {FailFirst: 1, FailStatus: 429, RetryAfter: time.Second}})
	h.publish("invoke.jobs.r", jobHeader(fnEcho, "throttled"), []byte("x"))
	h.waitSettled(1, 0)
	calls := h.emu.Calls(fnEcho)
	if len(calls) != 2 {
		t.Fatalf("%d calls", len(calls))
	}
	if gap := calls[1].Start.Sub(calls[0].End); gap < time.Second {
		t.Fatalf("retried after %s, before the 1s Retry-After", gap)
	}
}

// TestStatusesConfiguredAsNeverRetryGoStraightToTheDLQ: a 502
// FunctionInvokeExecutionFailed means the function ran; a user with
// non-idempotent functions sends it to the DLQ at once.
func TestStatusesConfiguredAsNeverRetryGoStraightToTheDLQ(t *testing.T) {
	t.Parallel()
	policy, err := invoke.NewRetryPolicy(invoke.RetryOnDefault(), []string{"502/FunctionInvokeExecutionFailed"})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, worker.Config{RetryPolicy: policy}, map[string]emulator.Behavior{
		fnBroken: {Status: 502},                                                            // FunctionInvokeExecutionFailed
		fnOther:  {FailFirst: 1, FailStatus: 502, Code: "FunctionInvokeContainerInitFail"}, // still retried
	})
	h.publish("invoke.jobs.x", jobHeader(fnBroken, "ran-once"), []byte("x"))
	h.publish("invoke.jobs.x", jobHeader(fnOther, "init-fail"), []byte("y"))
	h.waitSettled(1, 1)
	r := h.streamMsgs(h.nats.Topology.DLQStream)[0]
	if r.Subject != "invoke.dlq.permanent.ran-once" || r.Header.Get(job.HeaderAttempts) != "1" {
		t.Fatalf("record %s %v", r.Subject, r.Header)
	}
}

// TestBreakerOpensOnTimeoutsSparesHealthyFunctionsAndDefersWithoutDeadLettering:
// a function that always times out trips its breaker; while it is open the
// emulator sees no calls for it, a healthy function's jobs keep completing,
// and once the function recovers its deferred jobs complete without any
// being dead-lettered.
func TestBreakerOpensOnTimeoutsSparesHealthyFunctionsAndDefersWithoutDeadLettering(t *testing.T) {
	t.Parallel()
	retry := fastRetry
	retry.MaxAttempts = 6
	cfg := worker.Config{
		Concurrency: 8,
		Retry:       retry,
		Breaker:     worker.BreakerConfig{FailureRatio: 0.5, MinRequests: 4, Interval: time.Minute, OpenTimeout: 3 * time.Second, HalfOpenRequests: 1},
	}
	h := newHarness(t, cfg, map[string]emulator.Behavior{fnBroken: {Hang: true}})
	h.replaceWorker(cfg, 300*time.Millisecond) // attempts time out after 300ms
	for i := range 6 {
		h.publish("invoke.jobs.b", jobHeader(fnBroken, fmt.Sprintf("slow-%d", i)), []byte("x"))
	}
	testenv.Eventually(t, "the breaker to open", func() bool { return h.w.BreakerStates()[fnBroken] == "open" })
	opened := time.Now()
	// Attempts let through just before it opened may still be on their
	// way to the emulator; they time out within 300ms.
	testenv.Eventually(t, "the attempts made before it opened to end", func() bool {
		return h.emu.Stats().Functions[fnBroken].InFlight == 0
	})
	time.Sleep(100 * time.Millisecond)
	before := h.emu.Stats().Functions[fnBroken].Calls

	// Healthy traffic flows while the breaker is open.
	for i := range 100 {
		h.publish("invoke.jobs.h", jobHeader(fnEcho, fmt.Sprintf("healthy-%d", i)), []byte("ok"))
	}
	testenv.Eventually(t, "healthy jobs to complete", func() bool {
		return h.streamCount(h.nats.Topology.ResultsStream) == 100
	})
	if time.Since(opened) < 2*time.Second {
		if after := h.emu.Stats().Functions[fnBroken].Calls; after != before {
			t.Fatalf("the emulator saw %d calls for the function while its breaker was open", after-before)
		}
	} else {
		t.Log("healthy jobs took longer than the open period; the no-calls check was skipped")
	}

	// The function recovers; half-open probes close the breaker and the
	// deferred jobs complete, none dead-lettered.
	if err := h.emu.SetBehavior(fnBroken, emulator.Behavior{}); err != nil {
		t.Fatal(err)
	}
	h.waitSettled(106, 0)
	if s := h.w.BreakerStates()[fnBroken]; s != "closed" {
		t.Fatalf("breaker %s after recovery", s)
	}
}

// TestPastDeadlineAndMaxJobAgeAreDeadLetteredAsExpiredWithoutInvoking.
func TestPastDeadlineAndMaxJobAgeAreDeadLetteredAsExpiredWithoutInvoking(t *testing.T) {
	t.Parallel()
	h := newHarness(t, worker.Config{MaxJobAge: 300 * time.Millisecond}, nil)
	h.stopWorker()
	past := with(jobHeader(fnEcho, "too-late"), job.HeaderDeadline, time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))
	h.publish("invoke.jobs.e", past, []byte("x"))
	h.publish("invoke.jobs.e", jobHeader(fnEcho, "too-old"), []byte("y"))
	time.Sleep(400 * time.Millisecond) // let "too-old" age past max_job_age
	h.startWorker(worker.Config{MaxJobAge: 300 * time.Millisecond}, testenv.Signer(t, h.creds))
	h.waitSettled(0, 2)
	subjects := map[string]string{}
	for _, m := range h.streamMsgs(h.nats.Topology.DLQStream) {
		subjects[m.Subject] = m.Header.Get(job.HeaderError)
		if m.Header.Get(job.HeaderAttempts) != "0" {
			t.Fatalf("%s: %s attempts", m.Subject, m.Header.Get(job.HeaderAttempts))
		}
	}
	if !strings.Contains(subjects["invoke.dlq.expired.too-late"], "deadline") || !strings.Contains(subjects["invoke.dlq.expired.too-old"], "max_job_age") {
		t.Fatalf("records %v", subjects)
	}
	if c := h.emu.Stats().Calls; c != 0 {
		t.Fatalf("expired jobs were invoked %d times", c)
	}
}

// TestSlowFunctionCompletesOnceWithoutRedelivery: the function takes 12x
// the consumer's AckWait; the heartbeat (InProgress) keeps the job from
// being redelivered, so it is invoked exactly once.
func TestSlowFunctionCompletesOnceWithoutRedelivery(t *testing.T) {
	t.Parallel()
	h := &harness{t: t}
	h.nats = testenv.StartNATS(t, queue.Topology{AckWait: 250 * time.Millisecond})
	h.creds = testenv.Credentials(t)
	h.emu = testenv.StartEmulator(t, h.creds, map[string]emulator.Behavior{fnEcho: {Latency: 3 * time.Second}})
	h.startWorker(worker.Config{ProgressInterval: 50 * time.Millisecond, Concurrency: 4}, testenv.Signer(t, h.creds))
	h.publish("invoke.jobs.slow", jobHeader(fnEcho, "slow-1"), []byte("patience"))
	h.waitSettled(1, 0)
	if c := h.emu.Stats().Functions[fnEcho].Calls; c != 1 {
		t.Fatalf("invoked %d times, want once", c)
	}
	res := h.streamMsgs(h.nats.Topology.ResultsStream)[0]
	if res.Header.Get(job.HeaderAttempts) != "1" {
		t.Fatalf("attempts %s", res.Header.Get(job.HeaderAttempts))
	}
}

// TestPerFunctionConcurrencyLeavesRoomForOtherFunctionsAndChargesNoAttempts.
func TestPerFunctionConcurrencyLeavesRoomForOtherFunctionsAndChargesNoAttempts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, worker.Config{Concurrency: 8, PerFunctionConcurrency: 2}, map[string]emulator.Behavior{
		fnBroken: {Latency: 100 * time.Millisecond}, // hot and slow, but healthy
	})
	for i := range 12 {
		h.publish("invoke.jobs.hot", jobHeader(fnBroken, fmt.Sprintf("hot-%d", i)), []byte("h"))
	}
	for i := range 30 {
		h.publish("invoke.jobs.cool", jobHeader(fnEcho, fmt.Sprintf("cool-%d", i)), []byte("c"))
	}
	h.waitSettled(42, 0)
	st := h.emu.Stats()
	if m := st.Functions[fnBroken].MaxInFlight; m > 2 {
		t.Fatalf("hot function had %d in flight, limit 2", m)
	}
	for _, m := range h.streamMsgs(h.nats.Topology.ResultsStream) {
		if a := m.Header.Get(job.HeaderAttempts); a != "1" {
			t.Fatalf("%s took %s attempts: deferrals were charged", m.Subject, a)
		}
	}
	if c := st.Functions[fnBroken].Calls; c != 12 {
		t.Fatalf("hot function called %d times, want 12", c)
	}
}

// TestStopLetsInFlightJobsFinishAndHandsTheRestToAnotherWorker: stopping a
// worker mid-run finishes what it started, gives back what it had not, and
// a second worker completes the rest; nothing is lost or duplicated.
func TestStopLetsInFlightJobsFinishAndHandsTheRestToAnotherWorker(t *testing.T) {
	t.Parallel()
	h := newHarness(t, worker.Config{Concurrency: 4}, map[string]emulator.Behavior{fnEcho: {Latency: 300 * time.Millisecond}})
	const n = 40
	for i := range n {
		h.publish("invoke.jobs.s", jobHeader(fnEcho, fmt.Sprintf("s-%d", i)), []byte("x"))
	}
	testenv.Eventually(t, "jobs in flight", func() bool { return h.w.InFlight() == 4 })
	h.stopWorker() // returns once the 4 in-flight jobs finished
	if got := h.streamCount(h.nats.Topology.ResultsStream); got < 4 {
		t.Fatalf("%d results after the stop; in-flight jobs did not finish", got)
	}
	h.startWorker(worker.Config{Concurrency: 8, ID: "second"}, testenv.Signer(t, h.creds))
	h.waitSettled(n, 0)
	if c := h.emu.Stats().Functions[fnEcho].Calls; c != n {
		t.Fatalf("%d invocations for %d jobs", c, n)
	}
}

// TestDrainTimeoutInterruptsAndGivesJobsBack: in-flight invocations longer
// than the drain timeout are interrupted and redelivered at once.
func TestDrainTimeoutInterruptsAndGivesJobsBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t, worker.Config{Concurrency: 2, DrainTimeout: 200 * time.Millisecond}, map[string]emulator.Behavior{fnEcho: {FailFirst: 2, Hang: true}})
	h.publish("invoke.jobs.d", jobHeader(fnEcho, "d-1"), []byte("x"))
	h.publish("invoke.jobs.d", jobHeader(fnEcho, "d-2"), []byte("y"))
	testenv.Eventually(t, "both jobs in flight", func() bool { return h.w.InFlight() == 2 })
	start := time.Now()
	h.stopWorker()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stop took %s", d)
	}
	h.startWorker(worker.Config{Concurrency: 2, ID: "second"}, testenv.Signer(t, h.creds))
	h.waitSettled(2, 0)
	for _, m := range h.streamMsgs(h.nats.Topology.ResultsStream) {
		if m.Header.Get(job.HeaderAttempts) != "2" {
			t.Fatalf("%s: attempts %s; the interrupted attempt counts", m.Subject, m.Header.Get(job.HeaderAttempts))
		}
	}
}

// TestNATSRestartMidRunLosesNothing shuts the embedded server down and
// starts it again on the same store while jobs flow.
func TestNATSRestartMidRunLosesNothing(t *testing.T) {
	t.Parallel()
	// Acknowledgements in flight when the server stops are lost; those jobs
	// come back after AckWait, shortened here from the 90s default.
	h := &harness{t: t}
	h.nats = testenv.StartNATS(t, queue.Topology{AckWait: 2 * time.Second})
	h.creds = testenv.Credentials(t)
	h.emu = testenv.StartEmulator(t, h.creds, map[string]emulator.Behavior{fnEcho: {Latency: 5 * time.Millisecond}})
	h.startWorker(worker.Config{Concurrency: 8, ProgressInterval: 500 * time.Millisecond}, testenv.Signer(t, h.creds))
	const n = 400
	for i := range n {
		h.publish("invoke.jobs.n", jobHeader(fnEcho, fmt.Sprintf("n-%d", i)), []byte(fmt.Sprint(i)))
	}
	testenv.Eventually(t, "some results", func() bool { return h.streamCount(h.nats.Topology.ResultsStream) > 50 })
	h.nats.Restart(t)
	testenv.Eventually(t, "reconnect", func() bool { return h.nats.Conn.IsConnected() })
	h.waitSettled(n, 0)
	seen := map[string]bool{}
	for _, m := range h.streamMsgs(h.nats.Topology.ResultsStream) {
		id := m.Header.Get(job.HeaderJobID)
		if seen[id] {
			t.Fatalf("%s stored twice", id)
		}
		seen[id] = true
	}
	_ = context.Background
}

// TestRedeliveredJobWithStoredResultIsAckedWithoutInvokingAgain: when a
// worker stored a result but its acknowledgement was lost (or it died just
// after), the redelivered job is acknowledged without a second invocation.
func TestRedeliveredJobWithStoredResultIsAckedWithoutInvokingAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, worker.Config{}, nil)
	h.stopWorker()
	h.publish("invoke.jobs.l", jobHeader(fnEcho, "lost-ack"), []byte("x"))
	// A first delivery that stores the result and never acknowledges.
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	batch, err := h.nats.Consumer.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	first := <-batch.Messages()
	if first == nil {
		t.Fatal("no delivery")
	}
	res := nats.NewMsg("invoke.results.lost-ack")
	res.Header.Set(job.HeaderJobID, "lost-ack")
	res.Header.Set(job.HeaderCompletedAt, time.Now().UTC().Format(job.TimeFormatMillis))
	res.Data = []byte("x")
	if _, err := h.nats.JS.PublishMsg(ctx, res, jetstream.WithMsgID("lost-ack")); err != nil {
		t.Fatal(err)
	}
	if err := first.Nak(); err != nil { // as if the ack never arrived
		t.Fatal(err)
	}
	h.startWorker(worker.Config{ID: "second"}, testenv.Signer(t, h.creds))
	h.waitSettled(1, 0)
	if c := h.emu.Stats().Calls; c != 0 {
		t.Fatalf("invoked %d times after the result was stored", c)
	}
}

// TestDeletedConsumerIsCreatedAgain: an operator (or a tool) deleting the
// shared consumer under a running worker costs nothing but the moment it
// takes to bind again: the worker creates it again (queue.Ensure, as
// service wires it), is not ready meanwhile, and every job gets its
// result.
func TestDeletedConsumerIsCreatedAgain(t *testing.T) {
	t.Parallel()
	h := &harness{t: t}
	h.nats = testenv.StartNATS(t, queue.Topology{})
	h.creds = testenv.Credentials(t)
	h.emu = testenv.StartEmulator(t, h.creds, nil)
	var binds atomic.Int32
	h.source = func(ctx context.Context) (jetstream.Consumer, error) {
		binds.Add(1)
		return queue.Ensure(ctx, h.nats.JS, h.nats.Topology)
	}
	h.startWorker(worker.Config{Concurrency: 4}, testenv.Signer(t, h.creds))
	testenv.Eventually(t, "worker ready", h.w.Running)
	for i := range 20 {
		h.publish("invoke.jobs.d", jobHeader(fnEcho, fmt.Sprintf("before-%d", i)), []byte("x"))
	}
	h.waitSettled(20, 0)

	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	topo := h.nats.Topology
	if err := h.nats.JS.DeleteConsumer(ctx, topo.JobsStream, topo.Durable); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the consumer bound again", func() bool { return binds.Load() >= 2 && h.w.Running() })
	for i := range 20 {
		h.publish("invoke.jobs.d", jobHeader(fnEcho, fmt.Sprintf("after-%d", i)), []byte("x"))
	}
	h.waitSettled(40, 0)
	if _, err := h.nats.JS.Consumer(ctx, topo.JobsStream, topo.Durable); err != nil {
		t.Errorf("consumer not there again: %v", err)
	}
}

// TestAnswerThatStallsIsRecordedWithItsStatus: a function that answered
// 200 and then stopped sending times out (retried as a timeout), and the
// record says the function answered 200; a body that keeps arriving is
// read whole although it takes longer than the read timeout.
func TestAnswerThatStallsIsRecordedWithItsStatus(t *testing.T) {
	t.Parallel()
	retry := fastRetry
	retry.MaxAttempts = 2
	cfg := worker.Config{Retry: retry}
	h := newHarness(t, cfg, map[string]emulator.Behavior{
		fnBroken: {ResponseSize: 10, Trickle: time.Hour},
		fnEcho:   {ResponseSize: 10 * emulator.TrickleChunk, Trickle: 100 * time.Millisecond}, // 1s in all
	})
	h.replaceWorker(cfg, 500*time.Millisecond)
	h.publish("invoke.jobs.s", jobHeader(fnBroken, "stalls"), []byte("x"))
	h.publish("invoke.jobs.s", jobHeader(fnEcho, "streams"), []byte("x"))
	h.waitSettled(1, 1)
	r := h.streamMsgs(h.nats.Topology.DLQStream)[0]
	if r.Subject != "invoke.dlq.exhausted.stalls" || r.Header.Get(job.HeaderStatus) != "200" || r.Header.Get(job.HeaderAttempts) != "2" ||
		!strings.Contains(r.Header.Get(job.HeaderError), "timed out") {
		t.Fatalf("record %s %v", r.Subject, r.Header)
	}
	res := h.streamMsgs(h.nats.Topology.ResultsStream)[0]
	if res.Subject != "invoke.results.streams" || len(res.Data) != 10*emulator.TrickleChunk {
		t.Fatalf("result %s, %d bytes", res.Subject, len(res.Data))
	}
}

// TestJobDeadLetteredElsewhereIsNotRecordedTwice: a worker holding a stale
// delivery (cut off from NATS past the ack wait while another worker took
// the job and dead-lettered it) does not add a second record when it
// comes back: the first outcome stands (found by the fleet's partition
// scenario).
func TestJobDeadLetteredElsewhereIsNotRecordedTwice(t *testing.T) {
	t.Parallel()
	h := &harness{t: t}
	h.nats = testenv.StartNATS(t, queue.Topology{})
	h.creds = testenv.Credentials(t)
	h.emu = testenv.StartEmulator(t, h.creds, map[string]emulator.Behavior{fnBroken: {Status: 404}})
	ack := h.publish("invoke.jobs.x", jobHeader(fnBroken, "settled-elsewhere"), []byte("x"))
	s, err := h.nats.JS.Stream(context.Background(), h.nats.Topology.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.GetMsg(context.Background(), ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	// The other worker's record of this job.
	j, err := job.Parse(job.Message{Subject: stored.Subject, Header: stored.Header, Data: stored.Data, Stream: h.nats.Topology.JobsStream, Seq: stored.Sequence + 1000, StoreAt: stored.Time}, job.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	w := dlq.NewWriter(h.nats.JS, h.nats.Topology.DLQStream, h.nats.Topology.DLQPrefix)
	if err := w.DeadLetter(context.Background(), j, dlq.Failure{Reason: dlq.ReasonPermanent, Error: "404 elsewhere", Status: 404, Attempts: 1, FailedAt: time.Now(), Worker: "other"}); err != nil {
		t.Fatal(err)
	}
	h.startWorker(worker.Config{}, testenv.Signer(t, h.creds))
	testenv.Eventually(t, "the job acknowledged", func() bool { return h.streamCount(h.nats.Topology.JobsStream) == 0 })
	if n := h.streamCount(h.nats.Topology.DLQStream); n != 1 {
		t.Fatalf("%d records for one job", n)
	}
}
