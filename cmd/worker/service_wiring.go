// Pieces runService wires in: error mapping, fan-out routes, the
// consumer-state sampler.

package main

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/client"
	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/fanout"
	"github.com/invoke-worker/worker/queue"
	"github.com/invoke-worker/worker/worker"
)

// replicasKeyError names streams.replicas in an error of a replica count
// the servers cannot place, making it a configuration error (exit 2).
func replicasKeyError(err error) error {
	if errors.Is(err, queue.ErrTooManyReplicas) {
		return &config.KeyError{Key: "streams.replicas", Err: err}
	}
	return err
}

// newFanout wires the configured routes, nil when there are none. Their
// streams and consumers are set up here, so a route that cannot work
// fails start-up.
func newFanout(ctx context.Context, c config.Config, nc *nats.Conn, js jetstream.JetStream, topo queue.Topology, reg prometheus.Registerer, log zerolog.Logger) (*fanout.Fanout, error) {
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
	f, err := fanout.New(fanout.Config{Routes: routes, JS: js, Publisher: pub, Logger: log, Metrics: reg})
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
