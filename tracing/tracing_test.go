package tracing_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace/noop"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/invoke-worker/worker/tracing"
)

// receiver collects the spans OTLP requests bring.
type receiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	attrs map[string]string // resource attributes, string values
	paths []string
}

func (r *receiver) add(req *collectortrace.ExportTraceServiceRequest, path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paths = append(r.paths, path)
	for _, rs := range req.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if r.attrs == nil {
				r.attrs = map[string]string{}
			}
			r.attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
}

func (r *receiver) check(t *testing.T, wantPath string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.spans) != 2 {
		t.Fatalf("received %d spans, want 2", len(r.spans))
	}
	byName := map[string]*tracepb.Span{}
	for _, s := range r.spans {
		byName[s.GetName()] = s
	}
	parent, child := byName["parent"], byName["child"]
	if parent == nil || child == nil {
		t.Fatalf("spans %v", r.spans)
	}
	if string(child.GetParentSpanId()) != string(parent.GetSpanId()) || string(child.GetTraceId()) != string(parent.GetTraceId()) {
		t.Errorf("child is not the parent's child")
	}
	if r.attrs["service.name"] != "invoke-worker" || r.attrs["service.instance.id"] != "w-1" || r.attrs["service.version"] != "1.2.3" {
		t.Errorf("resource %v", r.attrs)
	}
	for _, p := range r.paths {
		if wantPath != "" && p != wantPath {
			t.Errorf("request to %s, want %s", p, wantPath)
		}
	}
}

// emit makes a parent and a child span and shuts the provider down, which
// exports them.
func emit(t *testing.T, p *tracing.Provider) {
	t.Helper()
	if !p.Enabled() {
		t.Fatal("provider not enabled")
	}
	tr := p.TracerProvider().Tracer("test")
	ctx, parent := tr.Start(context.Background(), "parent")
	_, child := tr.Start(ctx, "child")
	child.End()
	parent.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func config(exporter, endpoint string) tracing.Config {
	return tracing.Config{Exporter: exporter, Endpoint: endpoint, SampleRatio: 1, ServiceVersion: "1.2.3", InstanceID: "w-1"}
}

// TestOTLPHTTPReachesAReceiver: with otlp-http the spans arrive at the
// endpoint as OTLP protobuf, at /v1/traces when the endpoint has no path.
func TestOTLPHTTPReachesAReceiver(t *testing.T) {
	t.Parallel()
	var got receiver
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got.add(&req, r.URL.Path)
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	p, err := tracing.New(context.Background(), config(tracing.ExporterOTLPHTTP, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	emit(t, p)
	got.check(t, "/v1/traces")
}

type grpcReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	got *receiver
}

func (g grpcReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	g.got.add(req, "")
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// TestOTLPGRPCReachesAReceiver: with otlp-grpc the spans arrive at a gRPC
// trace service; http:// means plain text.
func TestOTLPGRPCReachesAReceiver(t *testing.T) {
	t.Parallel()
	var got receiver
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, grpcReceiver{got: &got})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	p, err := tracing.New(context.Background(), config(tracing.ExporterOTLPGRPC, "http://"+l.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	emit(t, p)
	got.check(t, "")
}

// TestOffIsANoopProvider: off (and the zero Config) makes no SDK provider.
func TestOffIsANoopProvider(t *testing.T) {
	t.Parallel()
	for _, exp := range []string{"", tracing.ExporterOff} {
		p, err := tracing.New(context.Background(), tracing.Config{Exporter: exp})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := p.TracerProvider().(noop.TracerProvider); !ok {
			t.Errorf("exporter %q: %T, want the no-op provider (the worker skips tracing for it)", exp, p.TracerProvider())
		}
		_, span := p.TracerProvider().Tracer("test").Start(context.Background(), "x")
		if p.Enabled() || span.IsRecording() || span.SpanContext().IsValid() {
			t.Errorf("exporter %q: enabled %v, recording %v", exp, p.Enabled(), span.IsRecording())
		}
		if err := p.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}
}

// TestValidate names what is wrong.
func TestValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cfg  tracing.Config
		want string
	}{
		{tracing.Config{Exporter: "zipkin"}, "exporter"},
		{tracing.Config{Exporter: tracing.ExporterOTLPHTTP, SampleRatio: 1.5}, "sample ratio"},
		{tracing.Config{Exporter: tracing.ExporterOTLPHTTP, SampleRatio: -0.1}, "sample ratio"},
		{tracing.Config{Exporter: tracing.ExporterOTLPGRPC, Endpoint: "collector:4317"}, "endpoint"},
		{tracing.Config{Exporter: tracing.ExporterOTLPGRPC, Endpoint: "ftp://collector"}, "endpoint"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error about %s", c.cfg, err, c.want)
		}
		if _, err := tracing.New(context.Background(), c.cfg); err == nil {
			t.Errorf("%+v: New accepted it", c.cfg)
		}
	}
}
