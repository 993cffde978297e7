package worker

import (
	"context"
	"errors"
	"net/http"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/job"
)

// Tracing, when Config.TracerProvider is a real provider: a span per
// delivery of a job ("invoke.job") and a child span per attempt
// ("invoke.attempt"). The attempt's context is the traceparent the function
// receives; the delivery's goes onto the result, the dead-letter record and
// the waiting copy (Invoke-Wait-Traceparent), so the next delivery of a job
// that waits continues the same trace: a job is one trace, with a span per
// attempt.
//
// A delivery's span is the child of, in order: the waiting copy's
// Invoke-Wait-Traceparent; else, for a job replayed from the dead-letter
// stream (it carries Invoke-Replay-Count), nothing (a trace of its own)
// with a link to the job's traceparent, the run it replays; else the job's
// traceparent, the publisher's span.
//
// Without a provider (or with a no-op one) none of this runs: the job's
// traceparent and tracestate pass through to the function and the result
// as they came, and nothing is allocated for tracing.

// tracerName is the instrumentation scope of the worker's spans.
const tracerName = "github.com/invoke-worker/worker/worker"

// Span attributes: ids, counts and outcomes, never a body, a header value
// the publisher chose, or credentials.
const (
	attrJobID        = attribute.Key("invoke.job.id")
	attrFunctionID   = attribute.Key("invoke.function.id")
	attrAttempt      = attribute.Key("invoke.attempt")
	attrAttempts     = attribute.Key("invoke.attempts")
	attrStatus       = attribute.Key("http.response.status_code")
	attrCode         = attribute.Key("invoke.error.code")
	attrErrorType    = attribute.Key("error.type")
	attrOutcome      = attribute.Key("invoke.outcome")
	attrReason       = attribute.Key("invoke.dlq.reason")
	attrOpcRequestID = attribute.Key("invoke.opc_request_id")
	attrLinkType     = attribute.Key("invoke.link.type")
	attrSystem       = attribute.Key("messaging.system")
)

type tracing struct {
	tracer trace.Tracer
	prop   propagation.TraceContext
}

// newTracing returns nil when tp traces nothing.
func newTracing(tp trace.TracerProvider) *tracing {
	switch tp.(type) {
	case nil, noop.TracerProvider, *noop.TracerProvider:
		return nil
	}
	return &tracing{tracer: tp.Tracer(tracerName)}
}

// startJob starts the span of one delivery, whose headers are h.
func (t *tracing) startJob(ctx context.Context, h nats.Header) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attrSystem.String("nats")),
	}
	parent := ctx
	waited := t.prop.Extract(ctx, propagation.MapCarrier{
		"traceparent": job.Lookup(h, job.HeaderWaitTraceparent),
		"tracestate":  job.Lookup(h, job.HeaderWaitTracestate),
	})
	switch {
	case trace.SpanContextFromContext(waited).IsValid():
		parent = waited
	case job.Lookup(h, dlq.HeaderReplayCount) != "":
		if sc := trace.SpanContextFromContext(t.prop.Extract(ctx, job.TraceCarrier(h))); sc.IsValid() {
			opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{
				SpanContext: sc,
				Attributes:  []attribute.KeyValue{attrLinkType.String("replay_of")},
			}))
		}
	default:
		parent = t.prop.Extract(ctx, job.TraceCarrier(h))
	}
	return t.tracer.Start(parent, "invoke.job", opts...)
}

// startAttempt starts the span of one attempt of j, a child of ctx's.
func (t *tracing) startAttempt(ctx context.Context, j job.Job, attempt int) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, "invoke.attempt",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrFunctionID.String(j.FunctionID), attrAttempt.Int(attempt)),
	)
}

// endAttempt ends an attempt's span with what the service answered.
func endAttempt(span trace.Span, resp *invoke.Response, err error) {
	if err == nil {
		span.SetAttributes(attrStatus.Int(resp.Status), attrOutcome.String("ok"))
		if resp.OpcRequestID != "" {
			span.SetAttributes(attrOpcRequestID.String(resp.OpcRequestID))
		}
		span.End()
		return
	}
	class := "other"
	var ie *invoke.Error
	switch {
	case errors.As(err, &ie):
		class = errorClass(ie)
		if ie.Status != 0 {
			span.SetAttributes(attrStatus.Int(ie.Status))
		}
		if ie.Code != "" {
			span.SetAttributes(attrCode.String(ie.Code))
		}
		if ie.OpcRequestID != "" {
			span.SetAttributes(attrOpcRequestID.String(ie.OpcRequestID))
		}
	case errors.Is(err, errInterrupted):
		class = "interrupted"
	}
	// The class and code, not the message: a message may quote the
	// function's answer.
	span.SetAttributes(attrOutcome.String("failed"), attrErrorType.String(class))
	span.SetStatus(codes.Error, class)
	span.End()
}

// inject sets ctx's trace context on an outgoing HTTP request's header.
func (t *tracing) inject(ctx context.Context, h http.Header) {
	t.prop.Inject(ctx, propagation.HeaderCarrier(h))
}

// contextOf returns span's traceparent and tracestate, "" for a span that
// is not there.
func (t *tracing) contextOf(span trace.Span) (traceparent, tracestate string) {
	if span == nil || !span.SpanContext().IsValid() {
		return "", ""
	}
	c := propagation.MapCarrier{}
	t.prop.Inject(trace.ContextWithSpan(context.Background(), span), c)
	return c["traceparent"], c["tracestate"]
}

// traceContext returns the trace context the delivery's result, record or
// waiting copy carries when the worker traces ("" when it does not).
func (w *Worker) traceContext(o outcome) (traceparent, tracestate string) {
	if w.tracing == nil {
		return "", ""
	}
	return w.tracing.contextOf(o.span)
}

// endJobSpan ends the delivery's span with its outcome.
func endJobSpan(o outcome, d decision, result, code string) {
	span := o.span
	if span == nil {
		return
	}
	span.SetAttributes(
		attrJobID.String(o.job.ID),
		attrFunctionID.String(o.job.FunctionID),
		attrAttempt.Int(o.attempt),
		attrAttempts.Int(d.attempts),
		attrOutcome.String(result),
	)
	if d.status != 0 {
		span.SetAttributes(attrStatus.Int(d.status))
	}
	if code != "" {
		span.SetAttributes(attrCode.String(code))
	}
	if d.action == actDeadLetter {
		span.SetAttributes(attrReason.String(string(d.reason)))
		span.SetStatus(codes.Error, "dead-lettered: "+string(d.reason))
	}
	span.End()
}

// traceIDOf returns the id of the trace the delivery belongs to, for its
// log line: its span's, else the job's traceparent's, else "".
func traceIDOf(o outcome) string {
	if o.span != nil {
		if sc := o.span.SpanContext(); sc.IsValid() {
			return sc.TraceID().String()
		}
	}
	if o.job.Traceparent == "" {
		return ""
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": o.job.Traceparent})
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

// errorCode is the OCI error code of the delivery's attempt, "" if none.
func errorCode(o outcome) string {
	var ie *invoke.Error
	if o.err != nil && errors.As(o.err, &ie) {
		return ie.Code
	}
	return ""
}
