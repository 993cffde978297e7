//go:build !unix

package bench

import "time"

func processCPUAndPeak() (time.Duration, int64) { return 0, 0 }

func resetPeakRSS() bool { return false }
