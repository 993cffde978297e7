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
	paces    map[string]*pace
	swept    time.Time
}

// pace spreads the jobs of a function that waits for a slot over the time
// its slots will take to free up, so that each comes back about when a
// slot is free for it: a backlog of slow calls costs about one wait per
// job, not one per job per second, and stays roughly in order.
type pace struct {
	avg     time.Duration // moving average of its invocations' durations
	started time.Time     // when its in-flight count last left zero
	next    time.Time     // when the last job sent waiting is due
}

// paceIdle is how long a function's pace is kept once nothing of it is in
// flight or due.
const paceIdle = time.Minute

// dueIn says how long the next job of fn to wait should wait, given that
// limit of its invocations run at a time, and books that place. Called
// with l.mu held.
func (l *functionLimits) dueIn(fn string, limit int, now time.Time) time.Duration {
	p := l.paces[fn]
	if p == nil {
		p = &pace{}
		l.paces[fn] = p
	}
	d := p.avg
	if d == 0 {
		// No call has finished yet: the running ones have taken at
		// least this long.
		d = max(100*time.Millisecond, now.Sub(p.started))
	}
	step := d / time.Duration(max(1, limit))
	if p.next.Before(now) {
		p.next = now
	}
	// A wait is capped (shareDeferCap): a line booked further ahead than
	// that after an overload would keep later jobs waiting for nothing.
	if limit := now.Add(shareDeferCap); p.next.After(limit) {
		p.next = limit
	}
	p.next = p.next.Add(step)
	return p.next.Sub(now)
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
	return &functionLimits{cfg: cfg, inFlight: map[string]int{}, limiters: map[string]*limiter{}, paces: map[string]*pace{}}
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

// acquire takes a place for one invocation of fn. It returns release (to
// call with the invocation's duration, 0 if none was made), or the cause
// (fair_share, function_limit, rate_limit) and how long the job should
// wait. A wait up to maxRateWait is returned with release: the caller
// waits, then invokes.
func (l *functionLimits) acquire(fn string, now time.Time) (release func(took time.Duration), wait time.Duration, cause string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.maxInFlight > 0 && l.inFlight[fn] >= l.cfg.maxInFlight {
		return nil, l.dueIn(fn, l.cfg.maxInFlight, now), causeFunctionLimit
	}
	if l.cfg.fairShare {
		if share := l.share(fn); l.inFlight[fn] >= share {
			return nil, l.dueIn(fn, share, now), causeFairShare
		}
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
	}
	if l.inFlight[fn] == 0 {
		if p := l.paces[fn]; p != nil {
			p.started = now
		} else if l.tracksPace() {
			l.paces[fn] = &pace{started: now}
		}
	}
	l.inFlight[fn]++
	l.sweep(now)
	return func(took time.Duration) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if p := l.paces[fn]; p != nil && took > 0 {
			if p.avg == 0 {
				p.avg = took
			} else {
				p.avg = (7*p.avg + took) / 8
			}
		}
		if l.inFlight[fn]--; l.inFlight[fn] <= 0 {
			delete(l.inFlight, fn)
		}
	}, wait, ""
}

// tracksPace: paces are only needed when a function can be made to wait
// for a slot.
func (l *functionLimits) tracksPace() bool { return l.cfg.fairShare || l.cfg.maxInFlight > 0 }

// sweep drops limiters and paces unused for a minute, at most once a
// minute, so that a stream of distinct function ids cannot grow the maps
// without bound. The in-flight map needs none: entries go at zero.
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
	for fn, p := range l.paces {
		last := p.next
		if p.started.After(last) {
			last = p.started
		}
		if l.inFlight[fn] == 0 && now.Sub(last) > paceIdle {
			delete(l.paces, fn)
		}
	}
}

// size is how many functions the limits track (for tests).
func (l *functionLimits) size() (inFlight, limiters, paces int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.inFlight), len(l.limiters), len(l.paces)
}
