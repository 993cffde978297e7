package worker_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/worker"
)

// The publisher's span: the parent of a job's trace.
const (
	pubTraceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	pubSpanID      = "00f067aa0ba902b7"
	pubTraceparent = "00-" + pubTraceID + "-" + pubSpanID + "-01"
	pubTracestate  = "vendor=abc"
)

// recordingProvider is an SDK provider exporting every span, as it ends,
// to an in-memory exporter.
func recordingProvider(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

// spansNamed waits until exp holds n spans called name and returns them.
func spansNamed(t *testing.T, exp *tracetest.InMemoryExporter, name string, n int) tracetest.SpanStubs {
	t.Helper()
	var got tracetest.SpanStubs
	testenv.Eventually(t, name+" spans", func() bool {
		got = got[:0]
		for _, s := range exp.GetSpans() {
			if s.Name == name {
				got = append(got, s)
			}
		}
		return len(got) >= n
	})
	if len(got) != n {
		t.Fatalf("%d %s spans, want %d", len(got), name, n)
	}
	return got
}

func attrOf(s tracetest.SpanStub, key string) attribute.Value {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// spanContextOf parses a traceparent (and tracestate).
func spanContextOf(t *testing.T, traceparent, tracestate string) trace.SpanContext {
	t.Helper()
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent, "tracestate": tracestate})
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		t.Fatalf("traceparent %q does not parse", traceparent)
	}
	return sc
}

// TestTracedJobIsOneTraceWithASpanPerAttempt: a job with a traceparent that
// fails twice and then completes makes one trace, the publisher's: a span
// per delivery, each continuing the one before through the waiting copy, a
// child span per attempt, whose context the function receives; its result
// carries the trace.
func TestTracedJobIsOneTraceWithASpanPerAttempt(t *testing.T) {
	t.Parallel()
	tp, exp := recordingProvider(t)
	h := newHarness(t, worker.Config{TracerProvider: tp}, map[string]emulator.Behavior{
		fnEcho: {FailFirst: 2, FailStatus: 503},
	})
	hdr := jobHeader(fnEcho, "traced-1")
	hdr.Set(job.HeaderTraceparent, pubTraceparent)
	hdr.Set(job.HeaderTracestate, pubTracestate)
	h.publish("invoke.jobs.t", hdr, []byte("hello"))
	h.waitSettled(1, 0)

	attempts := spansNamed(t, exp, "invoke.attempt", 3)
	deliveries := spansNamed(t, exp, "invoke.job", 3)
	slices.SortFunc(attempts, func(a, b tracetest.SpanStub) int {
		return int(attrOf(a, "invoke.attempt").AsInt64() - attrOf(b, "invoke.attempt").AsInt64())
	})
	slices.SortFunc(deliveries, func(a, b tracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
	for _, s := range append(slices.Clone(attempts), deliveries...) {
		if got := s.SpanContext.TraceID().String(); got != pubTraceID {
			t.Fatalf("%s span in trace %s, want the publisher's %s", s.Name, got, pubTraceID)
		}
	}
	if got := deliveries[0].Parent.SpanID().String(); got != pubSpanID {
		t.Errorf("first delivery's parent %s, want the publisher's span %s", got, pubSpanID)
	}
	for i := 1; i < len(deliveries); i++ {
		if deliveries[i].Parent.SpanID() != deliveries[i-1].SpanContext.SpanID() {
			t.Errorf("delivery %d is not the child of delivery %d", i+1, i)
		}
	}
	wantOutcomes := []string{"retried", "retried", "completed"}
	for i, d := range deliveries {
		if got := attrOf(d, "invoke.outcome").AsString(); got != wantOutcomes[i] {
			t.Errorf("delivery %d outcome %q, want %q", i+1, got, wantOutcomes[i])
		}
		if got := attrOf(d, "invoke.job.id").AsString(); got != "traced-1" {
			t.Errorf("delivery %d job id %q", i+1, got)
		}
		if got := attrOf(d, "invoke.function.id").AsString(); got != fnEcho {
			t.Errorf("delivery %d function id %q", i+1, got)
		}
		if d.SpanContext.TraceState().String() != pubTracestate {
			t.Errorf("delivery %d tracestate %q, want the publisher's", i+1, d.SpanContext.TraceState())
		}
	}
	calls := h.emu.Calls(fnEcho)
	if len(calls) != 3 {
		t.Fatalf("%d calls, want 3", len(calls))
	}
	for i, a := range attempts {
		if got := attrOf(a, "invoke.attempt").AsInt64(); got != int64(i+1) {
			t.Fatalf("attempt span %d says attempt %d", i, got)
		}
		if a.Parent.SpanID() != deliveries[i].SpanContext.SpanID() {
			t.Errorf("attempt %d is not the child of its delivery's span", i+1)
		}
		wantStatus := map[bool]int64{true: 503, false: 200}[i < 2]
		if got := attrOf(a, "http.response.status_code").AsInt64(); got != wantStatus {
			t.Errorf("attempt %d status %d, want %d", i+1, got, wantStatus)
		}
		if i < 2 {
			if a.Status.Code != codes.Error || attrOf(a, "invoke.error.code").AsString() == "" {
				t.Errorf("failed attempt %d: status %v, code %q", i+1, a.Status, attrOf(a, "invoke.error.code").AsString())
			}
		}
		// The function's parent is the attempt's span.
		sent := spanContextOf(t, calls[i].Headers.Get("Traceparent"), calls[i].Headers.Get("Tracestate"))
		if sent.TraceID() != a.SpanContext.TraceID() || sent.SpanID() != a.SpanContext.SpanID() {
			t.Errorf("call %d carried traceparent %q, want attempt span %s", i+1, calls[i].Headers.Get("Traceparent"), a.SpanContext.SpanID())
		}
		if got := calls[i].Headers.Get("Tracestate"); got != pubTracestate {
			t.Errorf("call %d tracestate %q, want %q", i+1, got, pubTracestate)
		}
	}
	for _, s := range exp.GetSpans() {
		for _, kv := range s.Attributes {
			if strings.Contains(kv.Value.Emit(), "hello") {
				t.Errorf("span %s attribute %s carries the job's body", s.Name, kv.Key)
			}
		}
	}

	res := h.streamMsgs(h.nats.Topology.ResultsStream)[0]
	onResult := spanContextOf(t, res.Header.Get(job.HeaderTraceparent), res.Header.Get(job.HeaderTracestate))
	if onResult.TraceID().String() != pubTraceID {
		t.Errorf("result's trace %s, want %s", onResult.TraceID(), pubTraceID)
	}
	if onResult.SpanID() != deliveries[2].SpanContext.SpanID() {
		t.Errorf("result's parent span %s, want the completing delivery's %s", onResult.SpanID(), deliveries[2].SpanContext.SpanID())
	}
	if got := res.Header.Get(job.HeaderTracestate); got != pubTracestate {
		t.Errorf("result's tracestate %q, want %q", got, pubTracestate)
	}
}

// TestTracedDeadLetterCarriesTheTrace: a dead-lettered job's record carries
// the trace of the run that failed, and its span says why.
func TestTracedDeadLetterCarriesTheTrace(t *testing.T) {
	t.Parallel()
	tp, exp := recordingProvider(t)
	h := newHarness(t, worker.Config{TracerProvider: tp}, map[string]emulator.Behavior{
		fnBroken: {Status: 404},
	})
	hdr := jobHeader(fnBroken, "traced-dead")
	hdr.Set("Traceparent", pubTraceparent) // another spelling: found all the same
	h.publish("invoke.jobs.t", hdr, []byte("x"))
	h.waitSettled(0, 1)

	d := spansNamed(t, exp, "invoke.job", 1)[0]
	spansNamed(t, exp, "invoke.attempt", 1)
	if d.SpanContext.TraceID().String() != pubTraceID {
		t.Fatalf("span in trace %s, want %s", d.SpanContext.TraceID(), pubTraceID)
	}
	if d.Status.Code != codes.Error || attrOf(d, "invoke.dlq.reason").AsString() != string(dlq.ReasonPermanent) ||
		attrOf(d, "invoke.outcome").AsString() != "dead_lettered" || attrOf(d, "http.response.status_code").AsInt64() != 404 {
		t.Errorf("span status %v, attributes %v", d.Status, d.Attributes)
	}
	rec := h.streamMsgs(h.nats.Topology.DLQStream)[0]
	if vs := rec.Header.Values("Traceparent"); len(vs) != 0 {
		t.Errorf("record keeps the job's other spelling of traceparent: %q", vs)
	}
	sc := spanContextOf(t, rec.Header.Get(job.HeaderTraceparent), "")
	if sc.TraceID().String() != pubTraceID || sc.SpanID() != d.SpanContext.SpanID() {
		t.Errorf("record's traceparent %q, want trace %s span %s", rec.Header.Get(job.HeaderTraceparent), pubTraceID, d.SpanContext.SpanID())
	}
}

// TestReplayedJobLinksToTheTraceItReplays: a job replayed from the
// dead-letter stream starts a trace of its own, linked to the run it
// replays (its traceparent), instead of growing the old trace.
func TestReplayedJobLinksToTheTraceItReplays(t *testing.T) {
	t.Parallel()
	tp, exp := recordingProvider(t)
	h := newHarness(t, worker.Config{TracerProvider: tp}, nil)
	hdr := jobHeader(fnEcho, "replayed-1")
	hdr.Set(job.HeaderTraceparent, pubTraceparent)
	hdr.Set(dlq.HeaderReplayCount, "1")
	h.publish("invoke.jobs.t", hdr, []byte("x"))
	h.waitSettled(1, 0)

	d := spansNamed(t, exp, "invoke.job", 1)[0]
	if d.SpanContext.TraceID().String() == pubTraceID || d.Parent.IsValid() {
		t.Fatalf("replayed job's span is in the old trace (parent %v)", d.Parent)
	}
	if len(d.Links) != 1 || d.Links[0].SpanContext.TraceID().String() != pubTraceID || d.Links[0].SpanContext.SpanID().String() != pubSpanID {
		t.Fatalf("links %+v, want one to %s", d.Links, pubTraceparent)
	}
	res := h.streamMsgs(h.nats.Topology.ResultsStream)[0]
	if sc := spanContextOf(t, res.Header.Get(job.HeaderTraceparent), ""); sc.TraceID() != d.SpanContext.TraceID() {
		t.Errorf("result's trace %s, want the replay's %s", sc.TraceID(), d.SpanContext.TraceID())
	}
}

// TestUntracedJobStartsATrace: with tracing on, a job without a traceparent
// gets a trace of its own, which its result names.
func TestUntracedJobStartsATrace(t *testing.T) {
	t.Parallel()
	tp, exp := recordingProvider(t)
	h := newHarness(t, worker.Config{TracerProvider: tp}, nil)
	h.publish("invoke.jobs.t", jobHeader(fnEcho, "plain-1"), []byte("x"))
	h.waitSettled(1, 0)
	d := spansNamed(t, exp, "invoke.job", 1)[0]
	res := h.streamMsgs(h.nats.Topology.ResultsStream)[0]
	if sc := spanContextOf(t, res.Header.Get(job.HeaderTraceparent), ""); sc.TraceID() != d.SpanContext.TraceID() {
		t.Errorf("result's trace %s, want the job's %s", sc.TraceID(), d.SpanContext.TraceID())
	}
}

// TestTracingOffPassesTheTraceThrough: with the default no-op provider the
// job's traceparent and tracestate reach the function and the result as
// they came, and an untraced job's result has none.
func TestTracingOffPassesTheTraceThrough(t *testing.T) {
	t.Parallel()
	for name, tp := range map[string]trace.TracerProvider{"nil": nil, "noop": noop.NewTracerProvider()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, worker.Config{TracerProvider: tp}, nil)
			hdr := jobHeader(fnEcho, "off-1")
			hdr.Set(job.HeaderTraceparent, pubTraceparent)
			hdr.Set(job.HeaderTracestate, pubTracestate)
			h.publish("invoke.jobs.t", hdr, []byte("x"))
			h.publish("invoke.jobs.t", jobHeader(fnEcho, "off-2"), []byte("x"))
			h.waitSettled(2, 0)
			calls := h.emu.Calls(fnEcho)
			var sent []string
			for _, c := range calls {
				sent = append(sent, c.Headers.Get("Traceparent")+" "+c.Headers.Get("Tracestate"))
			}
			slices.Sort(sent)
			if want := []string{" ", pubTraceparent + " " + pubTracestate}; !slices.Equal(sent, want) {
				t.Errorf("sent %q, want %q", sent, want)
			}
			got := map[string]nats.Header{}
			for _, m := range h.streamMsgs(h.nats.Topology.ResultsStream) {
				got[m.Header.Get(job.HeaderJobID)] = m.Header
			}
			if tp, ts := got["off-1"].Get(job.HeaderTraceparent), got["off-1"].Get(job.HeaderTracestate); tp != pubTraceparent || ts != pubTracestate {
				t.Errorf("result carries %q %q, want the job's", tp, ts)
			}
			if tp := got["off-2"].Get(job.HeaderTraceparent); tp != "" {
				t.Errorf("untraced job's result carries traceparent %q", tp)
			}
		})
	}
}
