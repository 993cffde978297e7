package dlqops_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/dlq/dlqops"
	"github.com/invoke-worker/worker/job"
)

// TestBadJobIDIsKeptQuotedAndReplayedAsSent: a job whose Invoke-Job-Id is
// not a valid job id is dead-lettered as invalid under <stream>-<seq>; the
// record keeps the publisher's value as it was sent, the error quotes it
// (escaped), and a replay sends it back as it was, so the dry run warns
// that it would be invalid again instead of replaying it under an id the
// publisher never chose.
func TestBadJobIDIsKeptQuotedAndReplayedAsSent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	topo := h.nats.Topology
	sent := map[string]string{ // the id as sent -> as the error quotes it
		"order 42":    `"order 42"`,
		"order\x0143": `"order\x0143"`,
	}
	jobSeqs := map[string]uint64{}
	for id := range sent {
		hdr := nats.Header{}
		hdr.Set(job.HeaderFunctionID, fnA)
		hdr["invoke-job-id"] = []string{id} // a publisher's lower-case spelling
		ack, err := h.nats.JS.PublishMsg(ctxT(t), &nats.Msg{Subject: "invoke.jobs.test", Header: hdr, Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		jobSeqs[id] = ack.Sequence
	}
	h.waitSettled(0, 2)

	s := newStore(t, h.nats)
	records, err := list(ctxT(t), s, dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	bySent := map[string]dlq.Record{}
	for _, r := range records {
		r, err := s.Get(ctxT(t), r.Seq)
		if err != nil {
			t.Fatal(err)
		}
		bySent[r.RejectedJobID] = r
	}
	for id, quoted := range sent {
		r, ok := bySent[id]
		if !ok {
			t.Fatalf("no record keeps Invoke-Job-Id %q: %+v", id, bySent)
		}
		fallback := fmt.Sprintf("%s-%d", topo.JobsStream, jobSeqs[id])
		if r.Subject != "invoke.dlq.invalid."+fallback || r.JobID != fallback || r.Reason != dlq.ReasonInvalid {
			t.Errorf("%q: record %s, job id %q, reason %s; want it filed under %s", id, r.Subject, r.JobID, r.Reason, fallback)
		}
		if got := r.Header.Values("invoke-job-id"); len(got) != 1 || got[0] != id || len(r.Header.Values(job.HeaderJobID)) != 0 {
			t.Errorf("%q: the record's job id headers are %v", id, r.Header)
		}
		if !strings.Contains(r.Error, job.HeaderJobID+" "+quoted) {
			t.Errorf("%q: error %q does not quote the id", id, r.Error)
		}

		// Dry run: would replay, as sent, and be invalid again.
		var ev dlqops.ReplayEvent
		if _, err := s.Replay(ctxT(t), dlqops.ReplayOptions{Filter: dlqops.Filter{Seqs: []dlqops.SeqRange{{First: r.Seq, Last: r.Seq}}}, DryRun: true,
			OnEvent: func(e dlqops.ReplayEvent) { ev = e }}); err != nil {
			t.Fatal(err)
		}
		if ev.Outcome != dlqops.WouldReplay || !strings.Contains(ev.Warning, "invalid again: "+job.HeaderJobID+" "+quoted) {
			t.Errorf("%q: dry run %s, warning %q", id, ev.Outcome, ev.Warning)
		}
		msg, err := dlqops.ReplayMessage(r, topo.DLQStream, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := job.Lookup(msg.Header, job.HeaderJobID); got != id {
			t.Errorf("%q: replayed with Invoke-Job-Id %q", id, got)
		}
	}

	// A real replay: the job comes back invalid again, still carrying the
	// publisher's id, and nothing runs under a made-up one.
	if _, err := s.Replay(ctxT(t), dlqops.ReplayOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	h.waitSettled(0, 2)
	for _, m := range msgs(t, h.nats, topo.DLQStream) {
		if id := job.Lookup(m.Header, job.HeaderJobID); sent[id] == "" || m.Header.Get(dlq.HeaderReplayCount) != "1" {
			t.Errorf("record after replay: %s %v", m.Subject, m.Header)
		}
	}
	if n := h.emu.Stats().Requests; n != 0 {
		t.Fatalf("the function was invoked %d times", n)
	}
}
