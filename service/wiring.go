// Pieces Run wires in: the mapping of configuration onto the queue,
// connections, error mapping, fan-out routes, the consumer-state sampler,
// tracing, the log level and lifecycle lines.

package service

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/client"
	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/dlq/dlqops"
	"github.com/invoke-worker/worker/fanout"
	"github.com/invoke-worker/worker/internal/loglevel"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/tracing"
	"github.com/invoke-worker/worker/worker"
)

// Topology maps configuration onto the queue's streams and consumer: the
// one mapping, used by Run at start-up and by worker doctor to check what
// Run would create. A message size beyond what a server takes (int32) is
// capped there rather than wrapped, since doctor reads configurations that
// Validate would refuse.
func Topology(c config.Config) queue.Topology {
	return queue.Topology{
		JobsStream:      c.Streams.Jobs,
		ResultsStream:   c.Streams.Results,
		DLQStream:       c.Streams.DLQ,
		JobsSubjects:    c.Streams.JobsSubjects,
		ResultsPrefix:   c.Streams.ResultsPrefix,
		DLQPrefix:       c.Streams.DLQPrefix,
		WaitPrefix:      c.Streams.WaitPrefix,
		Replicas:        c.Streams.Replicas,
		MaxMsgSize:      int32(min(int64(c.Streams.MaxMsgSize), math.MaxInt32)),
		JobsMaxAge:      c.Streams.JobsMaxAge,
		ResultsMaxAge:   c.Streams.ResultsMaxAge,
		DLQMaxAge:       c.Streams.DLQMaxAge,
		DuplicateWindow: c.Streams.DuplicateWindow,
		Durable:         c.Consumer.Durable,
		AckWait:         c.Consumer.AckWait,
		MaxAckPending:   c.Consumer.MaxAckPending,
		JobBodies:       c.Streams.JobBodies,
		ResultBodies:    c.Streams.ResultBodies,
	}.WithDefaults()
}

// ConnConfig maps configuration onto the queue's connection settings;
// state, when not nil, follows whether the connection is up.
func ConnConfig(c config.Config, log zerolog.Logger, url string, state func(bool)) queue.ConnConfig {
	return queue.ConnConfig{
		URLs: url, Creds: c.NATS.Creds, NKey: c.NATS.NKey, User: c.NATS.User, Password: c.NATS.Password, Token: c.NATS.Token,
		TLSCA: c.NATS.TLS.CA, TLSCert: c.NATS.TLS.Cert, TLSKey: c.NATS.TLS.Key,
		InboxPrefix: c.NATS.InboxPrefix, Name: c.NATS.Name, ConnectTimeout: c.NATS.ConnectTimeout, ReconnectWait: c.NATS.ReconnectWait,
		Logger: log, OnStateChange: state,
	}
}

// StartEmbedded starts the embedded server and says so.
func StartEmbedded(c config.Config, log zerolog.Logger) (*queue.Embedded, error) {
	srv, err := queue.StartEmbedded(queue.EmbeddedConfig{
		Listen:     c.NATS.Embedded.Listen,
		StoreDir:   c.NATS.Embedded.StoreDir,
		MaxPayload: int32(c.NATS.Embedded.MaxPayload),
		Logger:     log,
	})
	if err != nil {
		return nil, err
	}
	log.Info().Str("url", srv.ClientURL()).Str("store_dir", srv.StoreDir()).
		Msg("no nats.url configured: started an embedded NATS server with JetStream")
	return srv, nil
}

// Connect connects a short-lived command (enqueue, dlq) to NATS: the
// configured URL, else the local embedded server's address.
func Connect(ctx context.Context, c config.Config, log zerolog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	url := c.NATS.URL
	local := url == ""
	if local {
		url = "nats://" + c.NATS.Embedded.Listen
	}
	// A short-lived command's connection logs only problems: "disconnected"
	// at exit is noise.
	if log.GetLevel() < zerolog.WarnLevel {
		log = log.Level(zerolog.WarnLevel)
	}
	cc := ConnConfig(c, log, url, nil)
	nc, err := queue.Connect(ctx, cc)
	if err != nil {
		if local {
			return nil, nil, fmt.Errorf("no NATS server at %s: start `worker dev` or `worker run` on this machine, or pass --nats URL: %w", url, err)
		}
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// replicasKeyError names streams.replicas in an error of a replica count
// the servers cannot place, making it a configuration error (exit 2).
func replicasKeyError(err error) error {
	if errors.Is(err, queue.ErrTooManyReplicas) {
		return &config.KeyError{Key: "streams.replicas", Err: err}
	}
	return err
}

// provision creates or updates the streams and buckets (streams.manage),
// or only checks that they exist, and opens the state bucket.
func provision(ctx context.Context, c config.Config, js jetstream.JetStream, topo queue.Topology) (*queue.StateStore, error) {
	if !c.Streams.Manage {
		if err := queue.CheckProvisioned(ctx, js, topo, c.Streams.State); err != nil {
			return nil, fmt.Errorf("streams.manage is false, so this worker creates nothing: %w", err)
		}
		return queue.OpenStateStore(ctx, js, c.Streams.State)
	}
	if err := queue.EnsureStreams(ctx, js, topo); err != nil {
		return nil, replicasKeyError(fmt.Errorf("set up streams: %w", err))
	}
	state, err := queue.EnsureStateStore(ctx, js, c.Streams.State, c.Streams.StateMaxAge, c.Streams.Replicas)
	if err != nil {
		return nil, replicasKeyError(fmt.Errorf("set up state bucket: %w", err))
	}
	// The replay markers are created by `dlq replay`, with the DLQ
	// stream's replicas; an existing bucket follows a change here.
	if err := queue.UpdateBucketReplicas(ctx, js, dlqops.ReplayBucketName(topo.DLQStream), topo.Replicas); err != nil {
		return nil, replicasKeyError(fmt.Errorf("set up replay markers: %w", err))
	}
	return state, nil
}

// newFanout wires the configured routes, nil when there are none. Their
// streams and consumers are set up here, so a route that cannot work
// fails start-up.
func newFanout(ctx context.Context, c config.Config, nc *nats.Conn, js jetstream.JetStream, topo queue.Topology, reg prometheus.Registerer, log zerolog.Logger, tp trace.TracerProvider) (*fanout.Fanout, error) {
	if len(c.Routes) == 0 {
		return nil, nil
	}
	pub, err := client.New(ctx, nc, client.Config{Topology: topo, RequestLimit: int64(c.Invoke.RequestLimit)})
	if err != nil {
		return nil, err
	}
	routes := make([]fanout.Route, len(c.Routes))
	for i, r := range c.Routes {
		routes[i] = fanout.Route{
			Name: r.Name, Stream: r.Stream, StreamSubjects: r.StreamSubjects, Subjects: r.Subjects,
			Functions: r.Functions, Intent: r.Intent, JobSubject: r.JobSubject, DeliverNew: r.Deliver == "new",
			Headers: fanout.Headers{Copy: r.Headers.Copy, Rename: r.Headers.Rename, Set: r.Headers.Set},
			Source:  r.CloudEvent.Source, Type: r.CloudEvent.Type, Replicas: c.Streams.Replicas,
		}
	}
	f, err := fanout.New(fanout.Config{Routes: routes, JS: js, Publisher: pub, NoStreamCreate: !c.Streams.Manage, Logger: log, Metrics: reg, TracerProvider: tp})
	if err != nil {
		return nil, err
	}
	if err := f.Ensure(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

func waitRunning(ctx context.Context, w *worker.Worker) {
	for !w.Running() && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

// reservedSlots turns worker.reserved_share into a slot count; -1 (none)
// when the share rounds down to no slot.
func reservedSlots(w config.Worker) int {
	if n := int(float64(w.Concurrency) * w.ReservedShare); n > 0 {
		return n
	}
	return -1
}

// consumerSampler reads the consumer's state and the dead-letter depth by
// reason for the worker's gauges.
// A depth that cannot be read leaves its gauge as it was, not the others.
type consumerSampler struct {
	s   *queue.Sampler
	log zerolog.Logger
}

func newConsumerSampler(js jetstream.JetStream, topo queue.Topology, log zerolog.Logger) consumerSampler {
	var reasons []string
	for _, r := range dlq.Reasons() {
		reasons = append(reasons, string(r))
	}
	return consumerSampler{queue.NewSampler(js, topo, reasons), log}
}

func (s consumerSampler) Sample(ctx context.Context) (worker.Sample, error) {
	cs, err := s.s.Sample(ctx)
	if errors.Is(err, queue.ErrDepthNotRead) {
		s.log.Debug().Err(err).Msg("dead-letter depth not sampled")
		err = nil
	}
	return worker.Sample(cs), err
}

// DefaultWorkerID names this process: host and pid.
func DefaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// startTracing builds the tracer provider tracing.* asks for (a no-op one
// when off). Export failures are logged: the OpenTelemetry SDK reports them
// through its process-wide error handler, set here once.
func startTracing(ctx context.Context, c config.Config, log zerolog.Logger, version string) (*tracing.Provider, error) {
	tp, err := tracing.New(ctx, tracing.Config{
		Exporter: c.Tracing.Exporter, Endpoint: c.Tracing.Endpoint, SampleRatio: c.Tracing.SampleRatio,
		ServiceVersion: version, InstanceID: c.Worker.ID,
	})
	if err != nil {
		return nil, &config.KeyError{Key: "tracing.exporter", Err: err}
	}
	if tp.Enabled() {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn().Err(err).Msg("tracing: spans not exported")
		}))
	}
	return tp, nil
}

// stopTracing exports the spans still buffered, for at most 5s.
func stopTracing(tp *tracing.Provider, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		log.Warn().Err(err).Msg("tracing: spans still buffered at exit were not exported")
	}
}

// logLevel is the process's log level, log.level to begin with; PUT
// /loglevel on the admin endpoint changes it.
func logLevel(c config.Log) *loglevel.Level {
	lvl, err := loglevel.Parse(c.Level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return loglevel.New(lvl)
}

// logLifecycle logs the process's start, with its effective configuration
// (secrets redacted), and returns what logs its stop, with how long it ran
// and the error it stopped on.
func logLifecycle(log zerolog.Logger, c config.Config, version string) func(*error) {
	started := time.Now()
	settings := zerolog.Dict()
	for _, s := range c.Effective() {
		settings.Str(s.Key, s.Value)
	}
	log.Info().Str("version", version).Dict("config", settings).Msg("worker process starting")
	return func(err *error) {
		if *err != nil {
			log.Error().Err(*err).Dur("uptime", time.Since(started)).Msg("worker process stopped on an error")
			return
		}
		log.Info().Dur("uptime", time.Since(started)).Msg("shut down cleanly")
	}
}
