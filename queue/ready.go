package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// WaitJetStream returns once the servers answer JetStream requests, or
// with ctx's error. A cluster that has not elected its meta leader yet
// (every node just started) does not fail a request: it leaves it
// unanswered until the caller's deadline. So each try gets a short
// deadline of its own, and a worker started with its cluster is running
// a second after the cluster is, not after its whole set-up deadline.
func WaitJetStream(ctx context.Context, js jetstream.JetStream) error {
	const try = time.Second
	for {
		tctx, cancel := context.WithTimeout(ctx, try)
		_, err := js.AccountInfo(tctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("JetStream not available: %w (last: %w)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
