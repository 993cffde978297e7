package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/invoke-worker/worker/client"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
)

const (
	cliEcho    = "ocid1.fnfunc.oc1.phx.aaaaaaaaecho"
	cliMissing = "ocid1.fnfunc.oc1.phx.aaaaaaaamissing"
)

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEnqueueJSONLinesRejectsBadLinesByNumber: good lines are enqueued
// (ids on stdout, in line order), bad ones are named by line number on
// stderr and make the command exit 1.
func TestEnqueueJSONLinesRejectsBadLinesByNumber(t *testing.T) {
	t.Parallel()
	st := testenv.StartStack(t, testenv.StackConfig{})
	file := writeTemp(t, "jobs.jsonl", []byte(`{"function": "`+cliEcho+`", "id": "text-1", "body": "hello"}
{"id": "json-2", "body": {"n": 2}, "headers": {"X-Trace": "t2"}}
{"id": "broken-3", "body": "unterminated
{"id": "b64-4", "body_base64": "AAEC/w==", "subject": "invoke.jobs.files", "intent": "httprequest"}

{"id": "bad id 6"}
{"id": "both-7", "body": "x", "body_base64": "eA=="}
{"id": "unknown-8", "bdy": "typo"}
{"id": "nobody-9"}
`))
	code, stdout, stderr := runCLI(t, "enqueue", "--nats", st.Server.ClientURL(), "--function", cliEcho, "--file", file)
	if code != exitFailed {
		t.Fatalf("exit code %d, want 1\n%s", code, stderr)
	}
	if stdout != "text-1\njson-2\nb64-4\nnobody-9\n" {
		t.Fatalf("stdout %q", stdout)
	}
	for _, want := range []string{"lines rejected: 3, 6, 7, 8", "line 3:", "line 6:", "line 7: body and body_base64", `line 8:`, "bdy", "enqueued 4 jobs"} {
		if !strings.Contains(stderr, want) {
			t.Fatalf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	c, err := client.New(ctx, st.Conn, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"text-1": "hello", "json-2": `{"n": 2}`, "b64-4": "\x00\x01\x02\xff", "nobody-9": ""}
	err = c.AwaitAll(ctx, []client.JobID{"text-1", "json-2", "b64-4", "nobody-9"}, func(o client.Outcome) {
		if o.DeadLettered || string(o.Body) != want[o.JobID] {
			t.Errorf("%s: %+v", o.JobID, o)
		}
		if o.JobID == "json-2" && o.Header.Get("Content-Type") != "application/json" {
			t.Errorf("a JSON body was not sent as JSON: %v", o.Header)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEnqueueJSONLinesWaitReportsCounts: --wait prints one JSON line per
// outcome and how many succeeded and failed, and exits 1 when any failed.
func TestEnqueueJSONLinesWaitReportsCounts(t *testing.T) {
	t.Parallel()
	st := testenv.StartStack(t, testenv.StackConfig{Functions: map[string]emulator.Behavior{cliMissing: {Status: 404}}})
	var lines bytes.Buffer
	for i := range 5 {
		fn := cliEcho
		if i == 3 {
			fn = cliMissing
		}
		_ = json.NewEncoder(&lines).Encode(map[string]any{"function": fn, "body": i})
	}
	file := writeTemp(t, "jobs.jsonl", lines.Bytes())
	code, stdout, stderr := runCLI(t, "enqueue", "--nats", st.Server.ClientURL(), "--file", file, "--wait=1m")
	if code != exitFailed || !strings.Contains(stderr, "4 succeeded, 1 failed (dead-lettered: permanent 1)") {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
	}
	outcomes := map[int]map[string]any{}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var o map[string]any
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("stdout line %q: %v", l, err)
		}
		outcomes[int(o["line"].(float64))] = o
	}
	if len(outcomes) != 5 {
		t.Fatalf("%d outcome lines:\n%s", len(outcomes), stdout)
	}
	if o := outcomes[4]; o["outcome"] != "dead-lettered" || o["reason"] != "permanent" || o["status"] != 404.0 {
		t.Fatalf("line 4: %v", o)
	}
	if o := outcomes[1]; o["outcome"] != "completed" || o["status"] != 200.0 || o["id"] == "" {
		t.Fatalf("line 1: %v", o)
	}

	// All succeeding: exit 0.
	file = writeTemp(t, "ok.jsonl", []byte(`{"body": "a"}`+"\n"+`{"body": "b"}`+"\n"))
	code, _, stderr = runCLI(t, "enqueue", "--nats", st.Server.ClientURL(), "--function", cliEcho, "--file", file, "--wait")
	if code != 0 || !strings.Contains(stderr, "2 succeeded, 0 failed") {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
	}
	// --id makes no sense for a file of jobs.
	if code, _, stderr = runCLI(t, "enqueue", "--nats", st.Server.ClientURL(), "--id", "x", "--file", file); code != exitUsage || !strings.Contains(stderr, "--id") {
		t.Fatalf("--id with a .jsonl file: exit %d, %s", code, stderr)
	}
}

// TestEnqueueWaitReturnsALargeResultWhole: through a server with a 1 MiB
// max payload, a 5 MiB body goes out through the object store and its
// echo comes back whole on stdout.
func TestEnqueueWaitReturnsALargeResultWhole(t *testing.T) {
	t.Parallel()
	st := testenv.StartStack(t, testenv.StackConfig{MaxPayload: 1 << 20})
	body := make([]byte, 5<<20)
	_, _ = rand.Read(body)
	file := writeTemp(t, "body.bin", body)
	code, stdout, stderr := runCLI(t, "enqueue", "--nats", st.Server.ClientURL(), "--function", cliEcho, "--file", file, "--wait=1m")
	if code != 0 || !bytes.Equal([]byte(stdout), body) {
		t.Fatalf("exit code %d, %d bytes back, stderr %s", code, len(stdout), stderr)
	}
	// Over the request limit: bad usage, nothing published.
	file = writeTemp(t, "huge.bin", make([]byte, 6<<20+1))
	if code, _, stderr = runCLI(t, "enqueue", "--nats", st.Server.ClientURL(), "--function", cliEcho, "--file", file); code != exitUsage || !strings.Contains(stderr, "request_limit") {
		t.Fatalf("a body over the limit: exit %d, %s", code, stderr)
	}
}
