package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerState is what the server reports of the shared consumer and its
// stream, for the workers' gauges.
type ConsumerState struct {
	Pending       uint64 // stored jobs not yet delivered
	AckPending    uint64 // delivered, not yet acknowledged
	MaxAckPending uint64
	// Waiting is how many waiting copies the jobs stream holds: every
	// message that is neither pending nor ack pending (the consumer reads
	// every other subject of the stream).
	Waiting uint64
	// DeadLetters is the dead-letter records held by reason, for the
	// reasons a Sampler was given; nil from ReadConsumerState.
	DeadLetters map[string]uint64
}

// ReadConsumerState asks the server for the consumer's and the stream's
// state: two requests.
func ReadConsumerState(ctx context.Context, js jetstream.JetStream, t Topology) (ConsumerState, error) {
	t = t.WithDefaults()
	cons, err := js.Consumer(ctx, t.JobsStream, t.Durable)
	if err != nil {
		return ConsumerState{}, fmt.Errorf("consumer %s: %w", t.Durable, err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return ConsumerState{}, fmt.Errorf("consumer %s: %w", t.Durable, err)
	}
	s, err := js.Stream(ctx, t.JobsStream)
	if err != nil {
		return ConsumerState{}, fmt.Errorf("stream %s: %w", t.JobsStream, err)
	}
	si, err := s.Info(ctx)
	if err != nil {
		return ConsumerState{}, fmt.Errorf("stream %s: %w", t.JobsStream, err)
	}
	cs := ConsumerState{Pending: ci.NumPending, AckPending: uint64(ci.NumAckPending), MaxAckPending: uint64(max(0, ci.Config.MaxAckPending))}
	if held := cs.Pending + cs.AckPending; si.State.Msgs > held {
		cs.Waiting = si.State.Msgs - held
	}
	return cs, nil
}

// DepthConsumerPrefix names the dead-letter stream's counting consumers:
// <prefix><reason>, one per reason, shared by every worker.
const DepthConsumerPrefix = "invoke-dlq-depth-"

// Sampler reads the shared consumer's state and the dead-letter records
// held per reason. The server has no cheap count of a stream's messages
// by subject wildcard, so each reason has a durable consumer filtered on
// <DLQPrefix>.<reason>.> that never receives anything: its pending count
// is the reason's depth, kept by the server as records come and go. The
// consumers are created on first use (and again when deleted), in memory
// with one replica: they hold no state worth keeping.
type Sampler struct {
	js      jetstream.JetStream
	topo    Topology
	reasons []string

	mu    sync.Mutex // one Sample at a time; guards depth
	depth map[string]jetstream.Consumer
}

// NewSampler samples t's consumer and, for each of reasons, its
// dead-letter depth.
func NewSampler(js jetstream.JetStream, t Topology, reasons []string) *Sampler {
	return &Sampler{js: js, topo: t.WithDefaults(), reasons: reasons, depth: map[string]jetstream.Consumer{}}
}

// ErrDepthNotRead marks a sample whose consumer state is whole but whose
// dead-letter depth lacks the reasons that could not be read (the
// connection's permissions may not allow the counting consumers).
var ErrDepthNotRead = errors.New("dead-letter depth not read")

// Sample reads the state: two requests, plus one per reason. An error
// wrapping ErrDepthNotRead comes with a usable state.
func (s *Sampler) Sample(ctx context.Context) (ConsumerState, error) {
	cs, err := ReadConsumerState(ctx, s.js, s.topo)
	if err != nil {
		return cs, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs.DeadLetters = make(map[string]uint64, len(s.reasons))
	var errs []error
	for _, r := range s.reasons {
		n, err := s.deadLetters(ctx, r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cs.DeadLetters[r] = n
	}
	if len(errs) > 0 {
		return cs, fmt.Errorf("%w: %w", ErrDepthNotRead, errors.Join(errs...))
	}
	return cs, nil
}

func (s *Sampler) deadLetters(ctx context.Context, reason string) (uint64, error) {
	if c := s.depth[reason]; c != nil {
		ci, err := c.Info(ctx)
		if err == nil {
			return ci.NumPending, nil
		}
		if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return 0, fmt.Errorf("dead-letter depth of %s: %w", reason, err)
		}
		delete(s.depth, reason)
	}
	c, err := s.js.CreateOrUpdateConsumer(ctx, s.topo.DLQStream, jetstream.ConsumerConfig{
		Durable:       DepthConsumerPrefix + reason,
		Description:   "counts the " + reason + " dead-letter records for the workers' invoke_worker_dlq_depth; never delivers",
		FilterSubject: s.topo.DLQPrefix + "." + reason + ".>",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckNonePolicy,
		MemoryStorage: true,
		Replicas:      1,
	})
	if err != nil {
		return 0, fmt.Errorf("dead-letter depth of %s: %w", reason, err)
	}
	s.depth[reason] = c
	return c.CachedInfo().NumPending, nil
}
