// Package tracing owns the OpenTelemetry tracer provider of a worker
// process: the exporter chosen by configuration (OTLP over HTTP or gRPC,
// or none), the sampler and the resource naming the process. It does not
// own the spans: the worker and fan-out packages make those through the
// trace.TracerProvider this package returns, and depend on the
// OpenTelemetry API alone, never on an exporter.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Exporters.
const (
	// ExporterOff exports nothing and makes no spans: a job's traceparent
	// passes through as it came.
	ExporterOff = "off"
	// ExporterOTLPHTTP sends spans as OTLP protobuf over HTTP (port 4318).
	ExporterOTLPHTTP = "otlp-http"
	// ExporterOTLPGRPC sends spans as OTLP over gRPC (port 4317).
	ExporterOTLPGRPC = "otlp-grpc"
)

// Defaults of Config.
const (
	ExporterDefault    = ExporterOff
	SampleRatioDefault = 1.0
	ServiceNameDefault = "invoke-worker"
)

// Config chooses the exporter and sampler.
type Config struct {
	// Exporter is off, otlp-http or otlp-grpc. "" takes the default, off.
	Exporter string
	// Endpoint is the collector's URL: http://host:4318 (otlp-http; a
	// path other than / replaces /v1/traces) or http://host:4317
	// (otlp-grpc). The scheme says whether TLS is used: https, or http for
	// plain text. "" takes the exporter's default, which the standard
	// OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
	// variables override (https://localhost:4318 or :4317 without them).
	Endpoint string
	// SampleRatio is the share of traces started here that are sampled,
	// 0 to 1. A job whose traceparent says whether its trace is sampled
	// follows that decision (parent-based sampling). Use
	// SampleRatioDefault (1) for every trace: 0 samples none.
	SampleRatio float64
	// ServiceName, ServiceVersion and InstanceID name the process in its
	// spans' resource. ServiceName defaults to invoke-worker.
	ServiceName, ServiceVersion, InstanceID string
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch c.Exporter {
	case "", ExporterOff, ExporterOTLPHTTP, ExporterOTLPGRPC:
	default:
		return fmt.Errorf("tracing: exporter %q: want off, otlp-http or otlp-grpc", c.Exporter)
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		return fmt.Errorf("tracing: sample ratio %g: want 0 to 1", c.SampleRatio)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("tracing: endpoint %q: want a URL such as http://collector:4318", c.Endpoint)
		}
	}
	return nil
}

// Provider is the process's tracer provider and what stops it.
type Provider struct {
	tp  trace.TracerProvider
	sdk *sdktrace.TracerProvider // nil when off
}

// TracerProvider is what the worker and fan-out take: the no-op provider
// itself when off, so that they see tracing is off and skip it.
func (p *Provider) TracerProvider() trace.TracerProvider { return p.tp }

// New builds the provider c asks for: a no-op one when the exporter is
// off, else an SDK provider exporting in batches. The exporter connects
// lazily: a collector that is down costs dropped spans, never a failed
// start.
func New(ctx context.Context, c Config) (*Provider, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch c.Exporter {
	case "", ExporterOff:
		return &Provider{tp: noop.NewTracerProvider()}, nil
	case ExporterOTLPHTTP:
		var opts []otlptracehttp.Option
		if c.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(httpTracesURL(c.Endpoint)))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	case ExporterOTLPGRPC:
		var opts []otlptracegrpc.Option
		if c.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(c.Endpoint))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %s exporter: %w", c.Exporter, err)
	}
	name := c.ServiceName
	if name == "" {
		name = ServiceNameDefault
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(name)}
	if c.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(c.ServiceVersion))
	}
	if c.InstanceID != "" {
		attrs = append(attrs, semconv.ServiceInstanceID(c.InstanceID))
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("tracing: resource: %w", err), exp.Shutdown(ctx))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))),
	)
	return &Provider{tp: tp, sdk: tp}, nil
}

// httpTracesURL adds the OTLP traces path to an endpoint given without
// one: WithEndpointURL takes the URL's path as is.
func httpTracesURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Path != "" && u.Path != "/") {
		return endpoint
	}
	u.Path = "/v1/traces"
	return u.String()
}

// Enabled reports whether spans are made and exported.
func (p *Provider) Enabled() bool { return p.sdk != nil }

// Shutdown exports the spans still buffered and stops the exporter; ctx
// bounds how long that may take. A no-op when off.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	return p.sdk.Shutdown(ctx)
}
