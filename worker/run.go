package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/internal/rebind"
)

// Run takes jobs until ctx is cancelled, then stops gracefully: it stops
// pulling, gives jobs that have not started back for immediate redelivery,
// lets in-flight invocations finish for up to DrainTimeout, interrupts and
// gives back the rest, and returns nil. Acknowledgements it sent are
// flushed by the caller's connection drain.
//
// The longest a stop can take is Config.StopBound: DrainTimeout from the
// stop request (or drainWait for the jobs on their way, if longer), then
// SettleTimeout for the interrupted jobs to be given back (or their
// results stored). Anything still settling after that is left to
// JetStream, which redelivers it after its ack wait. A job handed over as
// the stop came is given back, never started.
//
// Concurrency goroutines each take the next job from the intake when they
// are free; feed keeps up to Prefetch more waiting there, so a free
// goroutine never waits for a round trip. Waiting jobs have their ack
// deadlines extended like running ones (see intake). The goroutines live
// as long as Run: a goroutine per job would grow a fresh stack for every
// HTTP call.
func (w *Worker) Run(ctx context.Context) error {
	// Invocations outlive ctx: a stop request must not cut them off before
	// DrainTimeout. workCtx is cancelled only when draining gives up.
	workCtx, interrupt := context.WithCancelCause(context.WithoutCancel(ctx))
	defer interrupt(nil)

	w.running.Store(true)
	defer w.running.Store(false)
	w.log.Info().Int("concurrency", w.cfg.Concurrency).Int("prefetch", w.cfg.Prefetch).Bool("waits_hold_no_slot", w.waits()).Msg("worker started")

	in := newIntake(w.cfg.Concurrency, w.cfg.Prefetch)
	slots := make([]*slot, w.cfg.Concurrency)
	hbs := make([]*heartbeat, len(slots))
	for i := range slots {
		slots[i] = newSlot()
		hbs[i] = &slots[i].hb
	}
	// Extensions go on while draining: in-flight jobs still run then.
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	background.Go(func() { w.sweepHeartbeats(bgCtx, hbs, in) })
	if w.deps.Reach != nil && w.cfg.AckWait > 0 {
		background.Go(func() { w.watchReach(bgCtx) })
	}
	if w.deps.Sampler != nil {
		background.Go(func() { w.sample(bgCtx) })
	}
	defer func() { stopBackground(); background.Wait() }()

	var (
		handBack       sync.WaitGroup
		handBackMu     sync.Mutex
		handBackClosed bool // set once Run waits for handBack
	)
	// giveBack hands a job that has not started straight back to
	// JetStream, holding no slot, so it does not wait behind invocations
	// still running; no invocation, so no heartbeat, and a slot of its
	// own that the sweeper does not visit.
	giveBack := func(msg jetstream.Msg, arrived time.Time) {
		handBackMu.Lock()
		defer handBackMu.Unlock()
		if handBackClosed {
			// Later than the drain allows: never acknowledged, so
			// JetStream redelivers it after its ack wait.
			return
		}
		handBack.Go(func() { w.handle(workCtx, msg, arrived, time.Time{}, true, newSlot()) })
	}
	// arrive takes a job a pull brought. The pull was sent at asked: the
	// server may have delivered the job any time since, so that is when
	// the worker holds it from (see lapsedSince).
	arrive := func(msg jetstream.Msg, asked time.Time) {
		if ctx.Err() != nil {
			// Stopping: on its way but not started.
			in.arrivedElsewhere()
			giveBack(msg, asked)
			return
		}
		in.put(msg, asked, w.cfg.Now(), w.cfg.ProgressInterval)
	}
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		w.feed(ctx, in, arrive)
	}()
	var wg sync.WaitGroup
	for _, s := range slots {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case p := <-in.ready:
					// A stop may have come while the job was handed over:
					// it must not start then.
					due := in.take(p)
					w.handle(workCtx, p.msg, p.arrived, due, ctx.Err() != nil, s)
					in.done()
				}
			}
		})
	}
	<-ctx.Done()

	// The drain timeout runs from the stop request.
	timer := time.NewTimer(w.cfg.DrainTimeout)
	defer timer.Stop()
	w.draining.Store(true)
	<-fed // every pull has ended: what it brought is queued or handed back (bounded by drainWait)
	// What still waits goes back; a slot that takes one first (it may,
	// until it sees the stop) gives it back too.
	for waiting := true; waiting; {
		select {
		case p := <-in.ready:
			in.take(p)
			giveBack(p.msg, p.arrived)
		default:
			waiting = false
		}
	}
	handBackMu.Lock()
	handBackClosed = true
	handBackMu.Unlock()
	w.log.Info().Int("in_flight", w.InFlight()).Dur("drain_timeout", w.cfg.DrainTimeout).Msg("worker stopping: letting in-flight jobs finish")
	allDone := make(chan struct{})
	go func() { wg.Wait(); handBack.Wait(); w.settling.Wait(); close(allDone) }()
	select {
	case <-allDone:
	case <-timer.C:
		w.log.Warn().Int("in_flight", w.InFlight()).Msg("drain timeout: interrupting in-flight jobs and giving them back")
		interrupt(errInterrupted)
		// Interrupted attempts return at once; what is left is storing
		// their outcomes, each bounded by SettleTimeout.
		settle := time.NewTimer(w.cfg.SettleTimeout + time.Second)
		defer settle.Stop()
		select {
		case <-allDone:
		case <-settle.C:
			w.log.Error().Int("in_flight", w.InFlight()).Msg("jobs still settling after the settle timeout; JetStream redelivers them after their ack wait")
		}
	}
	w.log.Info().Msg("worker stopped")
	return nil
}

// StopBound is the longest Run takes to return once its context is
// cancelled: max(5s, DrainTimeout) + SettleTimeout + 1s.
func (c Config) StopBound() time.Duration {
	c = c.withDefaults()
	return max(drainWait, c.DrainTimeout) + c.SettleTimeout + time.Second
}

// drainWait bounds how long a stopping worker waits for the jobs already on
// their way to it: the pulls it sent expire by then.
const drainWait = 5 * time.Second

// pullExpiry is how long one pull request waits at the server for jobs.
// The client library gives up on a pull a second after its expiry, so a
// stopping worker's last pulls end within drainWait. An idle worker sends
// one such request every pullExpiry.
const pullExpiry = drainWait - time.Second

// feed pulls the shared consumer's jobs into arrive until ctx is done:
// a pull asks for as many jobs as the intake has room for, and a new one
// goes out once there is room for at least Prefetch/2 more, so pulls
// overlap and a busy worker's slots never wait for a round trip. It binds
// to the consumer, and binds again (creating the consumer again) when a
// pull says it is lost (rebind). On stop it sends no more pulls and waits
// for those on their way: what they bring reaches arrive, which hands it
// back.
func (w *Worker) feed(ctx context.Context, in *intake, arrive func(msg jetstream.Msg, asked time.Time)) {
	var pulls sync.WaitGroup
	defer pulls.Wait()
	// A pull that ends saying the consumer is gone tells the loop here.
	lost := make(chan error, 1)
	rebind.Run(ctx, func(ctx context.Context, b *rebind.Backoff) error {
		return w.pull(ctx, b, in, arrive, lost, &pulls)
	}, func(err error) {
		w.bound.Store(false)
		w.metrics.fetchError()
		w.log.Warn().Err(err).Msg("job consumer unavailable; retrying")
	})
}

// pull binds to the consumer and sends pulls into arrive until ctx is done
// or a pull reports the consumer lost (then it pauses on b and returns nil,
// for feed to bind again). It returns the error when it could not bind. A
// pull that went out resets b; one that failed pauses on it. Pulls that
// went out run in pulls.
func (w *Worker) pull(ctx context.Context, b *rebind.Backoff, in *intake, arrive func(msg jetstream.Msg, asked time.Time), lost chan error, pulls *sync.WaitGroup) error {
	maxBytes := max(w.cfg.PullMaxBytes, int(w.cfg.MaxMessage))
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		select {
		case err := <-lost:
			w.bound.Store(false)
			w.metrics.fetchError()
			w.log.Warn().Err(err).Msg("job consumer lost; binding again")
			b.Wait(ctx)
			return nil
		default:
		}
		if cons == nil {
			c, err := w.deps.Consumer(ctx)
			if err != nil {
				return err
			}
			cons = c
			w.bound.Store(true)
		}
		if w.reachDoubtful() {
			select {
			case <-ctx.Done():
			case <-time.After(w.cfg.ProgressInterval / heartbeatSweepsPerInterval):
			}
			continue
		}
		n := in.reserve()
		if n == 0 {
			select {
			case <-ctx.Done():
			case <-in.room:
			case err := <-lost:
				lost <- err // seen at the top of the loop
			}
			continue
		}
		// At most n jobs and at most maxBytes in one pull, so that large
		// bodies never pile up in the server for us.
		asked := w.cfg.Now()
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(pullExpiry), jetstream.FetchMaxBytes(maxBytes))
		if err != nil {
			in.unrequest(n)
			w.metrics.fetchError()
			w.log.Warn().Err(err).Msg("pull failed; retrying")
			b.Wait(ctx)
			continue
		}
		b.Reset()
		pulls.Go(func() {
			got := 0
			for msg := range batch.Messages() {
				got++
				arrive(msg, asked)
			}
			in.unrequest(n - got)
			if err := batch.Error(); err != nil && !benignPullEnd(err) {
				select {
				case lost <- err:
				default:
				}
			}
		})
	}
	return nil
}

// benignPullEnd reports whether err ends a pull without saying anything
// about the consumer: the server is simply done with the request.
func benignPullEnd(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) ||
		errors.Is(err, jetstream.ErrMaxBytesExceeded) || errors.Is(err, jetstream.ErrBatchCompleted) ||
		errors.Is(err, jetstream.ErrConsumerLeadershipChanged)
}

// sweepHeartbeats sends the owed extensions of the running jobs (hbs) and
// of the jobs waiting in the intake until ctx is done.
func (w *Worker) sweepHeartbeats(ctx context.Context, hbs []*heartbeat, in *intake) {
	every := w.cfg.ProgressInterval
	t := time.NewTicker(every / heartbeatSweepsPerInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := w.cfg.Now()
			for _, hb := range hbs {
				hb.beat(now, every)
			}
			in.beat(now, every)
		}
	}
}
