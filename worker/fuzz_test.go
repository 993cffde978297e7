package worker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/worker"
)

// fuzzNames are the header names a fuzzed job may carry (in any case, any
// number of times): every job header the worker reads, and some it must
// not pass on. Invoke-Timeout is left out on purpose: a publisher's 1ns
// timeout makes every attempt time out against a healthy function, which
// the retry rules treat as the service's trouble; that is not what this
// target is about. Nats-* headers other than Nats-Msg-Id would change how
// JetStream stores the job (rollups, expectations) rather than the job.
var fuzzNames = []string{
	job.HeaderFunctionID, job.HeaderMsgID, job.HeaderJobID, job.HeaderFnIntent, job.HeaderFnInvokeType,
	job.HeaderContentType, job.HeaderDeadline, job.HeaderReplyTo, job.HeaderOpcRequestID,
	job.HeaderTraceparent, job.HeaderTracestate, job.HeaderBodyObject, dlq.HeaderReplayCount,
	"Authorization", "Host", "Content-Length", "Transfer-Encoding", "Accept-Encoding", "X-Custom",
}

// fuzzFunctions are the function a job names before its fuzzed headers
// apply, by the input's first byte: one that echoes, one the service
// does not know (404), one with no endpoint, none, and one that is always
// busy (409 IncorrectState: retried to exhaustion, but not a sign of an
// unhealthy service, so no breaker counts it).
var fuzzFunctions = []string{fnEcho, fnBroken, "ocid1.fnfunc.oc1.phx.aaaaaaaanowhere", "", fnOther}

// A fuzzed header block is a sequence of entries: name (low 6 bits: index
// into fuzzNames; high 2: spelling), repeat (the value is repeated
// repeat+1 times, for huge values), value length, value.
type fuzzHeader struct {
	name     string
	spelling byte // 0 as written, 1 lower case, 2 upper case, 3 alternating
	value    string
	repeat   byte
}

func encodeHeaders(hs ...fuzzHeader) []byte {
	var b []byte
	for _, h := range hs {
		i := -1
		for j, n := range fuzzNames {
			if n == h.name {
				i = j
			}
		}
		if i < 0 || len(h.value) > 255 {
			panic("bad seed header " + h.name)
		}
		b = append(b, byte(i)|h.spelling<<6, h.repeat, byte(len(h.value)))
		b = append(b, h.value...)
	}
	return b
}

// decodeHeaders reads a header block into a NATS header. Every job id
// value gets suffix, so that inputs never share an id (JetStream would
// take a second job or result with an id it saw as a duplicate).
func decodeHeaders(b []byte, fn, suffix string) nats.Header {
	h := nats.Header{}
	if fn != "" {
		h.Set(job.HeaderFunctionID, fn)
	}
	size := 0
	for len(b) >= 3 && size < 1<<20 {
		sel, repeat, n := b[0], b[1], min(int(b[2]), len(b)-3)
		name, v := respell(fuzzNames[int(sel&0x3f)%len(fuzzNames)], sel>>6), string(b[3:3+n])
		b = b[3+n:]
		v = strings.Repeat(v, int(repeat)+1)
		switch {
		case strings.EqualFold(name, job.HeaderJobID), strings.EqualFold(name, job.HeaderMsgID):
			v += suffix
		case strings.EqualFold(name, job.HeaderReplyTo):
			// Replies stay out of the streams: a reply published into
			// invoke.results.> would be a second outcome.
			v = "fuzz.replies." + v
		}
		h[name] = append(h[name], v)
		size += len(name) + len(v)
	}
	return h
}

func respell(name string, spelling byte) string {
	switch spelling {
	case 1:
		return strings.ToLower(name)
	case 2:
		return strings.ToUpper(name)
	case 3:
		b := []byte(name)
		for i := range b {
			if i%2 == 0 {
				b[i] = bytes.ToUpper(b[i : i+1])[0]
			} else {
				b[i] = bytes.ToLower(b[i : i+1])[0]
			}
		}
		return string(b)
	}
	return name
}

// FuzzWorkerJobs sends jobs with random header maps and bodies (control
// characters, huge values, other spellings, repeated headers, invalid
// UTF-8) through the real worker, NATS and emulator, one job at a time,
// and checks what must hold whatever a publisher sends:
//
//   - every job ends with exactly one result or one dead-letter record;
//   - nothing panics or logs an error, and no circuit breaker changes state
//     (every function is healthy, so a failure the breaker counts is the
//     job's, misclassed);
//   - no job fails with a network error, or is retried to exhaustion unless
//     its function is the busy one: the network is fine, so such a failure
//     is a job the worker should have refused up front;
//   - an invalid job never reaches the emulator, and has no attempts.
//
// NATS, the emulator and the worker start once for the whole target.
func FuzzWorkerJobs(f *testing.F) {
	f.Add(uint8(0), []byte(nil), []byte("hello"))
	// Defect: a control character in a header passed on to the function.
	f.Add(uint8(0), encodeHeaders(fuzzHeader{name: job.HeaderOpcRequestID, value: "req\x00id"}), []byte("x"))
	f.Add(uint8(0), encodeHeaders(fuzzHeader{name: job.HeaderContentType, spelling: 1, value: "text/plain\x01"}), []byte("x"))
	f.Add(uint8(0), encodeHeaders(fuzzHeader{name: job.HeaderTraceparent, spelling: 2, value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\x7f"}), []byte("x"))
	f.Add(uint8(0), encodeHeaders(
		fuzzHeader{name: job.HeaderTraceparent, value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		fuzzHeader{name: job.HeaderTracestate, value: "v=\x1f"}), []byte("x"))
	f.Add(uint8(0), encodeHeaders(fuzzHeader{name: job.HeaderFnIntent, value: "cloudevent\x00"}), []byte("x"))
	f.Add(uint8(0), encodeHeaders(fuzzHeader{name: job.HeaderFnInvokeType, spelling: 3, value: "sync\x02"}), []byte("x"))
	// Huge values.
	f.Add(uint8(0), encodeHeaders(fuzzHeader{name: job.HeaderTracestate, value: strings.Repeat("k=v,", 60), repeat: 60}), []byte("x"))
	f.Add(uint8(0), encodeHeaders(fuzzHeader{name: job.HeaderOpcRequestID, value: strings.Repeat("r", 200), repeat: 1}), []byte("x"))
	f.Add(uint8(0), encodeHeaders(fuzzHeader{name: "X-Custom", value: strings.Repeat("x", 255), repeat: 255}), []byte("x"))
	// Found by this target: headers just under JetStream's 64 KiB limit,
	// and a job that fails: its record, with more headers, must still be
	// stored.
	f.Add(uint8(1), encodeHeaders(fuzzHeader{name: "X-Custom", value: strings.Repeat("x", 255), repeat: 255}), []byte("x"))
	// The same, retried: the job waits between attempts.
	f.Add(uint8(4), encodeHeaders(fuzzHeader{name: "X-Custom", value: strings.Repeat("x", 255), repeat: 255}), []byte("x"))
	f.Add(uint8(4), []byte(nil), []byte("busy"))
	// CR and LF: NATS turns them into spaces, so they arrive as field content.
	f.Add(uint8(0), encodeHeaders(fuzzHeader{name: job.HeaderContentType, value: "text/plain\r\nX-Evil: 1"}), []byte("x"))
	// Job ids: refused, repeated in several spellings.
	f.Add(uint8(0), encodeHeaders(fuzzHeader{name: job.HeaderJobID, value: "bad id\x00"}), []byte("x"))
	f.Add(uint8(0), encodeHeaders(
		fuzzHeader{name: job.HeaderJobID, spelling: 1, value: "good"},
		fuzzHeader{name: job.HeaderJobID, spelling: 2, value: "bad id"},
		fuzzHeader{name: job.HeaderMsgID, value: "m.1"}), []byte("x"))
	// A second value is never read: only the first goes on.
	f.Add(uint8(0), encodeHeaders(
		fuzzHeader{name: job.HeaderOpcRequestID, value: "req-ok"},
		fuzzHeader{name: job.HeaderOpcRequestID, value: "req\x00bad"}), []byte("x"))
	// Invalid UTF-8 in a value (HTTP carries bytes from 0x80 up) and in the body.
	f.Add(uint8(0), encodeHeaders(fuzzHeader{name: job.HeaderContentType, value: "text/plain; x=\xff\xfe"}), []byte{0xff, 0x00, 0xc3})
	// Other headers and outcomes.
	f.Add(uint8(0), encodeHeaders(
		fuzzHeader{name: job.HeaderFnIntent, spelling: 2, value: "CloudEvent"},
		fuzzHeader{name: job.HeaderFnInvokeType, value: "detached"},
		fuzzHeader{name: job.HeaderReplyTo, value: "a.b"}), []byte("{}"))
	f.Add(uint8(0), encodeHeaders(fuzzHeader{name: job.HeaderReplyTo, value: "a\x00b"}), []byte("x"))
	f.Add(uint8(0), encodeHeaders(fuzzHeader{name: job.HeaderBodyObject, value: "bucket/name"}), []byte(nil))
	f.Add(uint8(0), encodeHeaders(fuzzHeader{name: job.HeaderDeadline, value: "2001-01-01T00:00:00Z"}), []byte("x"))
	f.Add(uint8(0), encodeHeaders(
		fuzzHeader{name: "Authorization", value: "Signature secret\x00"},
		fuzzHeader{name: "Host", value: "evil.example"},
		fuzzHeader{name: "Content-Length", value: "99"},
		fuzzHeader{name: "Transfer-Encoding", value: "chunked"},
		fuzzHeader{name: "Accept-Encoding", value: "gzip"}), []byte("x"))
	f.Add(uint8(1), []byte(nil), []byte("x"))
	f.Add(uint8(2), []byte(nil), []byte("x"))
	f.Add(uint8(3), encodeHeaders(fuzzHeader{name: job.HeaderFunctionID, spelling: 1, value: "ocid1.fnfunc.oc1.phx.\x00"}), []byte("x"))

	env := startFuzzEnv(f)
	f.Fuzz(func(t *testing.T, fnSel uint8, headers, body []byte) {
		env.run(t, fuzzFunctions[int(fnSel)%len(fuzzFunctions)], headers, body)
	})
}

type fuzzEnv struct {
	nats *testenv.NATS
	emu  *emulator.Emulator
	w    *worker.Worker
	logs *syncBuffer

	mu       sync.Mutex // one input at a time: the checks count stream deltas
	inputs   int
	outcomes uint64 // results and records so far
}

func startFuzzEnv(f *testing.F) *fuzzEnv {
	f.Helper()
	env := &fuzzEnv{logs: &syncBuffer{}}
	env.nats = testenv.StartNATS(f, queue.Topology{})
	creds := testenv.Credentials(f)
	env.emu = testenv.StartEmulator(f, creds, map[string]emulator.Behavior{fnBroken: {Status: 404}, fnOther: {Status: 409, Code: "IncorrectState"}})
	client, err := invoke.New(invoke.Config{
		Resolver: invoke.StaticEndpoints{fnEcho: env.emu.URL(), fnBroken: env.emu.URL(), fnOther: env.emu.URL()},
		Signer:   testenv.Signer(f, creds), MaxConns: 4, ReadTimeout: 10 * time.Second,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(client.CloseIdleConnections)
	topo := env.nats.Topology
	state, err := queue.EnsureStateStore(context.Background(), env.nats.JS, "", time.Hour, 1)
	if err != nil {
		f.Fatal(err)
	}
	results, err := env.nats.JS.Stream(context.Background(), topo.ResultsStream)
	if err != nil {
		f.Fatal(err)
	}
	log := zerolog.New(env.logs).Level(zerolog.WarnLevel)
	cons := env.nats.Consumer
	env.w, err = worker.New(worker.Config{
		ID: "fuzz-worker", Concurrency: 4, ResultsStream: topo.ResultsStream, ResultsPrefix: topo.ResultsPrefix,
		Retry: worker.RetryConfig{MaxAttempts: 3, InitialInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond,
			Multiplier: 2, MaxElapsed: time.Minute, Randomization: 0.2},
		// As sensitive as a breaker can be: any failure it counts opens it
		// (until a hundred successes dilute the ratio), and the change is
		// logged, which the checks look for.
		Breaker: worker.BreakerConfig{MinRequests: 1, FailureRatio: 0.01, Interval: time.Hour, OpenTimeout: 200 * time.Millisecond},
		Logger:  &log,
	}, worker.Deps{
		Consumer:      func(context.Context) (jetstream.Consumer, error) { return cons, nil },
		State:         state,
		StoredResults: results,
		Invoker:       client,
		Results:       env.nats.JS,
		DeadLetters:   dlq.NewWriter(env.nats.JS, topo.DLQStream, topo.DLQPrefix),
		Replies:       env.nats.Conn,
	})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.w.Run(ctx) }()
	f.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				f.Errorf("worker.Run: %v", err)
			}
		case <-time.After(testenv.Wait):
			f.Errorf("worker did not stop")
		}
	})
	return env
}

// run publishes one job and checks how it ended.
func (env *fuzzEnv) run(t *testing.T, fn string, headers, body []byte) {
	env.mu.Lock()
	defer env.mu.Unlock()
	env.inputs++
	topo := env.nats.Topology
	hdr := decodeHeaders(headers, fn, "-fz"+strconv.Itoa(env.inputs))
	count := func(stream string) uint64 { return testenv.StreamCount(t, env.nats.JS, stream) }
	if got := count(topo.ResultsStream) + count(topo.DLQStream); got != env.outcomes {
		t.Fatalf("%d results and records before this job, want %d: an earlier job ended twice", got, env.outcomes)
	}
	requests, results := env.emu.Stats().Requests, count(topo.ResultsStream)
	logged := env.logs.Len()

	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	ack, err := env.nats.JS.PublishMsg(ctx, &nats.Msg{Subject: "invoke.jobs.fuzz", Header: hdr, Data: body})
	if err != nil || ack.Duplicate {
		return // not a job: NATS refused the message, or took it for another
	}
	desc := describe(hdr)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the worker's warnings and errors during this job:\n%s", tail(env.logs.From(logged), 4096))
		}
	})
	testenv.Eventually(t, "the job to end", func() bool {
		return count(topo.JobsStream) == 0 && count(topo.ResultsStream)+count(topo.DLQStream) > env.outcomes
	})
	env.outcomes++
	if got := count(topo.ResultsStream) + count(topo.DLQStream); got != env.outcomes {
		t.Fatalf("the job ended %d times", got-env.outcomes+1)
	}

	if count(topo.ResultsStream) > results {
		if res := lastMsg(t, env.nats.JS, topo.ResultsStream); res.Header.Get(job.HeaderStatus) != "200" && res.Header.Get(job.HeaderStatus) != "202" {
			t.Errorf("job %s: result with status %q", desc, res.Header.Get(job.HeaderStatus))
		}
	} else {
		rec := lastMsg(t, env.nats.JS, topo.DLQStream)
		reason, attempts := rec.Header.Get(job.HeaderDLQReason), rec.Header.Get(job.HeaderAttempts)
		what := fmt.Sprintf("job %s dead-lettered as %s after %s attempts: %s", desc, reason, attempts, rec.Header.Get(job.HeaderError))
		switch {
		case rec.Header.Get(job.HeaderOriginalSeq) != strconv.FormatUint(ack.Sequence, 10):
			t.Errorf("%s; the record is of job %s, not %d", what, rec.Header.Get(job.HeaderOriginalSeq), ack.Sequence)
		case reason == string(dlq.ReasonExhausted) && rec.Header.Get(job.HeaderStatus) != "409":
			t.Errorf("%s; nothing here fails but the busy function", what)
		case strings.Contains(rec.Header.Get(dlq.HeaderAttemptHistory), invoke.ErrNetwork.Error()):
			t.Errorf("%s; a network error with a healthy network is the job's fault", what)
		case reason == string(dlq.ReasonInvalid) && (attempts != "0" || env.emu.Stats().Requests != requests):
			t.Errorf("%s; it reached the emulator", what)
		}
	}

	for key, state := range env.w.BreakerStates() {
		if state != "closed" {
			t.Errorf("job %s: breaker %s is %s", desc, key, state)
		}
	}
	// Nothing goes wrong in here that deserves an error line (a panic, a
	// result or record not stored), and no breaker moves. Matched with
	// their JSON quotes: a job's value quoted in a line has its quotes
	// escaped, so it cannot pass for one of these.
	if more := env.logs.From(logged); strings.Contains(more, `"level":"error"`) || strings.Contains(more, `"panic":`) ||
		strings.Contains(more, `"message":"circuit breaker state changed"`) {
		t.Errorf("job %s: the worker logged\n%s", desc, tail(more, 4096))
	}
}

// describe prints a job's headers for a failure message: escaped, and
// huge values cut.
func describe(h nats.Header) string {
	short := make(map[string][]string, len(h))
	for k, vs := range h {
		for _, v := range vs {
			if len(v) > 80 {
				v = fmt.Sprintf("%s… (%d bytes)", v[:80], len(v))
			}
			short[k] = append(short[k], v)
		}
	}
	return fmt.Sprintf("%q", short)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// lastMsg is the last message of stream, nil when it is empty.
func lastMsg(t *testing.T, js jetstream.JetStream, stream string) *jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	m, err := s.GetMsg(ctx, info.State.LastSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// syncBuffer collects the worker's log lines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// From returns what was written after the first n bytes.
func (b *syncBuffer) From(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf.Bytes()[n:])
}
