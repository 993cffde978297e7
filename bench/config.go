package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
)

// Defaults of Config.
const (
	JobsDefault         = 10000
	ConcurrencyDefault  = 64
	BodySizeDefault     = 1024
	MaxPendingDefault   = 1024
	SignDurationDefault = 2 * time.Second
	TimeoutDefault      = 10 * time.Minute
	// LoadMemoryLimitDefault is Config.LoadMemoryLimit's default.
	LoadMemoryLimitDefault = 4 << 30
	FunctionIDDefault      = "ocid1.fnfunc.oc1.phx.aaaaaaaabench"
	// WarmupShare is the share of Jobs run before each measurement and
	// left out of it, when Config.Warmup is 0.
	WarmupShare = 0.05
	// TargetRatio is the worker's throughput the project aims for, as a
	// share of the bare loop (d).
	TargetRatio = 0.90
)

// WorkerFunc runs the full worker against env until ctx is cancelled, then
// stops it gracefully and returns. It must wire the worker exactly as
// production does; cmd/worker passes service.BenchWorker.
type WorkerFunc func(ctx context.Context, env WorkerEnv) error

// SpawnFunc returns a command, not yet started, whose process calls
// ServeConsumer with its standard input and output (and writes nothing
// else to its standard output). The bench sets Stdin and Stdout; Stderr
// is the spawner's (nil: the bench keeps its tail for error messages).
// Config.Spawn.
type SpawnFunc func(ctx context.Context) (*exec.Cmd, error)

// WorkerEnv is what a WorkerFunc connects the worker to.
type WorkerEnv struct {
	// NATSURL is the server to connect to.
	NATSURL string
	// Topology names the streams and consumer to use; they already exist.
	Topology queue.Topology
	// StateBucket is the key-value bucket for attempt state.
	StateBucket string
	// FunctionID is the one function every job invokes, served at Endpoint
	// (the emulator's base URL, http://127.0.0.1:port).
	FunctionID string
	Endpoint   string
	// Concurrency is the worker's invocations in flight.
	Concurrency int
	// OCIConfigFile and OCIProfile are API-key credentials to sign with
	// (invoke.oci.auth api_key); both empty means unsigned (auth none).
	OCIConfigFile string
	OCIProfile    string
}

// Signed reports whether the worker must sign its requests.
func (e WorkerEnv) Signed() bool { return e.OCIConfigFile != "" }

// Config configures a benchmark run.
type Config struct {
	// Worker runs the full worker in this process. Required unless Spawn
	// is set (the consumer processes then run it).
	Worker WorkerFunc
	// Jobs is the number of jobs measured in each measurement. Defaults to
	// 10000.
	Jobs int
	// Warmup is the number of jobs run before each measurement and left
	// out of it; -1 means none. Defaults to 5% of Jobs (at least 1).
	Warmup int
	// Concurrency is the worker's invocations in flight, and the number of
	// goroutines of the bare loops. Defaults to 64.
	Concurrency int
	// BodySize is the size of each job's body in bytes; -1 means empty.
	// Defaults to 1 KiB.
	BodySize int
	// ResponseSize is the size of the function's answer in bytes; 0 echoes
	// the request body. Defaults to 0.
	ResponseSize int
	// Latency is the function's own time per call. Defaults to 0.
	Latency time.Duration
	// Rate enqueues open-loop at this many jobs per second, recording each
	// job's scheduled time as its start (so a stalled enqueue cannot hide
	// latency); 0 enqueues as fast as possible. Defaults to 0.
	Rate float64
	// MaxPending bounds the asynchronous publishes awaiting their
	// acknowledgement while enqueueing; fewer are outstanding when their
	// bodies would exceed MaxPendingBytes, which the server would refuse
	// (429). Defaults to 1024.
	MaxPending int
	// Unsigned runs without request signing (invoke.oci.auth none, an
	// emulator that verifies nothing). Defaults to false: signed with an
	// RSA-2048 API key through the api_key path, every signature verified.
	Unsigned bool
	// Ceilings also measures (a) to (d), see the package comment.
	Ceilings bool
	// Rounds measures the worker, and with Ceilings the bare loop (d)
	// right after it, this many times in turn. The report keeps the run of
	// median throughput of each, and the median of the rounds' ratios: on
	// a shared machine one pair can be off by half. Defaults to 1.
	Rounds int
	// SignDuration is how long the signing rate (b) is measured. Defaults
	// to 2s.
	SignDuration time.Duration
	// Timeout bounds each measurement, setup and warm-up included. Defaults
	// to 10m.
	Timeout time.Duration
	// NATSURL is an existing server to use; each measurement then gets its
	// own uniquely named streams, consumer and bucket, deleted afterwards.
	// Empty starts a fresh embedded server (random loopback port, temp
	// store, deleted afterwards) for each measurement. Defaults to "".
	NATSURL string
	// Connect dials NATSURL for the load generator and the bare loops.
	// Defaults to queue.Connect without credentials.
	Connect func(ctx context.Context, url string) (*nats.Conn, error)
	// Topology holds the stream and consumer settings the worker would use
	// (ack wait, max ack pending, duplicate window, ...). Names are kept on
	// an embedded server and replaced on NATSURL. Defaults to the
	// contract's.
	Topology queue.Topology
	// StateBucket is the attempt-state bucket name on an embedded server.
	// Defaults to queue.StateBucketDefault.
	StateBucket string
	// FunctionID is the function the jobs invoke. Defaults to
	// FunctionIDDefault.
	FunctionID string
	// Spawn, when set, runs each consumer under test (the worker, (a) and
	// (d)) in a fresh process of its own, as a worker runs in production:
	// its CPU, allocations and peak RSS are then its own, and neither the
	// emulator's, the load generator's nor the embedded NATS server's
	// garbage collection or scheduling counts as its latency. Nil runs
	// every consumer on goroutines of this process (Worker). Defaults to
	// nil.
	Spawn SpawnFunc
	// LoadMemoryLimit applies with Spawn: during each measured window the
	// load side (this process: NATS, emulator, load generator, collector)
	// holds its garbage collector off until its heap reaches this many
	// bytes, and collects between measurements, so that its pauses are
	// not counted as the consumer's. -1 leaves Go's collector alone.
	// Defaults to 4 GiB.
	LoadMemoryLimit int64
	// CPUProfile, when set, is asked for a writer before the measured
	// window of each loop measurement ("worker", "nats_loop", "bare_loop");
	// a nil writer means no profile for that one. The profile is of the
	// consumer's process (this one, without Spawn). The writer is closed
	// after the window.
	CPUProfile func(measurement string) (io.WriteCloser, error)
	// Logger receives progress lines (info). Defaults to zerolog.Nop().
	Logger zerolog.Logger
}

// WithDefaults returns c with unset fields filled.
func (c Config) WithDefaults() Config {
	if c.Jobs == 0 {
		c.Jobs = JobsDefault
	}
	if c.Warmup == 0 {
		c.Warmup = max(1, int(float64(c.Jobs)*WarmupShare))
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	switch c.BodySize {
	case 0:
		c.BodySize = BodySizeDefault
	case -1:
		c.BodySize = 0
	}
	if c.Rounds == 0 {
		c.Rounds = 1
	}
	if c.MaxPending == 0 {
		c.MaxPending = MaxPendingDefault
	}
	if c.SignDuration == 0 {
		c.SignDuration = SignDurationDefault
	}
	if c.Timeout == 0 {
		c.Timeout = TimeoutDefault
	}
	if c.Connect == nil {
		c.Connect = defaultConnect
	}
	if c.LoadMemoryLimit == 0 {
		c.LoadMemoryLimit = LoadMemoryLimitDefault
	}
	if c.StateBucket == "" {
		c.StateBucket = queue.StateBucketDefault
	}
	if c.FunctionID == "" {
		c.FunctionID = FunctionIDDefault
	}
	return c
}

// Validate reports the first unusable setting of a Config with defaults
// applied (WithDefaults), as Run checks it.
func (c Config) Validate() error {
	switch {
	case c.Worker == nil && c.Spawn == nil:
		return errors.New("bench: Worker or Spawn is required")
	case c.LoadMemoryLimit < -1:
		return fmt.Errorf("bench: LoadMemoryLimit must be -1 (no limit) or more, got %d", c.LoadMemoryLimit)
	case c.Jobs < 1:
		return fmt.Errorf("bench: Jobs must be at least 1, got %d", c.Jobs)
	case c.Warmup < -1:
		return fmt.Errorf("bench: Warmup must be -1 (none) or more, got %d", c.Warmup)
	case c.Concurrency < 1:
		return fmt.Errorf("bench: Concurrency must be at least 1, got %d", c.Concurrency)
	case c.BodySize < 0 || c.BodySize > 6<<20:
		return fmt.Errorf("bench: BodySize must be 0 to 6 MiB, got %d", c.BodySize)
	case c.ResponseSize < 0 || c.ResponseSize > 6<<20:
		return fmt.Errorf("bench: ResponseSize must be 0 to 6 MiB, got %d", c.ResponseSize)
	case c.Latency < 0:
		return fmt.Errorf("bench: Latency must not be negative, got %s", c.Latency)
	case c.Rate < 0:
		return fmt.Errorf("bench: Rate must not be negative, got %g", c.Rate)
	case c.Rounds < 1:
		return fmt.Errorf("bench: Rounds must be at least 1, got %d", c.Rounds)
	case c.MaxPending < 1:
		return fmt.Errorf("bench: MaxPending must be at least 1, got %d", c.MaxPending)
	case c.SignDuration < 10*time.Millisecond:
		return fmt.Errorf("bench: SignDuration must be at least 10ms, got %s", c.SignDuration)
	case c.Timeout < time.Second:
		return fmt.Errorf("bench: Timeout must be at least 1s, got %s", c.Timeout)
	}
	if err := job.ValidateFunctionID(c.FunctionID); err != nil {
		return fmt.Errorf("bench: FunctionID: %w", err)
	}
	return nil
}

// MaxPendingBytes bounds the bodies of the publishes awaiting their
// acknowledgement while enqueueing (Config.MaxPending).
const MaxPendingBytes = 64 << 20

// maxPending is the publishes outstanding at most: MaxPending, fewer for
// large bodies.
func (c Config) maxPending() int {
	if c.BodySize <= 0 {
		return c.MaxPending
	}
	return max(1, min(c.MaxPending, MaxPendingBytes/c.BodySize))
}

// warmupJobs is the warm-up count, 0 for none.
func (c Config) warmupJobs() int { return max(0, c.Warmup) }

// defaultConnect dials url without credentials.
func defaultConnect(ctx context.Context, url string) (*nats.Conn, error) {
	return queue.Connect(ctx, queue.ConnConfig{URLs: url, Name: "invoke-worker-bench"})
}
