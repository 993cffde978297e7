package fanout_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/invoke-worker/worker/client"
	"github.com/invoke-worker/worker/fanout"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
)

const (
	fnA       = "ocid1.fnfunc.oc1.phx.aaaaaaaaalpha"
	fnB       = "ocid1.fnfunc.oc1.phx.aaaaaaaabravo"
	fnC       = "ocid1.fnfunc.oc1.phx.aaaaaaaacharlie"
	fnEcho    = "ocid1.fnfunc.oc1.phx.aaaaaaaaecho"
	fnMissing = "ocid1.fnfunc.oc1.phx.aaaaaaaamissing"
)

// fanoutOn runs a Fanout on a connection of its own until stop is called.
type running struct {
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan error
	f      *fanout.Fanout
}

func start(t *testing.T, st *testenv.Stack, cfg fanout.Config, pub func(*client.Client) fanout.Publisher, ackTimeout time.Duration) *running {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	nc, err := queue.Connect(ctx, queue.ConnConfig{URLs: st.Server.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(ctx, nc, client.Config{AckTimeout: ackTimeout})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.JS = js
	cfg.Publisher = c
	if pub != nil {
		cfg.Publisher = pub(c)
	}
	if cfg.FetchWait == 0 {
		cfg.FetchWait = 200 * time.Millisecond
	}
	f, err := fanout.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(context.Background())
	r := &running{nc: nc, cancel: stop, done: make(chan error, 1), f: f}
	go func() { r.done <- f.Run(rctx) }()
	t.Cleanup(func() { r.stop(t); nc.Close() })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("fanout.Run: %v", err)
		}
	case <-time.After(testenv.Wait):
		t.Errorf("fanout did not stop")
	}
}

// slowPublisher makes a fan-out slow enough to be stopped half-way.
type slowPublisher struct {
	fanout.Publisher
	delay time.Duration
}

func (s slowPublisher) EnqueueBatch(ctx context.Context, jobs []client.Job) ([]client.BatchResult, error) {
	time.Sleep(s.delay)
	return s.Publisher.EnqueueBatch(ctx, jobs)
}

func consumerInfo(t *testing.T, js jetstream.JetStream, stream, durable string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	c, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func streamCount(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	return testenv.StreamCount(t, js, name)
}

func publishEvents(t *testing.T, js jetstream.JetStream, n int, subject string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	for i := range n {
		if _, err := js.PublishAsync(subject, fmt.Appendf(nil, `{"event":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("publishing events timed out")
	}
}

// TestThousandEventsToThreeFunctionsYieldExactlyThreeThousandInvocations
// fans 1,000 events out to three functions. The first fan-out is killed
// half-way (its connection closed under it, acknowledgements and
// half-published events in flight), a second one takes over: the emulator
// sees exactly 3,000 invocations, one per event and function.
func TestThousandEventsToThreeFunctionsYieldExactlyThreeThousandInvocations(t *testing.T) {
	t.Parallel()
	st := testenv.StartStack(t, testenv.StackConfig{Concurrency: 32, Unsigned: true})
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	if _, err := st.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}}); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	publishEvents(t, st.JS, n, "events.order")

	cfg := fanout.Config{
		Routes:      []fanout.Route{{Name: "orders", Stream: "EVENTS", Subjects: []string{"events.>"}, Functions: []string{fnA, fnB, fnC}}},
		AckWait:     time.Second, // quick redelivery of what the first one left
		MaxInFlight: 4,
	}
	first := start(t, st, cfg, func(c *client.Client) fanout.Publisher { return slowPublisher{c, 2 * time.Millisecond} }, 2*time.Second)
	testenv.Eventually(t, "a third of the events fanned out", func() bool {
		return consumerInfo(t, st.JS, "EVENTS", "invoke-route-orders").AckFloor.Stream >= n/3
	})
	first.nc.Close() // as if the process died: nothing more is flushed
	first.stop(t)
	floor := consumerInfo(t, st.JS, "EVENTS", "invoke-route-orders").AckFloor.Stream
	if floor >= n {
		t.Fatalf("every event was fanned out before the kill; the test proves nothing")
	}

	cfg.MaxInFlight = 32
	var batches, dups atomic.Int64
	start(t, st, cfg, func(c *client.Client) fanout.Publisher { return countingPublisher{c, &batches, &dups} }, 0)
	settled := func() bool {
		info := consumerInfo(t, st.JS, "EVENTS", "invoke-route-orders")
		return st.Emulator.Stats().Requests >= 3*n && info.NumPending == 0 && info.NumAckPending == 0 &&
			streamCount(t, st.JS, st.Topology.JobsStream) == 0
	}
	testenv.Eventually(t, "every event fanned out and every job run", settled)
	// Anything the first fan-out left unacknowledged has been redelivered
	// by now (AckWait 1s); give a late duplicate the time to show.
	time.Sleep(1500 * time.Millisecond)
	if !settled() {
		t.Fatal("work appeared after everything had settled")
	}

	calls := map[string]int{}
	for _, fn := range []string{fnA, fnB, fnC} {
		for _, c := range st.Emulator.Calls(fn) {
			calls[c.RequestID[:strings.LastIndexByte(c.RequestID, '-')]]++ // <job-id>-<attempt>
		}
	}
	if len(calls) != 3*n {
		t.Fatalf("%d distinct jobs invoked, want %d", len(calls), 3*n)
	}
	for seq := 1; seq <= n; seq++ {
		for i := range 3 {
			id := fanout.JobID("orders", "EVENTS", uint64(seq), i)
			if calls[id] != 1 {
				t.Fatalf("job %s invoked %d times", id, calls[id])
			}
		}
	}
	if r := st.Emulator.Stats().Requests; r != 3*n {
		t.Fatalf("%d invocations, want %d", r, 3*n)
	}
	t.Logf("first fan-out killed with %d of %d events acknowledged; the second recognised %d jobs as duplicates", floor, n, dups.Load())
}

// TestEventsReachTheFunctionAsStructuredCloudEvents: plain JSON, binary
// and text events are wrapped, a structured CloudEvent is passed as it is
// and a binary-mode one is made structured; every function call carries
// fn-intent cloudevent. The route creates its stream.
func TestEventsReachTheFunctionAsStructuredCloudEvents(t *testing.T) {
	t.Parallel()
	st := testenv.StartStack(t, testenv.StackConfig{})
	start(t, st, fanout.Config{Routes: []fanout.Route{{
		Name: "ce", Stream: "CE", StreamSubjects: []string{"ce.>"}, Functions: []string{fnEcho},
		Intent: job.IntentCloudEvent, Source: "/test/shop",
	}}}, nil, 0)

	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	structured := []byte(`{"specversion":"1.0","id":"s-1","source":"/elsewhere","type":"com.example.given","data":{"a":1}}`)
	events := []struct {
		subject string
		header  map[string]string
		data    []byte
	}{
		{"ce.orders", map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, []byte(`{"order": 1}`)},
		{"ce.blobs", map[string]string{"Content-Type": "application/octet-stream"}, []byte{0, 1, 2, 255}},
		{"ce.notes", map[string]string{"Content-Type": "text/plain; charset=utf-8"}, []byte("hello")},
		{"ce.given", map[string]string{"Content-Type": "application/cloudevents+json"}, structured},
		{"ce.binary", map[string]string{"ce-specversion": "1.0", "ce-id": "b-1", "ce-source": "/binary", "ce-type": "com.example.binary", "ce-myext": "x", "Content-Type": "application/json"}, []byte(`{"b":2}`)},
	}
	ids := make([]client.JobID, len(events))
	for i, e := range events {
		msg := nats.NewMsg(e.subject)
		for k, v := range e.header {
			msg.Header[k] = []string{v}
		}
		msg.Data = e.data
		ack, err := st.JS.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = fanout.JobID("ce", "CE", ack.Sequence, 0)
	}
	c, err := client.New(ctx, st.Conn, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[client.JobID]map[string]any{}
	raw := map[client.JobID][]byte{}
	err = c.AwaitAll(ctx, ids, func(o client.Outcome) {
		var ce map[string]any
		if o.DeadLettered || json.Unmarshal(o.Body, &ce) != nil {
			t.Errorf("job %s: %+v is not a JSON result", o.JobID, o)
		}
		got[o.JobID], raw[o.JobID] = ce, o.Body
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		ce := got[id]
		for _, attr := range []string{"specversion", "id", "source", "type"} {
			if s, _ := ce[attr].(string); s == "" {
				t.Errorf("event %d: %s missing in %s", i, attr, raw[id])
			}
		}
		if ce["specversion"] != "1.0" {
			t.Errorf("event %d: specversion %v", i, ce["specversion"])
		}
		if tm, ok := ce["time"].(string); ok {
			if _, err := time.Parse(time.RFC3339Nano, tm); err != nil {
				t.Errorf("event %d: time %q", i, tm)
			}
		}
		_, hasData := ce["data"]
		_, hasB64 := ce["data_base64"]
		if hasData == hasB64 {
			t.Errorf("event %d: want exactly one of data and data_base64: %s", i, raw[id])
		}
	}
	check := func(i int, attr string, want any) {
		t.Helper()
		gotJSON, _ := json.Marshal(got[ids[i]][attr])
		wantJSON, _ := json.Marshal(want)
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Errorf("event %d: %s = %s, want %s", i, attr, gotJSON, wantJSON)
		}
	}
	// Plain JSON: wrapped with the route's source, the subject as type.
	check(0, "id", "CE-1")
	check(0, "source", "/test/shop")
	check(0, "type", "ce.orders")
	check(0, "datacontenttype", "application/json")
	check(0, "data", map[string]any{"order": 1})
	// Plain binary: base64.
	check(1, "data_base64", base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255}))
	check(1, "datacontenttype", "application/octet-stream")
	// Plain text: a string.
	check(2, "data", "hello")
	// Structured: as it was sent, byte for byte.
	if !bytes.Equal(raw[ids[3]], structured) {
		t.Errorf("structured event changed: %s", raw[ids[3]])
	}
	// Binary mode: attributes from the ce- headers.
	check(4, "id", "b-1")
	check(4, "source", "/binary")
	check(4, "type", "com.example.binary")
	check(4, "myext", "x")
	check(4, "datacontenttype", "application/json")
	check(4, "data", map[string]any{"b": 2})

	calls := st.Emulator.Calls(fnEcho)
	if len(calls) != len(events) {
		t.Fatalf("%d calls, want %d", len(calls), len(events))
	}
	for _, call := range calls {
		if call.Headers.Get("Fn-Intent") != job.IntentCloudEvent || call.Headers.Get("Content-Type") != fanout.CloudEventCT || !call.Signed {
			t.Errorf("call %s: fn-intent %q, content type %q", call.RequestID, call.Headers.Get("Fn-Intent"), call.Headers.Get("Content-Type"))
		}
	}
	traced := 0
	for _, call := range calls {
		if call.Headers.Get("Traceparent") == events[0].header["traceparent"] {
			traced++
		}
	}
	if traced != 1 {
		t.Errorf("traceparent reached %d calls, want 1", traced)
	}
}

// TestHeaderMappingShapesTheJobs: the jobs of a route that copies,
// renames and sets headers carry exactly those (seen on their dead-letter
// records, which keep every job header), never the event's Nats-* ones.
func TestHeaderMappingShapesTheJobs(t *testing.T) {
	t.Parallel()
	st := testenv.StartStack(t, testenv.StackConfig{Functions: map[string]emulator.Behavior{fnMissing: {Status: 404}}})
	start(t, st, fanout.Config{Routes: []fanout.Route{{
		Name: "mapped", Stream: "MAPPED", StreamSubjects: []string{"mapped.>"}, Functions: []string{fnMissing},
		JobSubject: "invoke.jobs.mapped",
		Headers: fanout.Headers{
			Copy:   []string{"x-tenant", "Nats-Expected-Stream"},
			Rename: map[string]string{"X-Budget": "Invoke-Timeout"},
			Set:    map[string]string{"X-Route": "mapped"},
		},
	}}}, nil, 0)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	msg := nats.NewMsg("mapped.one")
	msg.Header["X-Tenant"] = []string{"acme"}
	msg.Header["X-Budget"] = []string{"5s"}
	msg.Header["X-Private"] = []string{"not copied"}
	msg.Header["Content-Type"] = []string{"application/json"}
	msg.Header[job.HeaderMsgID] = []string{"event-1"}
	msg.Data = []byte(`{}`)
	ack, err := st.JS.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(ctx, st.Conn, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	id := fanout.JobID("mapped", "MAPPED", ack.Sequence, 0)
	o, err := c.Await(ctx, id)
	if err != nil || !o.DeadLettered {
		t.Fatalf("outcome %+v, %v", o, err)
	}
	h := o.Header
	for k, want := range map[string]string{
		"X-Tenant": "acme", job.HeaderTimeout: "5s", "X-Route": "mapped", "Content-Type": "application/json",
		job.HeaderOriginalMsgID: id, job.HeaderOriginalSubject: "invoke.jobs.mapped", job.HeaderFunctionID: fnMissing,
	} {
		if got := job.Lookup(h, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"X-Budget", "X-Private", "Nats-Expected-Stream"} {
		if job.Lookup(h, k) != "" {
			t.Errorf("%s was copied", k)
		}
	}
}

// countingPublisher counts the duplicates JetStream recognised.
type countingPublisher struct {
	fanout.Publisher
	calls, dups *atomic.Int64
}

func (c countingPublisher) EnqueueBatch(ctx context.Context, jobs []client.Job) ([]client.BatchResult, error) {
	res, err := c.Publisher.EnqueueBatch(ctx, jobs)
	c.calls.Add(1)
	for _, r := range res {
		if r.Duplicate {
			c.dups.Add(1)
		}
	}
	return res, err
}

// flakyPublisher stores every batch but reports the first as failed, as
// when the acknowledgements were lost on the way back.
type flakyPublisher struct {
	fanout.Publisher
	calls, dups *atomic.Int64
}

func (f flakyPublisher) EnqueueBatch(ctx context.Context, jobs []client.Job) ([]client.BatchResult, error) {
	res, err := f.Publisher.EnqueueBatch(ctx, jobs)
	for _, r := range res {
		if r.Duplicate {
			f.dups.Add(1)
		}
	}
	if f.calls.Add(1) == 1 && err == nil {
		return res, errors.New("acknowledgements lost")
	}
	return res, err
}

// TestARedeliveredEventEnqueuesNoJobTwice: an event whose jobs were
// stored but not confirmed is given back and fanned out again; its jobs
// are recognised as duplicates and each function runs once.
func TestARedeliveredEventEnqueuesNoJobTwice(t *testing.T) {
	t.Parallel()
	st := testenv.StartStack(t, testenv.StackConfig{Unsigned: true})
	var calls, dups atomic.Int64
	reg := prometheus.NewRegistry()
	start(t, st, fanout.Config{Routes: []fanout.Route{{
		Name: "again", Stream: "AGAIN", StreamSubjects: []string{"again.>"}, Functions: []string{fnA, fnB, fnC},
	}}, Metrics: reg}, func(c *client.Client) fanout.Publisher { return flakyPublisher{c, &calls, &dups} }, 0)
	publishEvents(t, st.JS, 1, "again.one")
	testenv.Eventually(t, "the event fanned out twice and acknowledged", func() bool {
		info := consumerInfo(t, st.JS, "AGAIN", "invoke-route-again")
		return calls.Load() == 2 && info.NumAckPending == 0 && info.NumPending == 0
	})
	testenv.Eventually(t, "three invocations", func() bool { return st.Emulator.Stats().Requests >= 3 })
	if d := dups.Load(); d != 3 {
		t.Fatalf("%d duplicates recognised on the redelivery, want 3", d)
	}
	if r := st.Emulator.Stats().Requests; r != 3 {
		t.Fatalf("%d invocations, want 3", r)
	}
	expectCounts(t, reg, `
invoke_worker_route_events_total{outcome="fanned_out",route="again"} 1
invoke_worker_route_events_total{outcome="given_back",route="again"} 1
invoke_worker_route_events_total{outcome="unusable",route="again"} 0
invoke_worker_route_jobs_total{outcome="duplicate",route="again"} 3
invoke_worker_route_jobs_total{outcome="enqueued",route="again"} 3
invoke_worker_route_jobs_total{outcome="not_stored",route="again"} 0
invoke_worker_route_jobs_total{outcome="refused",route="again"} 0
`)
}

// expectCounts compares the route counters with want, in the text format
// without HELP and TYPE lines.
func expectCounts(t *testing.T, reg *prometheus.Registry, want string) {
	t.Helper()
	text := `# HELP invoke_worker_route_events_total Events a fan-out route took in, by route and outcome: fanned_out (every job stored), given_back (some job not stored; redelivered later), unusable (not a JetStream message; dropped).
# TYPE invoke_worker_route_events_total counter
# HELP invoke_worker_route_jobs_total Jobs a fan-out route made, by route and outcome: enqueued, duplicate (already stored from an earlier delivery of the event), refused (invalid: stored as is for the worker to dead-letter), not_stored.
# TYPE invoke_worker_route_jobs_total counter
` + strings.TrimSpace(want) + "\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(text)); err != nil {
		t.Fatal(err)
	}
}

// TestJobIDsAreSafeAndDistinct.
func TestJobIDsAreSafeAndDistinct(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("S", 200)
	ids := map[string]bool{}
	for _, id := range []string{
		fanout.JobID("r", "EVENTS", 1, 0), fanout.JobID("r", "EVENTS", 1, 1), fanout.JobID("r", "EVENTS", 11, 0),
		fanout.JobID("r", "EV+NTS", 1, 0), fanout.JobID("r", long, 1, 0), fanout.JobID("r", long+"x", 1, 0),
	} {
		if err := job.ValidateJobID(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
		if ids[id] {
			t.Errorf("%q twice", id)
		}
		ids[id] = true
	}
	if got := fanout.JobID("orders", "EVENTS", 42, 2); got != "orders-EVENTS-42-2" {
		t.Errorf("JobID = %q", got)
	}
}

// TestEventMakingInvalidJobsIsDeadLetteredNotDropped: a header mapping that
// makes a job invalid (here a bad Invoke-Timeout) does not drop the event
// with a log line: every job is enqueued, the worker dead-letters each as
// invalid with the reason, and the event is acknowledged.
func TestEventMakingInvalidJobsIsDeadLetteredNotDropped(t *testing.T) {
	t.Parallel()
	st := testenv.StartStack(t, testenv.StackConfig{})
	reg := prometheus.NewRegistry()
	start(t, st, fanout.Config{Routes: []fanout.Route{{
		Name: "broken", Stream: "BROKEN", StreamSubjects: []string{"broken.>"}, Functions: []string{fnEcho, fnMissing},
		JobSubject: "invoke.jobs.broken",
		Headers:    fanout.Headers{Set: map[string]string{job.HeaderTimeout: "soon"}},
	}}, Metrics: reg}, nil, 0)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	ack, err := st.JS.Publish(ctx, "broken.one", []byte(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(ctx, st.Conn, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for n := range 2 {
		id := fanout.JobID("broken", "BROKEN", ack.Sequence, n)
		o, err := c.Await(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !o.DeadLettered || o.Reason != "invalid" || !strings.Contains(o.Error, job.HeaderTimeout) {
			t.Fatalf("job %s: outcome %+v, want dead-lettered as invalid naming %s", id, o, job.HeaderTimeout)
		}
		if string(o.Body) != `{"n":1}` {
			t.Fatalf("job %s: record body %q", id, o.Body)
		}
	}
	testenv.Eventually(t, "the event to be acknowledged", func() bool {
		info := consumerInfo(t, st.JS, "BROKEN", "invoke-route-broken")
		return info.NumAckPending == 0 && info.NumPending == 0 && info.AckFloor.Stream == ack.Sequence
	})
	expectCounts(t, reg, `
invoke_worker_route_events_total{outcome="fanned_out",route="broken"} 1
invoke_worker_route_events_total{outcome="given_back",route="broken"} 0
invoke_worker_route_events_total{outcome="unusable",route="broken"} 0
invoke_worker_route_jobs_total{outcome="duplicate",route="broken"} 0
invoke_worker_route_jobs_total{outcome="enqueued",route="broken"} 0
invoke_worker_route_jobs_total{outcome="not_stored",route="broken"} 0
invoke_worker_route_jobs_total{outcome="refused",route="broken"} 2
`)
}

// capturingPublisher keeps the headers of the jobs it enqueues.
type capturingPublisher struct {
	fanout.Publisher
	mu      *sync.Mutex
	headers *[]nats.Header
}

func (c capturingPublisher) EnqueueBatch(ctx context.Context, jobs []client.Job) ([]client.BatchResult, error) {
	c.mu.Lock()
	for _, j := range jobs {
		*c.headers = append(*c.headers, nats.Header(http.Header(j.Header).Clone()))
	}
	c.mu.Unlock()
	return c.Publisher.EnqueueBatch(ctx, jobs)
}

// TestRoutesStartTheTraceOfTheirJobs: with a tracer provider, each event
// fanned out is a span, the child of the event's traceparent when it has
// one, and every job the event makes carries that span's traceparent; an
// event without one starts a trace.
func TestRoutesStartTheTraceOfTheirJobs(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	st := testenv.StartStack(t, testenv.StackConfig{})
	var (
		mu      sync.Mutex
		headers []nats.Header
	)
	start(t, st, fanout.Config{TracerProvider: tp, Routes: []fanout.Route{{
		Name: "traced", Stream: "TRACED", StreamSubjects: []string{"traced.>"}, Functions: []string{fnA, fnB},
	}}}, func(c *client.Client) fanout.Publisher {
		return capturingPublisher{Publisher: c, mu: &mu, headers: &headers}
	}, 0)
	const eventTrace, eventSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	traced := nats.NewMsg("traced.one")
	traced.Header.Set("Traceparent", "00-"+eventTrace+"-"+eventSpan+"-01") // any spelling
	traced.Header.Set("tracestate", "k=v")
	if _, err := st.JS.PublishMsg(ctx, traced); err != nil {
		t.Fatal(err)
	}
	if _, err := st.JS.Publish(ctx, "traced.two", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	var spans tracetest.SpanStubs
	testenv.Eventually(t, "two fan-out spans", func() bool {
		spans = exp.GetSpans()
		return len(spans) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	if len(headers) != 4 || len(spans) != 2 {
		t.Fatalf("%d jobs, %d spans; want 4 and 2", len(headers), len(spans))
	}
	bySpan := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		bySpan[s.SpanContext.SpanID()] = s
	}
	var fromTraced int
	for _, h := range headers {
		if len(h.Values("Traceparent")) != 0 {
			t.Errorf("job keeps the event's spelling Traceparent: %v", h)
		}
		ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{
			"traceparent": h.Get(job.HeaderTraceparent), "tracestate": h.Get(job.HeaderTracestate)})
		sc := trace.SpanContextFromContext(ctx)
		s, ok := bySpan[sc.SpanID()]
		if !sc.IsValid() || !ok || s.SpanContext.TraceID() != sc.TraceID() {
			t.Fatalf("job's traceparent %q is not a fan-out span", h.Get(job.HeaderTraceparent))
		}
		if s.Name != "invoke.fanout" || s.SpanKind != trace.SpanKindProducer {
			t.Errorf("span %s kind %v", s.Name, s.SpanKind)
		}
		if s.Parent.IsValid() {
			fromTraced++
			if s.Parent.TraceID().String() != eventTrace || s.Parent.SpanID().String() != eventSpan {
				t.Errorf("fan-out span's parent %v, want the event's", s.Parent)
			}
			if h.Get(job.HeaderTracestate) != "k=v" {
				t.Errorf("job's tracestate %q, want the event's", h.Get(job.HeaderTracestate))
			}
		}
	}
	if fromTraced != 2 {
		t.Errorf("%d jobs continue the event's trace, want 2", fromTraced)
	}
}

// TestRouteCreatesNoStreamWhenTheWorkerMayNot: with NoStreamCreate
// (streams.manage: false), a route whose event stream is missing fails
// with an error naming it, even with stream_subjects, and creates nothing;
// once the stream exists, the route runs.
func TestRouteCreatesNoStreamWhenTheWorkerMayNot(t *testing.T) {
	t.Parallel()
	st := testenv.StartStack(t, testenv.StackConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	nc, err := queue.Connect(ctx, queue.ConnConfig{URLs: st.Server.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(ctx, nc, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fanout.Config{JS: js, Publisher: c, NoStreamCreate: true, Routes: []fanout.Route{{
		Name: "locked", Stream: "LOCKED", StreamSubjects: []string{"locked.>"}, Functions: []string{fnEcho},
	}}}
	f, err := fanout.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Ensure(ctx)
	if err == nil || !strings.Contains(err.Error(), "stream LOCKED not found") || !strings.Contains(err.Error(), "streams.manage: false") {
		t.Fatalf("Ensure: %v", err)
	}
	if _, err := js.Stream(ctx, "LOCKED"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("the stream was created anyway: %v", err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LOCKED", Subjects: []string{"locked.>"}}); err != nil {
		t.Fatal(err)
	}
	if err := f.Ensure(ctx); err != nil {
		t.Fatalf("with the stream there: %v", err)
	}
}

// cutShortPublisher stores an event's first job and stops, as EnqueueBatch
// does when its context ends: the jobs it never took get empty results.
type cutShortPublisher struct{ fanout.Publisher }

func (c cutShortPublisher) EnqueueBatch(ctx context.Context, jobs []client.Job) ([]client.BatchResult, error) {
	out := make([]client.BatchResult, len(jobs))
	res, _ := c.Publisher.EnqueueBatch(ctx, jobs[:1])
	out[0] = res[0]
	return out, context.DeadlineExceeded
}

// TestEventCutShortWithAnInvalidJobIsGivenBack: an event whose first job
// is invalid and whose batch was cut short (the publish timeout) must not
// be acknowledged after that one job is stored for the DLQ: the jobs the
// batch never took are not stored. It is given back, to be fanned out
// again.
func TestEventCutShortWithAnInvalidJobIsGivenBack(t *testing.T) {
	t.Parallel()
	st := testenv.StartStack(t, testenv.StackConfig{})
	reg := prometheus.NewRegistry()
	start(t, st, fanout.Config{Routes: []fanout.Route{{
		Name: "short", Stream: "SHORT", StreamSubjects: []string{"short.>"}, Functions: []string{fnEcho, fnMissing},
		JobSubject: "invoke.jobs.short",
		Headers:    fanout.Headers{Set: map[string]string{job.HeaderTimeout: "soon"}},
	}}, Metrics: reg}, func(c *client.Client) fanout.Publisher { return cutShortPublisher{c} }, 0)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	ack, err := st.JS.Publish(ctx, "short.one", []byte(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the event given back", func() bool {
		return consumerInfo(t, st.JS, "SHORT", "invoke-route-short").NumRedelivered > 0
	})
	if info := consumerInfo(t, st.JS, "SHORT", "invoke-route-short"); info.AckFloor.Stream >= ack.Sequence {
		t.Fatalf("the event was acknowledged with one of its two jobs stored (ack floor %d)", info.AckFloor.Stream)
	}
}
