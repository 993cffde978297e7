package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/invoke"
)

// consumer is the consumer under test of one loop measurement (the worker,
// (a) or (d)), running in this process or in a process of its own.
type consumer interface {
	// exited is closed once the consumer stopped, by itself or by stop;
	// err then says why.
	exited() <-chan struct{}
	err() error
	// usage samples what the consumer's process has spent so far.
	usage(ctx context.Context) (usage, error)
	// profile starts a CPU profile of the consumer's process into w; the
	// returned stop ends it and closes w.
	profile(ctx context.Context, w io.WriteCloser) (stop func() error, err error)
	// isolated reports whether the consumer has a process of its own.
	isolated() bool
	// stop stops the consumer and waits up to stopWait for it.
	stop() error
}

// ConsumerConfig is what a consumer needs from its caller: how to run the
// worker and how to reach NATS.
type ConsumerConfig struct {
	// Worker runs the full worker. Required for the worker's measurement.
	Worker WorkerFunc
	// Connect dials NATS for the loops (a) and (d). Defaults to
	// queue.Connect without credentials.
	Connect func(ctx context.Context, url string) (*nats.Conn, error)
}

// runConsumer runs the consumer of kind against env until ctx is
// cancelled. In this process or in a consumer process, it is the same
// code.
func runConsumer(ctx context.Context, kind loopKind, env WorkerEnv, cfg ConsumerConfig) error {
	if kind == loopWorker {
		if cfg.Worker == nil {
			return errors.New("bench: no worker to run")
		}
		return cfg.Worker(ctx, env)
	}
	connect := cfg.Connect
	if connect == nil {
		connect = defaultConnect
	}
	nc, err := connect(ctx, env.NATSURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.Consumer(ctx, env.Topology.JobsStream, env.Topology.Durable)
	if err != nil {
		return fmt.Errorf("job consumer: %w", err)
	}
	var call invokeFunc
	if kind == loopBare {
		var auth *invoke.OCIAuth
		if env.Signed() {
			auth = &invoke.OCIAuth{Mode: invoke.AuthAPIKey, ConfigFile: env.OCIConfigFile, Profile: env.OCIProfile}
		}
		p, err := newPoster(env.Endpoint, env.Concurrency, auth)
		if err != nil {
			return err
		}
		defer p.close()
		call = p.post
	}
	return bareLoop(ctx, js, cons, env.Topology.ResultsPrefix, env.Concurrency, call)
}

// inProcess is a consumer running on goroutines of this process.
type inProcess struct {
	cancel context.CancelFunc
	done   chan struct{}
	runErr error
	once   sync.Once
}

func startInProcess(ctx context.Context, kind loopKind, env WorkerEnv, cfg ConsumerConfig) *inProcess {
	ctx, cancel := context.WithCancel(ctx)
	c := &inProcess{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.runErr = runConsumer(ctx, kind, env, cfg)
	}()
	return c
}

func (c *inProcess) exited() <-chan struct{} { return c.done }
func (c *inProcess) err() error              { return c.runErr }
func (c *inProcess) isolated() bool          { return false }

func (c *inProcess) usage(context.Context) (usage, error) { return sampleUsage(), nil }

func (c *inProcess) profile(_ context.Context, w io.WriteCloser) (func() error, error) {
	if err := pprof.StartCPUProfile(w); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() error { pprof.StopCPUProfile(); return w.Close() }, nil
}

func (c *inProcess) stop() error {
	var err error
	c.once.Do(func() {
		c.cancel()
		select {
		case <-c.done:
			err = c.runErr
		case <-time.After(stopWait):
			err = fmt.Errorf("did not stop within %s", stopWait)
		}
	})
	return err
}
