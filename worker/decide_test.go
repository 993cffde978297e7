package worker

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/job"
)

// testPolicy is a policy whose delays are easy to read: backoff is one
// second per attempt, a deferral waits its hint or 7s.
func testPolicy() policy {
	rp, err := invoke.NewRetryPolicy(invoke.RetryOnDefault(), nil)
	if err != nil {
		panic(err)
	}
	return policy{
		maxAttempts: 3,
		maxElapsed:  time.Minute,
		retryable:   rp.Retryable,
		backoff:     func(attempt int) time.Duration { return time.Duration(attempt) * time.Second },
		deferFor: func(cause string, defers int, hint time.Duration) time.Duration {
			if hint > 0 {
				return hint
			}
			return 7 * time.Second
		},
		giveBack: 500 * time.Millisecond,
	}
}

// TestDecideEveryRow walks decide's cases in order, one row each, and
// checks the verdict: a pure function of the outcome and the policy.
func TestDecideEveryRow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	fresh := job.Job{ID: "j", FunctionID: "fn", StoreAt: now.Add(-time.Second)}
	old := job.Job{ID: "j", FunctionID: "fn", StoreAt: now.Add(-59 * time.Second)}
	soon := job.Job{ID: "j", FunctionID: "fn", StoreAt: now, Deadline: now.Add(1500 * time.Millisecond)}
	e503 := &invoke.Error{Status: 503, Code: "ServiceUnavailable"}
	e404 := &invoke.Error{Status: 404, Code: "NotAuthorizedOrNotFound"}
	e429 := &invoke.Error{Status: 429, RetryAfter: 20 * time.Second}
	ok := &invoke.Response{Status: 200}
	hist := []dlq.Attempt{{N: 1, Status: 502}}
	mark := &waitMark{Cause: causeRetry, Until: now.Add(3 * time.Second), Attempts: 2, Defers: 0}

	rows := []struct {
		name string
		o    outcome
		want decision
	}{
		{"unusable message", outcome{unusable: errors.New("no metadata")},
			decision{action: actRelease, cause: "no metadata"}},
		{"panic", outcome{panicked: "boom", attempt: 2, made: true},
			decision{action: actRelease, delay: 500 * time.Millisecond, cause: "panic: boom"}},
		{"wait mark unreadable", outcome{markUnreadable: errors.New("kv down"), attempt: 2},
			decision{action: actRelease, delay: 500 * time.Millisecond, cause: "wait mark not readable: kv down"}},
		{"a wait left unfinished", outcome{resume: mark, attempt: 3},
			decision{action: actResumeWait, delay: 3 * time.Second, cause: causeRetry, attempts: 2}},
		{"already completed", outcome{completed: true, attempt: 2},
			decision{action: actAcknowledge}},
		{"invalid", outcome{parseErr: job.ErrInvalid, attempt: 1},
			decision{action: actDeadLetter, reason: dlq.ReasonInvalid, cause: job.ErrInvalid.Error()}},
		{"budget spent by a crash", outcome{spent: true, attempt: 4, history: hist, job: fresh},
			decision{action: actDeadLetter, reason: dlq.ReasonExhausted, status: 502, attempts: 3,
				cause: "gave up after 3 attempts (the last one did not report back: its worker stopped or crashed)"}},
		{"expired", outcome{expired: "deadline passed", attempt: 2, job: fresh},
			decision{action: actDeadLetter, reason: dlq.ReasonExpired, cause: "deadline passed", attempts: 1}},
		{"stopping before it started", outcome{stopping: true, attempt: 2},
			decision{action: actHandBack, cause: "shutdown", attempts: 1}},
		{"deferred with a hint", outcome{deferCause: causeRateLimit, deferHint: 2 * time.Second, defers: 1, attempt: 1},
			decision{action: actDefer, delay: 2 * time.Second, cause: causeRateLimit, defers: 2}},
		{"deferred", outcome{deferCause: causeBreakerOpen, attempt: 3, history: hist},
			decision{action: actDefer, delay: 7 * time.Second, cause: causeBreakerOpen, attempts: 2, defers: 1}},
		{"completed", outcome{made: true, resp: ok, attempt: 2, job: fresh},
			decision{action: actComplete, status: 200, attempts: 2}},
		{"interrupted", outcome{made: true, err: fmt.Errorf("%w: ctx", errInterrupted), attempt: 1},
			decision{action: actRelease, cause: "interrupted by shutdown: ctx", attempts: 1}},
		{"request that cannot be built", outcome{err: &invoke.Error{Err: invoke.ErrBadRequest}, attempt: 1, job: fresh},
			decision{action: actDeadLetter, reason: dlq.ReasonInvalid, cause: (&invoke.Error{Err: invoke.ErrBadRequest}).Error()}},
		{"permanent", outcome{made: true, err: e404, attempt: 1, job: fresh},
			decision{action: actDeadLetter, reason: dlq.ReasonPermanent, status: 404, cause: e404.Error(), attempts: 1}},
		{"exhausted", outcome{made: true, err: e503, attempt: 3, job: fresh},
			decision{action: actDeadLetter, reason: dlq.ReasonExhausted, status: 503, attempts: 3, cause: "gave up after 3 attempts: " + e503.Error()}},
		{"retry", outcome{made: true, err: e503, attempt: 2, job: fresh, now: now},
			decision{action: actRetry, delay: 2 * time.Second, status: 503, cause: e503.Error(), attempts: 2}},
		{"retry after what the service said", outcome{made: true, err: e429, attempt: 1, job: fresh, now: now},
			decision{action: actRetry, delay: 20 * time.Second, status: 429, cause: e429.Error(), attempts: 1}},
		{"max elapsed would pass", outcome{made: true, err: e503, attempt: 2, job: old, now: now},
			decision{action: actDeadLetter, reason: dlq.ReasonExhausted, status: 503, attempts: 2,
				cause: "gave up after 2 attempts (retry.max_elapsed 1m0s would pass before the next): " + e503.Error()}},
		{"deadline would pass", outcome{made: true, err: e503, attempt: 2, job: soon, now: now},
			decision{action: actDeadLetter, reason: dlq.ReasonExpired, status: 503, attempts: 2,
				cause: "deadline 2026-12-07T12:00:01Z would pass before the next attempt, after 2 attempts: " + e503.Error()}},
		// Held across a lapse of NATS: the job may be another worker's
		// by now. A result or a record still follows (each stored once,
		// and checked against what another worker stored); nothing else.
		{"lapsed before the attempt", outcome{lapsed: true, attempt: 2, job: fresh},
			decision{action: actLeave, cause: "NATS out of reach before the attempt", attempts: 1}},
		{"lapsed, completed", outcome{lapsed: true, made: true, resp: ok, attempt: 2, job: fresh},
			decision{action: actComplete, status: 200, attempts: 2}},
		{"lapsed, retry", outcome{lapsed: true, made: true, err: e503, attempt: 2, job: fresh, now: now},
			decision{action: actLeave, status: 503, cause: "NATS out of reach during the attempt; would have: retry", attempts: 2}},
		{"lapsed, deferred", outcome{lapsed: true, deferCause: causeBreakerOpen, attempt: 1},
			decision{action: actLeave, cause: "NATS out of reach before the attempt"}},
		{"lapsed, interrupted", outcome{lapsed: true, made: true, err: fmt.Errorf("%w: ctx", errInterrupted), attempt: 1},
			decision{action: actLeave, cause: "NATS out of reach during the attempt; would have: release", attempts: 1}},
		{"lapsed, exhausted", outcome{lapsed: true, made: true, err: e503, attempt: 3, job: fresh},
			decision{action: actDeadLetter, reason: dlq.ReasonExhausted, status: 503, attempts: 3, cause: "gave up after 3 attempts: " + e503.Error()}},
		{"lapsed, already completed", outcome{lapsed: true, completed: true, attempt: 2},
			decision{action: actAcknowledge}},
	}
	p := testPolicy()
	for _, r := range rows {
		if r.o.now.IsZero() {
			r.o.now = now
		}
		if got := decide(r.o, p); got != r.want {
			t.Errorf("%s:\n got %+v\nwant %+v", r.name, got, r.want)
		}
	}
}

// TestDecideMaxElapsedZeroIsNoBound: retry.max_elapsed 0 means no limit.
func TestDecideMaxElapsedZeroIsNoBound(t *testing.T) {
	t.Parallel()
	now := time.Now()
	p := testPolicy()
	p.maxElapsed = 0
	o := outcome{made: true, err: &invoke.Error{Status: 503}, attempt: 1, now: now,
		job: job.Job{StoreAt: now.Add(-1000 * time.Hour)}}
	if d := decide(o, p); d.action != actRetry {
		t.Fatalf("a 1000 h old job with max_elapsed 0: %s (%s)", d.action, d.cause)
	}
}

// TestBackoffNeverPassesMaxInterval: jitter included, the wait is at most
// retry.max_interval (seen before: 44s with a 30s maximum).
func TestBackoffNeverPassesMaxInterval(t *testing.T) {
	t.Parallel()
	r := RetryConfig{MaxAttempts: 20, InitialInterval: 500 * time.Millisecond, MaxInterval: 30 * time.Second, Multiplier: 2, Randomization: 0.5}
	highest := func() float64 { return 0.999999 }
	lowest := func() float64 { return 0 }
	for attempt := 1; attempt <= 20; attempt++ {
		if d := backoffFor(r, attempt, highest); d > r.MaxInterval {
			t.Fatalf("attempt %d waits %s, over max_interval %s", attempt, d, r.MaxInterval)
		}
	}
	// The schedule itself: 500ms, 1s, 2s ... with ±50%.
	if d := backoffFor(r, 1, lowest); d != 250*time.Millisecond {
		t.Fatalf("attempt 1 at the lowest jitter: %s, want 250ms", d)
	}
	if d := backoffFor(r, 3, lowest); d != time.Second {
		t.Fatalf("attempt 3 at the lowest jitter: %s, want 1s", d)
	}
	if d := backoffFor(r, 12, lowest); d != 15*time.Second {
		t.Fatalf("attempt 12 at the lowest jitter: %s, want 15s (half the capped 30s)", d)
	}
}

// TestDeferralsWaitLongerInARow: a job deferred again and again waits
// longer each time, up to its cause's cap, so an outage costs ever fewer
// deliveries.
func TestDeferralsWaitLongerInARow(t *testing.T) {
	t.Parallel()
	c := Config{ID: "t"}.withDefaults()
	mid := func() float64 { return 0.5 } // no jitter
	deferFor := c.deferFor(mid)
	var got []time.Duration
	for n := range 7 {
		got = append(got, deferFor(causeBreakerOpen, n, 0))
	}
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 4 * time.Minute, 4 * time.Minute, 4 * time.Minute}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("breaker_open waits %v, want %v", got, want)
	}
	if d := deferFor(causeFairShare, 10, 3*time.Second); d != 3*time.Second {
		t.Fatalf("fair_share waits %s, want its place in line, 3s, however many waits in a row", d)
	}
	if d := deferFor(causeRateLimit, 3, 1500*time.Millisecond); d != 1500*time.Millisecond {
		t.Fatalf("rate_limit waits %s, want the limiter's 1.5s", d)
	}
}
