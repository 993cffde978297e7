package emulator_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if any goroutine still runs emulator code after
// every test has closed its emulator: Close must leave nothing behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leak := emulatorGoroutines(); leak != "" {
			fmt.Fprintln(os.Stderr, "leaked emulator goroutines:\n"+leak)
			code = 1
		}
	}
	os.Exit(code)
}

func emulatorGoroutines() string {
	deadline := time.Now().Add(2 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "invoke/emulator.(*Emulator)") && !strings.Contains(g, "emulator_test.TestMain") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
