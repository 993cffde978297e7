package worker

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/job"
)

// action is what happens to a delivered job.
type action int

const (
	// actComplete: publish the result, then acknowledge.
	actComplete action = iota + 1
	// actRetry: the attempt failed and may be tried again after delay.
	// The job waits as a scheduled copy (see wait.go), holding no
	// delivery slot; the attempt is charged.
	actRetry
	// actDefer: no attempt was made (breaker open, the function over its
	// share or limits, body not readable yet); the job waits like a retry,
	// uncharged.
	actDefer
	// actDeadLetter: store a dead-letter record, then terminate the job.
	actDeadLetter
	// actRelease: give the job back to JetStream in place, after delay,
	// without judging it: the worker is stopping mid-attempt, the handler
	// panicked, or the message is unusable. The delivery is charged: it
	// may have reached the function.
	actRelease
	// actHandBack: the worker is stopping before the job started: give it
	// back in place at once for another worker, uncharged.
	actHandBack
	// actAcknowledge: the job already completed (its acknowledgement was
	// lost): acknowledge it without invoking again.
	actAcknowledge
	// actResumeWait: an earlier delivery of this message decided to wait
	// and stored its mark, then stopped short of acknowledging (crash, lost
	// ack): finish that wait, never run the job here.
	actResumeWait
	// actLeave: the worker lost NATS long enough for the job to be
	// redelivered to another worker (see reach.go): neither start it nor
	// store a waiting copy nor give it back, any of which could run it
	// twice or lose the other worker's count. JetStream redelivers it
	// after its ack wait if nobody else has it; the delivery is charged.
	actLeave
)

func (a action) String() string {
	switch a {
	case actComplete:
		return "complete"
	case actRetry:
		return "retry"
	case actDefer:
		return "defer"
	case actDeadLetter:
		return "dead-letter"
	case actRelease:
		return "release"
	case actHandBack:
		return "hand-back"
	case actAcknowledge:
		return "acknowledge"
	case actResumeWait:
		return "resume-wait"
	case actLeave:
		return "leave"
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
	case actDefer:
		return "job defer"
	case actDeadLetter:
		return "job dead-letter"
	case actRelease:
		return "job release"
	case actHandBack:
		return "job hand-back"
	case actAcknowledge:
		return "job already completed (its acknowledgement was lost); acknowledged without invoking again"
	case actResumeWait:
		return "job wait resumed"
	case actLeave:
		return "job left to JetStream: NATS was out of reach while this worker held it, and another worker may have it"
	}
	return "job"
}

// outcome is everything known about one delivery when its fate is decided.
type outcome struct {
	// Before the job could be judged.
	unusable error // the message has no JetStream metadata (a bug)
	panicked any   // handling panicked
	// resume is the wait an earlier delivery of this message decided on
	// but did not finish, nil if none.
	resume *waitMark
	// completed: a result of this job is already stored.
	completed bool
	// markUnreadable: the state bucket could not say whether an earlier
	// delivery set this job waiting.
	markUnreadable error
	// lapsed: NATS was out of reach, while this worker held the delivery,
	// long enough for it to be redelivered to another worker.
	lapsed bool

	parseErr   error         // the job is invalid
	spent      bool          // the budget was spent before this delivery
	expired    string        // why the job expired, "" if it did not
	stopping   bool          // the worker is stopping; the job did not start
	deferCause string        // why no attempt was made, "" if one was
	deferHint  time.Duration // how long the cause says to wait, 0 if it does not say
	// defers is how many waits in a row before this delivery made no
	// attempt (from the job's wait headers).
	defers int

	made    bool             // this delivery made an attempt
	resp    *invoke.Response // success
	err     error            // the attempt failed (or was interrupted)
	attempt int              // this delivery's attempt number, from 1
	history []dlq.Attempt    // earlier attempts, and this one if made
	// freeDeliveries is how many earlier deliveries of this message were
	// handed back in place without an attempt (state bucket).
	freeDeliveries int
	stateStored    bool // the state bucket has a record for this message
	job            job.Job
	now            time.Time
	// span is the delivery's span, nil when the worker does not trace.
	span trace.Span
}

// decision is the verdict on one delivery.
type decision struct {
	action action
	reason dlq.Reason    // for actDeadLetter
	delay  time.Duration // for actRetry, actDefer, actRelease
	status int           // last HTTP status, 0 if none
	cause  string        // one-line description of the failure or wait
	// attempts is how many attempts the job has had: on the result, on a
	// dead-letter record, and charged to a waiting copy.
	attempts int
	// defers is the waiting copy's count of waits in a row without an
	// attempt.
	defers int
}

// errInterrupted marks an attempt cut short because the worker is stopping.
var errInterrupted = errors.New("interrupted by shutdown")

// policy is everything decide needs besides the outcome. Its functions
// must not touch the world: decide stays a pure function of its inputs.
type policy struct {
	maxAttempts int
	// maxElapsed bounds retries by the job's age; 0 is no bound.
	maxElapsed time.Duration
	retryable  func(error) bool
	// backoff is the wait after the given failed attempt.
	backoff func(attempt int) time.Duration
	// deferFor is how long a job waits that made no attempt for cause,
	// after defers such waits in a row; hint is the cause's own estimate.
	deferFor func(cause string, defers int, hint time.Duration) time.Duration
	// giveBack is the delay before a job handed back after a panic is
	// redelivered.
	giveBack time.Duration
}

// decide is the one place where a delivery's outcome becomes its fate.
// Cases go from the message's own state, through the job's fault and the
// service's answer, to the budget; the first that applies wins. A
// delivery held across a lapse of NATS (o.lapsed) may since belong to
// another worker: only a result or a record, both stored once whoever
// stores them, may follow it; anything else leaves the job to JetStream.
func decide(o outcome, p policy) decision {
	d := judge(o, p)
	if o.lapsed {
		switch d.action {
		case actRetry, actDefer, actRelease, actHandBack:
			return decision{action: actLeave, status: d.status, cause: "NATS out of reach during the attempt; would have: " + d.action.String(), attempts: d.attempts}
		}
	}
	return d
}

// judge is decide before the lapsed rule.
func judge(o outcome, p policy) decision {
	var status int
	var ie *invoke.Error
	if errors.As(o.err, &ie) {
		status = ie.Status
	}
	attempts := o.attempt
	if !o.made {
		attempts = max(0, o.attempt-1) // this delivery made no attempt
	}
	if status == 0 && len(o.history) > 0 {
		status = o.history[len(o.history)-1].Status
	}
	dead := func(r dlq.Reason, cause string) decision {
		return decision{action: actDeadLetter, reason: r, status: status, cause: cause, attempts: attempts}
	}
	switch {
	case o.unusable != nil:
		// Nothing can be read from it; the server redelivers it after
		// its ack wait if this give-back is lost too.
		return decision{action: actRelease, cause: o.unusable.Error()}
	case o.panicked != nil:
		return decision{action: actRelease, delay: p.giveBack, cause: fmt.Sprintf("panic: %v", o.panicked)}
	case o.markUnreadable != nil:
		// Whether a copy exists is unknown: ask again later rather
		// than risk running the job twice.
		return decision{action: actRelease, delay: p.giveBack, cause: "wait mark not readable: " + o.markUnreadable.Error()}
	case o.resume != nil:
		return decision{action: actResumeWait, delay: o.resume.Until.Sub(o.now), cause: o.resume.Cause, attempts: o.resume.Attempts, defers: o.resume.Defers}
	case o.completed:
		return decision{action: actAcknowledge}
	case o.lapsed && !o.made:
		return decision{action: actLeave, cause: "NATS out of reach before the attempt", attempts: attempts}
	case o.parseErr != nil:
		d := dead(dlq.ReasonInvalid, o.parseErr.Error())
		d.attempts = 0
		return d
	case o.spent:
		// Only after a crash mid-attempt: that attempt was the last.
		return dead(dlq.ReasonExhausted, fmt.Sprintf("gave up after %d attempts (the last one did not report back: its worker stopped or crashed)", p.maxAttempts))
	case o.expired != "":
		return dead(dlq.ReasonExpired, o.expired)
	case o.stopping:
		return decision{action: actHandBack, cause: "shutdown", attempts: attempts}
	case o.deferCause != "":
		return decision{action: actDefer, delay: p.deferFor(o.deferCause, o.defers, o.deferHint), cause: o.deferCause, attempts: attempts, defers: o.defers + 1}
	case o.err == nil:
		return decision{action: actComplete, status: o.resp.Status, attempts: attempts}
	case errors.Is(o.err, errInterrupted):
		return decision{action: actRelease, cause: o.err.Error(), attempts: attempts}
	case errors.Is(o.err, invoke.ErrBadRequest), errors.Is(o.err, invoke.ErrRequestTooLarge):
		// Nothing was sent: the job carries what HTTP cannot, or more
		// than the function takes. Its fault, never the function's.
		return dead(dlq.ReasonInvalid, o.err.Error())
	case !p.retryable(o.err):
		return dead(dlq.ReasonPermanent, o.err.Error())
	case o.attempt >= p.maxAttempts:
		return dead(dlq.ReasonExhausted, fmt.Sprintf("gave up after %d attempts: %v", o.attempt, o.err))
	}
	delay := p.backoff(o.attempt)
	if ie != nil && ie.RetryAfter > delay {
		// The service said when it can take more; earlier only adds load.
		delay = ie.RetryAfter
	}
	if p.maxElapsed > 0 && !o.job.StoreAt.IsZero() && o.now.Add(delay).Sub(o.job.StoreAt) > p.maxElapsed {
		return dead(dlq.ReasonExhausted, fmt.Sprintf("gave up after %d attempts (retry.max_elapsed %s would pass before the next): %v", o.attempt, p.maxElapsed, o.err))
	}
	if !o.job.Deadline.IsZero() && o.now.Add(delay).After(o.job.Deadline) {
		return dead(dlq.ReasonExpired, fmt.Sprintf("deadline %s would pass before the next attempt, after %d attempts: %v", o.job.Deadline.UTC().Format(time.RFC3339), o.attempt, o.err))
	}
	return decision{action: actRetry, delay: delay, status: status, cause: o.err.Error(), attempts: attempts}
}
