package job_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/invoke-worker/worker/job"
)

// BenchmarkParse is the worker's first step for every delivery.
func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct {
		name   string
		header nats.Header
	}{
		{"minimal", nats.Header{
			job.HeaderFunctionID: {"ocid1.fnfunc.oc1.phx.aaaaaaaabench"},
			job.HeaderMsgID:      {"bench-m-12345"},
			job.HeaderJobID:      {"bench-m-12345"},
		}},
		{"every_header", nats.Header{
			job.HeaderFunctionID:   {"ocid1.fnfunc.oc1.phx.aaaaaaaabench"},
			job.HeaderMsgID:        {"bench-m-12345"},
			job.HeaderJobID:        {"bench-m-12345"},
			job.HeaderFnIntent:     {"cloudevent"},
			job.HeaderFnInvokeType: {"sync"},
			job.HeaderContentType:  {"application/json"},
			job.HeaderTimeout:      {"30s"},
			job.HeaderDeadline:     {"2030-01-02T03:04:05Z"},
			job.HeaderReplyTo:      {"replies.bench"},
			job.HeaderTraceparent:  {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			msg := job.Message{
				Subject: "invoke.jobs.default",
				Header:  bc.header,
				Data:    bytes.Repeat([]byte("x"), 1024),
				Stream:  "INVOKE_JOBS",
				Seq:     12345,
				StoreAt: time.Now(),
			}
			limits := job.Limits{MaxBody: 6 << 20}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := job.Parse(msg, limits); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
