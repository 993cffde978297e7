package bench

import (
	"context"
	"errors"
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
// started, a warm-up, then the measured jobs.
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
	var emu *emulator.Emulator
	if kind != loopNATS {
		if emu, err = r.startEmulator(!r.cfg.Unsigned); err != nil {
			return fail(err)
		}
		defer closeEmulator(emu)
	}
	cons, err := queue.Ensure(ctx, n.js, n.topo)
	if err != nil {
		return fail(err)
	}
	col, err := r.cfg.Connect(ctx, n.url)
	if err != nil {
		return fail(err)
	}
	defer col.Close()

	consCtx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	exited := make(chan struct{})
	var consErr error
	go func() {
		defer close(exited)
		consErr = r.consume(consCtx, kind, n, cons, emu)
	}()
	stop := sync.OnceValue(func() error {
		stopConsumer()
		select {
		case <-exited:
			return consErr
		case <-time.After(stopWait):
			return fmt.Errorf("did not stop within %s", stopWait)
		}
	})
	// On a failed measurement the consumer is stopped all the same.
	defer func() { _ = stop() }()

	if w := r.cfg.warmupJobs(); w > 0 {
		r.log.Info().Str("measurement", name).Int("jobs", w).Msg("warming up")
		if _, err := r.runPhase(ctx, n, col, kind, "w", w, exited, ""); err != nil {
			return fail(fmt.Errorf("warm-up: %w%s", err, exitCause(exited, &consErr)))
		}
	}
	if emu != nil {
		emu.Reset() // the warm-up's call records are not needed
	}
	r.log.Info().Str("measurement", name).Int("jobs", r.cfg.Jobs).Msg("measuring")
	p, err := r.runPhase(ctx, n, col, kind, "m", r.cfg.Jobs, exited, kind.String())
	if err != nil {
		return fail(fmt.Errorf("%w%s", err, exitCause(exited, &consErr)))
	}
	if err := stop(); err != nil {
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
func exitCause(exited <-chan struct{}, err *error) string {
	select {
	case <-exited:
		if *err != nil {
			return fmt.Sprintf(" (consumer: %v)", *err)
		}
		return " (consumer returned)"
	default:
		return ""
	}
}

// consume runs the consumer under test until ctx is cancelled.
func (r *runner) consume(ctx context.Context, kind loopKind, n *natsEnv, cons jetstream.Consumer, emu *emulator.Emulator) error {
	if kind == loopWorker {
		env := WorkerEnv{
			NATSURL:     n.url,
			Topology:    n.topo,
			StateBucket: n.state,
			FunctionID:  r.cfg.FunctionID,
			Endpoint:    emu.URL(),
			Concurrency: r.cfg.Concurrency,
		}
		if !r.cfg.Unsigned {
			env.OCIConfigFile, env.OCIProfile = r.creds.ConfigFile, devcreds.Profile
		}
		return r.cfg.Worker(ctx, env)
	}
	nc, err := r.cfg.Connect(ctx, n.url)
	if err != nil {
		return err
	}
	defer nc.Close()
	var call invokeFunc
	if kind == loopBare {
		p, err := r.newPoster(emu.URL(), !r.cfg.Unsigned)
		if err != nil {
			return err
		}
		defer p.close()
		call = p.post
	}
	return bareLoop(ctx, nc, cons, n.topo.ResultsPrefix, r.cfg.Concurrency, call)
}

// invokeFunc invokes function fn with body, as job id's first attempt.
type invokeFunc func(ctx context.Context, fn, id string, body []byte) ([]byte, error)

// bareLoop is the plainest consumer that does the job: concurrency
// goroutines take messages, invoke the function (when call is set), publish
// the result synchronously and acknowledge. No validation, retries,
// breaker, metrics, logs or state: a ceiling for the worker, not a worker.
// The result carries Nats-Msg-Id, as the contract requires of every
// result. It returns once ctx is cancelled and every goroutine is done.
func bareLoop(ctx context.Context, nc *nats.Conn, cons jetstream.Consumer, resultsPrefix string, concurrency int, call invokeFunc) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// Two rounds buffered keep every goroutine fed without leaving jobs of
	// a slow function buffered past their ack wait.
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * concurrency))
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				msg, err := it.Next()
				if err != nil {
					if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
						return
					}
					// A missed heartbeat: the iterator carries on.
					if sleep(ctx, 10*time.Millisecond) != nil {
						return
					}
					continue
				}
				id := msg.Headers().Get(job.HeaderJobID)
				out := msg.Data()
				if call != nil {
					if out, err = call(ctx, msg.Headers().Get(job.HeaderFunctionID), id, msg.Data()); err != nil {
						_ = msg.Nak()
						continue
					}
				}
				res := &nats.Msg{Subject: resultsPrefix + "." + id, Header: nats.Header{job.HeaderMsgID: {id}}, Data: out}
				if _, err := js.PublishMsg(ctx, res); err != nil {
					_ = msg.Nak()
					continue
				}
				_ = msg.Ack()
			}
		})
	}
	<-ctx.Done()
	it.Stop()
	wg.Wait()
	return nil
}
