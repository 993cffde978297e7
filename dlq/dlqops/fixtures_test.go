package dlqops_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/dlq/dlqops"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
)

// Function ids used across tests.
const (
	fnA = "ocid1.fnfunc.oc1.phx.aaaaaaaaalpha"
	fnB = "ocid1.fnfunc.oc1.phx.aaaaaaaabravo"
	fnC = "ocid1.fnfunc.oc1.iad.aaaaaaaacharlie"
	fnD = "ocid1.fnfunc.oc1.iad.aaaaaaaadelta"
)

const testTraceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// fixture is one dead-letter record to write, and what reading it back
// must give.
type fixture struct {
	id       string
	reason   dlq.Reason
	function string // "" for an invalid job without one
	status   int
	code     string
	attempts int
	err      string
	failedAt time.Time
	body     []byte
	history  []dlq.Attempt
	jobSeq   uint64 // the job's sequence in the jobs stream; default 1000 + index
}

// sixty builds 60 records of three reasons over four functions (and some
// invalid ones without a function), failing a minute apart up to base.
func sixty(base time.Time) []fixture {
	fns := []string{fnA, fnB, fnC, fnD}
	var out []fixture
	for i := range 60 {
		f := fixture{
			id:       fmt.Sprintf("job-%02d", i),
			function: fns[i%4],
			failedAt: base.Add(time.Duration(i-59) * time.Minute),
			body:     fmt.Appendf(nil, `{"n":%d}`, i),
		}
		switch i % 3 {
		case 0:
			f.reason = dlq.ReasonPermanent
			f.status, f.code, f.attempts = 404, "NotAuthorizedOrNotFound", 1
			if i%2 == 1 {
				f.status, f.code = 400, "InvalidParameter"
			}
			f.err = fmt.Sprintf("function answered %d %s: no such function", f.status, f.code)
		case 1:
			f.reason = dlq.ReasonExhausted
			f.attempts = 3 + i%3
			switch i % 4 {
			case 0, 1:
				f.status, f.code = 503, "FunctionInvokeServiceUnavailable"
				f.err = fmt.Sprintf("gave up after %d attempts: function answered 503 %s: out of capacity", f.attempts, f.code)
			case 2:
				f.status, f.code = 429, "TooManyRequests"
				f.err = fmt.Sprintf("gave up after %d attempts: function answered 429 TooManyRequests: slow down", f.attempts)
			default:
				f.err = fmt.Sprintf("gave up after %d attempts: network error: dial tcp: connection refused", f.attempts)
			}
		case 2:
			f.reason = dlq.ReasonInvalid
			f.err = "invalid job: missing Invoke-Function-Id header"
			if i%4 != 3 {
				f.err = "invalid job: Fn-Intent \"bogus\": want httprequest or cloudevent"
			} else {
				f.function = ""
			}
		}
		for n := 1; n <= f.attempts; n++ {
			a := dlq.Attempt{N: n, At: f.failedAt.Add(time.Duration(n-f.attempts) * time.Second), DurationMs: int64(10 * n), Worker: "w-1", Status: f.status, Code: f.code, Error: "attempt failed"}
			if f.status == 0 {
				a.Error = "network error: connection refused"
			}
			f.history = dlq.AppendHistory(f.history, a)
		}
		out = append(out, f)
	}
	return out
}

// write stores fixtures as a worker would, in order, and returns their
// sequences.
func write(t *testing.T, n *testenv.NATS, fx []fixture) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	var seqs []uint64
	for i, f := range fx {
		hdr := nats.Header{}
		if f.function != "" {
			hdr.Set(job.HeaderFunctionID, f.function)
		}
		hdr.Set(job.HeaderMsgID, f.id)
		hdr.Set(job.HeaderContentType, "application/json")
		hdr.Set("traceparent", testTraceparent)
		if f.jobSeq == 0 {
			f.jobSeq = uint64(1000 + i)
		}
		j := job.Job{
			ID: f.id, FunctionID: f.function, Body: f.body, Header: hdr,
			Subject: "invoke.jobs.default", Stream: n.Topology.JobsStream, Seq: f.jobSeq,
			StoreAt: f.failedAt.Add(-time.Minute),
		}
		msg := dlq.NewMessage(n.Topology.DLQPrefix, j, dlq.Failure{
			Reason: f.reason, Error: f.err, Status: f.status, Attempts: f.attempts,
			FailedAt: f.failedAt, Worker: "w-1", History: f.history,
		})
		ack, err := n.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(dlq.DedupeID(j)))
		if err != nil {
			t.Fatalf("write fixture %s: %v", f.id, err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

func newStore(t *testing.T, n *testenv.NATS) *dlqops.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	topo := n.Topology
	s, err := dlqops.NewStore(ctx, n.JS, dlqops.StoreConfig{
		Stream: topo.DLQStream, Prefix: topo.DLQPrefix, JobsStream: topo.JobsStream,
		ResultsStream: topo.ResultsStream, ResultsPrefix: topo.ResultsPrefix,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	t.Cleanup(cancel)
	return ctx
}

// streamState is what "changes nothing" compares.
type streamState struct {
	Msgs, FirstSeq, LastSeq uint64
	Consumers               int
}

func stateOf(t *testing.T, n *testenv.NATS, stream string) streamState {
	t.Helper()
	s, err := n.JS.Stream(ctxT(t), stream)
	if err != nil {
		t.Fatal(err)
	}
	st := s.CachedInfo().State
	return streamState{st.Msgs, st.FirstSeq, st.LastSeq, st.Consumers}
}

// msgs reads every message of a stream without changing it.
func msgs(t *testing.T, n *testenv.NATS, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := ctxT(t)
	s, err := n.JS.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	st := s.CachedInfo().State
	var out []*jetstream.RawStreamMsg
	for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// jobIDs are the Invoke-Job-Id headers of msgs, in order.
func jobIDs(ms []*jetstream.RawStreamMsg) []string {
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.Header.Get(job.HeaderJobID))
	}
	return ids
}

func startNATS(t *testing.T) *testenv.NATS {
	t.Helper()
	return testenv.StartNATS(t, queue.Topology{})
}

// list collects what s.Records yields for f.
func list(ctx context.Context, s *dlqops.Store, f dlqops.Filter) ([]dlq.Record, error) {
	var out []dlq.Record
	for r, err := range s.Records(ctx, f) {
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}
