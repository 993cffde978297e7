package worker

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/job"
)

const benchFunction = "ocid1.fnfunc.oc1.phx.aaaaaaaabench"

func benchJob() job.Job {
	id := "bench-m-12345"
	return job.Job{
		ID:         id,
		FunctionID: benchFunction,
		InvokeType: job.InvokeTypeSync,
		Body:       bytes.Repeat([]byte("x"), 1024),
		Header: nats.Header{
			job.HeaderFunctionID: {benchFunction},
			job.HeaderMsgID:      {id},
			job.HeaderJobID:      {id},
		},
		Subject: "invoke.jobs.bench",
		Stream:  "INVOKE_JOBS",
		Seq:     12345,
		StoreAt: time.Now(),
	}
}

func benchResponse() *invoke.Response {
	return &invoke.Response{
		Status:       200,
		Body:         bytes.Repeat([]byte("x"), 1024),
		ContentType:  "application/octet-stream",
		OpcRequestID: "bench-m-12345-1",
		FnCallID:     "0123456789ABCDEF0123456789ABCDEF",
		Duration:     3 * time.Millisecond,
	}
}

// BenchmarkResultMsg builds the contract's result message.
func BenchmarkResultMsg(b *testing.B) {
	w := &Worker{cfg: Config{ID: "bench"}.withDefaults()}
	j, r := benchJob(), benchResponse()
	s := newSlot()
	b.ReportAllocs()
	for b.Loop() {
		_ = w.resultMsg(j, r, 1, s)
	}
}

// BenchmarkDLQNewMessage builds a dead-letter record with a short attempt
// history.
func BenchmarkDLQNewMessage(b *testing.B) {
	j := benchJob()
	now := time.Now()
	f := dlq.Failure{
		Reason: dlq.ReasonExhausted, Error: "function answered 503 FunctionInvokeServiceUnavailable: emulated failure",
		Status: 503, Attempts: 3, FailedAt: now, Worker: "bench",
	}
	for i := range 3 {
		f.History = append(f.History, dlq.Attempt{N: i + 1, At: now, DurationMs: 3, Status: 503, Worker: "bench"})
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = dlq.NewMessage("invoke.dlq", j, f)
	}
}

// BenchmarkHandle runs one delivery through the worker's whole handle path
// (parse, limits, breaker, attempt, result message, publish, ack, metrics,
// log line) with NATS and HTTP replaced by stubs that answer at once: the
// worker's own CPU and allocations per job, production-configured (info
// logging, formatted and discarded; Prometheus metrics).
func BenchmarkHandle(b *testing.B) { benchmarkHandle(b, nil, "") }

// BenchmarkHandleTraced is BenchmarkHandle with tracing on: an SDK
// provider sampling every span, exporting in batches to an exporter that
// drops them, and jobs that carry a traceparent. Against BenchmarkHandle,
// what tracing costs a job when it is on.
func BenchmarkHandleTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	benchmarkHandle(b, tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
}

func benchmarkHandle(b *testing.B, tp trace.TracerProvider, traceparent string) {
	log := zerolog.New(io.Discard).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	w, err := New(Config{ID: "bench", Metrics: prometheus.NewRegistry(), Logger: &log, TracerProvider: tp}, Deps{
		Consumer:    func(context.Context) (jetstream.Consumer, error) { return nil, nil },
		Invoker:     stubInvoker{benchResponse()},
		Results:     stubPublisher{},
		DeadLetters: stubDeadLetterer{},
	})
	if err != nil {
		b.Fatal(err)
	}
	j := benchJob()
	ctx := context.Background()
	s := newSlot()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		id := "bench-m-" + strconv.Itoa(i)
		msg := &stubMsg{
			subject: j.Subject,
			data:    j.Body,
			header: nats.Header{
				job.HeaderFunctionID: {benchFunction},
				job.HeaderMsgID:      {id},
				job.HeaderJobID:      {id},
			},
			meta: &jetstream.MsgMetadata{
				Sequence:     jetstream.SequencePair{Stream: uint64(i), Consumer: uint64(i)},
				NumDelivered: 1,
				Stream:       "INVOKE_JOBS",
				Consumer:     "invoke-workers",
				Timestamp:    time.Now(),
			},
		}
		if traceparent != "" {
			msg.header[job.HeaderTraceparent] = []string{traceparent}
		}
		w.handle(ctx, msg, time.Now(), false, s)
		if !msg.acked {
			b.Fatal("job not acknowledged")
		}
	}
}

type stubInvoker struct{ resp *invoke.Response }

func (s stubInvoker) Invoke(context.Context, invoke.Request) (*invoke.Response, error) {
	r := *s.resp
	return &r, nil
}

type stubPublisher struct{}

func (stubPublisher) PublishMsg(context.Context, *nats.Msg, ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return &jetstream.PubAck{Stream: "INVOKE_RESULTS", Sequence: 1}, nil
}

type stubDeadLetterer struct{}

func (stubDeadLetterer) DeadLetter(context.Context, job.Job, dlq.Failure) error { return nil }

// stubMsg is a delivered job; only Ack is expected.
type stubMsg struct {
	subject string
	data    []byte
	header  nats.Header
	meta    *jetstream.MsgMetadata
	acked   bool
}

var _ jetstream.Msg = (*stubMsg)(nil)

func (m *stubMsg) Metadata() (*jetstream.MsgMetadata, error) { return m.meta, nil }
func (m *stubMsg) Data() []byte                              { return m.data }
func (m *stubMsg) Headers() nats.Header                      { return m.header }
func (m *stubMsg) Subject() string                           { return m.subject }
func (m *stubMsg) Reply() string                             { return "" }
func (m *stubMsg) Ack() error                                { m.acked = true; return nil }
func (m *stubMsg) DoubleAck(context.Context) error           { m.acked = true; return nil }
func (m *stubMsg) Nak() error                                { return nil }
func (m *stubMsg) NakWithDelay(time.Duration) error          { return nil }
func (m *stubMsg) InProgress() error                         { return nil }
func (m *stubMsg) Term() error                               { return nil }
func (m *stubMsg) TermWithReason(string) error               { return nil }
