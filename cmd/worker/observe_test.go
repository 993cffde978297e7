package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/nats-io/nats.go"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
)

// otlpReceiver is a local OTLP/HTTP trace receiver: it decodes the
// protobuf requests and keeps each span's name and trace id.
type otlpReceiver struct {
	mu    sync.Mutex
	spans map[string][]string // name -> trace ids (hex)
}

func startOTLPReceiver(t *testing.T) (*otlpReceiver, string) {
	r := &otlpReceiver{spans: map[string][]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		var msg collectortrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &msg)
		}
		if err != nil || req.URL.Path != "/v1/traces" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range msg.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					r.spans[s.GetName()] = append(r.spans[s.GetName()], hex.EncodeToString(s.GetTraceId()))
				}
			}
		}
		r.mu.Unlock()
		b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func (r *otlpReceiver) traceIDs(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.spans[name]...)
}

// TestWorkerProcessExportsTracesOverOTLPHTTP: `worker run` with
// tracing.exporter otlp-http sends a traced job's delivery and attempt
// spans, in the job's trace, to the collector (at the latest when it
// stops), and its start line shows the effective configuration.
func TestWorkerProcessExportsTracesOverOTLPHTTP(t *testing.T) {
	t.Parallel()
	recv, endpoint := startOTLPReceiver(t)
	f := newFleet(t, emulator.Behavior{})
	p := f.start("traced", "tracing.exporter=otlp-http", "tracing.endpoint="+endpoint)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	msg := nats.NewMsg("invoke.jobs.proc")
	msg.Header.Set(job.HeaderFunctionID, procFn)
	msg.Header.Set(job.HeaderMsgID, "traced-job")
	msg.Header.Set(job.HeaderTraceparent, "00-"+traceID+"-00f067aa0ba902b7-01")
	if _, err := f.nats.JS.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the job to complete", func() bool { return f.count(f.nats.Topology.ResultsStream) == 1 })
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for _, name := range []string{"invoke.job", "invoke.attempt"} {
		if ids := recv.traceIDs(name); len(ids) != 1 || ids[0] != traceID {
			t.Errorf("%s spans received in traces %v, want one in %s", name, ids, traceID)
		}
	}
	start := logLine(t, p.logs(), "worker process starting")
	cfg, _ := start["config"].(map[string]any)
	if cfg["tracing.exporter"] != "otlp-http" || cfg["worker.id"] != "traced" || cfg["nats.url"] != f.nats.Server.ClientURL() {
		t.Errorf("start line's config: %v", cfg)
	}
	if stop := logLine(t, p.logs(), "shut down cleanly"); stop["uptime"] == nil {
		t.Errorf("stop line without uptime: %v", stop)
	}
}

// TestLogLevelChangesWithoutARestart: PUT /loglevel on the admin endpoint
// turns the completed jobs' debug lines on in a running worker; GET reads
// the level back; a bad level is refused.
func TestLogLevelChangesWithoutARestart(t *testing.T) {
	t.Parallel()
	f := newFleet(t, emulator.Behavior{})
	p := f.start("levels") // --log-level info
	f.publishJobs(1, "quiet")
	testenv.Eventually(t, "the first job to complete", func() bool { return f.count(f.nats.Topology.ResultsStream) == 1 })
	put := func(level string) (int, string) {
		req, err := http.NewRequest(http.MethodPut, "http://"+p.admin+"/loglevel", strings.NewReader(level))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := put("loud"); code != http.StatusBadRequest {
		t.Fatalf("PUT loud: %d %s", code, body)
	}
	if code, body := put("debug"); code != http.StatusOK || body != "debug" {
		t.Fatalf("PUT debug: %d %s", code, body)
	}
	resp, err := http.Get("http://" + p.admin + "/loglevel")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(b)) != "debug" {
		t.Errorf("GET /loglevel: %q", b)
	}
	f.publishJobs(1, "loud")
	testenv.Eventually(t, "the second job's debug line", func() bool { return strings.Contains(p.logs(), `"job_id":"loud-0000"`) })
	if strings.Contains(p.logs(), `"job_id":"quiet-0000"`) {
		t.Errorf("the job before the change logged at debug")
	}
	if line := logLine(t, p.logs(), "job complete"); line["outcome"] != "completed" || line["level"] != "debug" {
		t.Errorf("job line %v", line)
	}
}

// logLine returns the first JSON line whose message is msg.
func logLine(t *testing.T, logs, msg string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["message"] == msg {
			return m
		}
	}
	t.Fatalf("no %q line in:\n%s", msg, tail(logs, 3000))
	return nil
}
