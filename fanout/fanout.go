package fanout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/invoke-worker/worker/client"
	"github.com/invoke-worker/worker/internal/rebind"
	"github.com/invoke-worker/worker/job"
)

// Fanout runs routes.
type Fanout struct {
	cfg     Config
	log     zerolog.Logger
	routes  []*route
	metrics *metrics
	tracer  trace.Tracer // nil when not tracing
}

// New validates cfg and returns a Fanout that is not running yet.
func New(cfg Config) (*Fanout, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Metrics, cfg.Routes)
	if err != nil {
		return nil, fmt.Errorf("fanout: metrics: %w", err)
	}
	f := &Fanout{cfg: cfg, log: cfg.Logger.With().Str("component", "fanout").Logger(), metrics: m}
	switch cfg.TracerProvider.(type) {
	case nil, noop.TracerProvider, *noop.TracerProvider:
	default:
		f.tracer = cfg.TracerProvider.Tracer("github.com/invoke-worker/worker/fanout")
	}
	for _, r := range cfg.Routes {
		f.routes = append(f.routes, &route{Route: r, f: f, log: f.log.With().Str("route", r.Name).Logger()})
	}
	return f, nil
}

// Ensure creates what the routes need: each one's stream when it is
// missing and StreamSubjects are given, and each one's durable consumer
// (created or updated). Run calls it; calling it first makes a route that
// cannot work fail start-up instead.
func (f *Fanout) Ensure(ctx context.Context) error {
	for _, r := range f.routes {
		cons, err := r.ensure(ctx)
		if err != nil {
			return err
		}
		r.cons = cons
	}
	return nil
}

// Running reports whether every route is bound to its consumer.
func (f *Fanout) Running() bool {
	for _, r := range f.routes {
		if !r.bound.Load() {
			return false
		}
	}
	return true
}

// Run fans events out until ctx is cancelled, then stops pulling, lets the
// events being fanned out finish (publishing a job is quick, and one left
// half done is completed by its redelivery) and returns nil. It returns an
// error only when Ensure fails.
func (f *Fanout) Run(ctx context.Context) error {
	if err := f.Ensure(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, r := range f.routes {
		wg.Go(func() { r.run(ctx) })
	}
	f.log.Info().Int("routes", len(f.routes)).Msg("fan-out routes started")
	wg.Wait()
	f.log.Info().Msg("fan-out routes stopped")
	return nil
}

// route is one running route.
type route struct {
	Route
	f     *Fanout
	log   zerolog.Logger
	cons  jetstream.Consumer // owned by run once it starts
	bound atomic.Bool
}

func (r *route) durable() string { return DurablePrefix + r.Name }

func (r *route) consumerConfig() jetstream.ConsumerConfig {
	deliver := jetstream.DeliverAllPolicy
	if r.DeliverNew {
		deliver = jetstream.DeliverNewPolicy
	}
	return jetstream.ConsumerConfig{
		Durable:        r.durable(),
		Description:    "fan-out route " + r.Name + " (invoke worker)",
		AckPolicy:      jetstream.AckExplicitPolicy,
		DeliverPolicy:  deliver,
		AckWait:        r.f.cfg.AckWait,
		MaxDeliver:     -1, // an event is never dropped: it waits until its jobs are stored
		FilterSubjects: r.Subjects,
		MaxAckPending:  max(1000, 4*r.f.cfg.MaxInFlight),
	}
}

func (r *route) ensure(ctx context.Context) (jetstream.Consumer, error) {
	js := r.f.cfg.JS
	if len(r.StreamSubjects) > 0 && !r.f.cfg.NoStreamCreate {
		_, err := js.Stream(ctx, r.Stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = js.CreateStream(ctx, jetstream.StreamConfig{
				Name:        r.Stream,
				Description: "events of fan-out route " + r.Name + " (created by the invoke worker)",
				Subjects:    r.StreamSubjects,
				Retention:   jetstream.LimitsPolicy,
				Storage:     jetstream.FileStorage,
				Replicas:    r.Replicas,
			})
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				err = nil // another worker created it first
			}
			if err == nil {
				r.log.Info().Str("stream", r.Stream).Strs("subjects", r.StreamSubjects).Msg("created the route's event stream")
			}
		}
		if err != nil {
			return nil, fmt.Errorf("route %s: stream %s: %w", r.Name, r.Stream, err)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, r.Stream, r.consumerConfig())
	if errors.Is(err, jetstream.ErrStreamNotFound) && r.f.cfg.NoStreamCreate {
		// Looked for by creating the consumer, which needs no permission
		// to read stream information.
		return nil, fmt.Errorf("route %s: stream %s not found, and this worker does not create streams (streams.manage: false): create it, or let a worker with streams.manage: true", r.Name, r.Stream)
	}
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("route %s: stream %s not found: create it, or give the route stream_subjects to have the worker create it", r.Name, r.Stream)
	}
	if err != nil {
		return nil, fmt.Errorf("route %s: consumer %s on %s: %w", r.Name, r.durable(), r.Stream, err)
	}
	return cons, nil
}

// run pulls only as many events as it has free slots and fans each out in
// its own goroutine, all of which it waits for before returning. A lost
// consumer is created again (rebind).
func (r *route) run(ctx context.Context) {
	defer r.bound.Store(false)
	// Events already being fanned out finish after a stop.
	work := context.WithoutCancel(ctx)
	slots := make(chan struct{}, r.f.cfg.MaxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	rebind.Run(ctx, func(ctx context.Context, b *rebind.Backoff) error {
		if r.cons == nil {
			cons, err := r.ensure(ctx)
			if err != nil {
				return err
			}
			r.cons = cons
		}
		r.fetch(ctx, b, work, slots, &wg)
		return nil
	}, func(err error) {
		r.bound.Store(false)
		r.log.Warn().Err(err).Msg("route consumer unavailable; retrying")
	})
}

// fetch fans out batches of as many events as there are free slots until
// ctx is done or the consumer is gone (r.cons nil).
func (r *route) fetch(ctx context.Context, b *rebind.Backoff, work context.Context, slots chan struct{}, wg *sync.WaitGroup) {
	cfg := r.f.cfg
	for ctx.Err() == nil && r.cons != nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		n := 1
	more:
		for n < cfg.MaxInFlight {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		batch, err := r.cons.Fetch(n, jetstream.FetchMaxWait(cfg.FetchWait))
		if err != nil {
			for range n {
				<-slots
			}
			r.fetchFailed(err)
			b.Wait(ctx)
			continue
		}
		r.bound.Store(true)
		got := 0
		for msg := range batch.Messages() {
			got++
			wg.Go(func() {
				defer func() { <-slots }()
				r.handle(work, msg)
			})
		}
		for range n - got {
			<-slots
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			r.fetchFailed(err)
			b.Wait(ctx)
			continue
		}
		b.Reset()
	}
}

func (r *route) fetchFailed(err error) {
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		r.bound.Store(false)
		r.cons = nil
		r.log.Warn().Err(err).Msg("route consumer gone; creating it again")
		return
	}
	r.log.Debug().Err(err).Msg("pull for events failed; retrying")
}

// handle fans one event out and settles it: acknowledged once every job is
// stored (jobs refused as invalid are stored too, for the worker to
// dead-letter), given back with a growing delay when some are not.
func (r *route) handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		r.log.Error().Err(err).Str("subject", msg.Subject()).Msg("event without JetStream metadata")
		_ = msg.Term()
		r.f.metrics.event(r.Name, "unusable")
		return
	}
	jobs := r.jobs(msg, meta)
	span := r.trace(ctx, msg, jobs)
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	res, err := r.f.cfg.Publisher.EnqueueBatch(ctx, jobs)
	r.f.metrics.batch(r.Name, res)
	// Only a batch that ran to its end (ErrIncomplete) has a result for
	// every job: one cut short (its context ended) leaves the jobs it
	// never took with empty results, which enqueueInvalid would count as
	// stored, and the event would be acknowledged without them.
	if errors.Is(err, client.ErrIncomplete) && anyInvalid(res) {
		err = r.enqueueInvalid(ctx, jobs, res, meta)
	}
	if span != nil {
		if err != nil {
			span.SetStatus(codes.Error, "jobs not all stored; event given back")
		}
		span.End()
	}
	if err == nil {
		if err := msg.Ack(); err != nil {
			r.log.Debug().Err(err).Uint64("seq", meta.Sequence.Stream).Msg("event ack failed; its redelivery is deduplicated")
		}
		r.f.metrics.event(r.Name, "fanned_out")
		return
	}
	r.f.metrics.event(r.Name, "given_back")
	ev := r.log.With().Str("subject", msg.Subject()).Uint64("seq", meta.Sequence.Stream).Uint64("delivery", meta.NumDelivered).Logger()
	delay := min(retryDelayFirst<<min(meta.NumDelivered-1, 10), retryDelayMax)
	ev.Warn().Err(err).Dur("retry_in", delay).Msg("jobs of event not all stored; event given back")
	_ = msg.NakWithDelay(delay)
}

// trace starts the event's span, when the route traces, and makes it the
// parent of jobs: their shared header carries its traceparent. It returns
// nil when not tracing.
func (r *route) trace(ctx context.Context, msg jetstream.Msg, jobs []client.Job) trace.Span {
	if r.f.tracer == nil || len(jobs) == 0 {
		return nil
	}
	prop := propagation.TraceContext{}
	ctx = prop.Extract(ctx, job.TraceCarrier(msg.Headers()))
	ctx, span := r.f.tracer.Start(ctx, "invoke.fanout",
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("invoke.route", r.Name),
			attribute.Int("invoke.jobs", len(jobs)),
		),
	)
	// Every job of the event shares one header (copied by Job.Message).
	hdr := job.TraceCarrier(jobs[0].Header)
	for k := range hdr {
		if strings.EqualFold(k, job.HeaderTracestate) {
			delete(hdr, k) // the span's own, if any, replaces the event's
		}
	}
	prop.Inject(ctx, hdr)
	return span
}

// enqueueInvalid publishes, as they are, the jobs of a batch that were
// refused as invalid (a header mapping that makes a bad Invoke-Timeout,
// say): the worker dead-letters each as invalid with its headers and the
// reason, where operators look, instead of the event being dropped with a
// log line. It returns nil when every job of the batch is now stored.
func (r *route) enqueueInvalid(ctx context.Context, jobs []client.Job, res []client.BatchResult, meta *jetstream.MsgMetadata) error {
	var errs []error
	for _, jr := range res {
		switch {
		case jr.Err == nil:
		case errors.Is(jr.Err, job.ErrInvalid):
			r.log.Warn().Err(jr.Err).Str("job_id", jr.ID).Uint64("seq", meta.Sequence.Stream).
				Msg("event makes an invalid job (check the route's header mapping); enqueued for the worker to dead-letter")
			raw := jobs[jr.Index].RawMessage()
			if _, err := r.f.cfg.JS.PublishMsg(ctx, raw, jetstream.WithMsgID(jr.ID)); err != nil {
				errs = append(errs, fmt.Errorf("job %s: %w", jr.ID, err))
			}
		default:
			errs = append(errs, jr.Err)
		}
	}
	return errors.Join(errs...)
}

func anyInvalid(res []client.BatchResult) bool {
	for _, jr := range res {
		if errors.Is(jr.Err, job.ErrInvalid) {
			return true
		}
	}
	return false
}
