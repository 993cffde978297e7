package worker

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// functionLimits caps each function's share of this process: invocations
// in flight and invocations per second. A job over a limit is not held (it
// would take a slot from other functions' jobs): it is given back to
// JetStream with a short delay, uncharged.
type functionLimits struct {
	maxInFlight int
	perSecond   float64

	mu       sync.Mutex
	inFlight map[string]int
	limiters map[string]*rate.Limiter
}

func newFunctionLimits(maxInFlight int, perSecond float64) *functionLimits {
	return &functionLimits{maxInFlight: maxInFlight, perSecond: perSecond, inFlight: map[string]int{}, limiters: map[string]*rate.Limiter{}}
}

// maxRateWait is the longest a job waits in its slot for the function's
// rate limit; a longer wait is handed to JetStream instead.
const maxRateWait = 250 * time.Millisecond

// acquire takes a place for one invocation of fn. It returns release, or
// the cause ("function_limit", "rate_limit") and how long to wait before
// trying again.
func (l *functionLimits) acquire(fn string, now time.Time) (release func(), wait time.Duration, cause string) {
	if l.maxInFlight <= 0 && l.perSecond <= 0 {
		return func() {}, 0, ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxInFlight > 0 && l.inFlight[fn] >= l.maxInFlight {
		return nil, 100 * time.Millisecond, "function_limit"
	}
	if l.perSecond > 0 {
		lim, ok := l.limiters[fn]
		if !ok {
			burst := max(1, int(l.perSecond))
			lim = rate.NewLimiter(rate.Limit(l.perSecond), burst)
			l.limiters[fn] = lim
		}
		r := lim.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			if d > maxRateWait {
				r.CancelAt(now)
				return nil, d, "rate_limit"
			}
			wait = d
		}
	}
	l.inFlight[fn]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.inFlight[fn]--; l.inFlight[fn] <= 0 {
			delete(l.inFlight, fn)
		}
	}, wait, ""
}
