package worker

import (
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/sony/gobreaker/v2"

	"github.com/invoke-worker/worker/invoke"
)

// breakers holds one circuit breaker per key (function or endpoint host),
// created on first use. Ours is per function on purpose: the OCI SDK's
// single breaker per client lets one failing function stop them all.
//
// The set is bounded: a closed breaker unused for a whole Interval is
// dropped (its counts would have been reset anyway), and past maxBreakers
// closed ones go first; so a publisher sending random function ids grows
// neither memory nor the breaker metrics without bound.
type breakers struct {
	cfg     BreakerConfig
	log     zerolog.Logger
	metrics *metrics
	now     func() time.Time

	mu    sync.Mutex
	m     map[string]*breaker
	swept time.Time
}

type breaker struct {
	*gobreaker.TwoStepCircuitBreaker[struct{}]
	used time.Time
}

// maxBreakers bounds how many breakers one process keeps.
const maxBreakers = 10000

func newBreakers(cfg BreakerConfig, log zerolog.Logger, m *metrics, now func() time.Time) *breakers {
	return &breakers{cfg: cfg, log: log, metrics: m, now: now, m: map[string]*breaker{}}
}

// key is the breaker a function's calls go through, "" when breakers are
// off.
func (b *breakers) key(functionID string) string {
	switch b.cfg.Mode {
	case BreakerOff:
		return ""
	case BreakerPerHost:
		return b.cfg.HostOf(functionID)
	}
	return functionID
}

func (b *breakers) get(key string) *breaker {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if cb, ok := b.m[key]; ok {
		cb.used = now
		return cb
	}
	b.sweep(now)
	cfg := b.cfg
	cb := &breaker{used: now, TwoStepCircuitBreaker: gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        key,
		MaxRequests: uint32(cfg.HalfOpenRequests),
		Interval:    cfg.Interval,
		Timeout:     cfg.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.Requests >= uint32(cfg.MinRequests) && float64(c.TotalFailures)/float64(c.Requests) >= cfg.FailureRatio
		},
		// Only failures that say the service is in trouble count; a 404
		// or a bad request is the job's problem, not the function's.
		IsSuccessful: func(err error) bool {
			var ie *invoke.Error
			return err == nil || !errors.As(err, &ie) || !ie.Unhealthy()
		},
		// An attempt cut short by our own shutdown says nothing.
		IsExcluded: func(err error) bool { return errors.Is(err, errInterrupted) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			ev := b.log.Warn()
			if to == gobreaker.StateClosed {
				ev = b.log.Info()
			}
			ev.Str("breaker", name).Str("from", from.String()).Str("to", to.String()).Msg("circuit breaker state changed")
			b.metrics.breakerState(name, to)
			b.metrics.breakerTransition(to)
		},
	})}
	b.m[key] = cb
	b.metrics.breakerState(key, gobreaker.StateClosed)
	return cb
}

// sweep drops idle closed breakers, at most once per Interval, or at once
// when the set is full. Called with b.mu held.
func (b *breakers) sweep(now time.Time) {
	full := len(b.m) >= maxBreakers
	if !full && now.Sub(b.swept) < b.cfg.Interval {
		return
	}
	b.swept = now
	idle := b.cfg.Interval
	if full {
		idle = 0
	}
	for key, cb := range b.m {
		if cb.State() == gobreaker.StateClosed && now.Sub(cb.used) >= idle {
			delete(b.m, key)
			b.metrics.breakerGone(key)
		}
	}
}

// allow asks the breaker of functionID for permission to make an attempt.
// It returns done (to report the attempt's error), the state the attempt
// was made in, and ok=false when the breaker refuses.
func (b *breakers) allow(functionID string) (done func(error), state string, ok bool) {
	key := b.key(functionID)
	if key == "" {
		return func(error) {}, "", true
	}
	cb := b.get(key)
	state = cb.State().String()
	done, err := cb.Allow()
	if err != nil {
		return nil, state, false
	}
	return done, state, true
}

// open reports whether functionID's breaker is open now (a look that
// reserves nothing: allow still decides).
func (b *breakers) open(functionID string) bool {
	key := b.key(functionID)
	if key == "" {
		return false
	}
	b.mu.Lock()
	cb, ok := b.m[key]
	b.mu.Unlock()
	return ok && cb.State() == gobreaker.StateOpen
}

// states returns every breaker's state by key: closed, half-open or open.
func (b *breakers) states() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]string, len(b.m))
	for k, cb := range b.m {
		out[k] = cb.State().String()
	}
	return out
}
