package gcfloor

import (
	"context"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name        string
		floor, live int64
		base, want  int
	}{
		{"off", 0, mib, 100, 100},
		{"GOGC=off", 32 * mib, mib, -1, -1},
		// A tiny live heap: the runtime's 4 MiB × GOGC/100 term reaches
		// the floor first.
		{"tiny heap", 32 * mib, mib, 100, 800},
		{"no reading yet", 32 * mib, 0, 100, 800},
		// 10 MiB live: 10 × (1 + 2.2) = 32.
		{"small heap", 32 * mib, 10 * mib, 100, 220},
		{"large heap", 32 * mib, 64 * mib, 100, 100},
		{"base above the floor's need", 32 * mib, 10 * mib, 300, 300},
		{"bounded", 1 << 40, mib, 100, maxPercent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percent(tc.floor, tc.live, tc.base); got != tc.want {
				t.Errorf("Percent(%d, %d, %d) = %d, want %d", tc.floor, tc.live, tc.base, got, tc.want)
			}
		})
	}
}

// Run raises GOGC for this test's small heap and restores it when done.
// Not parallel: GOGC is process-wide.
func TestRunRaisesAndRestoresGOGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, Config{Floor: 1 << 30, Interval: 10 * time.Millisecond}) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p := GOGC(); p > 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d", GOGC())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GOGC %d after Run returned, want 100 restored", p)
	}
}

// With GOGC=off the operator decided: Run returns at once, changing nothing.
func TestRunLeavesGOGCOffAlone(t *testing.T) {
	before := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	done := make(chan struct{})
	go func() { defer close(done); Run(context.Background(), Config{Floor: 1 << 30}) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if p := GOGC(); p != -1 {
		t.Errorf("GOGC %d, want off", p)
	}
}
