package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/client"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
)

const (
	fnEcho    = "ocid1.fnfunc.oc1.phx.aaaaaaaaecho"
	fnMissing = "ocid1.fnfunc.oc1.phx.aaaaaaaamissing"
	fnSized   = "ocid1.fnfunc.oc1.phx.aaaaaaaasized"
)

func newClient(t *testing.T, nc *nats.Conn, cfg client.Config) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	c, err := client.New(ctx, nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func streamCount(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	return testenv.StreamCount(t, js, name)
}

// TestBatchOfTenThousandIsAcknowledgedWithBoundedPending enqueues 10,000
// jobs from a generator with a window of 32 acknowledgements: every job is
// stored, at most 32 are ever unacknowledged (as the JetStream client
// counts them), and the generator is never asked for a job while more than
// the window's worth are unreported, so memory does not grow with the
// batch.
func TestBatchOfTenThousandIsAcknowledgedWithBoundedPending(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{})
	const total, window = 10_000, 32
	c := newClient(t, n.Conn, client.Config{MaxPending: window})

	// reported is written by the callback's goroutine, read by the
	// generator's.
	var reported atomic.Int64
	produced, maxAhead := int64(0), int64(0)
	jobs := func(yield func(client.Job) bool) {
		for i := range total {
			maxAhead = max(maxAhead, produced-reported.Load())
			produced++
			if !yield(client.Job{FunctionID: fnEcho, ID: fmt.Sprintf("b-%05d", i), Body: []byte{byte(i)}, Subject: "invoke.jobs.batch"}) {
				return
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	next := 0
	sum, err := c.EnqueueAll(ctx, iter.Seq[client.Job](jobs), func(r client.BatchResult) {
		reported.Add(1)
		if r.Index != next || r.ID != fmt.Sprintf("b-%05d", r.Index) || r.Err != nil || r.Duplicate {
			t.Errorf("result %+v, want index %d stored", r, next)
		}
		next++
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Enqueued != total || sum.Failed != 0 || sum.Duplicates != 0 {
		t.Fatalf("summary %+v", sum)
	}
	if sum.PeakPending > window || sum.PeakPending < 2 {
		t.Fatalf("peak of %d unacknowledged jobs; want 2 to %d (pipelined, bounded)", sum.PeakPending, window)
	}
	// One job with the producer, the rest in the window.
	if maxAhead > window+1 {
		t.Fatalf("the generator ran %d jobs ahead of their results; the bound is %d", maxAhead, window+1)
	}
	if got := streamCount(t, n.JS, n.Topology.JobsStream); got != total {
		t.Fatalf("jobs stream holds %d, want %d", got, total)
	}
	t.Logf("peak pending %d, generator ahead by at most %d", sum.PeakPending, maxAhead)
}

// TestBatchReportsEachJobsError: invalid jobs, duplicates and jobs on a
// subject no stream takes each get their own result; the rest are stored.
func TestBatchReportsEachJobsError(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{})
	c := newClient(t, n.Conn, client.Config{MaxPending: 4, AckTimeout: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	jobs := []client.Job{
		{FunctionID: fnEcho, ID: "ok-1"},
		{FunctionID: "ocid1.bucket.oc1..nope", ID: "bad-fn"},
		{FunctionID: fnEcho, ID: "ok-1"}, // the same id again: a duplicate
		{FunctionID: fnEcho, ID: "bad id"},
		{FunctionID: fnEcho, ID: "elsewhere", Subject: "not.a.jobs.subject"},
		{FunctionID: fnEcho, Body: make([]byte, 7<<20)},
		{FunctionID: fnEcho, Intent: "telepathy"},
		{FunctionID: fnEcho, ID: "ok-2"},
	}
	res, err := c.EnqueueBatch(ctx, jobs)
	if !errors.Is(err, client.ErrIncomplete) {
		t.Fatalf("error %v, want ErrIncomplete", err)
	}
	want := []struct {
		ok, dup, invalid bool
	}{{ok: true}, {invalid: true}, {ok: true, dup: true}, {invalid: true}, {}, {invalid: true}, {invalid: true}, {ok: true}}
	for i, w := range want {
		r := res[i]
		if r.Index != i || (r.Err == nil) != w.ok || r.Duplicate != w.dup || errors.Is(r.Err, job.ErrInvalid) != w.invalid {
			t.Errorf("job %d: %+v, want %+v", i, r, w)
		}
	}
	if res[5].ID == "" || res[6].ID == "" {
		t.Errorf("jobs without an id got none: %+v %+v", res[5], res[6])
	}
	if got := streamCount(t, n.JS, n.Topology.JobsStream); got != 2 {
		t.Fatalf("jobs stream holds %d, want 2", got)
	}
}

// TestInvokeReturnsAResultPublishedBeforeItSubscribed: a result stored
// before Await was called is found, as are dead-letter records; a replayed
// job's later result wins over its old record.
func TestInvokeReturnsAResultPublishedBeforeItSubscribed(t *testing.T) {
	t.Parallel()
	st := testenv.StartStack(t, testenv.StackConfig{Functions: map[string]emulator.Behavior{fnMissing: {Status: 404}}})
	c := newClient(t, st.Conn, client.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()

	early, err := c.Enqueue(ctx, client.Job{FunctionID: fnEcho, Body: []byte("early bird")})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := c.Enqueue(ctx, client.Job{FunctionID: fnMissing, Body: []byte("nobody home")})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "both outcomes stored", func() bool {
		return streamCount(t, st.JS, st.Topology.ResultsStream) == 1 && streamCount(t, st.JS, st.Topology.DLQStream) == 1
	})
	o, err := c.Await(ctx, early)
	if err != nil || o.DeadLettered || string(o.Body) != "early bird" || o.Status != 200 || o.JobID != early {
		t.Fatalf("await of a stored result: %+v, %v", o, err)
	}
	o, err = c.Await(ctx, gone)
	var dle *client.DeadLetterError
	if err != nil || !errors.As(o.Err(), &dle) || dle.Reason != "permanent" || dle.Status != 404 || string(o.Body) != "nobody home" {
		t.Fatalf("await of a stored record: %+v, %v", o, err)
	}

	// Invoke: enqueue and wait in one call.
	o, err = c.Invoke(ctx, client.Job{FunctionID: fnEcho, Body: []byte("round trip")})
	if err != nil || string(o.Body) != "round trip" {
		t.Fatalf("invoke: %+v, %v", o, err)
	}
	_, err = c.Invoke(ctx, client.Job{FunctionID: fnMissing})
	if !errors.Is(err, client.ErrDeadLettered) || !errors.As(err, &dle) || dle.Reason != "permanent" {
		t.Fatalf("invoke of a missing function: %v", err)
	}

	// AwaitAll over jobs done before it started and jobs enqueued after.
	late := make([]client.Job, 80) // more than AwaitAll reads by exact subjects
	ids := []client.JobID{early, gone}
	for i := range late {
		late[i] = client.Job{FunctionID: fnEcho, ID: fmt.Sprintf("late-%02d", i), Body: fmt.Appendf(nil, "late %d", i)}
		ids = append(ids, late[i].ID)
	}
	got := map[client.JobID]client.Outcome{}
	done := make(chan error, 1)
	go func() { done <- c.AwaitAll(ctx, ids, func(o client.Outcome) { got[o.JobID] = o }) }()
	if _, err := c.EnqueueBatch(ctx, late); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ids) || !got[gone].DeadLettered || string(got["late-07"].Body) != "late 7" || string(got[early].Body) != "early bird" {
		t.Fatalf("AwaitAll: %d outcomes for %d ids", len(got), len(ids))
	}

	// A record replayed and completed: the result wins.
	rec := got[gone]
	hdr := nats.Header{}
	hdr.Set(job.HeaderJobID, gone)
	hdr.Set(job.HeaderMsgID, gone+"-replayed")
	hdr.Set(job.HeaderFunctionID, fnEcho)
	if _, err := st.JS.PublishMsg(ctx, &nats.Msg{Subject: "invoke.jobs.replay", Header: hdr, Data: rec.Body}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the replayed job's result", func() bool { return streamCount(t, st.JS, st.Topology.ResultsStream) == 83 })
	o, err = c.Await(ctx, gone)
	if err != nil || o.DeadLettered || string(o.Body) != "nobody home" {
		t.Fatalf("await of a replayed job: %+v, %v", o, err)
	}
}

// TestAwaitTimesOutWithoutAnOutcome.
func TestAwaitTimesOutWithoutAnOutcome(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{})
	c := newClient(t, n.Conn, client.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.Await(ctx, "never-enqueued"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want a deadline", err)
	}
	if _, err := c.Await(ctx, "not a job id"); err == nil {
		t.Fatal("a malformed id was accepted")
	}
}

// TestLargeBodyAndResultGoThroughTheObjectStore: against a server with a
// 1 MiB max payload, a 5 MiB body reaches the function byte-exact (the
// emulator verifies its signed SHA-256) and comes back whole, a 3 MiB
// response comes back through the object store, the job's stored body is
// deleted once its result is stored, and bodies over the 6 MiB request
// limit are refused by the publisher and dead-lettered by the worker.
func TestLargeBodyAndResultGoThroughTheObjectStore(t *testing.T) {
	t.Parallel()
	st := testenv.StartStack(t, testenv.StackConfig{
		MaxPayload: 1 << 20,
		Functions:  map[string]emulator.Behavior{fnSized: {ResponseSize: 3 << 20}},
	})
	if got := st.Conn.MaxPayload(); got != 1<<20 {
		t.Fatalf("server max payload %d", got)
	}
	c := newClient(t, st.Conn, client.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	body := make([]byte, 5<<20)
	_, _ = rand.Read(body)
	sum := sha256.Sum256(body)

	o, err := c.Invoke(ctx, client.Job{FunctionID: fnSized, ID: "big-in", Body: body, ContentType: "application/x-test"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(o.Body, emulator.SizedBody(3<<20)) {
		t.Fatalf("3 MiB response came back as %d bytes, not byte-exact", len(o.Body))
	}
	calls := st.Emulator.Calls(fnSized)
	if len(calls) != 1 || calls[0].BodyLen != len(body) || calls[0].Headers.Get("X-Content-Sha256") != base64.StdEncoding.EncodeToString(sum[:]) || !calls[0].Signed {
		t.Fatalf("the function did not get the 5 MiB body byte-exact: %+v", calls)
	}
	o, err = c.Invoke(ctx, client.Job{FunctionID: fnEcho, ID: "big-echo", Body: body})
	if err != nil || !bytes.Equal(o.Body, body) {
		t.Fatalf("5 MiB echo: %d bytes, %v", len(o.Body), err)
	}

	// The stored result message is small and refers to the object.
	rs, err := st.JS.Stream(ctx, st.Topology.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rs.GetLastMsgForSubject(ctx, st.Topology.ResultSubject("big-in"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Data) != 0 || m.Header.Get(job.HeaderBodyObject) != queue.ResultBodiesDefault+"/results/big-in" {
		t.Fatalf("result message: %d bytes, %s %q", len(m.Data), job.HeaderBodyObject, m.Header.Get(job.HeaderBodyObject))
	}
	// Completed jobs' bodies are gone; the results' are kept.
	testenv.Eventually(t, "job bodies deleted", func() bool { return objects(t, st.JS, queue.JobBodiesDefault) == 0 })
	if n := objects(t, st.JS, queue.ResultBodiesDefault); n != 2 {
		t.Fatalf("%d result objects, want 2", n)
	}

	// Over the request limit: refused by the publisher...
	tooBig := make([]byte, 6<<20+1)
	if _, err := c.Enqueue(ctx, client.Job{FunctionID: fnEcho, Body: tooBig}); !errors.Is(err, job.ErrInvalid) {
		t.Fatalf("a 6 MiB + 1 body was not refused: %v", err)
	}
	// ...and, stored by hand past the publisher, dead-lettered by the worker.
	ref, err := queue.NewBodies(st.JS, st.Topology).PutJob(ctx, "sneaky", tooBig)
	if err != nil {
		t.Fatal(err)
	}
	hdr := nats.Header{}
	hdr.Set(job.HeaderFunctionID, fnEcho)
	hdr.Set(job.HeaderMsgID, "sneaky")
	hdr.Set(job.HeaderBodyObject, ref)
	if _, err := st.JS.PublishMsg(ctx, &nats.Msg{Subject: "invoke.jobs.x", Header: hdr}); err != nil {
		t.Fatal(err)
	}
	o, err = c.Await(ctx, "sneaky")
	if err != nil || !o.DeadLettered || o.Reason != "invalid" || o.Header.Get(job.HeaderBodyObject) != ref || len(o.Body) != 0 {
		t.Fatalf("oversized stored body: %+v, %v", o, err)
	}
	if len(st.Emulator.Calls(fnEcho)) != 1 {
		t.Fatal("the oversized body reached the function")
	}
}

func objects(t *testing.T, js jetstream.JetStream, bucket string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	obs, err := js.ObjectStore(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	list, err := obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}
