package queue

import (
	"context"
	"fmt"

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
