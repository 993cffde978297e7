package worker

import (
	"context"
	"sync"
	"time"

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
// Concurrency goroutines each take the next job only when they are free;
// the client library keeps Prefetch more on their way, so a free goroutine
// never waits for a round trip. Those few are the only jobs whose ack
// deadline runs while they wait (see Config.Prefetch). The goroutines live
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

	slots := make([]*slot, w.cfg.Concurrency)
	hbs := make([]*heartbeat, len(slots))
	for i := range slots {
		slots[i] = newSlot()
		hbs[i] = &slots[i].hb
	}
	// Extensions go on while draining: in-flight jobs still run then.
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	background.Go(func() { w.sweepHeartbeats(bgCtx, hbs) })
	if w.deps.Reach != nil && w.cfg.AckWait > 0 {
		background.Go(func() { w.watchReach(bgCtx) })
	}
	if w.deps.Sampler != nil {
		background.Go(func() { w.sample(bgCtx) })
	}
	defer func() { stopBackground(); background.Wait() }()

	// The client library delivers one job at a time and asks the server
	// for more only once it was taken: a job waits here until a goroutine
	// is free, and while it waits no more are pulled than Prefetch.
	handoff := make(chan jetstream.Msg)
	var (
		handBack       sync.WaitGroup
		handBackMu     sync.Mutex
		handBackClosed bool // set once Run waits for handBack
	)
	deliver := func(msg jetstream.Msg) {
		if ctx.Err() == nil {
			select {
			case handoff <- msg:
				return
			case <-ctx.Done():
			}
		}
		// Stopping: on its way but not started. Straight back to
		// JetStream, holding no slot, so it does not wait behind
		// invocations still running; no invocation, so no heartbeat,
		// and a slot of its own that the sweeper does not visit.
		handBackMu.Lock()
		defer handBackMu.Unlock()
		if handBackClosed {
			// Later than the drain allows (feed gave up waiting):
			// never acknowledged, so JetStream redelivers it after
			// its ack wait.
			return
		}
		handBack.Go(func() { w.handle(workCtx, msg, w.cfg.Now(), true, newSlot()) })
	}
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		w.feed(ctx, deliver)
	}()
	var wg sync.WaitGroup
	for _, s := range slots {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case msg := <-handoff:
					// A stop may have come while the job was handed over:
					// it must not start then.
					w.handle(workCtx, msg, w.cfg.Now(), ctx.Err() != nil, s)
				}
			}
		})
	}
	<-ctx.Done()

	// The drain timeout runs from the stop request.
	timer := time.NewTimer(w.cfg.DrainTimeout)
	defer timer.Stop()
	w.draining.Store(true)
	<-fed // every job that was on its way is running or handed back (bounded by drainWait)
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
// their way to it.
const drainWait = 5 * time.Second

// feed keeps the shared consumer's jobs coming to deliver until ctx is
// done: it binds to the consumer, binds again (creating the consumer
// again) when it is lost, and on stop drains what is on its way.
func (w *Worker) feed(ctx context.Context, deliver func(jetstream.Msg)) {
	rebind.Run(ctx, func(ctx context.Context, b *rebind.Backoff) error {
		cc, err := w.bind(ctx, deliver)
		if err != nil {
			return err
		}
		b.Reset()
		w.bound.Store(true)
		select {
		case <-cc.Closed():
			// Deleted under us, or stopped for good: bind again.
			w.bound.Store(false)
			w.log.Warn().Msg("job consumer lost; binding again")
		case <-ctx.Done():
			// What is already here reaches deliver, which hands it back.
			cc.Drain()
			select {
			case <-cc.Closed():
			case <-time.After(drainWait):
				cc.Stop()
			}
		}
		return nil
	}, func(err error) {
		w.bound.Store(false)
		w.metrics.fetchError()
		w.log.Warn().Err(err).Msg("job consumer unavailable; retrying")
	})
}

// bind gets the consumer and starts consuming it into deliver.
func (w *Worker) bind(ctx context.Context, deliver func(jetstream.Msg)) (jetstream.ConsumeContext, error) {
	cons, err := w.deps.Consumer(ctx)
	if err != nil {
		return nil, err
	}
	return cons.Consume(deliver,
		// At most Prefetch jobs, and at most PullMaxBytes in one pull,
		// so that large bodies never pile up in the server for us.
		jetstream.PullMaxMessagesWithBytesLimit(w.cfg.Prefetch, max(w.cfg.PullMaxBytes, int(w.cfg.MaxMessage))),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			// The client carries on (and stops by itself when the
			// consumer is gone, which feed notices).
			w.metrics.fetchError()
			w.log.Warn().Err(err).Msg("pull failed; the client retries")
		}),
	)
}

// sweepHeartbeats sends the owed extensions of hbs until ctx is done.
func (w *Worker) sweepHeartbeats(ctx context.Context, hbs []*heartbeat) {
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
		}
	}
}
