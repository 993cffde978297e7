package worker

import (
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/job"
)

// action is what happens to a delivered job.
type action int

const (
	// actComplete: publish the result, then acknowledge.
	actComplete action = iota + 1
	// actRetry: give the job back to JetStream to redeliver after a delay;
	// the wait holds no worker slot.
	actRetry
	// actDeadLetter: store a dead-letter record, then terminate the job.
	actDeadLetter
	// actRelease: give the job back at once without judging it (the
	// worker is stopping mid-attempt); another worker takes it. The
	// attempt is charged: it may have reached the function.
	actRelease
	// actDefer: give the job back without an attempt (breaker open,
	// per-function limit, worker stopping before it started), uncharged.
	actDefer
)

func (a action) String() string {
	switch a {
	case actComplete:
		return "complete"
	case actRetry:
		return "retry"
	case actDeadLetter:
		return "dead-letter"
	case actRelease:
		return "release"
	case actDefer:
		return "defer"
	}
	return "unknown"
}

// logMessage is the job line's message; constant, so a disabled log level
// costs nothing.
func (a action) logMessage() string {
	switch a {
	case actComplete:
		return "job complete"
	case actRetry:
		return "job retry"
	case actDeadLetter:
		return "job dead-letter"
	case actRelease:
		return "job release"
	case actDefer:
		return "job defer"
	}
	return "job"
}

// outcome is what happened to one delivery before the decision.
type outcome struct {
	parseErr   error            // the job is invalid
	spent      bool             // the budget was spent before this delivery
	expired    string           // why the job expired, "" if it did not
	deferCause string           // why no attempt was made, "" if one was
	deferFor   time.Duration    // how long to defer
	resp       *invoke.Response // success
	err        error            // the attempt failed (or was interrupted)
	attempt    int              // this delivery's attempt number, from 1
	job        job.Job
	decidedAt  time.Time
}

// decision is the verdict on one delivery.
type decision struct {
	action action
	reason dlq.Reason    // for actDeadLetter
	delay  time.Duration // for actRetry
	status int           // last HTTP status, 0 if none
	cause  string        // one-line description of the failure
}

// errInterrupted marks an attempt cut short because the worker is stopping.
var errInterrupted = errors.New("interrupted by shutdown")

// decide is the one place where an outcome becomes ack, retry later or
// dead-letter. Cases go from the job's own fault, through the service's
// answer, to the budget.
func (w *Worker) decide(o outcome) decision {
	var status int
	var ie *invoke.Error
	if errors.As(o.err, &ie) {
		status = ie.Status
	}
	switch {
	case o.parseErr != nil:
		return decision{action: actDeadLetter, reason: dlq.ReasonInvalid, cause: o.parseErr.Error()}
	case o.spent:
		// Only after a crash mid-attempt: that attempt was the last.
		return decision{action: actDeadLetter, reason: dlq.ReasonExhausted,
			cause: fmt.Sprintf("gave up after %d attempts (the last one did not report back: its worker stopped or crashed)", w.cfg.Retry.MaxAttempts)}
	case o.expired != "":
		return decision{action: actDeadLetter, reason: dlq.ReasonExpired, cause: o.expired}
	case o.deferCause != "":
		return decision{action: actDefer, delay: o.deferFor, cause: o.deferCause}
	case o.err == nil:
		return decision{action: actComplete, status: o.resp.Status}
	case errors.Is(o.err, errInterrupted):
		return decision{action: actRelease, cause: o.err.Error()}
	case !w.cfg.RetryPolicy.Retryable(o.err):
		return decision{action: actDeadLetter, reason: dlq.ReasonPermanent, status: status, cause: o.err.Error()}
	case o.attempt >= w.cfg.Retry.MaxAttempts:
		return decision{action: actDeadLetter, reason: dlq.ReasonExhausted, status: status,
			cause: fmt.Sprintf("gave up after %d attempts: %v", o.attempt, o.err)}
	}
	delay := w.backoff(o.attempt)
	if ie != nil && ie.RetryAfter > delay {
		// The service said when it can take more; earlier only adds load.
		delay = ie.RetryAfter
	}
	if !o.job.StoreAt.IsZero() && o.decidedAt.Add(delay).Sub(o.job.StoreAt) > w.cfg.Retry.MaxElapsed {
		return decision{action: actDeadLetter, reason: dlq.ReasonExhausted, status: status,
			cause: fmt.Sprintf("gave up after %d attempts (retry.max_elapsed %s would pass before the next): %v", o.attempt, w.cfg.Retry.MaxElapsed, o.err)}
	}
	if !o.job.Deadline.IsZero() && o.decidedAt.Add(delay).After(o.job.Deadline) {
		return decision{action: actDeadLetter, reason: dlq.ReasonExpired, status: status,
			cause: fmt.Sprintf("deadline %s would pass before the next attempt, after %d attempts: %v", o.job.Deadline.UTC().Format(time.RFC3339), o.attempt, o.err)}
	}
	return decision{action: actRetry, delay: delay, status: status, cause: o.err.Error()}
}

// backoff returns the wait after the given failed attempt: exponential from
// InitialInterval by Multiplier, capped at MaxInterval, with jitter of
// ±Randomization. backoff/v4 computes it; the attempt number comes from
// JetStream, so the schedule survives restarts without state here.
func (w *Worker) backoff(attempt int) time.Duration {
	r := w.cfg.Retry
	b := &backoff.ExponentialBackOff{
		InitialInterval:     r.InitialInterval,
		RandomizationFactor: r.Randomization,
		Multiplier:          r.Multiplier,
		MaxInterval:         r.MaxInterval,
		MaxElapsedTime:      0, // the budget is enforced in decide, from the job's age
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	d := b.NextBackOff()
	for i := 1; i < attempt; i++ {
		d = b.NextBackOff()
	}
	return d
}
