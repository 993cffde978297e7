// Package rebind is the loop that keeps a JetStream consumer bound: bind
// and consume until the binding is lost, then bind again, pausing a little
// longer after each failure in a row. The worker's job consumer and every
// fan-out route run in it, so a consumer deleted under a running process,
// or a server that is away for a while, is met the same way everywhere.
//
// It owns the loop and the pause, nothing else: what binding means (the
// worker's Consume, a route's fetches sized to its free
// slots), what is logged and counted, and how a consumption stops are the
// caller's. It imports nothing of the module.
package rebind

import (
	"context"
	"time"
)

// Pause steps and cap: 100ms more after each failure in a row, up to 2s,
// so a lost server is retried soon without spinning.
const (
	pauseStep = 100 * time.Millisecond
	pauseMax  = 2 * time.Second
)

// Backoff counts failures in a row and pauses after each.
type Backoff struct{ failures int }

// Wait counts a failure and pauses for it, or until ctx is done.
func (b *Backoff) Wait(ctx context.Context) {
	b.failures++
	t := time.NewTimer(min(time.Duration(b.failures)*pauseStep, pauseMax))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Reset ends a run of failures: the next pause is the shortest.
func (b *Backoff) Reset() { b.failures = 0 }

// Run calls consume until ctx is done. consume binds and consumes: it
// returns nil once the binding is lost (Run binds again at once; consume
// may have paused on b first) or ctx is done, and the error when it could
// not bind, which Run passes to failed before pausing. consume resets b
// once it makes progress (the worker and the routes: a pull that worked),
// and may itself Wait on b for failures while bound.
func Run(ctx context.Context, consume func(ctx context.Context, b *Backoff) error, failed func(error)) {
	var b Backoff
	for ctx.Err() == nil {
		if err := consume(ctx, &b); err != nil {
			failed(err)
			b.Wait(ctx)
		}
	}
}
