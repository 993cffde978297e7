package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/queue"
)

// syncBuffer is a bytes.Buffer safe for the command's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestDevThenEnqueueWaitPrintsTheSignedEchoAndDLQReason is the README's
// first steps: `worker dev` in one place, `worker enqueue --wait` in
// another, the emulator verifying signatures.
func TestDevThenEnqueueWaitPrintsTheSignedEchoAndDLQReason(t *testing.T) {
	t.Setenv("WORKER_LOG_LEVEL", "warn")
	natsAddr := freeAddr(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"dev",
			"--set", "nats.embedded.listen=" + natsAddr,
			"--set", "nats.embedded.store_dir=" + filepath.Join(dir, "nats"),
			"--set", "emulator.listen=127.0.0.1:0",
			"--set", "http.listen=",
		}, &out, &errOut)
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("dev exited %d\n%s", code, errOut.String())
			}
		case <-time.After(testenv.Wait):
			t.Error("dev did not stop")
		}
	}()
	// The banner is written in pieces: wait for its last line.
	testenv.Eventually(t, "dev to be ready", func() bool { return strings.Contains(out.String(), "--body oops --wait") })
	banner := out.String()
	for _, want := range []string{"enqueue --function ocid1.fnfunc.oc1.dev.aaaaaaaaecho --body hello --wait", "broken", "flaky", "slow"} {
		if !strings.Contains(banner, want) {
			t.Fatalf("banner lacks %q:\n%s", want, banner)
		}
	}

	code, stdout, stderr := runCLI(t, "enqueue", "--nats", "nats://"+natsAddr, "--function", "ocid1.fnfunc.oc1.dev.aaaaaaaaecho", "--body", "hello", "--wait")
	if code != 0 || stdout != "hello" {
		t.Fatalf("enqueue --wait: code %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	code, _, stderr = runCLI(t, "enqueue", "--nats", "nats://"+natsAddr, "--function", "ocid1.fnfunc.oc1.dev.aaaaaaaamissing", "--body", "oops", "--wait=30s")
	if code != 1 || !strings.Contains(stderr, "dead-lettered: permanent") || !strings.Contains(stderr, "404") {
		t.Fatalf("enqueue to a missing function: code %d, stderr %s", code, stderr)
	}
	// A function that is not one of dev's does not exist: the emulator
	// answers its GetFunction with 404, and nothing reaches for OCI.
	code, _, stderr = runCLI(t, "enqueue", "--nats", "nats://"+natsAddr, "--function", "ocid1.fnfunc.oc1.phx.aaaaaaaanotadevfunction", "--body", "x", "--wait=30s")
	if code != 1 || !strings.Contains(stderr, "dead-lettered: permanent (status 404)") {
		t.Fatalf("enqueue to a function dev does not serve: code %d, stderr %s", code, stderr)
	}
	if lookups := emulatorStats(t, banner).Lookups; lookups != 1 {
		t.Fatalf("the emulator answered %d GetFunction, want 1", lookups)
	}
	// Without --wait it prints the job id only.
	code, stdout, _ = runCLI(t, "enqueue", "--nats", "nats://"+natsAddr, "--function", "ocid1.fnfunc.oc1.dev.aaaaaaaaecho", "--id", "my-job-1", "--body", "x")
	if code != 0 || stdout != "my-job-1\n" {
		t.Fatalf("enqueue: code %d, stdout %q", code, stdout)
	}
}

// TestExitCodes: 2 for bad usage or configuration (naming the flag or
// key), 1 for a failed operation.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"unknown flag", []string{"run", "--bogus"}, 2, "--bogus"},
		{"unknown command", []string{"frobnicate"}, 2, "frobnicate"},
		{"bad config value", []string{"run", "--set", "worker.concurrency=0"}, 2, "worker.concurrency"},
		{"unknown config key", []string{"run", "--set", "worker.concurency=4"}, 2, "worker.concurency"},
		{"missing config file", []string{"run", "--config", "/nonexistent/worker.yaml"}, 2, "/nonexistent/worker.yaml"},
		{"enqueue without function", []string{"enqueue", "--body", "x"}, 2, "--function"},
		{"enqueue with a malformed function", []string{"enqueue", "--function", "ocid1.bucket.oc1..x", "--body", "x"}, 2, "function"},
		{"enqueue with a bad wait", []string{"enqueue", "--function", "ocid1.fnfunc.oc1.phx.aaaa", "--wait=soon"}, 2, "--wait"},
		{"enqueue with no server", []string{"enqueue", "--nats", "nats://127.0.0.1:1", "--function", "ocid1.fnfunc.oc1.phx.aaaa", "--body", "x"}, 1, "nats"},
		{"version", []string{"version"}, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, c.args...)
			if code != c.code {
				t.Fatalf("exit code %d, want %d; stderr %s", code, c.code, stderr)
			}
			if !strings.Contains(stderr+stdout, c.contains) {
				t.Fatalf("output does not name %q: %s%s", c.contains, stdout, stderr)
			}
		})
	}
}

// emulatorStats reads the counters of the emulator the dev banner names.
func emulatorStats(t *testing.T, banner string) emulator.Stats {
	t.Helper()
	m := regexp.MustCompile(`emulator\s+(http://127\.0\.0\.1:\d+)`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("no loopback emulator URL in the banner:\n%s", banner)
	}
	resp, err := http.Get(m[1] + "/emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st emulator.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestRunWithMoreReplicasThanServersExits2: streams.replicas above what the
// servers can place is a configuration error that names the key, not a
// bare JetStream error.
func TestRunWithMoreReplicasThanServersExits2(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{})
	creds := testenv.Credentials(t)
	code, stdout, stderr := runCLI(t, "run", "--nats", n.Server.ClientURL(),
		"--set", "streams.replicas=3",
		"--set", "invoke.oci.config_file="+creds.ConfigFile,
		"--set", "http.listen=",
	)
	if code != exitUsage {
		t.Fatalf("exit code %d, want %d; stderr %s", code, exitUsage, stderr)
	}
	for _, want := range []string{"streams.replicas", "asked for 3", "more replicas than the JetStream servers can place"} {
		if !strings.Contains(stderr, want) {
			t.Fatalf("stderr lacks %q: %s%s", want, stdout, stderr)
		}
	}
}
