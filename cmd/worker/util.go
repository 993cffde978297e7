package main

import (
	"context"
	"time"

	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/internal/gcfloor"
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
