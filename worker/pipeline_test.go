package worker_test

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/worker"
)

// TestThousandJobsYieldEachResultExactlyOnce publishes 1,000 jobs with
// binary bodies and checks that INVOKE_RESULTS holds exactly one result per
// job, byte-exact, that the jobs stream is empty (every job acknowledged,
// and only after its result was stored: the jobs are acked by the worker
// after PublishMsg returned the result's PubAck), and that the emulator
// verified every request's signature.
func TestThousandJobsYieldEachResultExactlyOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, worker.Config{Concurrency: 32}, nil)
	const n = 1000
	bodies := make(map[string][]byte, n)
	for i := range n {
		id := fmt.Sprintf("job-%04d", i)
		body := make([]byte, 64+i%512)
		_, _ = rand.Read(body)
		bodies[id] = body
		h.publish("invoke.jobs.test", jobHeader(fnEcho, id), body)
	}
	h.waitSettled(n, 0)

	seen := map[string]bool{}
	for _, m := range h.streamMsgs(h.nats.Topology.ResultsStream) {
		id := m.Header.Get(job.HeaderJobID)
		if seen[id] {
			t.Fatalf("result of %s stored twice", id)
		}
		seen[id] = true
		if m.Subject != "invoke.results."+id {
			t.Fatalf("result subject %s for job %s", m.Subject, id)
		}
		if !bytes.Equal(m.Data, bodies[id]) {
			t.Fatalf("result of %s is not byte-exact", id)
		}
		if m.Header.Get(job.HeaderMsgID) != id || m.Header.Get(job.HeaderFunctionID) != fnEcho ||
			m.Header.Get(job.HeaderStatus) != "200" || m.Header.Get(job.HeaderAttempts) != "1" {
			t.Fatalf("result headers of %s: %v", id, m.Header)
		}
		if _, err := time.Parse(job.TimeFormatMillis, m.Header.Get(job.HeaderCompletedAt)); err != nil {
			t.Fatalf("Invoke-Completed-At: %v", err)
		}
		if m.Header.Get(job.HeaderDurationMs) == "" || m.Header.Get(job.HeaderOpcRequestID) == "" || m.Header.Get(job.HeaderFnCallID) == "" {
			t.Fatalf("result of %s lacks duration, opc-request-id or fn-call-id: %v", id, m.Header)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct results, want %d", len(seen), n)
	}
	st := h.emu.Stats()
	if st.RejectedSignatures != 0 || st.Calls != n {
		t.Fatalf("emulator: %d calls, %d rejected signatures; want %d and 0", st.Calls, st.RejectedSignatures, n)
	}
	for _, c := range h.emu.Calls(fnEcho) {
		if !c.Signed {
			t.Fatalf("unsigned call reached the function: %+v", c.RequestID)
		}
	}
}

// TestSixMiBBinaryBodyRoundTripsByteExact sends a body at OCI's 6 MiB
// request limit through NATS, the signed invocation and back.
func TestSixMiBBinaryBodyRoundTripsByteExact(t *testing.T) {
	t.Parallel()
	h := newHarness(t, worker.Config{Concurrency: 2}, nil)
	body := make([]byte, 6<<20)
	_, _ = rand.Read(body)
	hdr := jobHeader(fnEcho, "big-1")
	hdr.Set(job.HeaderContentType, "application/x-binary-test")
	h.publish("invoke.jobs.big", hdr, body)
	h.waitSettled(1, 0)
	res := h.streamMsgs(h.nats.Topology.ResultsStream)[0]
	if !bytes.Equal(res.Data, body) {
		t.Fatalf("6 MiB body changed on the way (%d bytes back)", len(res.Data))
	}
	if ct := res.Header.Get(job.HeaderContentType); ct != "application/x-binary-test" {
		t.Fatalf("content type %q did not reach the function and come back", ct)
	}
}

// TestInvalidJobsAreDeadLetteredWithOriginalBodyAndHeaders covers every
// kind of malformed job: each lands in the DLQ as invalid, byte-exact, with
// its headers and a clear Invoke-Error, and the worker keeps going (a good
// job published after them completes).
func TestInvalidJobsAreDeadLetteredWithOriginalBodyAndHeaders(t *testing.T) {
	t.Parallel()
	h := newHarness(t, worker.Config{RequestLimit: 1024}, nil)
	cases := []struct {
		name    string
		hdr     nats.Header
		body    []byte
		wantID  string // job id in the DLQ subject
		wantErr string
	}{
		{"no function id", jobHeader("", "nofn"), []byte("a"), "nofn", "missing Invoke-Function-Id"},
		{"malformed ocid", jobHeader("ocid1.instance.oc1.phx.abc", "badocid"), []byte("b"), "badocid", "not a function OCID"},
		{"bad intent", with(jobHeader(fnEcho, "badintent"), job.HeaderFnIntent, "rpc"), []byte("c"), "badintent", "Fn-Intent"},
		{"bad invoke type", with(jobHeader(fnEcho, "badtype"), job.HeaderFnInvokeType, "async"), []byte("d"), "badtype", "Fn-Invoke-Type"},
		{"unsafe job id", with(jobHeader(fnEcho, "m1"), job.HeaderJobID, "a.b*c"), []byte("e"), "", "Invoke-Job-Id"},
		{"body over the limit", jobHeader(fnEcho, "toobig"), bytes.Repeat([]byte{0xff}, 1025), "toobig", "over the function request limit"},
		{"bad timeout", with(jobHeader(fnEcho, "badtimeout"), job.HeaderTimeout, "soon"), []byte("f"), "badtimeout", "Invoke-Timeout"},
		{"bad deadline", with(jobHeader(fnEcho, "baddeadline"), job.HeaderDeadline, "tomorrow"), []byte("g"), "baddeadline", "Invoke-Deadline"},
	}
	seqs := map[string]uint64{}
	for _, c := range cases {
		c.hdr.Set("X-Custom", "kept-"+c.name)
		ack := h.publish("invoke.jobs.bad", c.hdr, c.body)
		seqs[c.name] = ack.Sequence
	}
	h.publish("invoke.jobs.good", jobHeader(fnEcho, "after-the-bad-ones"), []byte("ok"))
	h.waitSettled(1, uint64(len(cases)))

	byCustom := map[string]*struct {
		subject string
		hdr     nats.Header
		data    []byte
	}{}
	for _, m := range h.streamMsgs(h.nats.Topology.DLQStream) {
		byCustom[m.Header.Get("X-Custom")] = &struct {
			subject string
			hdr     nats.Header
			data    []byte
		}{m.Subject, m.Header, m.Data}
	}
	for _, c := range cases {
		r := byCustom["kept-"+c.name]
		if r == nil {
			t.Fatalf("%s: no dead-letter record", c.name)
		}
		wantID := c.wantID
		if wantID == "" {
			wantID = fmt.Sprintf("%s-%d", h.nats.Topology.JobsStream, seqs[c.name])
		}
		if r.subject != "invoke.dlq.invalid."+wantID {
			t.Errorf("%s: subject %s, want invoke.dlq.invalid.%s", c.name, r.subject, wantID)
		}
		if !bytes.Equal(r.data, c.body) {
			t.Errorf("%s: body not kept byte for byte", c.name)
		}
		if got := r.hdr.Get(job.HeaderDLQReason); got != string(dlq.ReasonInvalid) {
			t.Errorf("%s: reason %q", c.name, got)
		}
		if e := r.hdr.Get(job.HeaderError); !strings.Contains(e, c.wantErr) {
			t.Errorf("%s: Invoke-Error %q does not mention %q", c.name, e, c.wantErr)
		}
		if id := r.hdr.Get(job.HeaderMsgID); id != "" && id == c.hdr.Get(job.HeaderMsgID) {
			t.Errorf("%s: the original Nats-Msg-Id must not be copied: %v", c.name, r.hdr)
		}
		if orig := c.hdr.Get(job.HeaderMsgID); r.hdr.Get(job.HeaderOriginalMsgID) != orig {
			t.Errorf("%s: Invoke-Original-Msg-Id %q, want %q", c.name, r.hdr.Get(job.HeaderOriginalMsgID), orig)
		}
		for _, k := range []string{job.HeaderOriginalSubject, job.HeaderOriginalSeq, job.HeaderFirstSeenAt, job.HeaderFailedAt, job.HeaderWorker, job.HeaderAttempts} {
			if r.hdr.Get(k) == "" {
				t.Errorf("%s: missing %s", c.name, k)
			}
		}
		if r.hdr.Get(job.HeaderAttempts) != "0" {
			t.Errorf("%s: %s attempts for a job never invoked", c.name, r.hdr.Get(job.HeaderAttempts))
		}
		if r.hdr.Get(job.HeaderOriginalSubject) != "invoke.jobs.bad" || r.hdr.Get(job.HeaderOriginalSeq) != fmt.Sprint(seqs[c.name]) {
			t.Errorf("%s: provenance %s/%s", c.name, r.hdr.Get(job.HeaderOriginalSubject), r.hdr.Get(job.HeaderOriginalSeq))
		}
	}
	if st := h.emu.Stats(); st.Calls != 1 {
		t.Fatalf("the function was called %d times; only the valid job may reach it", st.Calls)
	}
}

func with(h nats.Header, k, v string) nats.Header { h.Set(k, v); return h }

// TestNotFoundIsDeadLetteredAsPermanentAfterOneAttempt: a 404 cannot be
// fixed by retrying.
func TestNotFoundIsDeadLetteredAsPermanentAfterOneAttempt(t *testing.T) {
	t.Parallel()
	h := newHarness(t, worker.Config{}, map[string]emulator.Behavior{fnBroken: {Status: 404}})
	h.publish("invoke.jobs.x", jobHeader(fnBroken, "nf-1"), []byte("hi"))
	h.waitSettled(0, 1)
	r := h.streamMsgs(h.nats.Topology.DLQStream)[0]
	if r.Subject != "invoke.dlq.permanent.nf-1" || r.Header.Get(job.HeaderStatus) != "404" || r.Header.Get(job.HeaderAttempts) != "1" {
		t.Fatalf("record %s %v", r.Subject, r.Header)
	}
	if e := r.Header.Get(job.HeaderError); !strings.Contains(e, "NotAuthorizedOrNotFound") {
		t.Fatalf("Invoke-Error %q lacks the OCI error code", e)
	}
	if calls := h.emu.Stats().Functions[fnBroken].Calls; calls != 1 {
		t.Fatalf("%d calls, want 1", calls)
	}
}

// TestConcurrencyNeverExceedsTheBound measures in-flight calls at the
// emulator while 60 slow jobs run through a worker limited to 4.
func TestConcurrencyNeverExceedsTheBound(t *testing.T) {
	t.Parallel()
	h := newHarness(t, worker.Config{Concurrency: 4}, map[string]emulator.Behavior{fnEcho: {Latency: 20 * time.Millisecond}})
	for i := range 60 {
		h.publish("invoke.jobs.c", jobHeader(fnEcho, fmt.Sprintf("c-%d", i)), []byte("x"))
	}
	h.waitSettled(60, 0)
	if max := h.emu.Stats().MaxInFlight; max > 4 || max < 2 {
		t.Fatalf("max in flight %d, want at most 4 (and some parallelism)", max)
	}
}

// TestWrongKeyIsRejectedByTheEmulator: a worker signing with a key the
// emulator does not know gets 401, which is permanent.
func TestWrongKeyIsRejectedByTheEmulator(t *testing.T) {
	t.Parallel()
	h := &harness{t: t}
	h.nats = testenv.StartNATS(t, queue.Topology{})
	h.creds = testenv.Credentials(t)
	other := testenv.Credentials(t)
	other.PublicKey = &otherKey(t).PublicKey
	h.emu = testenv.StartEmulator(t, other, nil)
	h.startWorker(worker.Config{}, testenv.Signer(t, h.creds))
	h.publish("invoke.jobs.k", jobHeader(fnEcho, "wrongkey"), []byte("x"))
	h.waitSettled(0, 1)
	r := h.streamMsgs(h.nats.Topology.DLQStream)[0]
	if r.Header.Get(job.HeaderStatus) != "401" || r.Header.Get(job.HeaderDLQReason) != "permanent" {
		t.Fatalf("record %v", r.Header)
	}
	if e := r.Header.Get(job.HeaderError); strings.Contains(e, "Signature") || strings.Contains(e, "keyId") {
		t.Fatalf("Invoke-Error leaks signing material: %q", e)
	}
	if st := h.emu.Stats(); st.RejectedSignatures != 1 || st.Calls != 0 {
		t.Fatalf("emulator stats %+v", st)
	}
}

// TestLargePrefetchedBodiesNeverMakeTheWorkerASlowConsumer: with jobs of
// 512 KiB queued, one pull for 64 of them would put 32 MiB on its way at
// once, far past a server max_pending of 2 MiB, and the server would cut
// the worker off as a slow consumer (every job in flight then redelivered
// after the ack wait, charged an attempt). PullMaxBytes keeps each pull
// under it.
func TestLargePrefetchedBodiesNeverMakeTheWorkerASlowConsumer(t *testing.T) {
	t.Parallel()
	h := &harness{t: t}
	h.nats = testenv.StartNATS(t, queue.Topology{}, testenv.MaxPending(2<<20), testenv.MaxPayload(1<<20))
	h.creds = testenv.Credentials(t)
	h.emu = testenv.StartEmulator(t, h.creds, nil)
	const n = 96
	bodies := make(map[string][]byte, n)
	for i := range n {
		id := fmt.Sprintf("big-%03d", i)
		bodies[id] = make([]byte, 512<<10)
		_, _ = rand.Read(bodies[id])
		h.publish("invoke.jobs.big", jobHeader(fnEcho, id), bodies[id])
	}
	h.startWorker(worker.Config{Concurrency: 64, PullMaxBytes: 1 << 20}, testenv.Signer(t, h.creds))
	h.waitSettled(n, 0)

	if sc := h.nats.Server.Server().NumSlowConsumers(); sc != 0 {
		t.Errorf("the server cut off %d slow consumers", sc)
	}
	for _, m := range h.streamMsgs(h.nats.Topology.ResultsStream) {
		id := m.Header.Get(job.HeaderJobID)
		if !bytes.Equal(m.Data, bodies[id]) || m.Header.Get(job.HeaderAttempts) != "1" {
			t.Errorf("result of %s: %d bytes, attempts %s", id, len(m.Data), m.Header.Get(job.HeaderAttempts))
		}
	}
	if calls := h.emu.Stats().Calls; calls != n {
		t.Errorf("%d invocations for %d jobs", calls, n)
	}
}

// TestCompressedAnswerIsStoredAsSent: a function that compresses its
// answer on purpose gets a result with the compressed bytes and their
// Content-Encoding, not a body the HTTP client decompressed on the way.
func TestCompressedAnswerIsStoredAsSent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, worker.Config{}, map[string]emulator.Behavior{fnEcho: {Gzip: true}})
	h.publish("invoke.jobs.gz", jobHeader(fnEcho, "gz-1"), []byte("squeeze me"))
	h.waitSettled(1, 0)
	res := h.streamMsgs(h.nats.Topology.ResultsStream)[0]
	if enc := res.Header.Get(job.HeaderContentEncoding); enc != "gzip" {
		t.Fatalf("result Content-Encoding %q, want gzip", enc)
	}
	zr, err := gzip.NewReader(bytes.NewReader(res.Data))
	if err != nil {
		t.Fatalf("result body is not the gzip stream the function sent: %v", err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || string(plain) != "squeeze me" {
		t.Fatalf("decompressed %q, %v", plain, err)
	}
}

// TestReplyToIntoTheWorkersOwnStreamsIsInvalid: a reply sent to a jobs,
// results or waiting subject would be stored there (a job run again, a
// forged result); such a job is refused before it is invoked.
func TestReplyToIntoTheWorkersOwnStreamsIsInvalid(t *testing.T) {
	t.Parallel()
	h := newHarness(t, worker.Config{OwnSubjects: []string{"invoke.jobs.>", "invoke.dlq.>"}}, nil)
	for i, reply := range []string{"invoke.jobs.again", "invoke.results.someone-else", "invoke.dlq.invalid.x", "invoke.wait.7"} {
		hdr := jobHeader(fnEcho, fmt.Sprintf("reply-%d", i))
		hdr.Set(job.HeaderReplyTo, reply)
		h.publish("invoke.jobs.r", hdr, []byte("x"))
	}
	ok := jobHeader(fnEcho, "reply-ok")
	ok.Set(job.HeaderReplyTo, "my.inbox.1")
	h.publish("invoke.jobs.r", ok, []byte("x"))
	h.waitSettled(1, 4)
	for _, r := range h.streamMsgs(h.nats.Topology.DLQStream) {
		if !strings.HasPrefix(r.Subject, "invoke.dlq.invalid.") || !strings.Contains(r.Header.Get(job.HeaderError), job.HeaderReplyTo) {
			t.Fatalf("record %s: %s", r.Subject, r.Header.Get(job.HeaderError))
		}
	}
	if c := h.emu.Stats().Functions[fnEcho].Calls; c != 1 {
		t.Fatalf("%d calls; the refused jobs reached the function", c)
	}
}
