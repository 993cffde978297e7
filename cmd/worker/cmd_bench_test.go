package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/invoke-worker/worker/bench"
)

// TestBenchRunsTheServiceAndReports runs `worker bench` end to end: the
// production service, signed through the api_key path and unsigned, in
// consumer processes of its own (the real binary) and in-process.
func TestBenchRunsTheServiceAndReports(t *testing.T) {
	t.Run("unsigned json, consumer processes", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, workerBin, "bench", "--jobs", "100", "--concurrency", "8", "--unsigned", "--ceilings", "--sign-duration", "50ms", "--json")
		cmd.Env = cleanEnv()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		var rep bench.Report
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("%v\n%s", err, stdout.String())
		}
		if rep.Worker.Jobs != 100 || rep.Settings.Concurrency != 8 || rep.Settings.Signed || rep.Worker.EndToEnd == nil || !rep.Settings.Isolated {
			t.Errorf("report %+v", rep)
		}
		if rep.Ceilings == nil || rep.Ceilings.BareLoop.Jobs != 100 || rep.Ceilings.NATSLoop.Jobs != 100 {
			t.Errorf("ceilings %+v", rep.Ceilings)
		}
	})
	t.Run("signed table, in-process", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "bench", "--in-process", "--jobs", "60", "--concurrency", "8", "--body-size", "100", "--response-size", "2KiB")
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		for _, want := range []string{"full worker (signed)", "every signature verified", "response 2048 B", "body 100 B", "everything in one process"} {
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
