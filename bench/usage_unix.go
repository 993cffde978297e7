//go:build unix

package bench

import (
	"os"
	"runtime"
	"syscall"
	"time"
)

func processCPUAndPeak() (time.Duration, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	rss := int64(ru.Maxrss)
	if runtime.GOOS != "darwin" {
		rss *= 1024 // kilobytes everywhere but macOS
	}
	return cpu, rss
}

// resetPeakRSS restarts the kernel's high-water mark of the resident set
// (Linux 4.0+), which getrusage reports as Maxrss.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}
