package worker

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// backoffFor returns the wait after the given failed attempt: exponential
// from InitialInterval by Multiplier, with jitter of ±Randomization, and
// never more than MaxInterval, jitter included (a maximum is a maximum).
// backoff/v4 computes the schedule without jitter; the jitter comes from
// rnd (uniform in [0,1)) so that tests can fix it. The attempt number
// comes from JetStream and the job's headers, so the schedule survives
// restarts without state here.
func backoffFor(r RetryConfig, attempt int, rnd func() float64) time.Duration {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     r.InitialInterval,
		RandomizationFactor: 0,
		Multiplier:          r.Multiplier,
		MaxInterval:         r.MaxInterval,
		MaxElapsedTime:      0, // the budget is enforced in decide, from the job's age
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	d := b.NextBackOff()
	for i := 1; i < attempt && d < r.MaxInterval; i++ {
		d = b.NextBackOff()
	}
	return capJitter(d, r.Randomization, r.MaxInterval, rnd)
}

// capJitter spreads d over ±factor and caps the result at limit (0: no
// cap), so that jobs that failed together do not return in a herd.
func capJitter(d time.Duration, factor float64, limit time.Duration, rnd func() float64) time.Duration {
	if d <= 0 {
		return 0
	}
	d += time.Duration((rnd()*2 - 1) * factor * float64(d))
	if limit > 0 && d > limit {
		d = limit
	}
	return max(d, 0)
}

// Deferral schedule: a job that could not be attempted waits for its
// cause's hint (or base), doubled for each wait in a row, up to the cap,
// ±20%. A function that stays down then costs fewer and fewer deliveries
// of each of its jobs, instead of cycling its whole backlog through the
// fleet every breaker period. A job waiting for a slot of its function
// waits for its place in the function's line instead (see pace).
const (
	deferJitter        = 0.2
	deferMaxDoublings  = 5
	shareDeferCap      = ShareWaitCap
	breakerDeferCapMul = BreakerWaitCapPeriods
)

// The longest waits without an attempt, jitter included (worker doctor
// compares them with the jobs stream's max age).
const (
	// ShareWaitCap bounds a wait for a function's share of the slots
	// (fair_share, function_limit).
	ShareWaitCap = 15 * time.Minute
	// BreakerWaitCapPeriods: a job held back by an open breaker waits at
	// most this many breaker.open_timeout periods.
	BreakerWaitCapPeriods = 8
)

// deferFor is policy.deferFor for c.
func (c Config) deferFor(rnd func() float64) func(cause string, defers int, hint time.Duration) time.Duration {
	return func(cause string, defers int, hint time.Duration) time.Duration {
		base, limit := hint, time.Duration(0)
		switch cause {
		case causeBreakerOpen:
			base = max(hint, c.Breaker.OpenTimeout)
			limit = breakerDeferCapMul * c.Breaker.OpenTimeout
		case causeFairShare, causeFunctionLimit:
			// The hint is the job's place in the function's line for a
			// slot (see pace): no doubling, it already grows with the line.
			return capJitter(min(hint, shareDeferCap), deferJitter, shareDeferCap, rnd)
		case causeBodyUnavailable:
			base, limit = c.Retry.InitialInterval, c.Retry.MaxInterval
		case causeRateLimit:
			// The limiter knows exactly when a place frees up.
			return capJitter(hint, deferJitter, 0, rnd)
		}
		for range min(defers, deferMaxDoublings) {
			base *= 2
		}
		if limit > 0 {
			base = min(base, limit)
		}
		return capJitter(base, deferJitter, limit, rnd)
	}
}

// Why a job waits without an attempt (Invoke-Wait-Cause, and the cause
// label of invoke_worker_waits_total). A retry's wait is causeRetry.
const (
	causeRetry           = "retry"
	causeBreakerOpen     = "breaker_open"
	causeFairShare       = "fair_share"
	causeFunctionLimit   = "function_limit"
	causeRateLimit       = "rate_limit"
	causeBodyUnavailable = "body_unavailable"
	causeShutdown        = "shutdown"
)
