package worker

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// functionLimits shares this process's slots among functions: a fair
// share when several functions have jobs in flight, a configured cap per
// function, and a rate per function. A job over a limit is not held (it
// would take a slot from other functions' jobs): it waits, uncharged, as
// any deferred job (see wait.go).
//
// The fair share keeps Reserved slots that no single function may take, so
// that a slow function with a backlog can never occupy every slot: the
// next job of another function always finds one. With n functions in
// flight, each may hold (Concurrency-Reserved)/n.
type functionLimits struct {
	cfg limitsConfig

	mu       sync.Mutex
	inFlight map[string]int
	limiters map[string]*limiter
	swept    time.Time
}

type limitsConfig struct {
	concurrency int
	fairShare   bool
	reserved    int
	maxInFlight int     // per function, 0: none
	perSecond   float64 // per function, 0: none
}

type limiter struct {
	*rate.Limiter
	used time.Time
}

func newFunctionLimits(cfg limitsConfig) *functionLimits {
	return &functionLimits{cfg: cfg, inFlight: map[string]int{}, limiters: map[string]*limiter{}}
}

// maxRateWait is the longest a job waits in its slot for the function's
// rate limit; a longer wait is a deferral.
const maxRateWait = 250 * time.Millisecond

// limiterIdle is how long an unused rate limiter is kept. After
// burst/rate seconds a limiter is full again, the same as a new one, so
// dropping it changes nothing; 1 minute covers any sensible rate.
const limiterIdle = time.Minute

// share is the most slots fn may hold now.
func (l *functionLimits) share(fn string) int {
	usable := l.cfg.concurrency - l.cfg.reserved
	n := len(l.inFlight)
	if _, ok := l.inFlight[fn]; !ok {
		n++
	}
	return max(1, usable/n)
}

// acquire takes a place for one invocation of fn. It returns release, or
// the cause (fair_share, function_limit, rate_limit) and how long the
// cause expects the wait to be (0: it does not know). A wait up to
// maxRateWait is returned with release: the caller waits, then invokes.
func (l *functionLimits) acquire(fn string, now time.Time) (release func(), wait time.Duration, cause string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.maxInFlight > 0 && l.inFlight[fn] >= l.cfg.maxInFlight {
		return nil, 0, causeFunctionLimit
	}
	if l.cfg.fairShare && l.inFlight[fn] >= l.share(fn) {
		return nil, 0, causeFairShare
	}
	if l.cfg.perSecond > 0 {
		lim, ok := l.limiters[fn]
		if !ok {
			burst := max(1, int(l.cfg.perSecond))
			lim = &limiter{Limiter: rate.NewLimiter(rate.Limit(l.cfg.perSecond), burst)}
			l.limiters[fn] = lim
		}
		lim.used = now
		r := lim.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			if d > maxRateWait {
				r.CancelAt(now)
				return nil, d, causeRateLimit
			}
			wait = d
		}
		l.sweep(now)
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

// sweep drops limiters unused for limiterIdle, at most once per
// limiterIdle, so that a stream of distinct function ids cannot grow the
// map without bound. The in-flight map needs none: entries go at zero.
func (l *functionLimits) sweep(now time.Time) {
	if now.Sub(l.swept) < limiterIdle {
		return
	}
	l.swept = now
	for fn, lim := range l.limiters {
		if now.Sub(lim.used) > limiterIdle {
			delete(l.limiters, fn)
		}
	}
}

// size is how many functions the limits track (for tests).
func (l *functionLimits) size() (inFlight, limiters int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.inFlight), len(l.limiters)
}
