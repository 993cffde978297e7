package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
)

// phase is one batch of jobs enqueued and waited for: the warm-up or the
// measured jobs.
type phase struct {
	prefix string // job id prefix: bench-w- or bench-m-
	base   time.Time
	sent   []time.Duration // enqueue time of each job, since base
	recv   []time.Duration // arrival of its result, since base
	last   time.Duration   // arrival of the last first result
	dups   int
	before usage
	after  usage
}

// collector records the first arrival of each job's result. Its handler
// runs on one subscription goroutine; recv and last are read only after
// done is closed, and after that the handler no longer writes them.
type collector struct {
	subjectPrefix string // <results prefix>.<job id prefix>
	base          time.Time
	wantLen       int // result body length; -1 when not checked
	recv          []time.Duration
	last          time.Duration
	got           atomic.Int64
	dups          atomic.Int64
	bad           atomic.Int64
	done          chan struct{}
}

func (c *collector) handle(m *nats.Msg) {
	at := time.Since(c.base)
	s, ok := strings.CutPrefix(m.Subject, c.subjectPrefix)
	if !ok {
		return
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= len(c.recv) {
		return
	}
	if c.recv[i] != 0 {
		c.dups.Add(1)
		return
	}
	if c.wantLen >= 0 && len(m.Data) != c.wantLen {
		c.bad.Add(1)
	}
	c.recv[i] = max(at, 1)
	if int(c.got.Add(1)) == len(c.recv) {
		c.last = at
		close(c.done)
	}
}

// resultLen is the body length every result must have.
func (r *runner) resultLen(k loopKind) int {
	if k != loopNATS && r.cfg.ResponseSize > 0 {
		return r.cfg.ResponseSize
	}
	return len(r.body) // echoed
}

// runPhase enqueues count jobs and waits for all their results, which c
// consumes. A measured phase samples c's usage around it, and takes the
// CPU profile Config.CPUProfile asks for.
func (r *runner) runPhase(ctx context.Context, n *natsEnv, col *nats.Conn, kind loopKind, tag string, count int, c consumer, measured bool) (*phase, error) {
	p := &phase{prefix: "bench-" + tag + "-", base: time.Now()}
	coll := &collector{
		subjectPrefix: n.topo.ResultsPrefix + "." + p.prefix,
		base:          p.base,
		wantLen:       r.resultLen(kind),
		recv:          make([]time.Duration, count),
		done:          make(chan struct{}),
	}
	sub, err := col.Subscribe(n.topo.ResultsPrefix+".>", coll.handle)
	if err != nil {
		return nil, fmt.Errorf("subscribe to results: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// The collector must keep up with any burst; it only stores a time.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, err
	}
	// The subscription must be in place before the first result can exist.
	if err := col.FlushWithContext(ctx); err != nil {
		return nil, fmt.Errorf("subscribe to results: %w", err)
	}

	stopProfile := func() error { return nil }
	if measured {
		if stopProfile, err = r.startProfile(ctx, kind.String(), c); err != nil {
			return nil, err
		}
		if c.isolated() {
			defer r.holdGC()()
		}
	}
	defer func() { _ = stopProfile() }()
	if p.before, err = c.usage(ctx); err != nil {
		return nil, err
	}
	if p.sent, err = r.enqueue(ctx, n, p.prefix, count, p.base); err != nil {
		return nil, err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-coll.done:
			waiting = false
		case <-c.exited():
			return nil, errors.New("the consumer under test stopped before all results arrived")
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d results arrived: %w", coll.got.Load(), count, ctx.Err())
		case <-tick.C:
			if err := n.publishError(); err != nil {
				return nil, fmt.Errorf("enqueue: %w", err)
			}
		}
	}
	if p.after, err = c.usage(ctx); err != nil {
		return nil, err
	}
	if err := stopProfile(); err != nil {
		return nil, err
	}
	stopProfile = func() error { return nil }
	if b := coll.bad.Load(); b > 0 {
		return nil, fmt.Errorf("%d results had a body of the wrong length (want %d bytes)", b, coll.wantLen)
	}
	p.recv, p.last, p.dups = coll.recv, coll.last, int(coll.dups.Load())
	return p, nil
}

// startProfile starts the CPU profile of c's process that Config.CPUProfile
// asks for, if any; the returned stop ends it.
func (r *runner) startProfile(ctx context.Context, name string, c consumer) (stop func() error, err error) {
	stop = func() error { return nil }
	if r.cfg.CPUProfile == nil {
		return stop, nil
	}
	w, err := r.cfg.CPUProfile(name)
	if err != nil || w == nil {
		return stop, err
	}
	return c.profile(ctx, w)
}

// holdGC keeps this process's garbage collector off until its heap reaches
// Config.LoadMemoryLimit; the returned func restores the collector and
// collects what the window left.
func (r *runner) holdGC() (restore func()) {
	if r.cfg.LoadMemoryLimit < 0 {
		return func() {}
	}
	percent := debug.SetGCPercent(-1)
	limit := debug.SetMemoryLimit(r.cfg.LoadMemoryLimit)
	return func() {
		debug.SetMemoryLimit(limit)
		debug.SetGCPercent(percent)
		runtime.GC()
	}
}

// enqueue publishes count jobs asynchronously, at most MaxPending awaiting
// their acknowledgement, as fast as possible or open-loop at Config.Rate.
// It returns each job's start time since base: when it was published, or,
// at a fixed rate, when it was due (so a stall in the generator shows up as
// latency instead of hiding it).
func (r *runner) enqueue(ctx context.Context, n *natsEnv, prefix string, count int, base time.Time) ([]time.Duration, error) {
	sent := make([]time.Duration, count)
	var every time.Duration
	if r.cfg.Rate > 0 {
		every = time.Duration(float64(time.Second) / r.cfg.Rate)
	}
	start := time.Now()
	for i := range count {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		id := prefix + strconv.Itoa(i)
		msg := &nats.Msg{Subject: n.jobSubject, Data: r.body, Header: nats.Header{
			job.HeaderFunctionID: {r.cfg.FunctionID},
			job.HeaderJobID:      {id},
			job.HeaderMsgID:      {id},
		}}
		at := time.Now()
		if every > 0 {
			due := start.Add(time.Duration(i) * every)
			if d := due.Sub(at); d > 0 {
				if err := sleep(ctx, d); err != nil {
					return nil, err
				}
			}
			at = due
		}
		sent[i] = at.Sub(base)
		// A generous stall wait: a busy server is slow to acknowledge, and
		// the default 200ms would fail the run instead of slowing it.
		if _, err := n.js.PublishMsgAsync(msg, jetstream.WithStallWait(10*time.Second)); err != nil {
			return nil, fmt.Errorf("enqueue %s: %w", id, err)
		}
	}
	return sent, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// measure turns a measured phase into a Measurement.
func (p *phase) measure(name string, peakScoped bool) Measurement {
	n := len(p.recv)
	window := p.last - p.before.at.Sub(p.base)
	e2e := make([]time.Duration, n)
	for i := range n {
		e2e[i] = p.recv[i] - p.sent[i]
	}
	m := Measurement{
		Name:       name,
		Jobs:       n,
		Duplicates: p.dups,
		EndToEnd:   latencyOf(e2e),
	}
	usageInto(&m, window, p.before, p.after, peakScoped)
	return m
}

// usageInto fills the rate and the per-job costs of m from a window and
// the usage around it.
func usageInto(m *Measurement, window time.Duration, before, after usage, peakScoped bool) {
	if window > 0 {
		m.Seconds = window.Seconds()
		m.PerSecond = float64(m.Jobs) / window.Seconds()
	}
	if m.Jobs > 0 {
		m.CPUPer1000 = (after.cpu - before.cpu).Seconds() / float64(m.Jobs) * 1000
		m.AllocsPerJob = float64(after.mallocs-before.mallocs) / float64(m.Jobs)
	}
	m.PeakRSS = after.maxRSS
	m.PeakRSSScope = "process"
	if peakScoped {
		m.PeakRSSScope = "measurement"
	}
}

// added is each job's end-to-end latency minus the function's own time,
// matched by the opc-request-id <job-id>-<attempt> of its successful call,
// and how many jobs were matched.
func (p *phase) added(calls []emulator.Call) (*Latency, int) {
	fnTime := make(map[string]time.Duration, len(calls))
	for _, c := range calls {
		if c.Status < 200 || c.Status > 299 {
			continue
		}
		if i := strings.LastIndexByte(c.RequestID, '-'); i > 0 {
			fnTime[c.RequestID[:i]] = c.End.Sub(c.Start)
		}
	}
	out := make([]time.Duration, 0, len(p.recv))
	for i := range p.recv {
		if d, ok := fnTime[p.prefix+strconv.Itoa(i)]; ok {
			out = append(out, p.recv[i]-p.sent[i]-d)
		}
	}
	return latencyOf(out), len(out)
}
