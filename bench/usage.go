package bench

import (
	"runtime"
	"runtime/debug"
	"time"
)

// usage is a snapshot of what the process has spent so far.
type usage struct {
	at      time.Time
	cpu     time.Duration // user + system
	mallocs uint64
	maxRSS  int64 // bytes; the peak since the last resetPeakRSS
}

func sampleUsage() usage {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	u := usage{at: time.Now(), mallocs: ms.Mallocs}
	u.cpu, u.maxRSS = processCPUAndPeak()
	return u
}

// settle returns the previous measurement's memory to the OS and restarts
// the peak RSS, so one measurement's garbage and peak do not count in the
// next. It reports whether the peak could be restarted.
func settle() bool {
	runtime.GC()
	debug.FreeOSMemory()
	return resetPeakRSS()
}
