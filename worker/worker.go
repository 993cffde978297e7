package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/job"
)

// Invoker makes one invocation attempt (invoke.Client).
type Invoker interface {
	Invoke(ctx context.Context, r invoke.Request) (*invoke.Response, error)
}

// ResultPublisher stores results (jetstream.JetStream).
type ResultPublisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// DeadLetterer stores dead-letter records (dlq.Writer).
type DeadLetterer interface {
	DeadLetter(ctx context.Context, j job.Job, f dlq.Failure) error
}

// ReplyPublisher sends a copy of a result to a job's Invoke-Reply-To subject
// (*nats.Conn). Best effort: core NATS.
type ReplyPublisher interface {
	PublishMsg(msg *nats.Msg) error
}

// ResultFinder reads the results stream (the jetstream.Stream of results).
type ResultFinder interface {
	GetLastMsgForSubject(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error)
}

// ConsumerSource returns the shared durable consumer, creating it when it
// is missing (queue.Ensure). The worker calls it again when the consumer
// was deleted under it.
type ConsumerSource func(ctx context.Context) (jetstream.Consumer, error)

// Deps are the worker's collaborators.
type Deps struct {
	Consumer    ConsumerSource
	Invoker     Invoker
	Results     ResultPublisher
	DeadLetters DeadLetterer
	// State keeps attempt counts and histories between deliveries
	// (queue.StateStore). Without it every delivery counts as an attempt
	// and records carry only the last attempt.
	State StateStore
	// StoredResults lets a redelivered job that already completed (its
	// acknowledgement was lost, or its worker died right after storing
	// the result) be acknowledged without invoking the function again.
	// Optional.
	StoredResults ResultFinder
	// StoredRecords reads the dead-letter stream, so that a job another
	// worker already dead-lettered (this one was cut off meanwhile) is not
	// recorded twice. Optional.
	StoredRecords ResultFinder
	Replies       ReplyPublisher // optional
	// Bodies is the claim check for bodies too large for a message
	// (queue.Bodies). Optional: without it a job that refers to a stored
	// body is invalid, and a result over Config.MaxMessage is not stored.
	Bodies BodyStore
	// Waits stores waiting jobs' scheduled copies in the jobs stream
	// (jetstream.JetStream; the stream must allow message schedules, as
	// queue.Ensure makes it). Optional, with State: without them a job
	// that must wait is handed back with a delay and holds one of the
	// consumer's delivery slots while it waits.
	Waits WaitStore
	// Sampler reads the consumer's and the jobs stream's state for the
	// waiting and ack-pending gauges (queue.Sampler). Optional.
	Sampler Sampler
	// Reach confirms the connection to NATS works (*nats.Conn), so that
	// jobs held while it did not, long enough to be redelivered, are not
	// settled twice (see reach.go; needs Config.AckWait). Optional.
	Reach Reach
}

// Worker runs the invocation loop.
type Worker struct {
	cfg      Config
	deps     Deps
	log      zerolog.Logger
	metrics  *metrics
	breakers *breakers
	limits   *functionLimits
	policy   policy
	watch    *waitWatch
	tracing  *tracing // nil when not tracing
	// settlers bounds the waits being stored outside the slots (see
	// handle); settling is how Run waits for them.
	settlers chan struct{}
	settling sync.WaitGroup

	running  atomic.Bool
	bound    atomic.Bool
	draining atomic.Bool
	inFlight atomic.Int64
	// reached and lapsedAt (Unix nanoseconds) are when NATS was last
	// confirmed reachable, and when the last long lapse of that ended.
	reached  atomic.Int64
	lapsedAt atomic.Int64
}

// New builds a Worker.
func New(cfg Config, deps Deps) (*Worker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Consumer == nil || deps.Invoker == nil || deps.Results == nil || deps.DeadLetters == nil {
		return nil, errors.New("worker: Consumer, Invoker, Results and DeadLetters are required")
	}
	log := cfg.Logger.With().Str("component", "worker").Logger()
	m := newMetrics(cfg.Metrics, cfg.MetricFunctions)
	return &Worker{
		cfg:      cfg,
		deps:     deps,
		log:      log,
		metrics:  m,
		breakers: newBreakers(cfg.Breaker, log, m, cfg.Now),
		limits:   newFunctionLimits(cfg.limitsConfig()),
		policy:   cfg.policy(),
		watch:    newWaitWatch(cfg.WaitLogThreshold, cfg.Now, log),
		tracing:  newTracing(cfg.TracerProvider),
		settlers: make(chan struct{}, cfg.Concurrency),
	}, nil
}

// policy is decide's view of the configuration.
func (c Config) policy() policy {
	return policy{
		maxAttempts: c.Retry.MaxAttempts,
		maxElapsed:  c.Retry.MaxElapsed,
		retryable:   c.RetryPolicy.Retryable,
		backoff:     func(attempt int) time.Duration { return backoffFor(c.Retry, attempt, c.Rand) },
		deferFor:    c.deferFor(c.Rand),
		giveBack:    c.Retry.InitialInterval,
	}
}

// Running reports whether the worker is bound to the consumer and taking
// jobs; readiness builds on it.
func (w *Worker) Running() bool { return w.running.Load() && w.bound.Load() && !w.draining.Load() }

// InFlight is the number of jobs being handled now.
func (w *Worker) InFlight() int { return int(w.inFlight.Load()) }
