package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/internal/devcreds"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
)

// loopKind is what consumes the jobs of a loop measurement.
type loopKind int

const (
	loopWorker loopKind = iota // the full worker (Config.Worker)
	loopNATS                   // (a) consume, publish, ack
	loopBare                   // (d) consume, (sign,) POST, publish, ack
)

// String names the measurement for CPU profiles.
func (k loopKind) String() string {
	return [...]string{"worker", "nats_loop", "bare_loop"}[k]
}

// stopWait bounds how long a consumer may take to stop once its jobs are
// done.
const stopWait = time.Minute

// loop measures one consumer: a fresh NATS (and emulator), the consumer
// started (in a process of its own with Config.Spawn), a warm-up, then the
// measured jobs.
func (r *runner) loop(ctx context.Context, kind loopKind, name string) (Measurement, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	scoped := settle()
	fail := func(err error) (Measurement, error) { return Measurement{}, fmt.Errorf("%s: %w", name, err) }

	n, err := r.startNATS(ctx)
	if err != nil {
		return fail(err)
	}
	defer n.close()
	env := WorkerEnv{
		NATSURL:     n.url,
		Topology:    n.topo,
		StateBucket: n.state,
		FunctionID:  r.cfg.FunctionID,
		Concurrency: r.cfg.Concurrency,
	}
	var emu *emulator.Emulator
	if kind != loopNATS {
		if emu, err = r.startEmulator(!r.cfg.Unsigned); err != nil {
			return fail(err)
		}
		defer closeEmulator(emu)
		env.Endpoint = emu.URL()
		if !r.cfg.Unsigned {
			env.OCIConfigFile, env.OCIProfile = r.creds.ConfigFile, devcreds.Profile
		}
	}
	if _, err := queue.Ensure(ctx, n.js, n.topo); err != nil {
		return fail(err)
	}
	col, err := r.cfg.Connect(ctx, n.url)
	if err != nil {
		return fail(err)
	}
	defer col.Close()

	var c consumer
	if r.cfg.Spawn != nil {
		if c, err = startProcess(ctx, r.cfg.Spawn, kind, env); err != nil {
			return fail(err)
		}
		scoped = true // a fresh process per measurement
	} else {
		c = startInProcess(ctx, kind, env, ConsumerConfig{Worker: r.cfg.Worker, Connect: r.cfg.Connect})
	}
	// On a failed measurement the consumer is stopped all the same.
	defer func() { _ = c.stop() }()

	if w := r.cfg.warmupJobs(); w > 0 {
		r.log.Info().Str("measurement", name).Int("jobs", w).Msg("warming up")
		if _, err := r.runPhase(ctx, n, col, kind, "w", w, c, false); err != nil {
			return fail(fmt.Errorf("warm-up: %w%s", err, exitCause(c)))
		}
	}
	if emu != nil {
		emu.Reset() // the warm-up's call records are not needed
	}
	r.log.Info().Str("measurement", name).Int("jobs", r.cfg.Jobs).Msg("measuring")
	p, err := r.runPhase(ctx, n, col, kind, "m", r.cfg.Jobs, c, true)
	if err != nil {
		return fail(fmt.Errorf("%w%s", err, exitCause(c)))
	}
	if err := c.stop(); err != nil {
		return fail(fmt.Errorf("stopping: %w", err))
	}
	m := p.measure(name, scoped)
	if emu != nil {
		var matched int
		if m.Added, matched = p.added(emu.Calls(r.cfg.FunctionID)); matched < m.Jobs {
			r.log.Warn().Str("measurement", name).Int("matched", matched).Int("jobs", m.Jobs).
				Msg("some results had no successful emulator call to match; added latency covers the others")
		}
	} else {
		m.Added = m.EndToEnd // no function: everything is added
	}
	return m, nil
}

// exitCause describes why the consumer stopped, when it did.
func exitCause(c consumer) string {
	select {
	case <-c.exited():
		if err := c.err(); err != nil {
			return fmt.Sprintf(" (consumer: %v)", err)
		}
		return " (consumer returned)"
	default:
		return ""
	}
}

// invokeFunc invokes function fn with body, as job id's first attempt.
type invokeFunc func(ctx context.Context, fn, id string, body []byte) (answer, error)

// answer is what the function answered.
type answer struct {
	status               int
	body                 []byte
	contentType          string
	opcRequestID, callID string
	took                 time.Duration
}

// message is the result message the contract requires, built as the worker
// builds it (job.Result) on a first-attempt success: the bare loop publishes
// the same bytes, so that it is a ceiling for the same job.
func (a answer) message(resultsPrefix, id, fn string) *nats.Msg {
	r := job.Result{
		JobID: id, FunctionID: fn, Status: a.status, Attempts: 1, Duration: a.took, CompletedAt: time.Now(),
		OpcRequestID: a.opcRequestID, FnCallID: a.callID, ContentType: a.contentType,
	}
	h := make(nats.Header, job.ResultHeaders)
	r.AppendHeader(h, make([]string, 0, job.ResultHeaders))
	return &nats.Msg{Subject: resultsPrefix + "." + id, Header: h, Data: a.body}
}

// bareLoop is the plainest consumer that does the job: concurrency
// goroutines take messages, invoke the function (when call is set), publish
// the result synchronously and acknowledge. No validation, retries,
// breaker, metrics, logs or state: a ceiling for the worker, not a worker.
// The result is the one the contract requires (answer.message). It returns
// once ctx is cancelled and every goroutine is done.
func bareLoop(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer, resultsPrefix string, concurrency int, call invokeFunc) error {
	// Handed over one at a time, taken only by a free goroutine; two rounds
	// pulled ahead keep every goroutine fed, and pulls of at most 16 MiB
	// (any job fits) keep large bodies from piling up in the server, as the
	// worker's worker.pull_max_bytes does.
	jobs := make(chan jetstream.Msg)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		select {
		case jobs <- msg:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessagesWithBytesLimit(2*concurrency, 16<<20))
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				var msg jetstream.Msg
				select {
				case <-ctx.Done():
					return
				case msg = <-jobs:
				}
				h := msg.Headers()
				id, fn := h.Get(job.HeaderJobID), h.Get(job.HeaderFunctionID)
				res := answer{status: 200, body: msg.Data()}
				if call != nil {
					start := time.Now()
					var err error
					if res, err = call(ctx, fn, id, msg.Data()); err != nil {
						_ = msg.Nak()
						continue
					}
					res.took = time.Since(start)
				}
				if _, err := js.PublishMsg(ctx, res.message(resultsPrefix, id, fn)); err != nil {
					_ = msg.Nak()
					continue
				}
				_ = msg.Ack()
			}
		})
	}
	<-ctx.Done()
	cc.Stop()
	<-cc.Closed()
	wg.Wait()
	return nil
}
