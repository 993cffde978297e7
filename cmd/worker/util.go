package main

import (
	"context"
	"time"
)

// within runs a shutdown step with its own deadline: it runs after the
// command's context is already done.
func within(d time.Duration, step func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return step(ctx)
}
