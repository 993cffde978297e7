package job_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/invoke-worker/worker/job"
)

// TestResultHeadersReadBackAsWritten: what AppendHeader writes,
// ParseResult reads, to the millisecond the wire keeps; optional headers
// are only there when set, and a header map reused for the next result
// keeps nothing of the last.
func TestResultHeadersReadBackAsWritten(t *testing.T) {
	t.Parallel()
	full := job.Result{
		JobID: "job-1", FunctionID: "ocid1.fnfunc.oc1.phx.aaaa", Status: 201, Attempts: 3,
		Duration: 1500 * time.Millisecond, CompletedAt: time.Date(2025, 3, 1, 12, 0, 0, 123_000_000, time.UTC),
		OpcRequestID: "opc-1", FnCallID: "call-1", ContentType: "application/json", ContentEncoding: "gzip",
		Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", Tracestate: "k=v", BodyObject: "B/results/job-1",
	}
	h := nats.Header{}
	vals := full.AppendHeader(h, nil)
	if len(h) != job.ResultHeaders || len(vals) != job.ResultHeaders {
		t.Fatalf("%d headers, %d values; want %d", len(h), len(vals), job.ResultHeaders)
	}
	if h.Get(job.HeaderMsgID) != "job-1" || h.Get(job.HeaderDurationMs) != "1500" || h.Get(job.HeaderCompletedAt) != "2025-03-01T12:00:00.123Z" {
		t.Fatalf("headers %v", h)
	}
	if got := job.ParseResult(h); got != full {
		t.Fatalf("read back\n got %+v\nwant %+v", got, full)
	}

	bare := job.Result{JobID: "job-2", FunctionID: full.FunctionID, Status: 200, Attempts: 1, Tracestate: "dropped without traceparent"}
	clear(h)
	bare.AppendHeader(h, vals[:0])
	for _, k := range []string{job.HeaderOpcRequestID, job.HeaderFnCallID, job.HeaderContentType, job.HeaderContentEncoding,
		job.HeaderTraceparent, job.HeaderTracestate, job.HeaderBodyObject} {
		if _, ok := h[k]; ok {
			t.Errorf("%s set on a result without it", k)
		}
	}
	got := job.ParseResult(h)
	if got.JobID != "job-2" || got.Status != 200 || got.Attempts != 1 || got.Tracestate != "" || !got.CompletedAt.IsZero() {
		t.Fatalf("bare result read back as %+v", got)
	}
	if h.Get(job.HeaderStatus) != "200" || vals[0] != "job-2" {
		t.Fatalf("status %q; the reused values were not overwritten: %q", h.Get(job.HeaderStatus), vals[0])
	}
}

// TestParseResultIsLenient: a result another tool wrote, in lower case and
// with unreadable numbers, reads as far as it can.
func TestParseResultIsLenient(t *testing.T) {
	t.Parallel()
	r := job.ParseResult(nats.Header{"invoke-job-id": {"j"}, "invoke-status": {"503"}, "Invoke-Attempts": {"many"}, "Invoke-Completed-At": {"yesterday"}})
	if r.JobID != "j" || r.Status != 503 || r.Attempts != 0 || !r.CompletedAt.IsZero() {
		t.Fatalf("%+v", r)
	}
}
