// Package service assembles the worker process from its configuration:
// the signed function client, the NATS connection (or the embedded
// server), the streams, state bucket and shared consumer, the engine, the
// fan-out routes and the admin endpoint, started and shut down in order.
// It is what `worker run`, `worker dev` and `worker bench` run.
//
// It owns the mapping from config to the libraries, readiness, and the
// consumer's re-creation when it is deleted under a running worker. It
// does not own behaviour: how a job is run is package worker's, the
// streams' settings are package queue's, the keys and their defaults are
// package config's. Only commands import it (internal/archtest).
package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/invoke-worker/worker/admin"
	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/internal/loglevel"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/worker"
)

// Options are what a caller adds to the configuration: `dev` its own
// embedded server and banner.
type Options struct {
	// Embedded is an already started server (dev); nil starts one when
	// nats.url is empty.
	Embedded *queue.Embedded
	// OnReady runs once the worker is consuming.
	OnReady func()
	// Version goes into the function client's User-Agent
	// (invoke-worker/<version>); empty: "dev".
	Version string
}

// Run runs the worker until ctx is cancelled, then shuts down in
// order: stop taking jobs and drain in-flight ones, flush acknowledgements
// (connection drain), stop the admin endpoint, stop the embedded server.
func Run(ctx context.Context, c config.Config, log zerolog.Logger, opt Options) (err error) {
	if c.Worker.ID == "" {
		c.Worker.ID = DefaultWorkerID()
	}
	version := cmp.Or(opt.Version, "dev")
	level := logLevel(c.Log)
	log = level.Apply(log).With().Str("worker", c.Worker.ID).Logger()
	defer logLifecycle(log, c, version)(&err)

	tp, err := startTracing(ctx, c, log, version)
	if err != nil {
		return err
	}
	defer stopTracing(tp, log)

	retryPolicy, err := invoke.NewRetryPolicy(c.Retry.On, c.Retry.Never)
	if err != nil {
		return &config.KeyError{Key: "retry.on", Err: err}
	}
	invoker, err := newInvoker(c, log, version)
	if err != nil {
		return err
	}
	defer invoker.CloseIdleConnections()

	embedded := opt.Embedded
	url := c.NATS.URL
	if url == "" {
		if embedded == nil {
			if embedded, err = StartEmbedded(c, log); err != nil {
				return err
			}
			defer embedded.Shutdown()
		}
		url = embedded.ClientURL()
	}
	var connected atomic.Bool
	nc, err := queue.Connect(ctx, ConnConfig(c, log, url, connected.Store))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	topo := Topology(c)
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := queue.WaitJetStream(setupCtx, js); err != nil {
		return err
	}
	state, err := provision(setupCtx, c, js, topo)
	if err != nil {
		return err
	}
	// One owner of the consumer's settings: this process applies its
	// consumer.* values only when it creates the consumer or is told to
	// (consumer.update); otherwise it runs with the server's.
	policy := queue.ConsumerPolicy{Update: c.Consumer.Update, Logger: &log}
	cons, _, err := queue.EnsureConsumer(setupCtx, js, topo, policy)
	if err != nil {
		return fmt.Errorf("set up consumer: %w", err)
	}
	ackWait := cons.CachedInfo().Config.AckWait
	if ackWait <= 2*c.Worker.ProgressInterval {
		log.Warn().Dur("ack_wait", ackWait).Dur("progress_interval", c.Worker.ProgressInterval).
			Msg("the shared consumer's ack wait is not more than twice worker.progress_interval: running jobs may be redelivered and invoked twice")
	}
	// The consumer was just ensured; later calls (after it was deleted
	// under the worker) create it again.
	first := cons
	source := func(ctx context.Context) (jetstream.Consumer, error) {
		if first != nil {
			c := first
			first = nil
			return c, nil
		}
		cons, _, err := queue.EnsureConsumer(ctx, js, topo, policy)
		return cons, err
	}
	results, err := js.Stream(setupCtx, topo.ResultsStream)
	if err != nil {
		return fmt.Errorf("results stream: %w", err)
	}
	records, err := js.Stream(setupCtx, topo.DLQStream)
	if err != nil {
		return fmt.Errorf("dead-letter stream: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), queue.NewConnCollector(nc))
	// Results larger than a message go through the object store.
	maxMessage := min(nc.MaxPayload(), int64(topo.MaxMsgSize))
	w, err := worker.New(workerConfig(c, topo, retryPolicy, ackWait, maxMessage, reg, log, tp.TracerProvider()), worker.Deps{
		Consumer:      source,
		State:         state,
		StoredResults: results,
		StoredRecords: records,
		Invoker:       invoker,
		Results:       js,
		DeadLetters:   dlq.NewWriter(js, topo.DLQStream, topo.DLQPrefix),
		Replies:       nc,
		Bodies:        queue.NewBodies(js, topo),
		Waits:         js,
		Sampler:       newConsumerSampler(js, topo, log),
		// Reach (the lapse rule, worker/reach.go) is not wired yet: in
		// the fleet's full cluster restart (scenario e) jobs handed over
		// right after the restart counted as held across the lapse, were
		// left, and a few healthy jobs spent their attempts so. Until it
		// tells a lapse from a restart, scenario b's defects stand
		// (issue 13).
	})
	if err != nil {
		return err
	}
	routes, err := newFanout(setupCtx, c, nc, js, topo, reg, log, tp.TracerProvider())
	if err != nil {
		return err
	}

	stopAdmin, err := startAdmin(c, reg, level, log, func() error {
		switch {
		case !connected.Load():
			return errors.New("not connected to NATS")
		case !w.Running():
			return errors.New("not consuming jobs")
		case routes != nil && !routes.Running():
			return errors.New("not consuming the routes' events")
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer stopAdmin()

	runDone := make(chan error, 1)
	go func() { runDone <- w.Run(ctx) }()
	routesDone := make(chan error, 1)
	if routes != nil {
		go func() { routesDone <- routes.Run(ctx) }()
	} else {
		routesDone <- nil
	}
	if opt.OnReady != nil {
		waitRunning(ctx, w)
		opt.OnReady()
	}
	runErr := errors.Join(<-runDone, <-routesDone)

	drain(nc, log)
	return runErr
}

// newInvoker builds the signed function client: credentials as
// invoke.oci.* says, endpoints static or looked up, limits and timeouts.
func newInvoker(c config.Config, log zerolog.Logger, version string) (*invoke.Client, error) {
	signer, provider, err := invoke.NewOCICredentials(invoke.OCIAuth{
		Mode: c.Invoke.OCI.Auth, ConfigFile: c.Invoke.OCI.ConfigFile, Profile: c.Invoke.OCI.Profile, Passphrase: c.Invoke.OCI.Passphrase,
	})
	if err != nil {
		key := "invoke.oci.auth"
		if c.Invoke.OCI.Auth == invoke.AuthAPIKey {
			key = "invoke.oci.config_file"
		}
		return nil, &config.KeyError{Key: key, Err: err}
	}
	if signer == nil {
		log.Warn().Msg("invoke.oci.auth is none: requests are not signed (only an emulator without a public key accepts them)")
	}
	var resolver invoke.Resolver = invoke.StaticEndpoints(c.Invoke.Endpoints)
	if provider != nil {
		if resolver, err = invoke.NewFunctionsResolver(invoke.ResolverConfig{
			Provider: provider, ManagementEndpoint: c.Invoke.ManagementEndpoint, Static: c.Invoke.Endpoints,
		}); err != nil {
			return nil, &config.KeyError{Key: "invoke.oci.auth", Err: err}
		}
	}
	return invoke.New(invoke.Config{
		Resolver:       resolver,
		Signer:         signer,
		APIVersion:     c.Invoke.APIVersion,
		RequestLimit:   int64(c.Invoke.RequestLimit),
		ResponseLimit:  int64(c.Invoke.ResponseLimit),
		ConnectTimeout: c.Invoke.Timeout.Connect,
		ReadTimeout:    c.Invoke.Timeout.Read,
		TotalTimeout:   c.Invoke.Timeout.Total,
		MaxConns:       c.Worker.Concurrency,
		UserAgent:      "invoke-worker/" + cmp.Or(version, "dev"),
		Logger:         &log,
	})
}

// drain flushes acknowledgements and publishes still buffered in the
// client, and closes the connection.
func drain(nc *nats.Conn, log zerolog.Logger) {
	drained := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(drained) })
	if err := nc.Drain(); err != nil {
		log.Warn().Err(err).Msg("NATS drain failed; unflushed acknowledgements will show up as redeliveries")
	} else {
		select {
		case <-drained:
		case <-time.After(10 * time.Second):
			log.Warn().Msg("NATS drain timed out")
		}
	}
}

// startAdmin serves /healthz, /readyz (ready), /metrics (reg) and
// /loglevel (level), behind http.token when set, when http.listen is set;
// stop shuts it down.
func startAdmin(c config.Config, reg prometheus.Gatherer, level *loglevel.Level, log zerolog.Logger, ready func() error) (stop func(), err error) {
	if c.HTTP.Listen == "" {
		return func() {}, nil
	}
	srv, err := admin.Start(admin.Config{
		Listen:   c.HTTP.Listen,
		Gatherer: reg,
		Pprof:    c.HTTP.Pprof,
		LogLevel: level,
		Token:    c.HTTP.Token,
		Logger:   log,
		Ready:    ready,
	})
	if err != nil {
		return nil, err
	}
	log.Info().Str("addr", srv.Addr().String()).Msg("admin endpoint: /healthz /readyz /metrics /loglevel")
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

// workerConfig maps configuration onto the engine's: ackWait is the
// consumer's (the server's, when it differs from consumer.ack_wait),
// maxMessage the largest message the server and stream take.
func workerConfig(c config.Config, topo queue.Topology, retryPolicy *invoke.RetryPolicy, ackWait time.Duration, maxMessage int64, reg prometheus.Registerer, log zerolog.Logger, tp trace.TracerProvider) worker.Config {
	hostOf := func(fn string) string {
		if u, err := neturl.Parse(c.Invoke.Endpoints[fn]); err == nil && u.Host != "" {
			return u.Host
		}
		return fn
	}
	return worker.Config{
		ID:            c.Worker.ID,
		Concurrency:   c.Worker.Concurrency,
		ResultsStream: topo.ResultsStream,
		ResultsPrefix: topo.ResultsPrefix,
		DLQPrefix:     topo.DLQPrefix,
		RequestLimit:  int64(c.Invoke.RequestLimit),
		MaxMessage:    maxMessage,
		Retry: worker.RetryConfig{
			MaxAttempts: c.Retry.MaxAttempts, InitialInterval: c.Retry.InitialInterval, MaxInterval: c.Retry.MaxInterval,
			Multiplier: c.Retry.Multiplier, MaxElapsed: c.Retry.MaxElapsed, Randomization: c.Retry.Randomization,
		},
		RetryPolicy:      retryPolicy,
		MaxJobAge:        c.Worker.MaxJobAge,
		DrainTimeout:     c.Worker.DrainTimeout,
		ProgressInterval: c.Worker.ProgressInterval,
		Prefetch:         c.Worker.Prefetch,
		PullMaxBytes:     int(c.Worker.PullMaxBytes),
		Breaker: worker.BreakerConfig{
			Mode: c.Breaker.Mode, FailureRatio: c.Breaker.FailureRatio, MinRequests: c.Breaker.MinRequests,
			Interval: c.Breaker.Interval, OpenTimeout: c.Breaker.OpenTimeout, HalfOpenRequests: c.Breaker.HalfOpenRequests,
			HostOf: hostOf,
		},
		PerFunctionConcurrency: c.Worker.PerFunctionConcurrency,
		PerFunctionRate:        c.Worker.PerFunctionRate,
		NoFairShare:            !c.Worker.FairShare,
		ReservedSlots:          reservedSlots(c.Worker),
		MetricFunctions:        c.Worker.MetricFunctions,
		WaitLogThreshold:       c.Worker.WaitLogThreshold,
		SampleInterval:         c.Worker.SampleInterval,
		WaitPrefix:             topo.WaitPrefix,
		OwnSubjects:            append(slices.Clone(topo.JobsSubjects), topo.ResultsPrefix+".>", topo.DLQPrefix+".>", topo.WaitPrefix+".>"),
		// A wait's mark must outlast the original's redelivery, by the
		// ack wait the consumer has (the server's, when it differs).
		WaitMarkTTL:    max(worker.WaitMarkTTLDefault, 4*ackWait),
		AckWait:        ackWait,
		Metrics:        reg,
		Logger:         &log,
		TracerProvider: tp,
	}
}
