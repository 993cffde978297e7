package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/internal/gcfloor"
	"github.com/rs/zerolog"
)

// within runs a shutdown step with its own deadline: it runs after the
// command's context is already done.
func within(d time.Duration, step func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return step(ctx)
}

// startGCFloor keeps the garbage collector from running more often than a
// heap of worker.gc_min_heap needs (gcfloor) until the returned stop is
// called. Process-wide, so the commands that run a worker start it, once.
func startGCFloor(c config.Worker) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		gcfloor.Run(ctx, gcfloor.Config{Floor: int64(c.GCMinHeap)})
	}()
	return func() { cancel(); <-done }
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
