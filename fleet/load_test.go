package fleet

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jobsPerScenario is what each scenario sends: the issue asks for at
// least 5,000.
const jobsPerScenario = 5000

// load is one scenario's jobs: published by a publisher that sends each
// job until JetStream acknowledges it, with the same id every time (so a
// publish that timed out but was stored is stored once), and what the
// scenario did to the fleet meanwhile.
type load struct {
	f    *Fleet
	name string
	ids  []string
	fn   map[string]string // job id → function

	// pending are known defects this scenario shows, with why.
	pending map[defect]string

	mu     sync.Mutex
	acked  map[string]bool
	faults []time.Time
	// published is closed when every job was acknowledged or the
	// publisher gave up.
	published chan struct{}
}

// startLoad publishes n jobs in the background, about 500 a second, so
// that the scenario's fault happens while jobs are still arriving.
func (f *Fleet) startLoad(ctx context.Context, name string, n int) *load {
	l := &load{f: f, name: name, fn: map[string]string{}, acked: map[string]bool{}, published: make(chan struct{})}
	for i := range n {
		id := fmt.Sprintf("%s-%05d", name, i)
		l.ids = append(l.ids, id)
		l.fn[id] = functionOf(i)
	}
	go l.publish(ctx)
	return l
}

func (l *load) publish(ctx context.Context) {
	defer close(l.published)
	js, err := jetstream.New(l.f.nc, jetstream.WithPublishAsyncTimeout(5*time.Second), jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		return
	}
	const batch = 50
	todo := slices.Clone(l.ids)
	for len(todo) > 0 && ctx.Err() == nil {
		var again []string
		for start := 0; start < len(todo) && ctx.Err() == nil; start += batch {
			part := todo[start:min(start+batch, len(todo))]
			futures := make([]jetstream.PubAckFuture, len(part))
			for i, id := range part {
				msg := nats.NewMsg("invoke.jobs.fleet")
				msg.Header.Set("Invoke-Function-Id", l.fn[id])
				msg.Header.Set(nats.MsgIdHdr, id)
				msg.Data = []byte("job " + id)
				futures[i], _ = js.PublishMsgAsync(msg)
			}
			for i, fut := range futures {
				ok := false
				if fut != nil {
					select {
					case <-fut.Ok():
						ok = true
					case <-fut.Err():
					case <-ctx.Done():
					}
				}
				if ok {
					l.mu.Lock()
					l.acked[part[i]] = true
					l.mu.Unlock()
				} else {
					again = append(again, part[i])
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		todo = again
		if len(todo) > 0 {
			time.Sleep(500 * time.Millisecond)
		}
	}
}

// fault records when the scenario disturbed the fleet, for the recovery
// time.
func (l *load) fault(at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.faults = append(l.faults, at)
}

// settled counts results and dead-letter records stored so far (0 while
// the cluster does not answer).
func (l *load) settled(ctx context.Context) int {
	total := 0
	for _, name := range []string{l.f.topo.ResultsStream, l.f.topo.DLQStream} {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := l.f.js.Stream(actx, name)
		cancel()
		if err != nil {
			return 0
		}
		total += int(s.CachedInfo().State.Msgs)
	}
	return total
}

// waitSettled waits until at least n outcomes are stored.
func (l *load) waitSettled(ctx context.Context, n int) {
	l.f.t.Helper()
	l.f.eventually(ctx, fmt.Sprintf("%d outcomes", n), func() bool { return l.settled(ctx) >= n })
}

// waitDone waits until the publisher is done, every job has an outcome and
// the jobs stream is empty (no job pending, held or waiting to retry).
func (l *load) waitDone(ctx context.Context) {
	l.f.t.Helper()
	select {
	case <-l.published:
	case <-ctx.Done():
		l.f.t.Fatal("timed out publishing")
	}
	l.f.eventually(ctx, "every job to settle and the jobs stream to empty", func() bool {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		s, err := l.f.js.Stream(actx, l.f.topo.JobsStream)
		if err != nil || s.CachedInfo().State.Msgs != 0 {
			return false
		}
		results, dlq, err := l.outcomes(actx)
		if err != nil {
			return false
		}
		for _, id := range l.ids {
			if results[id]+dlq[id] == 0 {
				return false
			}
		}
		return true
	})
}

// outcomes counts the stored results and dead-letter records of each job.
func (l *load) outcomes(ctx context.Context) (results, dlq map[string]int, err error) {
	count := func(stream, prefix string) (map[string]int, error) {
		s, err := l.f.js.Stream(ctx, stream)
		if err != nil {
			return nil, err
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(prefix+".>"))
		if err != nil {
			return nil, err
		}
		out := map[string]int{}
		for subject, n := range info.State.Subjects {
			// <prefix>.<job-id> and <prefix>.<reason>.<job-id>: the job id
			// is the last token.
			out[subject[strings.LastIndexByte(subject, '.')+1:]] += int(n)
		}
		return out, nil
	}
	if results, err = count(l.f.topo.ResultsStream, l.f.topo.ResultsPrefix); err != nil {
		return nil, nil, err
	}
	dlq, err = count(l.f.topo.DLQStream, l.f.topo.DLQPrefix)
	return results, dlq, err
}

// defect is a kind of broken invariant that a scenario may list as
// pending: a known defect of the product, reported in the test log and in
// the README until it is fixed, that does not fail the scenario. Every
// other broken invariant does.
type defect string

const (
	// bothOutcomes: a job with a result and a dead-letter record.
	bothOutcomes defect = "both outcomes"
	// overAttempts: a job invoked more than retry.max_attempts times.
	overAttempts defect = "over max attempts"
	// healthyDeadLettered: a job of a function that never fails
	// dead-lettered (its attempts spent by deliveries that never reached
	// a worker).
	healthyDeadLettered defect = "healthy job dead-lettered"
)

// summary is what a scenario prints and what its assertions read.
type summary struct {
	sent, results, dlq, calls, duplicates int
	// recovery is, over the scenario's faults, the longest time from a
	// fault until a job that had an invocation in flight at that moment
	// was invoked again (or, if its call was not cut off, answered);
	// completed is until the last of them was answered, which includes
	// waits for its function's share of the slots (jobs of the flaky
	// function left out of both: their later calls may be retries);
	// inFlight counts those jobs.
	recovery  time.Duration
	completed time.Duration
	inFlight  int
}

func (s summary) String() string {
	return fmt.Sprintf("jobs sent %d, results %d, DLQ records %d, invocations %d, duplicate invocations %d, recovery time %s, all completed after %s (%d jobs in flight at the faults)",
		s.sent, s.results, s.dlq, s.calls, s.duplicates, s.recovery.Round(100*time.Millisecond), s.completed.Round(100*time.Millisecond), s.inFlight)
}

// check asserts the invariants and returns the figures.
func (l *load) check(ctx context.Context) summary {
	t := l.f.t
	t.Helper()
	var s summary
	l.mu.Lock()
	s.sent = len(l.acked)
	faults := slices.Clone(l.faults)
	l.mu.Unlock()
	if s.sent != len(l.ids) {
		t.Errorf("the publisher saw %d of %d jobs acknowledged", s.sent, len(l.ids))
	}
	results, dlq, err := l.outcomes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	known := map[defect]int{}
	problem := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	// report is a problem, or a known defect's instance when the
	// scenario lists it as pending.
	report := func(kind defect, format string, args ...any) {
		if _, ok := l.pending[kind]; ok {
			if known[kind] < 5 {
				t.Logf("KNOWN DEFECT (%s): %s", l.pending[kind], fmt.Sprintf(format, args...))
			}
			known[kind]++
			return
		}
		problem(format, args...)
	}
	for _, id := range l.ids {
		r, d := results[id], dlq[id]
		s.results += r
		s.dlq += d
		switch {
		case r+d == 0:
			problem("%s (%s): no outcome", id, l.fn[id])
		case r > 1:
			problem("%s: result stored %d times", id, r)
		case r+d > 1:
			report(bothOutcomes, "%s: %d results and %d dead-letter records", id, r, d)
		case (l.fn[id] == fnFast || l.fn[id] == fnSlow) && r != 1:
			report(healthyDeadLettered, "%s (%s): dead-lettered, not answered", id, l.fn[id])
		case l.fn[id] == fnBroken && d != 1:
			problem("%s (%s): not dead-lettered", id, l.fn[id])
		}
	}
	if extra := len(results) + len(dlq) - countIn(l.ids, results) - countIn(l.ids, dlq); extra != 0 {
		problem("%d outcomes of jobs never sent", extra)
	}

	calls := l.f.emulatorCalls(ctx)
	byJob := map[string][]call{}
	for _, c := range calls {
		id, _ := c.job()
		if _, ours := l.fn[id]; !ours {
			problem("a call with request id %q: no job of this scenario", c.RequestID)
			continue
		}
		byJob[id] = append(byJob[id], c)
	}
	last := map[string]time.Time{}
	// rerun is when a job's calls after a fault began, per fault time.
	firstAfter := func(id string, at time.Time) (time.Time, bool) {
		for _, c := range byJob[id] { // sorted by start below
			if c.Start.After(at) {
				return c.Start, true
			}
		}
		return time.Time{}, false
	}
	for id, cs := range byJob {
		s.calls += len(cs)
		if len(cs) > maxAttempts {
			report(overAttempts, "%s (%s): invoked %d times, more than retry.max_attempts %d", id, l.fn[id], len(cs), maxAttempts)
		}
		slices.SortFunc(cs, func(a, b call) int { return a.Start.Compare(b.Start) })
		for i, c := range cs {
			// A call is a duplicate when the job was invoked again for
			// the same reason: its answer was lost with the caller (no
			// status: the worker died or was cut off mid-call), or the
			// same attempt was made again later.
			for _, later := range cs[i+1:] {
				if c.Status == 0 || later.RequestID == c.RequestID {
					s.duplicates++
					break
				}
			}
			if c.End.After(last[id]) {
				last[id] = c.End
			}
		}
	}
	for _, at := range faults {
		held := map[string]bool{}
		for _, c := range calls {
			id, _ := c.job()
			// Flaky jobs' later calls may be their retries: only jobs
			// whose first answer is their outcome tell when they
			// recovered.
			if l.fn[id] == fnFlaky {
				continue
			}
			if !c.Start.After(at) && (c.Status == 0 || !c.End.Before(at)) {
				held[id] = true
			}
		}
		s.inFlight += len(held)
		for id := range held {
			s.completed = max(s.completed, last[id].Sub(at))
			// Run again: its first call after the fault began. A job
			// whose call was not cut off completed there.
			if again, ok := firstAfter(id, at); ok {
				s.recovery = max(s.recovery, again.Sub(at))
			} else {
				s.recovery = max(s.recovery, last[id].Sub(at))
			}
		}
	}
	for kind, why := range l.pending {
		// Not every run shows them (1 to 18 jobs in a run), so their
		// absence is logged, not asserted.
		t.Logf("scenario %s: %d instances of a known defect: %s", l.name, known[kind], why)
	}
	if len(problems) > 0 {
		t.Errorf("scenario %s: %s\n%s", l.name, s, strings.Join(problems, "\n"))
	}
	t.Logf("scenario %s: %s", l.name, s)
	return s
}

func countIn(ids []string, m map[string]int) int {
	n := 0
	for _, id := range ids {
		if _, ok := m[id]; ok {
			n++
		}
	}
	return n
}
