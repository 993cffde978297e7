package dlq_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/job"
)

// TestRecordOfAJobWithHugeHeadersIsStored: a job JetStream stored with
// headers just under its 64 KiB limit gets a record with more headers
// still. The record leaves out the largest original headers, says which,
// and is stored; otherwise its job would be given back for ever.
func TestRecordOfAJobWithHugeHeadersIsStored(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	hdr := nats.Header{
		job.HeaderFunctionID: {fnA},
		"X-Big":              {strings.Repeat("b", 60000)},
		"X-Medium":           {strings.Repeat("m", 4000)},
		"X-Small":            {"kept"},
	}
	ack, err := n.JS.PublishMsg(ctxT(t), &nats.Msg{Subject: "invoke.jobs.big", Header: hdr, Data: []byte("x")})
	if err != nil {
		t.Fatalf("the job itself is not storable: %v", err)
	}
	j, err := job.Parse(job.Message{Subject: "invoke.jobs.big", Header: hdr, Data: []byte("x"), Stream: n.Topology.JobsStream, Seq: ack.Sequence, StoreAt: time.Now()}, job.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var history []dlq.Attempt
	for i := range dlq.MaxHistory {
		history = dlq.AppendHistory(history, dlq.Attempt{N: i + 1, At: time.Now(), Status: 503, Code: "ServiceUnavailable", Worker: "w", Error: strings.Repeat("e", 500)})
	}
	f := dlq.Failure{Reason: dlq.ReasonExhausted, Error: strings.Repeat("cause ", 300), Status: 503, Attempts: 16, FailedAt: time.Now(), Worker: "w", History: history}
	w := dlq.NewWriter(n.JS, n.Topology.DLQStream, n.Topology.DLQPrefix)
	if err := w.DeadLetter(ctxT(t), j, f); err != nil {
		t.Fatalf("record not stored: %v", err)
	}
	rec := msgs(t, n, n.Topology.DLQStream)[0]
	if rec.Header.Get("X-Big") != "" || rec.Header.Get("X-Small") != "kept" || rec.Header.Get(job.HeaderFunctionID) != fnA ||
		rec.Header.Get(dlq.HeaderAttemptHistory) == "" || rec.Header.Get(job.HeaderDLQReason) != "exhausted" {
		t.Fatalf("record headers: %v", rec.Header.Get(dlq.HeaderDroppedHeaders))
	}
	if got := rec.Header.Get(dlq.HeaderDroppedHeaders); got != "X-Big (60000 bytes)" && !strings.HasPrefix(got, "X-Big (60000 bytes), ") {
		t.Fatalf("%s: %q", dlq.HeaderDroppedHeaders, got)
	}

	// A record that fits is left whole.
	small := dlq.NewMessage("invoke.dlq", job.Job{ID: "j", Header: nats.Header{"X-Small": {"kept"}}}, f)
	if small.Header.Get("X-Small") != "kept" || small.Header.Get(dlq.HeaderDroppedHeaders) != "" {
		t.Fatalf("a small record was changed: %v", small.Header)
	}
}
