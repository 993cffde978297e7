package dlq_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
)

const fnA = "ocid1.fnfunc.oc1.phx.aaaaaaaaalpha"

func startNATS(t *testing.T) *testenv.NATS {
	t.Helper()
	return testenv.StartNATS(t, queue.Topology{})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	t.Cleanup(cancel)
	return ctx
}

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
	stream, err := n.JS.Stream(ctxT(t), n.Topology.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := stream.GetMsg(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
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

// TestParseRecordReadsWhatNewMessageWrote: a record read back, as a direct
// get returns it, says what its writer put in, without JetStream's
// transport headers; a refused publisher's job id stays as sent, and the
// record is filed under the subject's.
func TestParseRecordReadsWhatNewMessageWrote(t *testing.T) {
	t.Parallel()
	stored := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	failed := stored.Add(-time.Second)
	hdr := nats.Header{job.HeaderFunctionID: {fnA}, job.HeaderJobID: {"order 42"}, dlq.HeaderReplayCount: {"2"}}
	j := job.Job{ID: "INVOKE_JOBS-7", RejectedID: "order 42", FunctionID: fnA, Header: hdr, Body: []byte("body"),
		Subject: "invoke.jobs.a", Stream: "INVOKE_JOBS", Seq: 7, StoreAt: failed.Add(-time.Minute)}
	history := []dlq.Attempt{{N: 1, At: failed, Status: 503, Code: "ServiceUnavailable", DurationMs: 12}}
	msg := dlq.NewMessage("invoke.dlq", j, dlq.Failure{Reason: dlq.ReasonExhausted, Error: "gave up", Status: 503,
		Attempts: 3, FailedAt: failed, Worker: "w-1", History: history})
	msg.Header.Set(jetstream.SequenceHeader, "99") // as a direct get adds it

	r := dlq.ParseRecord("invoke.dlq", &jetstream.RawStreamMsg{Subject: msg.Subject, Sequence: 5, Header: msg.Header, Data: msg.Data, Time: stored})
	want := dlq.Record{
		Seq: 5, Subject: "invoke.dlq.exhausted.INVOKE_JOBS-7", StoredAt: stored, Reason: dlq.ReasonExhausted,
		JobID: "INVOKE_JOBS-7", RejectedJobID: "order 42", FunctionID: fnA, Status: 503, Code: "ServiceUnavailable",
		Attempts: 3, Error: "gave up", FailedAt: failed, FirstSeenAt: j.StoreAt, Worker: "w-1",
		OriginalSubject: "invoke.jobs.a", OriginalSeq: 7, ReplayCount: 2, Size: 4,
	}
	got := r
	got.History, got.Header, got.Body = nil, nil, nil
	if !got.FailedAt.Equal(want.FailedAt) || !got.FirstSeenAt.Equal(want.FirstSeenAt) {
		t.Fatalf("times: failed %s first seen %s", got.FailedAt, got.FirstSeenAt)
	}
	got.FailedAt, got.FirstSeenAt = want.FailedAt, want.FirstSeenAt
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("record\n got %+v\nwant %+v", got, want)
	}
	if string(r.Body) != "body" || len(r.History) != 1 || r.History[0].Code != "ServiceUnavailable" || r.HistoryErr != nil {
		t.Fatalf("body %q, history %+v (%v)", r.Body, r.History, r.HistoryErr)
	}
	if r.Header.Get(jetstream.SequenceHeader) != "" || r.Header.Get(job.HeaderError) != "gave up" {
		t.Fatalf("headers: %v", r.Header)
	}
}

// TestReasonsAreTheContracts: the four reasons in the contract's order,
// in a slice a caller may change without changing the next caller's.
func TestReasonsAreTheContracts(t *testing.T) {
	t.Parallel()
	want := []dlq.Reason{dlq.ReasonInvalid, dlq.ReasonPermanent, dlq.ReasonExhausted, dlq.ReasonExpired}
	got := dlq.Reasons()
	if !slices.Equal(got, want) {
		t.Fatalf("Reasons() = %v, want %v", got, want)
	}
	got[0] = "changed"
	if !slices.Equal(dlq.Reasons(), want) {
		t.Fatalf("a caller's change reached the package: %v", dlq.Reasons())
	}
	for _, r := range want {
		if p, err := dlq.ParseReason(string(r)); p != r || err != nil {
			t.Errorf("ParseReason(%q) = %q, %v", r, p, err)
		}
	}
	if _, err := dlq.ParseReason("changed"); err == nil {
		t.Error("ParseReason accepted an unknown reason")
	}
}
