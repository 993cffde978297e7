// Package gcfloor keeps a process whose live heap is small from collecting
// garbage dozens of times a second. Go sizes the heap a process may reach
// before its next collection from the live heap (GOGC) with a floor of only
// 4 MiB; a worker that allocates a few KiB per job but keeps about 1 MiB
// live then collects every few tens of milliseconds under load, and every
// collection stops the world. Floor raises GOGC while the live heap is
// small, so that the heap may grow to at least Floor bytes between
// collections, and gives GOGC back its base value once the live heap is
// large enough to need no help: large heaps cost no extra memory.
//
// A GOMEMLIMIT still bounds the heap: the runtime collects early to stay
// under it whatever GOGC is.
package gcfloor

import (
	"context"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Defaults of Config.
const (
	IntervalDefault = time.Second
	// maxPercent bounds the GOGC Floor sets, whatever the live heap.
	maxPercent = 10000
	// minHeap is the runtime's floor at GOGC=100 (it scales with GOGC).
	minHeap = 4 << 20
)

// Config configures Run.
type Config struct {
	// Floor is the heap size, in bytes, the process may reach between
	// collections at least. 0 turns the floor off. Defaults to 0.
	Floor int64
	// Interval is how often the live heap is read. Defaults to 1s.
	Interval time.Duration
}

// Run adjusts GOGC every Interval until ctx is done, then restores the
// value it found (GOGC from the environment, or 100). With GOGC=off, or
// Floor 0, it does nothing. Run only one per process: GOGC is
// process-wide.
func Run(ctx context.Context, cfg Config) {
	if cfg.Floor <= 0 {
		return
	}
	if cfg.Interval <= 0 {
		cfg.Interval = IntervalDefault
	}
	base := GOGC()
	if base < 0 {
		return // GOGC=off: the operator decided
	}
	defer debug.SetGCPercent(base)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := base
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if p := Percent(cfg.Floor, int64(sample[0].Value.Uint64()), base); p != current && changed(current, p) {
				debug.SetGCPercent(p)
				current = p
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Percent is the GOGC that lets a process with live bytes of live heap grow
// to at least floor before collecting, never below base. The runtime's
// goal is about max(live × (1 + GOGC/100), 4 MiB × GOGC/100).
func Percent(floor, live int64, base int) int {
	if floor <= 0 || base < 0 {
		return base
	}
	// The smaller of the two GOGCs that reach the floor through either
	// term of the goal.
	need := float64(floor) * 100 / minHeap
	if live > 0 {
		need = math.Min(need, (float64(floor)-float64(live))*100/float64(live))
	}
	p := int(math.Ceil(need))
	return min(max(p, base), maxPercent)
}

// changed reports whether p differs from current enough to be worth
// setting: live heaps wander, and every change re-paces the collector.
func changed(current, p int) bool {
	return math.Abs(float64(p-current)) > 0.1*float64(current)
}

// GOGC reads the current GOGC without changing it; -1 means off.
func GOGC() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		// Not reported: read it by setting it back at once.
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}
	return int(int64(s[0].Value.Uint64())) // off is reported as -1 in two's complement
}
