package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestPerFunctionStateIsBounded: a publisher sending random function ids
// grows neither the breakers, the rate limiters, the pacing state nor the
// metric series without bound (issue 10, defect 18).
func TestPerFunctionStateIsBounded(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	const labels = 50
	m := newMetrics(reg, labels)
	cfg := BreakerConfig{Mode: BreakerPerFunction, FailureRatio: 0.5, MinRequests: 1, Interval: time.Minute, OpenTimeout: time.Minute, HalfOpenRequests: 1}
	b := newBreakers(cfg, zerolog.Nop(), m, clock.Now)
	fn := func(i int) string { return fmt.Sprintf("ocid1.fnfunc.oc1.phx.random%06d", i) }

	// More ids than the cap, all within one interval.
	for i := range maxBreakers + 2000 {
		done, _, ok := b.allow(fn(i))
		if !ok {
			t.Fatalf("breaker %d refused", i)
		}
		done(nil)
		m.waited(fn(i), causeRetry)
	}
	if n := len(b.states()); n > maxBreakers {
		t.Fatalf("%d breakers kept, cap %d", n, maxBreakers)
	}
	if n := testutil.CollectAndCount(m.breaker); n > labels {
		t.Fatalf("%d breaker_state series, cap %d", n, labels)
	}
	if n := testutil.CollectAndCount(m.waits); n > labels+1 {
		t.Fatalf("%d waits_total series, cap %d and other", n, labels)
	}
	// An open breaker survives the sweep; idle closed ones do not.
	openFn := "ocid1.fnfunc.oc1.phx.failing"
	done, _, _ := b.allow(openFn)
	done(&invoke.Error{Status: 503})
	if b.states()[openFn] != "open" {
		t.Fatalf("breaker of %s: %s", openFn, b.states()[openFn])
	}
	clock.Add(2 * time.Minute)
	b.allow("ocid1.fnfunc.oc1.phx.newcomer")
	states := b.states()
	if len(states) > 2 {
		t.Fatalf("%d breakers kept after an idle interval, want the open one and the newcomer", len(states))
	}
	if _, ok := states[openFn]; !ok {
		t.Fatal("the open breaker was dropped")
	}

	// Rate limiters and pacing state go when idle.
	l := newFunctionLimits(limitsConfig{concurrency: 8, fairShare: true, reserved: 1, perSecond: 100})
	for i := range 5000 {
		release, _, cause := l.acquire(fn(i), clock.Now())
		if cause != "" {
			t.Fatalf("function %d: %s", i, cause)
		}
		release(time.Millisecond)
	}
	if inFlight, limiters, paces := l.size(); inFlight != 0 || limiters != 5000 || paces != 5000 {
		t.Fatalf("before the sweep: %d in flight, %d limiters, %d paces", inFlight, limiters, paces)
	}
	clock.Add(2 * time.Minute)
	release, _, _ := l.acquire("ocid1.fnfunc.oc1.phx.newcomer", clock.Now())
	release(0)
	if _, limiters, paces := l.size(); limiters > 1 || paces > 1 {
		t.Fatalf("after an idle minute: %d limiters, %d paces kept", limiters, paces)
	}
}

// TestFailedGiveBackIsLoggedAndCounted: a Nak that cannot be sent (the
// connection is gone) is not dropped silently (issue 10, defect 10).
func TestFailedGiveBackIsLoggedAndCounted(t *testing.T) {
	t.Parallel()
	nc, js, cons := startJetStream(t)
	ctx := context.Background()
	if _, err := js.Publish(ctx, "invoke.jobs.x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msg := <-batch.Messages()
	if msg == nil {
		t.Fatal("no message")
	}
	nc.Close()

	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	w := &Worker{log: zerolog.New(&logs), metrics: newMetrics(reg, 10)}
	w.giveBack(msg, 500*time.Millisecond, "j-1")
	if n := testutil.ToFloat64(w.metrics.nakFails); n != 1 {
		t.Fatalf("nak failures %v, want 1", n)
	}
	if !strings.Contains(logs.String(), "give-back failed") || !strings.Contains(logs.String(), "j-1") {
		t.Fatalf("log: %s", logs.String())
	}
}

// TestRateLimitWaitEndsWhenTheWorkerStops: the short wait for a
// function's rate limit holds a slot, so a stop must cut it short
// (issue 10, defect 12: it was a time.Sleep).
func TestRateLimitWaitEndsWhenTheWorkerStops(t *testing.T) {
	t.Parallel()
	// 4.5 a second: a burst of 4, then one every 222ms.
	w, err := New(Config{ID: "t", PerFunctionRate: 4.5, Concurrency: 1}, Deps{
		Consumer: func(context.Context) (jetstream.Consumer, error) { return nil, errors.New("unused") },
		Invoker: invokerFunc(func(context.Context, invoke.Request) (*invoke.Response, error) {
			return &invoke.Response{Status: 200}, nil
		}),
		Results:     noPublisher{},
		DeadLetters: noDeadLetters{},
	})
	if err != nil {
		t.Fatal(err)
	}
	j := job.Job{ID: "r", FunctionID: "ocid1.fnfunc.oc1.phx.rated"}
	// The burst goes at once; the next call must wait about 222ms.
	for i := range 4 {
		o := outcome{job: j, attempt: 1}
		w.try(context.Background(), &o, false)
		if o.err != nil || !o.made {
			t.Fatalf("call %d: %v", i, o.err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o := outcome{job: j, attempt: 1}
	start := time.Now()
	w.try(ctx, &o, false)
	if !errors.Is(o.err, errInterrupted) || o.made {
		t.Fatalf("second call with a stopped context: err %v, made %v", o.err, o.made)
	}
	if took := time.Since(start); took >= 200*time.Millisecond {
		t.Fatalf("the stopped wait took %s", took)
	}
}

type invokerFunc func(context.Context, invoke.Request) (*invoke.Response, error)

func (f invokerFunc) Invoke(ctx context.Context, r invoke.Request) (*invoke.Response, error) {
	return f(ctx, r)
}

type noPublisher struct{}

func (noPublisher) PublishMsg(context.Context, *nats.Msg, ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return nil, errors.New("unused")
}

type noDeadLetters struct{}

func (noDeadLetters) DeadLetter(context.Context, job.Job, dlq.Failure) error {
	return errors.New("unused")
}

// TestManyWaitsOfOneFunctionAreLogged: once a function's jobs pass the
// threshold of waits within a minute, one line says so; the next window
// starts afresh.
func TestManyWaitsOfOneFunctionAreLogged(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)}
	var logs bytes.Buffer
	ww := newWaitWatch(3, clock.Now, zerolog.New(&logs))
	for range 10 {
		ww.note("fn-a", causeBreakerOpen)
	}
	ww.note("fn-b", causeRetry)
	if n := strings.Count(logs.String(), "many jobs of one function are waiting"); n != 1 {
		t.Fatalf("%d lines for 10 waits of fn-a and 1 of fn-b, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `"function":"fn-a"`) || !strings.Contains(logs.String(), `"cause":"breaker_open"`) {
		t.Fatalf("line: %s", logs.String())
	}
	clock.Add(time.Minute)
	for range 3 {
		ww.note("fn-a", causeBreakerOpen)
	}
	if n := strings.Count(logs.String(), "many jobs of one function are waiting"); n != 2 {
		t.Fatalf("%d lines after a new window, want 2", n)
	}
}

// TestStopIsBoundedEvenWhenAnInvocationIgnoresCancellation: Run returns
// within StopBound of the stop request even if an attempt never returns
// (issue 10, defect 14: the wait after interrupting had no bound).
func TestStopIsBoundedEvenWhenAnInvocationIgnoresCancellation(t *testing.T) {
	t.Parallel()
	_, js, cons := startJetStream(t)
	ctx := context.Background()
	hdr := nats.Header{}
	hdr.Set(job.HeaderFunctionID, "ocid1.fnfunc.oc1.phx.stuck")
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "invoke.jobs.stuck", Header: hdr, Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	cfg := Config{ID: "t", Concurrency: 1, DrainTimeout: 100 * time.Millisecond, SettleTimeout: time.Second}
	w, err := New(cfg, Deps{
		Consumer: func(context.Context) (jetstream.Consumer, error) { return cons, nil },
		Invoker: invokerFunc(func(context.Context, invoke.Request) (*invoke.Response, error) {
			close(started)
			<-release // deaf to its context
			return nil, errors.New("released")
		}),
		Results:     js,
		DeadLetters: noDeadLetters{},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = w.Run(runCtx); close(done) }()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the job never started")
	}
	stop()
	bound := cfg.StopBound()
	select {
	case <-done:
	case <-time.After(bound + 5*time.Second):
		t.Fatalf("Run did not return within %s of the stop", bound)
	}
}

// TestWaitHeadersAreTheWorkersOwn: a copy's Invoke-Wait-* headers are
// checked: an unknown cause (a metric label) or a first-stored time after
// the message are invalid; attempts over the maximum are not (the maximum
// may have been lowered while the copy waited: the job is spent).
func TestWaitHeadersAreTheWorkersOwn(t *testing.T) {
	t.Parallel()
	stored := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	h := func(kv ...string) nats.Header {
		hdr := nats.Header{}
		for i := 0; i < len(kv); i += 2 {
			hdr.Set(kv[i], kv[i+1])
		}
		return hdr
	}
	for name, c := range map[string]struct {
		hdr     nats.Header
		invalid bool
	}{
		"known cause":         {h(job.HeaderWaitCause, causeBreakerOpen), false},
		"unknown cause":       {h(job.HeaderWaitCause, "anything-a-publisher-likes"), true},
		"attempts over max":   {h(job.HeaderWaitAttempts, "99"), false},
		"negative attempts":   {h(job.HeaderWaitAttempts, "-1"), true},
		"enqueued before":     {h(job.HeaderWaitEnqueuedAt, stored.Add(-time.Hour).Format(time.RFC3339Nano)), false},
		"enqueued in future":  {h(job.HeaderWaitEnqueuedAt, stored.Add(time.Hour).Format(time.RFC3339Nano)), true},
		"enqueued unreadable": {h(job.HeaderWaitEnqueuedAt, "yesterday"), true},
	} {
		_, err := readWaitState(c.hdr, stored)
		if got := errors.Is(err, job.ErrInvalid); got != c.invalid {
			t.Errorf("%s: invalid %v (%v), want %v", name, got, err, c.invalid)
		}
	}
}

// TestCopyThatCannotFitWaitsInPlace: a job whose copy (with the wait's
// headers) would pass the message size is not marked, so it never loops
// on a copy JetStream refuses every time.
func TestCopyThatCannotFitWaitsInPlace(t *testing.T) {
	t.Parallel()
	w := &Worker{cfg: Config{MaxMessage: 1000, WaitPrefix: "invoke.wait"}}
	m := waitMark{Cause: causeRetry, Until: time.Now(), Attempts: 1}
	small := job.Job{ID: "s", Subject: "invoke.jobs.x", Seq: 1, Body: make([]byte, 100), Header: nats.Header{}}
	if !w.copyFits(small, m) {
		t.Fatal("a small job's copy does not fit")
	}
	big := small
	big.Body = make([]byte, 990)
	if w.copyFits(big, m) {
		t.Fatal("a 990-byte body's copy fits a 1000-byte message")
	}
	huge := small
	huge.Header = nats.Header{"X-Big": {strings.Repeat("h", 70<<10)}}
	w.cfg.MaxMessage = 0
	if w.copyFits(huge, m) {
		t.Fatal("a copy with 70 KiB of headers fits")
	}
}

// TestFairSharePaceNeverBooksPastTheCap: after an overload the line for a
// function's slots is never booked further ahead than the longest wait,
// so later jobs are not held for nothing.
func TestFairSharePaceNeverBooksPastTheCap(t *testing.T) {
	t.Parallel()
	l := newFunctionLimits(limitsConfig{concurrency: 2, fairShare: true})
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	l.mu.Lock()
	l.paces["fn"] = &pace{avg: time.Minute}
	var last time.Duration
	for range 10000 {
		last = l.dueIn("fn", 1, now)
	}
	l.mu.Unlock()
	if last > shareDeferCap+time.Minute {
		t.Fatalf("the 10,000th job waits %s, past the cap %s", last, shareDeferCap)
	}
}

// startJetStream starts an embedded server with the contract's streams and
// consumer (these internal tests cannot use internal/testenv, which imports
// this package) and connects to it; all stopped at cleanup.
func startJetStream(t *testing.T) (*nats.Conn, jetstream.JetStream, jetstream.Consumer) {
	t.Helper()
	srv, err := queue.StartEmbedded(queue.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := queue.Ensure(context.Background(), js, queue.DefaultTopology())
	if err != nil {
		t.Fatal(err)
	}
	return nc, js, cons
}
