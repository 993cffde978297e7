package worker

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/job"
)

// Defaults of Config; DefaultRetryConfig and DefaultBreakerConfig hold
// those of Retry and Breaker. These are the only copies: the config
// package takes its defaults from here.
//
// A zero field takes its default only where zero would mean nothing
// (Concurrency, ProgressInterval, ...). Where zero has a meaning of its own
// the field's comment says so (MaxJobAge 0 is off, Retry.MaxElapsed 0 is
// no limit) and zero keeps that meaning: start from the Default*
// functions to get every default.
const (
	ConcurrencyDefault      = 64
	DrainTimeoutDefault     = 30 * time.Second
	PullMaxBytesDefault     = 16 << 20
	ProgressIntervalDefault = 10 * time.Second
)

// Config configures a Worker.
type Config struct {
	// ID names this process in dead-letter records and logs. Required.
	ID string
	// Concurrency is the most invocations in flight at once. Defaults to 64.
	Concurrency int
	// ResultsStream and ResultsPrefix say where results go:
	// <ResultsPrefix>.<job-id> in ResultsStream. Defaults to the
	// contract's, job.ResultsStreamDefault and job.ResultsPrefixDefault.
	ResultsStream string
	ResultsPrefix string
	// RequestLimit is the largest job body, in bytes; a bigger job is
	// invalid. Defaults to 6 MiB.
	RequestLimit int64
	// MaxMessage is the largest result message (headers and body) NATS
	// takes: the server's max payload or the results stream's max message
	// size, whichever is smaller. A larger result body goes to
	// Deps.Bodies and the message carries Invoke-Body-Object instead. 0
	// means no limit. Defaults to 0.
	MaxMessage int64
	// Retry is the retry budget and backoff schedule.
	Retry RetryConfig
	// RetryPolicy says which failures are retryable. Defaults to the
	// contract's list (invoke.RetryOnDefault).
	RetryPolicy *invoke.RetryPolicy
	// MaxJobAge dead-letters a job as expired once it is older than this
	// (since it was stored). 0 turns it off. Defaults to 0.
	MaxJobAge time.Duration
	// DrainTimeout is how long a stopping worker lets in-flight invocations
	// finish before interrupting them. 0 takes the default, 30s.
	DrainTimeout time.Duration
	// ProgressInterval is how often a running job's ack deadline is
	// extended (InProgress). It must be well under the consumer's AckWait.
	// Defaults to 10s.
	ProgressInterval time.Duration
	// Breaker configures the circuit breakers. Defaults to
	// DefaultBreakerConfig: one breaker per function with the OCI SDK's
	// default thresholds.
	Breaker BreakerConfig
	// PerFunctionConcurrency caps one function's invocations in flight in
	// this process, so a hot function cannot take every slot. 0 turns it
	// off. Defaults to 0.
	PerFunctionConcurrency int
	// PerFunctionRate caps one function's invocations per second in this
	// process. 0 turns it off. Defaults to 0.
	PerFunctionRate float64
	// Prefetch is how many jobs the client library keeps on their way
	// beyond those running, so a freed slot never waits for a round trip.
	// Those jobs' ack deadlines run while they wait: up to
	// ceil(Prefetch/Concurrency) invocations' time, which the consumer's
	// AckWait must cover. Small values cost throughput (many small pull
	// requests). Defaults to Concurrency.
	Prefetch int
	// PullMaxBytes bounds what one pull request may bring, in bytes, so
	// that the server never has much more than that on its way to this
	// worker: NATS disconnects a client whose unsent data passes the
	// server's max_pending (64 MiB by default), which Prefetch jobs of a
	// MiB each would reach. Raised to MaxMessage when smaller, since no
	// larger message could come. Defaults to 16 MiB.
	PullMaxBytes int
	// Metrics, when set, receives the worker's Prometheus collectors.
	Metrics prometheus.Registerer
	// Logger receives one line per job outcome. Defaults to zerolog.Nop().
	Logger *zerolog.Logger
	// TracerProvider makes the spans of jobs and attempts (see trace.go).
	// The worker depends on the OpenTelemetry API only: the caller picks
	// the SDK and exporter. Defaults to a no-op provider, which traces
	// nothing and costs nothing: a job's traceparent then passes through
	// to the function and the result as it came.
	TracerProvider trace.TracerProvider
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Rand returns uniform random numbers in [0,1) for jitter. Defaults to
	// math/rand/v2's Float64.
	Rand func() float64

	// WaitPrefix is where waiting jobs' copies go (Deps.Waits):
	// <WaitPrefix>.<stream sequence>, a subject of the jobs stream that
	// the consumer does not read. Defaults to the contract's,
	// job.WaitPrefixDefault.
	WaitPrefix string
	// WaitMarkTTL is how long the mark of a wait is kept (see wait.go): it
	// must outlast a redelivery of the original, so it is at least the
	// consumer's AckWait plus the time a delivery takes. Defaults to 10m.
	WaitMarkTTL time.Duration
	// NoFairShare turns the fair share off: any function may then take
	// every slot. See ReservedSlots.
	NoFairShare bool
	// ReservedSlots is how many of the Concurrency slots no single
	// function may take, so that a function with a backlog of slow calls
	// never holds every slot and other functions' jobs still start; with n
	// functions in flight, each may hold (Concurrency-ReservedSlots)/n.
	// Defaults to Concurrency/8 (none below 8 slots); -1 reserves none.
	ReservedSlots int
	// MetricFunctions bounds how many function ids become metric label
	// values (later ones count as "other"). Defaults to 100.
	MetricFunctions int
	// WaitLogThreshold is how many of one function's jobs may wait within
	// a minute before the worker logs it. 0 turns the line off; the
	// default (WaitLogThresholdDefault) is 1000.
	WaitLogThreshold int
	// SampleInterval is how often the consumer's state is read for the
	// gauges (Deps.Sampler). Defaults to 15s.
	SampleInterval time.Duration
	// DLQPrefix is where dead-letter records are (Deps.StoredRecords):
	// <DLQPrefix>.<reason>.<job-id>. Defaults to invoke.dlq.
	DLQPrefix string
	// SettleTimeout bounds storing a job's result, record or waiting copy
	// once its fate is decided; it runs even while stopping, since the
	// invocation already happened. Defaults to 30s.
	SettleTimeout time.Duration
	// AckWait is the shared consumer's ack wait. With Deps.Reach it lets
	// the worker tell when it lost NATS long enough for the jobs it holds
	// to be redelivered to another worker (see reach.go). 0: unknown, and
	// the worker does not look.
	AckWait time.Duration
	// OwnSubjects are the subject patterns of the product's own streams
	// (jobs, results, dead letters, waiting copies). A job whose
	// Invoke-Reply-To falls in one is invalid: its reply would be stored
	// as a job, a result or a record. ResultsPrefix.> and WaitPrefix.> are
	// always in.
	OwnSubjects []string
}

// Defaults of the waiting and sharing settings.
const (
	WaitMarkTTLDefault      = 10 * time.Minute
	MetricFunctionsDefault  = 100
	WaitLogThresholdDefault = 1000
	SampleIntervalDefault   = 15 * time.Second
	SettleTimeoutDefault    = 30 * time.Second
	// ReservedSlotsDivisor: ReservedSlots defaults to Concurrency/8.
	ReservedSlotsDivisor = 8
)

// withSharingDefaults fills the waiting and sharing settings.
func (c Config) withSharingDefaults() Config {
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	c.WaitPrefix = cmp.Or(c.WaitPrefix, job.WaitPrefixDefault)
	if c.WaitMarkTTL == 0 {
		c.WaitMarkTTL = WaitMarkTTLDefault
	}
	if c.ReservedSlots == 0 {
		c.ReservedSlots = c.Concurrency / ReservedSlotsDivisor
	}
	if c.MetricFunctions == 0 {
		c.MetricFunctions = MetricFunctionsDefault
	}
	// WaitLogThreshold 0 is off: kept.
	if c.SampleInterval == 0 {
		c.SampleInterval = SampleIntervalDefault
	}
	if c.DLQPrefix == "" {
		c.DLQPrefix = job.DLQPrefixDefault
	}
	if c.SettleTimeout == 0 {
		c.SettleTimeout = SettleTimeoutDefault
	}
	c.OwnSubjects = append(c.OwnSubjects[:len(c.OwnSubjects):len(c.OwnSubjects)], c.ResultsPrefix+".>", c.WaitPrefix+".>")
	return c
}

func (c Config) limitsConfig() limitsConfig {
	return limitsConfig{
		concurrency: c.Concurrency,
		fairShare:   !c.NoFairShare,
		reserved:    max(0, c.ReservedSlots),
		maxInFlight: c.PerFunctionConcurrency,
		perSecond:   c.PerFunctionRate,
	}
}

// Breaker modes.
const (
	BreakerPerFunction = "function"
	BreakerPerHost     = "host"
	BreakerOff         = "off"
)

// BreakerConfig configures circuit breakers: a breaker opens when, within
// Interval, at least MinRequests attempts were made and FailureRatio of
// them failed in a way that says the service is unhealthy; it stays open
// for OpenTimeout, then lets HalfOpenRequests probes through.
type BreakerConfig struct {
	// Mode is function (one breaker per function), host (one per invoke
	// endpoint host) or off. "" takes the default, function.
	Mode string
	// FailureRatio of unhealthy failures opens the breaker, more than 0
	// and at most 1. 0 takes the default, 0.8.
	FailureRatio float64
	// MinRequests is the fewest attempts in Interval before FailureRatio
	// is judged. 0 takes the default, 10.
	MinRequests int
	// Interval is the window the ratio is counted over. 0 takes the
	// default, 120s.
	Interval time.Duration
	// OpenTimeout is how long an open breaker waits before probing. 0
	// takes the default, 30s.
	OpenTimeout time.Duration
	// HalfOpenRequests is the number of probes let through. 0 takes the
	// default, 1.
	HalfOpenRequests int
	// HostOf maps a function to its endpoint host, for Mode host.
	HostOf func(functionID string) string
}

// DefaultBreakerConfig returns the breaker defaults: the OCI SDK's
// circuit breaker thresholds, one breaker per function.
func DefaultBreakerConfig() BreakerConfig {
	return BreakerConfig{
		Mode:             BreakerPerFunction,
		FailureRatio:     0.8,
		MinRequests:      10,
		Interval:         120 * time.Second,
		OpenTimeout:      30 * time.Second,
		HalfOpenRequests: 1,
	}
}

// RetryConfig is the retry budget: exponential backoff with jitter between
// attempts, at most MaxAttempts attempts (counting the first) and no new
// attempt once MaxElapsed has passed since the job was stored.
type RetryConfig struct {
	// MaxAttempts counts attempts, the first included. 0 takes the
	// default, 8.
	MaxAttempts int
	// InitialInterval is the wait after the first failed attempt. 0 takes
	// the default, 500ms.
	InitialInterval time.Duration
	// MaxInterval caps one wait. 0 takes the default, 30s.
	MaxInterval time.Duration
	// Multiplier grows the wait after each attempt, at least 1. 0 takes
	// the default, 2.
	Multiplier float64
	// MaxElapsed is the most time from the job's storing to its last
	// attempt. 0 is no limit (MaxAttempts still applies); the default
	// (DefaultRetryConfig) is 10m.
	MaxElapsed time.Duration
	// Randomization is the jitter factor, 0 to 1: each wait varies by up
	// to this fraction either way. 0 is no jitter; the default
	// (DefaultRetryConfig) is 0.5.
	Randomization float64
}

// DefaultRetryConfig returns the retry defaults, those the contract
// documents for retry.*.
func DefaultRetryConfig() RetryConfig {
	return RetryConfig{
		MaxAttempts:     8,
		InitialInterval: 500 * time.Millisecond,
		MaxInterval:     30 * time.Second,
		Multiplier:      2,
		MaxElapsed:      10 * time.Minute,
		Randomization:   0.5,
	}
}

// withDefaults fills the fields whose zero means "unset"; see the Defaults
// of Config.
func (c Config) withDefaults() Config {
	c.Concurrency = cmp.Or(c.Concurrency, ConcurrencyDefault)
	c.ResultsStream = cmp.Or(c.ResultsStream, job.ResultsStreamDefault)
	c.ResultsPrefix = cmp.Or(c.ResultsPrefix, job.ResultsPrefixDefault)
	c.RequestLimit = cmp.Or(c.RequestLimit, invoke.RequestLimitDefault)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, DrainTimeoutDefault)
	c.ProgressInterval = cmp.Or(c.ProgressInterval, ProgressIntervalDefault)
	r, dr := &c.Retry, DefaultRetryConfig()
	r.MaxAttempts = cmp.Or(r.MaxAttempts, dr.MaxAttempts)
	r.InitialInterval = cmp.Or(r.InitialInterval, dr.InitialInterval)
	r.MaxInterval = cmp.Or(r.MaxInterval, dr.MaxInterval)
	r.Multiplier = cmp.Or(r.Multiplier, dr.Multiplier)
	// MaxElapsed 0 is no limit and Randomization 0 no jitter: kept.
	b, db := &c.Breaker, DefaultBreakerConfig()
	b.Mode = cmp.Or(b.Mode, db.Mode)
	b.FailureRatio = cmp.Or(b.FailureRatio, db.FailureRatio)
	b.MinRequests = cmp.Or(b.MinRequests, db.MinRequests)
	b.Interval = cmp.Or(b.Interval, db.Interval)
	b.OpenTimeout = cmp.Or(b.OpenTimeout, db.OpenTimeout)
	b.HalfOpenRequests = cmp.Or(b.HalfOpenRequests, db.HalfOpenRequests)
	if c.Prefetch == 0 {
		c.Prefetch = c.Concurrency
	}
	if c.PullMaxBytes == 0 {
		c.PullMaxBytes = PullMaxBytesDefault
	}
	if c.RetryPolicy == nil {
		c.RetryPolicy, _ = invoke.NewRetryPolicy(invoke.RetryOnDefault(), nil)
	}
	if c.Logger == nil {
		nop := zerolog.Nop()
		c.Logger = &nop
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c.withSharingDefaults()
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.ID == "":
		return errors.New("worker: ID is required")
	case c.Concurrency < 1:
		return fmt.Errorf("worker: Concurrency must be at least 1, got %d", c.Concurrency)
	case c.Retry.MaxAttempts < 1:
		return fmt.Errorf("worker: Retry.MaxAttempts must be at least 1, got %d", c.Retry.MaxAttempts)
	case c.Retry.Multiplier < 1:
		return fmt.Errorf("worker: Retry.Multiplier must be at least 1, got %g", c.Retry.Multiplier)
	case c.Retry.Randomization < 0 || c.Retry.Randomization > 1:
		return fmt.Errorf("worker: Retry.Randomization must be in [0,1], got %g", c.Retry.Randomization)
	case c.ProgressInterval <= 0 || c.DrainTimeout < 0 || c.MaxJobAge < 0 || c.Retry.MaxElapsed < 0:
		return errors.New("worker: intervals must be positive")
	case c.Prefetch < 0:
		return fmt.Errorf("worker: Prefetch must not be negative, got %d", c.Prefetch)
	case c.PullMaxBytes < 0:
		return fmt.Errorf("worker: PullMaxBytes must not be negative, got %d", c.PullMaxBytes)
	case c.Breaker.Mode != BreakerPerFunction && c.Breaker.Mode != BreakerPerHost && c.Breaker.Mode != BreakerOff:
		return fmt.Errorf("worker: Breaker.Mode %q: want function, host or off", c.Breaker.Mode)
	case c.Breaker.Mode == BreakerPerHost && c.Breaker.HostOf == nil:
		return errors.New("worker: Breaker.HostOf is required in host mode")
	case c.Breaker.FailureRatio <= 0 || c.Breaker.FailureRatio > 1:
		return fmt.Errorf("worker: Breaker.FailureRatio must be in (0,1], got %g", c.Breaker.FailureRatio)
	case c.MaxMessage < 0:
		return fmt.Errorf("worker: MaxMessage must not be negative, got %d", c.MaxMessage)
	case c.PerFunctionConcurrency < 0 || c.PerFunctionRate < 0:
		return errors.New("worker: per-function limits must not be negative")
	case c.ReservedSlots >= c.Concurrency && c.Concurrency > 1:
		return fmt.Errorf("worker: ReservedSlots must be from 0 to Concurrency-1 (%d), got %d", c.Concurrency-1, c.ReservedSlots)
	case c.WaitMarkTTL < 0 || c.SampleInterval < 0 || c.MetricFunctions < 0:
		return errors.New("worker: WaitMarkTTL, SampleInterval and MetricFunctions must not be negative")
	}
	return nil
}
