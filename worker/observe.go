package worker

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Sample is the shared consumer's state as the server reports it.
type Sample struct {
	Pending       uint64 // stored, not yet delivered
	AckPending    uint64 // delivered, not yet acknowledged (fleet-wide)
	MaxAckPending uint64 // the consumer's limit on AckPending
	Waiting       uint64 // waiting copies in the jobs stream
	// DeadLetters is the dead-letter records held, by reason; the keys
	// are the sampler's fixed set (dlq.Reasons), never more.
	DeadLetters map[string]uint64
}

// Sampler reads the consumer's state (queue.Sampler).
type Sampler interface {
	Sample(ctx context.Context) (Sample, error)
}

// ackPendingWarn is the share of MaxAckPending past which the worker warns:
// close to it, JetStream stops delivering to the whole fleet.
const ackPendingWarn = 0.9

// sample refreshes the consumer gauges every SampleInterval until ctx is
// done. One request per process per interval: cheap for the server.
func (w *Worker) sample(ctx context.Context) {
	t := time.NewTicker(w.cfg.SampleInterval)
	defer t.Stop()
	for {
		s, err := w.deps.Sampler.Sample(ctx)
		switch {
		case err != nil:
			w.log.Debug().Err(err).Msg("consumer state not sampled")
		default:
			w.metrics.consumer(s)
			if s.MaxAckPending > 0 && float64(s.AckPending) >= ackPendingWarn*float64(s.MaxAckPending) {
				w.log.Warn().Uint64("ack_pending", s.AckPending).Uint64("max_ack_pending", s.MaxAckPending).
					Msg("the consumer's delivery budget is nearly spent: jobs handed back in place or held by stopped workers fill it")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// waitWatch logs when one function's jobs start waiting in numbers: the
// first sign, per process, that a function is down or over its share.
type waitWatch struct {
	threshold int
	now       func() time.Time
	log       zerolog.Logger

	mu     sync.Mutex
	start  time.Time
	counts map[string]int
}

// waitWatchWindow is the window waits are counted in; waitWatchKeys bounds
// how many functions one window tracks.
const (
	waitWatchWindow = time.Minute
	waitWatchKeys   = 10000
)

func newWaitWatch(threshold int, now func() time.Time, log zerolog.Logger) *waitWatch {
	return &waitWatch{threshold: threshold, now: now, log: log, counts: map[string]int{}}
}

// note counts one wait of fn, and logs when fn's count in the window
// reaches the threshold (once per window).
func (ww *waitWatch) note(fn, cause string) {
	if ww.threshold <= 0 {
		return
	}
	now := ww.now()
	ww.mu.Lock()
	if now.Sub(ww.start) >= waitWatchWindow {
		ww.start = now
		clear(ww.counts)
	}
	n, ok := ww.counts[fn]
	if !ok && len(ww.counts) >= waitWatchKeys {
		ww.mu.Unlock()
		return
	}
	n++
	ww.counts[fn] = n
	ww.mu.Unlock()
	if n == ww.threshold {
		ww.log.Warn().Str("function", fn).Str("cause", cause).Int("waits", n).Dur("window", waitWatchWindow).
			Msg("many jobs of one function are waiting; the other functions' jobs are not held up by them")
	}
}
