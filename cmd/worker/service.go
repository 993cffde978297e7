package main

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"os/signal"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/admin"
	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/worker"
)

// topology maps configuration onto the queue's streams and consumer.
func topology(c config.Config) queue.Topology {
	return queue.Topology{
		JobsStream:      c.Streams.Jobs,
		ResultsStream:   c.Streams.Results,
		DLQStream:       c.Streams.DLQ,
		JobsSubjects:    c.Streams.JobsSubjects,
		ResultsPrefix:   c.Streams.ResultsPrefix,
		DLQPrefix:       c.Streams.DLQPrefix,
		WaitPrefix:      c.Streams.WaitPrefix,
		Replicas:        c.Streams.Replicas,
		MaxMsgSize:      int32(c.Streams.MaxMsgSize),
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

func connConfig(c config.Config, log zerolog.Logger, url string, state func(bool)) queue.ConnConfig {
	return queue.ConnConfig{
		URLs: url, Creds: c.NATS.Creds, NKey: c.NATS.NKey, User: c.NATS.User, Password: c.NATS.Password, Token: c.NATS.Token,
		TLSCA: c.NATS.TLS.CA, TLSCert: c.NATS.TLS.Cert, TLSKey: c.NATS.TLS.Key,
		InboxPrefix: c.NATS.InboxPrefix, Name: c.NATS.Name, ConnectTimeout: c.NATS.ConnectTimeout, ReconnectWait: c.NATS.ReconnectWait,
		Logger: log, OnStateChange: state,
	}
}

// startEmbedded starts the embedded server and says so.
func startEmbedded(c config.Config, log zerolog.Logger) (*queue.Embedded, error) {
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

// clientConn connects a short-lived command (enqueue, dlq) to NATS: the
// configured URL, else the local embedded server's address.
func clientConn(ctx context.Context, c config.Config, log zerolog.Logger) (*nats.Conn, jetstream.JetStream, error) {
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
	cc := connConfig(c, log, url, nil)
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

// signalContext is cancelled on the first SIGINT/SIGTERM; a second one
// exits at once. Nothing acknowledged is lost by that: unacknowledged jobs
// are redelivered by JetStream.
func signalContext(parent context.Context, log zerolog.Logger) (context.Context, func()) {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	finished := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-finished:
			return
		}
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(again)
		select {
		case <-again:
			log.Warn().Msg("second signal: exiting now; unfinished jobs will be redelivered")
			os.Exit(exitFailed)
		case <-finished:
		}
	}()
	return ctx, func() { close(finished); stop() }
}

// serviceOptions are what `dev` adds to a plain `run`.
type serviceOptions struct {
	// embedded is an already started server (dev); nil starts one when
	// nats.url is empty.
	embedded *queue.Embedded
	// onReady runs once the worker is consuming.
	onReady func()
}

// runService runs the worker until ctx is cancelled, then shuts down in
// order: stop taking jobs and drain in-flight ones, flush acknowledgements
// (connection drain), stop the admin endpoint, stop the embedded server.
func runService(ctx context.Context, c config.Config, log zerolog.Logger, opt serviceOptions) (err error) {
	if c.Worker.ID == "" {
		c.Worker.ID = defaultWorkerID()
	}
	level := logLevel(c.Log)
	log = level.Apply(log).With().Str("worker", c.Worker.ID).Logger()
	defer logLifecycle(log, c)(&err)

	tp, err := startTracing(ctx, c, log)
	if err != nil {
		return err
	}
	defer stopTracing(tp, log)

	retryPolicy, err := invoke.NewRetryPolicy(c.Retry.On, c.Retry.Never)
	if err != nil {
		return &config.KeyError{Key: "retry.on", Err: err}
	}
	signer, provider, err := invoke.NewOCICredentials(invoke.OCIAuth{
		Mode: c.Invoke.OCI.Auth, ConfigFile: c.Invoke.OCI.ConfigFile, Profile: c.Invoke.OCI.Profile, Passphrase: c.Invoke.OCI.Passphrase,
	})
	if err != nil {
		key := "invoke.oci.auth"
		if c.Invoke.OCI.Auth == invoke.AuthAPIKey {
			key = "invoke.oci.config_file"
		}
		return &config.KeyError{Key: key, Err: err}
	}
	if signer == nil {
		log.Warn().Msg("invoke.oci.auth is none: requests are not signed (only an emulator without a public key accepts them)")
	}
	var resolver invoke.Resolver = invoke.StaticEndpoints(c.Invoke.Endpoints)
	if provider != nil {
		if resolver, err = invoke.NewFunctionsResolver(invoke.ResolverConfig{
			Provider: provider, ManagementEndpoint: c.Invoke.ManagementEndpoint, Static: c.Invoke.Endpoints,
		}); err != nil {
			return &config.KeyError{Key: "invoke.oci.auth", Err: err}
		}
	}
	invoker, err := invoke.New(invoke.Config{
		Resolver:       resolver,
		Signer:         signer,
		APIVersion:     c.Invoke.APIVersion,
		RequestLimit:   int64(c.Invoke.RequestLimit),
		ResponseLimit:  int64(c.Invoke.ResponseLimit),
		ConnectTimeout: c.Invoke.Timeout.Connect,
		ReadTimeout:    c.Invoke.Timeout.Read,
		TotalTimeout:   c.Invoke.Timeout.Total,
		MaxConns:       c.Worker.Concurrency,
		UserAgent:      "invoke-worker/" + version(),
		Logger:         &log,
	})
	if err != nil {
		return err
	}
	defer invoker.CloseIdleConnections()

	embedded := opt.embedded
	url := c.NATS.URL
	if url == "" {
		if embedded == nil {
			if embedded, err = startEmbedded(c, log); err != nil {
				return err
			}
			defer embedded.Shutdown()
		}
		url = embedded.ClientURL()
	}
	var connected atomic.Bool
	nc, err := queue.Connect(ctx, connConfig(c, log, url, connected.Store))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	topo := topology(c)
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
	hostOf := func(fn string) string {
		if u, err := neturl.Parse(c.Invoke.Endpoints[fn]); err == nil && u.Host != "" {
			return u.Host
		}
		return fn
	}
	// Results larger than a message go through the object store.
	maxMessage := min(nc.MaxPayload(), int64(topo.MaxMsgSize))
	w, err := worker.New(worker.Config{
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
		TracerProvider: tp.TracerProvider(),
	}, worker.Deps{
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
		Reach:         nc,
	})
	if err != nil {
		return err
	}
	routes, err := newFanout(setupCtx, c, nc, js, topo, reg, log, tp.TracerProvider())
	if err != nil {
		return err
	}

	if c.HTTP.Listen != "" {
		srv, err := admin.Start(admin.Config{
			Listen:   c.HTTP.Listen,
			Gatherer: reg,
			Pprof:    c.HTTP.Pprof,
			LogLevel: level,
			Token:    c.HTTP.Token,
			Logger:   log,
			Ready: func() error {
				switch {
				case !connected.Load():
					return errors.New("not connected to NATS")
				case !w.Running():
					return errors.New("not consuming jobs")
				case routes != nil && !routes.Running():
					return errors.New("not consuming the routes' events")
				}
				return nil
			},
		})
		if err != nil {
			return err
		}
		log.Info().Str("addr", srv.Addr().String()).Msg("admin endpoint: /healthz /readyz /metrics /loglevel")
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}

	runDone := make(chan error, 1)
	go func() { runDone <- w.Run(ctx) }()
	routesDone := make(chan error, 1)
	if routes != nil {
		go func() { routesDone <- routes.Run(ctx) }()
	} else {
		routesDone <- nil
	}
	if opt.onReady != nil {
		waitRunning(ctx, w)
		opt.onReady()
	}
	runErr := errors.Join(<-runDone, <-routesDone)

	// Flush acknowledgements and publishes still buffered in the client.
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
	return runErr
}
