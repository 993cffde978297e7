package dlqops_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/dlq/dlqops"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
)

// TestReplayFilteredSubsetOnceTheFunctionIsHealthy dead-letters the jobs of
// two broken functions through a real worker, repairs one, replays only its
// records, and checks that exactly those jobs produce results (byte-exact,
// first attempt: a fresh retry budget) and exactly their records are gone.
func TestReplayFilteredSubsetOnceTheFunctionIsHealthy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]emulator.Behavior{fnA: {Status: 404}, fnB: {Status: 400}})
	bodies := map[string][]byte{}
	for i := range 12 {
		id := fmt.Sprintf("a-%02d", i)
		bodies[id] = append([]byte{0, 0xff, byte(i)}, id...)
		h.publish(fnA, id, bodies[id])
	}
	for i := range 6 {
		h.publish(fnB, fmt.Sprintf("b-%02d", i), []byte("b"))
	}
	h.waitSettled(0, 18)
	s := newStore(t, h.nats)
	before, err := list(ctxT(t), s, dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var keepSeqs []uint64
	for _, r := range before {
		if r.FunctionID == fnB {
			keepSeqs = append(keepSeqs, r.Seq)
		}
		if r.Reason != dlq.ReasonPermanent {
			t.Fatalf("record %d: reason %s, want permanent", r.Seq, r.Reason)
		}
	}

	if err := h.emu.SetBehavior(fnA, emulator.Behavior{}); err != nil {
		t.Fatal(err)
	}
	var events []dlqops.ReplayEvent
	res, err := s.Replay(ctxT(t), dlqops.ReplayOptions{
		Filter: dlqops.Filter{Functions: []string{fnA}}, All: true,
		Watch:   &dlqops.WatchOptions{Settle: testenv.Wait},
		OnEvent: func(ev dlqops.ReplayEvent) { events = append(events, ev) },
	})
	if err != nil {
		t.Fatalf("replay: %v (%+v)", err, res)
	}
	if res.Selected != 12 || res.Replayed != 12 || res.Deleted != 12 || res.Failed+res.Skipped+res.AlreadyReplayed+res.Left != 0 {
		t.Fatalf("result %+v", res)
	}
	if res.Watch == nil || res.Watch.Succeeded != 12 || res.Watch.FailedAgain != 0 || res.Watch.Pending != 0 {
		t.Fatalf("watch %+v", res.Watch)
	}
	for _, ev := range events {
		if ev.Outcome != dlqops.Replayed || ev.Subject != "invoke.jobs.test" || ev.MsgID != dlqops.ReplayMsgID("INVOKE_DLQ", ev.Record.Seq) {
			t.Fatalf("event %+v", ev)
		}
	}
	h.waitSettled(12, 6)

	results := msgs(t, h.nats, h.nats.Topology.ResultsStream)
	got := jobIDs(results)
	slices.Sort(got)
	var want []string
	for id := range bodies {
		want = append(want, id)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("results for %v, want %v", got, want)
	}
	for _, m := range results {
		id := m.Header.Get(job.HeaderJobID)
		if !bytes.Equal(m.Data, bodies[id]) || m.Header.Get(job.HeaderAttempts) != "1" || m.Subject != "invoke.results."+id {
			t.Fatalf("result of %s: %q attempts %s", id, m.Data, m.Header.Get(job.HeaderAttempts))
		}
	}
	var left []uint64
	for _, m := range msgs(t, h.nats, h.nats.Topology.DLQStream) {
		left = append(left, m.Sequence)
	}
	if !slices.Equal(left, keepSeqs) {
		t.Fatalf("records left %v, want fnB's %v", left, keepSeqs)
	}
}

// TestReplayInterruptedAndRunAgainEnqueuesNoJobTwice stops a replay half
// way at each point a process can die, runs it again, and checks that the
// jobs stream holds each job exactly once and the records are all gone.
func TestReplayInterruptedAndRunAgainEnqueuesNoJobTwice(t *testing.T) {
	t.Parallel()
	errCrash := errors.New("crash")
	cases := []struct {
		name string
		topo queue.Topology
		// interrupt makes the first run stop at the 8th record.
		interrupt func(s *dlqops.Store, o *dlqops.ReplayOptions, cancel context.CancelFunc)
		pause     time.Duration // between the runs
		// left is how many records the second run selects; already how
		// many of those it finds replayed.
		left, already int
	}{
		{
			name: "cancelled between records",
			interrupt: func(_ *dlqops.Store, o *dlqops.ReplayOptions, cancel context.CancelFunc) {
				n := 0
				o.OnEvent = func(dlqops.ReplayEvent) {
					if n++; n == 8 {
						cancel()
					}
				}
			},
			left: 12,
		},
		{
			name: "died after the PubAck, before the marker, rerun inside the duplicate window",
			interrupt: func(s *dlqops.Store, _ *dlqops.ReplayOptions, _ context.CancelFunc) {
				n := 0
				dlqops.SetReplayHooks(s, func(uint64) error {
					if n++; n == 8 {
						return errCrash
					}
					return nil
				}, nil)
			},
			left:    13,
			already: 1,
		},
		{
			name: "died after the marker, before the delete, rerun after the duplicate window",
			topo: queue.Topology{DuplicateWindow: 200 * time.Millisecond},
			interrupt: func(s *dlqops.Store, _ *dlqops.ReplayOptions, _ context.CancelFunc) {
				n := 0
				dlqops.SetReplayHooks(s, nil, func(uint64) error {
					if n++; n == 8 {
						return errCrash
					}
					return nil
				})
			},
			pause:   300 * time.Millisecond,
			left:    13,
			already: 1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n := testenv.StartNATS(t, c.topo)
			fx := sixty(time.Now())[:20]
			write(t, n, fx)
			s := newStore(t, n)

			ctx, cancel := context.WithCancel(ctxT(t))
			o := dlqops.ReplayOptions{All: true}
			c.interrupt(s, &o, cancel)
			res, err := s.Replay(ctx, o)
			if err == nil {
				t.Fatalf("first run not interrupted: %+v", res)
			}
			dlqops.SetReplayHooks(s, nil, nil)
			time.Sleep(c.pause)

			res, err = s.Replay(ctxT(t), dlqops.ReplayOptions{All: true})
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			if res.Selected != c.left || res.AlreadyReplayed != c.already || res.Replayed+res.AlreadyReplayed != c.left {
				t.Fatalf("second run: %+v, want %d already replayed of %d", res, c.already, c.left)
			}
			jobs := msgs(t, n, n.Topology.JobsStream)
			got := jobIDs(jobs)
			var want []string
			for _, f := range fx {
				want = append(want, f.id)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("jobs stream holds %v,\nwant each job once: %v", got, want)
			}
			if left := stateOf(t, n, n.Topology.DLQStream).Msgs; left != 0 {
				t.Fatalf("%d records left", left)
			}
		})
	}
}

// TestReplayKeepReplaysEachRecordOnce keeps the records and checks that the
// marker stops a second replay, which then only deletes.
func TestReplayKeepReplaysEachRecordOnce(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	seqs := write(t, n, sixty(time.Now())[:5])
	s := newStore(t, n)

	res, err := s.Replay(ctxT(t), dlqops.ReplayOptions{All: true, Keep: true})
	if err != nil || res.Replayed != 5 || res.Deleted != 0 {
		t.Fatalf("first replay: %+v, %v", res, err)
	}
	r, err := s.Get(ctxT(t), seqs[2])
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.ReplayMarker(ctxT(t), r)
	if err != nil || m == nil || m.JobID != r.JobID || m.JobsSeq != 3 {
		t.Fatalf("marker %+v, %v", m, err)
	}
	var dry []dlqops.ReplayOutcome
	res, err = s.Replay(ctxT(t), dlqops.ReplayOptions{All: true, DryRun: true, OnEvent: func(ev dlqops.ReplayEvent) { dry = append(dry, ev.Outcome) }})
	if err != nil || res.AlreadyReplayed != 5 || res.Replayed != 0 || len(dry) != 5 || dry[0] != dlqops.AlreadyReplayed {
		t.Fatalf("dry run after keep: %+v %v, %v", res, dry, err)
	}
	res, err = s.Replay(ctxT(t), dlqops.ReplayOptions{All: true, Keep: true})
	if err != nil || res.AlreadyReplayed != 5 || res.Replayed != 0 {
		t.Fatalf("second replay: %+v, %v", res, err)
	}
	res, err = s.Replay(ctxT(t), dlqops.ReplayOptions{Filter: dlqops.Filter{Seqs: []dlqops.SeqRange{{First: seqs[0], Last: seqs[4]}}}})
	if err != nil || res.AlreadyReplayed != 5 || res.Deleted != 5 {
		t.Fatalf("third replay: %+v, %v", res, err)
	}
	if got := stateOf(t, n, n.Topology.JobsStream).Msgs; got != 5 {
		t.Fatalf("jobs stream holds %d jobs, want 5", got)
	}
	if got := stateOf(t, n, n.Topology.DLQStream).Msgs; got != 0 {
		t.Fatalf("%d records left", got)
	}
	// The marker bucket lives as long as a record can.
	kv, err := n.JS.KeyValue(ctxT(t), "INVOKE_DLQ_REPLAYS")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctxT(t))
	if err != nil || st.TTL() != n.Topology.DLQMaxAge {
		t.Fatalf("marker TTL %v, want the DLQ's max age %v (%v)", st.TTL(), n.Topology.DLQMaxAge, err)
	}
}

// TestDryRunAndReadsChangeNothing compares the streams before and after
// list, stats, show, a dry-run replay and a dry-run purge.
func TestDryRunAndReadsChangeNothing(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	seqs := write(t, n, sixty(time.Now()))
	s := newStore(t, n)
	topo := n.Topology
	dlqBefore, jobsBefore := stateOf(t, n, topo.DLQStream), stateOf(t, n, topo.JobsStream)

	if _, err := list(ctxT(t), s, dlqops.Filter{Reasons: []dlq.Reason{dlq.ReasonExhausted}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stats(ctxT(t), dlqops.Filter{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctxT(t), seqs[10]); err != nil {
		t.Fatal(err)
	}
	var outcomes []dlqops.ReplayOutcome
	res, err := s.Replay(ctxT(t), dlqops.ReplayOptions{All: true, DryRun: true, Rate: 1, ToFunction: fnD,
		OnEvent: func(ev dlqops.ReplayEvent) {
			outcomes = append(outcomes, ev.Outcome)
			if ev.FunctionID != fnD || ev.Subject != "invoke.jobs.default" {
				t.Errorf("dry run event %+v", ev)
			}
		}})
	if err != nil || !res.DryRun || res.Replayed != 60 || len(outcomes) != 60 || outcomes[0] != dlqops.WouldReplay {
		t.Fatalf("dry-run replay: %+v, %v", res, err)
	}
	pres, err := s.Purge(ctxT(t), dlqops.PurgeOptions{All: true, DryRun: true, Confirm: func([]dlq.Record) bool {
		t.Error("a dry run asked for confirmation")
		return true
	}})
	if err != nil || pres.Selected != 60 || pres.Deleted != 0 {
		t.Fatalf("dry-run purge: %+v, %v", pres, err)
	}

	if after := stateOf(t, n, topo.DLQStream); after != dlqBefore {
		t.Fatalf("DLQ changed: %+v, was %+v", after, dlqBefore)
	}
	if after := stateOf(t, n, topo.JobsStream); after != jobsBefore {
		t.Fatalf("jobs stream changed: %+v, was %+v", after, jobsBefore)
	}
	if _, err := n.JS.KeyValue(ctxT(t), "INVOKE_DLQ_REPLAYS"); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("a dry run created the marker bucket: %v", err)
	}
}

// TestReplayMessage checks what a replayed job carries.
func TestReplayMessage(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	f := sixty(time.Now())[1]
	seq := write(t, n, []fixture{f})[0]
	s := newStore(t, n)
	r, err := s.Get(ctxT(t), seq)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set(dlq.HeaderReplayCount, "2")
	r.ReplayCount = 2
	r.Header["invoke-function-id"] = []string{f.function} // a publisher's lower-case spelling

	msg, err := dlqops.ReplayMessage(r, "INVOKE_DLQ", fnD)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "invoke.jobs.default" || !bytes.Equal(msg.Data, f.body) {
		t.Fatalf("subject %s, body %q", msg.Subject, msg.Data)
	}
	want := nats.Header{
		job.HeaderJobID:       {f.id},
		job.HeaderFunctionID:  {fnD},
		job.HeaderContentType: {"application/json"},
		"traceparent":         {testTraceparent},
		dlq.HeaderReplayCount: {"3"},
		job.HeaderMsgID:       {"replay-INVOKE_DLQ-" + strconv.FormatUint(seq, 10)},
	}
	if fmt.Sprint(msg.Header) != fmt.Sprint(want) {
		t.Fatalf("headers\n%v\nwant\n%v", msg.Header, want)
	}
	for k := range msg.Header {
		if strings.HasPrefix(k, "Nats-") && k != job.HeaderMsgID {
			t.Fatalf("JetStream header %s kept", k)
		}
	}

	// Without --to-function the job keeps its function; the replayed job
	// parses as a valid job with the record's id.
	msg, err = dlqops.ReplayMessage(r, "INVOKE_DLQ", "")
	if err != nil {
		t.Fatal(err)
	}
	j, err := job.Parse(job.Message{Subject: msg.Subject, Header: msg.Header, Data: msg.Data, Stream: "INVOKE_JOBS", Seq: 9}, job.Limits{})
	if err != nil || j.ID != f.id || j.FunctionID != f.function {
		t.Fatalf("replayed job parses as %+v, %v", j, err)
	}

	r.OriginalSubject = ""
	if _, err := dlqops.ReplayMessage(r, "INVOKE_DLQ", ""); err == nil {
		t.Fatal("a record without an original subject was replayable")
	}
}

// TestReplayWatchStopsWhenReplayedJobsFailAgain replays the records of a
// function that is still broken, with a watch: the replay stops by itself,
// leaving the records it did not reach in the stream.
func TestReplayWatchStopsWhenReplayedJobsFailAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]emulator.Behavior{fnA: {Status: 404}})
	for i := range 30 {
		h.publish(fnA, fmt.Sprintf("a-%02d", i), []byte("x"))
	}
	h.waitSettled(0, 30)
	s := newStore(t, h.nats)
	before, err := list(ctxT(t), s, dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}

	res, err := s.Replay(ctxT(t), dlqops.ReplayOptions{All: true, Rate: 20,
		Watch: &dlqops.WatchOptions{MaxFailureRatio: 0.5, MinSample: 5, Settle: testenv.Wait}})
	if !errors.Is(err, dlqops.ErrTooManyFailures) {
		t.Fatalf("replay: %v (%+v), want ErrTooManyFailures", err, res)
	}
	if !res.Stopped || res.Left == 0 || res.Replayed+res.Left != 30 || res.Watch.FailedAgain < 5 || res.Watch.Succeeded != 0 {
		t.Fatalf("result %+v, watch %+v", res, res.Watch)
	}
	// The records not reached are untouched.
	for _, r := range before[res.Replayed:] {
		if _, err := s.Get(ctxT(t), r.Seq); err != nil {
			t.Fatalf("record %d not reached but gone: %v", r.Seq, err)
		}
	}
	// Every replayed job failed again into a new record.
	h.waitSettled(0, 30)
}

// TestPurgeRemovesOnlyWhatItMatched purges by filter and by sequence and
// checks what is left.
func TestPurgeRemovesOnlyWhatItMatched(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	fx := sixty(time.Now())
	seqs := write(t, n, fx)
	s := newStore(t, n)

	if _, err := s.Purge(ctxT(t), dlqops.PurgeOptions{}); err == nil {
		t.Fatal("a purge without sequences or All was accepted")
	}
	res, err := s.Purge(ctxT(t), dlqops.PurgeOptions{All: true, Confirm: func([]dlq.Record) bool { return false }})
	if !errors.Is(err, dlqops.ErrNotConfirmed) || res.Deleted != 0 || stateOf(t, n, n.Topology.DLQStream).Msgs != 60 {
		t.Fatalf("declined purge: %+v, %v", res, err)
	}

	// A record stored after the purge selected its records is not deleted,
	// even though it matches.
	late := fx[59]
	late.id, late.jobSeq = "late", 5000
	var confirmed []dlq.Record
	res, err = s.Purge(ctxT(t), dlqops.PurgeOptions{
		Filter: dlqops.Filter{Reasons: []dlq.Reason{dlq.ReasonInvalid}, Functions: []string{dlqops.None}}, All: true,
		Confirm: func(rs []dlq.Record) bool {
			confirmed = rs
			write(t, n, []fixture{late})
			return true
		},
	})
	if err != nil || res.Selected != 5 || res.Deleted != 5 || len(confirmed) != 5 {
		t.Fatalf("purge: %+v, %v", res, err)
	}
	res, err = s.Purge(ctxT(t), dlqops.PurgeOptions{Filter: dlqops.Filter{Seqs: []dlqops.SeqRange{{First: seqs[0], Last: seqs[0]}, {First: seqs[1], Last: seqs[3]}}}})
	if err != nil || res.Deleted != 4 {
		t.Fatalf("purge by sequence: %+v, %v", res, err)
	}

	var want []string
	for i, f := range fx {
		if i > 3 && !(f.reason == dlq.ReasonInvalid && f.function == "") {
			want = append(want, f.id)
		}
	}
	want = append(want, "late")
	if got := ids(t, s, dlqops.Filter{}); !slices.Equal(got, want) {
		t.Fatalf("left %v,\nwant %v", got, want)
	}
}

// TestReplayChecksWhereAndWhetherAJobCanRun: a record whose original
// subject no stream stores any more fails (and stays); a job the worker
// would dead-letter again at once is flagged.
func TestReplayChecksWhereAndWhetherAJobCanRun(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	fx := sixty(time.Now())
	nofn := fx[11] // invalid, without a function
	expired := fx[0]
	expired.id = "expired-1"
	expired.jobSeq = 7000
	seqs := write(t, n, []fixture{fx[1], nofn, expired})

	// Give the third job a deadline in the past, and move the first to a
	// subject outside the jobs stream, by rewriting their records.
	ctx := ctxT(t)
	s := newStore(t, n)
	for i, edit := range []func(h nats.Header){
		func(h nats.Header) { h.Set(job.HeaderOriginalSubject, "elsewhere.jobs") },
		nil,
		func(h nats.Header) { h.Set(job.HeaderDeadline, "2020-01-01T00:00:00Z") },
	} {
		if edit == nil {
			continue
		}
		r, err := s.Get(ctx, seqs[i])
		if err != nil {
			t.Fatal(err)
		}
		msg := &nats.Msg{Subject: r.Subject, Header: r.Header, Data: r.Body}
		msg.Header.Del(job.HeaderMsgID)
		edit(msg.Header)
		ack, err := n.JS.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		stream, _ := n.JS.Stream(ctx, n.Topology.DLQStream)
		if err := stream.DeleteMsg(ctx, seqs[i]); err != nil {
			t.Fatal(err)
		}
		seqs[i] = ack.Sequence
	}

	events := map[uint64]dlqops.ReplayEvent{}
	res, err := s.Replay(ctx, dlqops.ReplayOptions{All: true, OnEvent: func(ev dlqops.ReplayEvent) { events[ev.Record.Seq] = ev }})
	if !errors.Is(err, dlqops.ErrIncomplete) || res.Failed != 1 || res.Replayed != 2 {
		t.Fatalf("replay: %+v, %v", res, err)
	}
	if ev := events[seqs[0]]; ev.Outcome != dlqops.Failed || ev.Err == nil || !strings.Contains(ev.Err.Error(), "elsewhere.jobs") {
		t.Fatalf("record to a subject outside the jobs stream: %+v", ev)
	}
	if _, err := s.Get(ctx, seqs[0]); err != nil {
		t.Fatalf("the failed record is gone: %v", err)
	}
	if ev := events[seqs[1]]; ev.Outcome != dlqops.Replayed || !strings.Contains(ev.Warning, "invalid again: missing Invoke-Function-Id") {
		t.Fatalf("record of an invalid job: %+v", ev)
	}
	if ev := events[seqs[2]]; ev.Outcome != dlqops.Replayed || !strings.Contains(ev.Warning, "expires again") {
		t.Fatalf("record of an expired job: %+v", ev)
	}
}

// TestReplayFlagsABodyOverTheRequestLimit: a record whose body is over the
// function service's request limit would be dead-lettered as invalid again
// at once; a dry run says so, as a real replay does, without being told
// the limit (the default is OCI Functions' 6 MiB).
func TestReplayFlagsABodyOverTheRequestLimit(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	fx := sixty(time.Now())
	big, small := fx[1], fx[5]
	big.id, big.body = "big", bytes.Repeat([]byte("x"), 6<<20+1)
	seqs := write(t, n, []fixture{big, small})
	s := newStore(t, n)

	for _, dry := range []bool{true, false} {
		events := map[uint64]dlqops.ReplayEvent{}
		res, err := s.Replay(ctxT(t), dlqops.ReplayOptions{All: true, DryRun: dry, Keep: true,
			OnEvent: func(ev dlqops.ReplayEvent) { events[ev.Record.Seq] = ev }})
		if err != nil || res.Replayed != 2 {
			t.Fatalf("dry run %v: %+v, %v", dry, res, err)
		}
		if w := events[seqs[0]].Warning; !strings.Contains(w, "invalid again") || !strings.Contains(w, "request limit") {
			ev := events[seqs[0]]
			t.Fatalf("dry run %v: the body over the request limit is not flagged: %s, warning %q", dry, ev.Outcome, ev.Warning)
		}
		if w := events[seqs[1]].Warning; w != "" {
			t.Fatalf("dry run %v: a small body is flagged: %q", dry, w)
		}
	}
}
