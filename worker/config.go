package worker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/invoke"
)

// Defaults of Config.
const (
	ConcurrencyDefault      = 64
	DrainTimeoutDefault     = 30 * time.Second
	PullMaxBytesDefault     = 16 << 20
	ProgressIntervalDefault = 10 * time.Second
	ResultsPrefixDefault    = "invoke.results"
	ResultsStreamDefault    = "INVOKE_RESULTS"
)

// Config configures a Worker.
type Config struct {
	// ID names this process in dead-letter records and logs. Required.
	ID string
	// Concurrency is the most invocations in flight at once. Defaults to 64.
	Concurrency int
	// ResultsStream and ResultsPrefix say where results go:
	// <ResultsPrefix>.<job-id> in ResultsStream. Default INVOKE_RESULTS and
	// invoke.results.
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
	// contract's list (invoke.DefaultRetryOn).
	RetryPolicy *invoke.RetryPolicy
	// MaxJobAge dead-letters a job as expired once it is older than this
	// (since it was stored). 0 turns it off. Defaults to 0.
	MaxJobAge time.Duration
	// DrainTimeout is how long a stopping worker lets in-flight invocations
	// finish before interrupting them. Defaults to 30s.
	DrainTimeout time.Duration
	// ProgressInterval is how often a running job's ack deadline is
	// extended (InProgress). It must be well under the consumer's AckWait.
	// Defaults to 10s.
	ProgressInterval time.Duration
	// Breaker configures the circuit breakers. Defaults to one breaker per
	// function with the OCI SDK's default thresholds.
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
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Rand returns uniform random numbers in [0,1) for jitter. Defaults to
	// math/rand/v2's Float64.
	Rand func() float64

	// WaitPrefix is where waiting jobs' copies go (Deps.Waits):
	// <WaitPrefix>.<stream sequence>, a subject of the jobs stream that
	// the consumer does not read. Defaults to invoke.wait.
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
	// a minute before the worker logs it. 0 turns the line off. Defaults
	// to 1000.
	WaitLogThreshold int
	// SampleInterval is how often the consumer's state is read for the
	// gauges (Deps.Sampler). Defaults to 15s.
	SampleInterval time.Duration
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
	// ReservedSlotsDivisor: ReservedSlots defaults to Concurrency/8.
	ReservedSlotsDivisor = 8
)

// withSharingDefaults fills the waiting and sharing settings.
func (c Config) withSharingDefaults() Config {
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	if c.WaitPrefix == "" {
		c.WaitPrefix = WaitPrefixDefault
	}
	if c.WaitMarkTTL == 0 {
		c.WaitMarkTTL = WaitMarkTTLDefault
	}
	if c.ReservedSlots == 0 {
		c.ReservedSlots = c.Concurrency / ReservedSlotsDivisor
	}
	if c.MetricFunctions == 0 {
		c.MetricFunctions = MetricFunctionsDefault
	}
	if c.WaitLogThreshold == 0 {
		c.WaitLogThreshold = WaitLogThresholdDefault
	}
	if c.SampleInterval == 0 {
		c.SampleInterval = SampleIntervalDefault
	}
	c.OwnSubjects = append(c.OwnSubjects[:len(c.OwnSubjects):len(c.OwnSubjects)], c.ResultsPrefix+".>", c.WaitPrefix+".>")
	return c
}

// WaitPrefixDefault is Config.WaitPrefix's default (queue.WaitPrefixDefault).
const WaitPrefixDefault = "invoke.wait"

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
	// endpoint host) or off. Defaults to function.
	Mode             string
	FailureRatio     float64       // 0.8
	MinRequests      int           // 10
	Interval         time.Duration // 120s
	OpenTimeout      time.Duration // 30s
	HalfOpenRequests int           // 1
	// HostOf maps a function to its endpoint host, for Mode host.
	HostOf func(functionID string) string
}

// RetryConfig is the retry budget: exponential backoff with jitter between
// attempts, at most MaxAttempts attempts (counting the first) and no new
// attempt once MaxElapsed has passed since the job was stored.
type RetryConfig struct {
	MaxAttempts     int           // 8
	InitialInterval time.Duration // 500ms
	MaxInterval     time.Duration // 30s
	Multiplier      float64       // 2
	MaxElapsed      time.Duration // 10m
	Randomization   float64       // 0.5
}

func (c Config) withDefaults() Config {
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.ResultsStream == "" {
		c.ResultsStream = ResultsStreamDefault
	}
	if c.ResultsPrefix == "" {
		c.ResultsPrefix = ResultsPrefixDefault
	}
	if c.RequestLimit == 0 {
		c.RequestLimit = invoke.RequestLimitDefault
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DrainTimeoutDefault
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = ProgressIntervalDefault
	}
	r := &c.Retry
	if r.MaxAttempts == 0 {
		r.MaxAttempts = 8
	}
	if r.InitialInterval == 0 {
		r.InitialInterval = 500 * time.Millisecond
	}
	if r.MaxInterval == 0 {
		r.MaxInterval = 30 * time.Second
	}
	if r.Multiplier == 0 {
		r.Multiplier = 2
	}
	if r.MaxElapsed == 0 {
		r.MaxElapsed = 10 * time.Minute
	}
	b := &c.Breaker
	if b.Mode == "" {
		b.Mode = BreakerPerFunction
	}
	if b.FailureRatio == 0 {
		b.FailureRatio = 0.8
	}
	if b.MinRequests == 0 {
		b.MinRequests = 10
	}
	if b.Interval == 0 {
		b.Interval = 120 * time.Second
	}
	if b.OpenTimeout == 0 {
		b.OpenTimeout = 30 * time.Second
	}
	if b.HalfOpenRequests == 0 {
		b.HalfOpenRequests = 1
	}
	if c.Prefetch == 0 {
		c.Prefetch = c.Concurrency
	}
	if c.PullMaxBytes == 0 {
		c.PullMaxBytes = PullMaxBytesDefault
	}
	if c.RetryPolicy == nil {
		c.RetryPolicy, _ = invoke.NewRetryPolicy(invoke.DefaultRetryOn, nil)
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
	case c.ProgressInterval <= 0 || c.DrainTimeout < 0 || c.MaxJobAge < 0:
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
