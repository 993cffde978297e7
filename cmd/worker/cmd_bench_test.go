package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/invoke-worker/worker/bench"
)

// TestBenchRunsTheServiceAndReports runs `worker bench` end to end: the
// production service, signed through the api_key path and unsigned.
func TestBenchRunsTheServiceAndReports(t *testing.T) {
	t.Run("unsigned json", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "bench", "--jobs", "100", "--concurrency", "8", "--unsigned", "--json")
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		var rep bench.Report
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		if rep.Worker.Jobs != 100 || rep.Settings.Concurrency != 8 || rep.Settings.Signed || rep.Worker.EndToEnd == nil {
			t.Errorf("report %+v", rep)
		}
	})
	t.Run("signed table", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "bench", "--jobs", "60", "--concurrency", "8", "--body-size", "100", "--response-size", "2KiB")
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		for _, want := range []string{"full worker (signed)", "every signature verified", "response 2048 B", "body 100 B"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, stdout)
			}
		}
	})
}

func TestBenchBadFlagsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--jobs", "0"},
		{"bench", "--body-size", "lots"},
		{"bench", "--response-size", "-3"},
		{"bench", "--rate", "-1"},
	} {
		if code, _, stderr := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, exitUsage, stderr)
		}
	}
}
