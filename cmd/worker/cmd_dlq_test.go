package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
)

const (
	dlqFnA = "ocid1.fnfunc.oc1.phx.aaaaaaaaalpha"
	dlqFnB = "ocid1.fnfunc.oc1.phx.aaaaaaaabravo"
)

// writeDLQ stores twelve records as a worker would: 6 exhausted (503, with
// a 3-attempt history) and 3 permanent (404) for fnA, 3 invalid for fnB,
// the last one with a binary body. It returns their sequences.
func writeDLQ(t *testing.T, n *testenv.NATS) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	now := time.Now().UTC()
	var seqs []uint64
	for i := range 12 {
		id := fmt.Sprintf("job-%02d", i)
		fn := dlqFnA
		f := dlq.Failure{FailedAt: now.Add(time.Duration(i-12) * time.Minute), Worker: "host-1"}
		switch {
		case i < 6:
			f.Reason, f.Status, f.Attempts = dlq.ReasonExhausted, 503, 3
			f.Error = "gave up after 3 attempts: function answered 503 FunctionInvokeServiceUnavailable: out of capacity"
			for a := 1; a <= 3; a++ {
				f.History = append(f.History, dlq.Attempt{N: a, At: f.FailedAt, Status: 503, Code: "FunctionInvokeServiceUnavailable", DurationMs: 12, Worker: "host-1", Error: "out of capacity"})
			}
		case i < 9:
			f.Reason, f.Status, f.Attempts = dlq.ReasonPermanent, 404, 1
			f.Error = "function answered 404 NotAuthorizedOrNotFound"
			f.History = []dlq.Attempt{{N: 1, At: f.FailedAt, Status: 404, Code: "NotAuthorizedOrNotFound", DurationMs: 3}}
		default:
			fn = dlqFnB
			f.Reason, f.Error = dlq.ReasonInvalid, `invalid job: Fn-Intent "bogus": want httprequest or cloudevent`
		}
		body := []byte(`{"n":` + strconv.Itoa(i) + `}`)
		if i == 11 {
			body = []byte{0x00, 0xff, 0xfe, 'b', 'i', 'n'}
		}
		hdr := nats.Header{}
		hdr.Set(job.HeaderFunctionID, fn)
		hdr.Set(job.HeaderMsgID, id)
		j := job.Job{ID: id, FunctionID: fn, Body: body, Header: hdr, Subject: "invoke.jobs.default", Stream: "INVOKE_JOBS", Seq: uint64(100 + i), StoreAt: f.FailedAt}
		ack, err := n.JS.PublishMsg(ctx, dlq.NewMessage(n.Topology.DLQPrefix, j, f), jetstream.WithMsgID(dlq.DedupeID(j)))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

func dlqState(t *testing.T, n *testenv.NATS, stream string) jetstream.StreamState {
	t.Helper()
	s, err := n.JS.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State
}

// TestDlqCommands drives list, stats, show, replay and purge through run()
// against records written as a worker writes them.
func TestDlqCommands(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{})
	seqs := writeDLQ(t, n)
	url := n.Server.ClientURL()
	cli := func(args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, append(append([]string{"dlq"}, args...), "--nats", url)...)
	}
	before := dlqState(t, n, "INVOKE_DLQ")

	code, out, errOut := cli("list")
	if code != 0 || strings.Count(out, "\n") != 12+1+2 || !strings.Contains(out, "SEQ") || !strings.Contains(out, "12 records") ||
		!strings.Contains(out, "gave up after 3 attempts: out of capacity") {
		t.Fatalf("list: %d\n%s%s", code, out, errOut)
	}

	code, out, _ = cli("list", "--json", "--reason", "exhausted", "--limit", "4")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 {
		t.Fatalf("list --json: %d\n%s", code, out)
	}
	for _, l := range lines {
		var r struct {
			Seq     uint64        `json:"seq"`
			Reason  string        `json:"reason"`
			Code    string        `json:"code"`
			History []dlq.Attempt `json:"history"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Reason != "exhausted" || r.Code != "FunctionInvokeServiceUnavailable" || len(r.History) != 3 {
			t.Fatalf("list --json line %s: %+v %v", l, r, err)
		}
	}

	// stats prints, for each group, flags that select exactly it.
	code, out, _ = cli("stats")
	if code != 0 || !strings.Contains(out, "12 records in INVOKE_DLQ: 3 invalid, 3 permanent, 6 exhausted; 2 functions, 3 groups.") {
		t.Fatalf("stats: %d\n%s", code, out)
	}
	sel := regexp.MustCompile(`(?m)^\s+1\s+(--reason exhausted .*)$`).FindStringSubmatch(out)
	if sel == nil || !strings.Contains(sel[1], "--status 503 --code FunctionInvokeServiceUnavailable") {
		t.Fatalf("stats: no selector for the largest group:\n%s", out)
	}
	code, out, _ = cli(append([]string{"list"}, strings.Fields(sel[1])...)...)
	if code != 0 || !strings.Contains(out, "6 records") {
		t.Fatalf("list with the group's flags: %d\n%s", code, out)
	}

	code, out, _ = cli("show", strconv.FormatUint(seqs[0], 10))
	for _, want := range []string{"Record 1 in INVOKE_DLQ", "exhausted", "503  FunctionInvokeServiceUnavailable", "Headers (",
		"Invoke-Attempt-History: [3 attempts, below]", "Attempt history (3 attempts)", "Body (7 bytes, text)", `{"n":0}`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("show lacks %q: %d\n%s", want, code, out)
		}
	}
	code, out, _ = cli("show", strconv.FormatUint(seqs[11], 10))
	if code != 0 || !strings.Contains(out, "Body (6 bytes, binary)") || !strings.Contains(out, "00000000  00 ff fe 62 69 6e") ||
		!strings.Contains(out, "Attempt history: none recorded") {
		t.Fatalf("show of a binary body: %d\n%s", code, out)
	}
	file := filepath.Join(t.TempDir(), "body.bin")
	if code, out, _ = cli("show", strconv.FormatUint(seqs[11], 10), "--out", file); code != 0 {
		t.Fatalf("show --out: %d\n%s", code, out)
	}
	if b, err := os.ReadFile(file); err != nil || !bytes.Equal(b, []byte{0x00, 0xff, 0xfe, 'b', 'i', 'n'}) {
		t.Fatalf("--out wrote %q, %v", b, err)
	}
	if code, _, errOut = cli("show", "999"); code != 1 || !strings.Contains(errOut, "no dead-letter record") {
		t.Fatalf("show of a missing record: %d %s", code, errOut)
	}

	code, out, _ = cli("replay", "--all", "--dry-run", "--to-function", dlqFnB)
	if code != 0 || !strings.Contains(out, "Would replay 12") || strings.Count(out, "would replay") != 12 || !strings.Contains(out, dlqFnB) {
		t.Fatalf("replay --dry-run: %d\n%s", code, out)
	}
	code, out, _ = cli("purge", "--all", "--dry-run")
	if code != 0 || !strings.Contains(out, "Would delete 12 records") {
		t.Fatalf("purge --dry-run: %d\n%s", code, out)
	}
	if after := dlqState(t, n, "INVOKE_DLQ"); after.Msgs != before.Msgs || after.FirstSeq != before.FirstSeq || after.LastSeq != before.LastSeq || after.Consumers != 0 {
		t.Fatalf("reads and dry runs changed the DLQ: %+v, was %+v", after, before)
	}
	if jobs := dlqState(t, n, "INVOKE_JOBS").Msgs; jobs != 0 {
		t.Fatalf("dry runs enqueued %d jobs", jobs)
	}

	code, out, _ = cli("replay", strconv.FormatUint(seqs[0], 10), fmt.Sprintf("%d-%d", seqs[1], seqs[2]))
	if code != 0 || !strings.Contains(out, "Replayed 3, skipped 0, failed 0; 3 records deleted.") {
		t.Fatalf("replay: %d\n%s", code, out)
	}
	// A second run finds nothing to do: the records are gone.
	code, out, _ = cli("replay", strconv.FormatUint(seqs[0], 10))
	if code != 0 || !strings.Contains(out, "No records in INVOKE_DLQ match.") {
		t.Fatalf("replay again: %d\n%s", code, out)
	}
	if jobs := dlqState(t, n, "INVOKE_JOBS").Msgs; jobs != 3 {
		t.Fatalf("replay enqueued %d jobs, want 3", jobs)
	}

	code, out, _ = cli("purge", "--all", "--reason", "invalid", "--yes")
	if code != 0 || !strings.Contains(out, "Deleted 3 records from INVOKE_DLQ.") {
		t.Fatalf("purge: %d\n%s", code, out)
	}
	if left := dlqState(t, n, "INVOKE_DLQ").Msgs; left != 6 {
		t.Fatalf("%d records left, want 6", left)
	}
}

// TestDlqUsageErrors: bad usage exits 2 with a message naming the flag,
// before any connection is made.
func TestDlqUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args     []string
		contains string
	}{
		{[]string{"list", "--reason", "bogus"}, "--reason"},
		{[]string{"list", "--since", "2x"}, "--since"},
		{[]string{"list", "--until", "yesterday"}, "--until"},
		{[]string{"list", "--since", "1h", "--until", "2h"}, "--until"},
		{[]string{"list", "--status", "7xx"}, "--status"},
		{[]string{"list", "--code", "two words"}, "--code"},
		{[]string{"list", "--grep", "("}, "--grep"},
		{[]string{"list", "--function", "fn-1"}, "--function"},
		{[]string{"list", "--limit", "-1"}, "--limit"},
		{[]string{"stats", "--bogus"}, "--bogus"},
		{[]string{"list", "extra"}, "extra"},
		{[]string{"show"}, "SEQ"},
		{[]string{"show", "1", "2"}, "SEQ"},
		{[]string{"show", "abc"}, "SEQ"},
		{[]string{"replay"}, "--all"},
		{[]string{"replay", "--all", "5"}, "not both"},
		{[]string{"replay", "x"}, "not a record sequence"},
		{[]string{"replay", "9-3"}, "range"},
		{[]string{"replay", "--all", "--rate", "-1"}, "--rate"},
		{[]string{"replay", "--all", "--to-function", "fn-1"}, "--to-function"},
		{[]string{"replay", "--all", "--min-sample", "3"}, "--watch"},
		{[]string{"replay", "--all", "--watch", "--max-failure-ratio", "1.5"}, "--max-failure-ratio"},
		{[]string{"replay", "--all", "--watch", "--min-sample", "0"}, "--min-sample"},
		{[]string{"purge"}, "--all"},
		{[]string{"purge", "--all"}, "--yes"},
		{[]string{"frobnicate"}, "frobnicate"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			t.Parallel()
			// No server listens there: usage is checked first.
			code, stdout, stderr := runCLI(t, append(append([]string{"dlq"}, c.args...), "--nats", "nats://127.0.0.1:1")...)
			if code != 2 || !strings.Contains(stderr, c.contains) {
				t.Fatalf("exit %d, stderr %q, stdout %q; want 2 naming %s", code, stderr, stdout, c.contains)
			}
		})
	}
	if code, _, stderr := runCLI(t, "dlq", "list", "--nats", "nats://127.0.0.1:1"); code != 1 || !strings.Contains(stderr, "127.0.0.1:1") {
		t.Fatalf("list without a server: exit %d, %s", code, stderr)
	}
}

// TestDlqReplayAgainstAWorkerProcess runs a worker process whose function
// fails, replays its records with --watch while it still fails (the replay
// stops itself, exit 1), then repairs the function and replays the rest
// (exit 0, every job completes).
func TestDlqReplayAgainstAWorkerProcess(t *testing.T) {
	t.Parallel()
	f := newFleet(t, emulator.Behavior{Status: 404})
	f.start("w1")
	ids := f.publishJobs(30, "r")
	testenv.Eventually(t, "30 dead letters", func() bool { return f.count("INVOKE_DLQ") == 30 && f.count("INVOKE_JOBS") == 0 })
	url := f.nats.Server.ClientURL()

	code, out, errOut := runCLI(t, "dlq", "replay", "--all", "--rate", "20", "--watch", "--min-sample", "4", "--nats", url)
	if code != 1 || !strings.Contains(errOut, "replay stopped:") || !strings.Contains(errOut, "not replayed, still in INVOKE_DLQ") {
		t.Fatalf("watched replay of a still-broken function: exit %d\n%s%s", code, out, errOut)
	}
	m := regexp.MustCompile(`Replayed (\d+), skipped 0, failed 0, not reached (\d+)`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" || m[2] == "0" {
		t.Fatalf("summary: %s", out)
	}
	// The replayed jobs failed again into new records; the rest were kept.
	testenv.Eventually(t, "replayed jobs to fail again", func() bool { return f.count("INVOKE_DLQ") == 30 && f.count("INVOKE_JOBS") == 0 })

	if err := f.emu.SetBehavior(procFn, emulator.Behavior{}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "dlq", "replay", "--all", "--watch", "--nats", url)
	if code != 0 || !strings.Contains(out, "Replayed 30, skipped 0, failed 0; 30 records deleted.") ||
		!strings.Contains(out, "Outcomes of the replayed jobs: 30 succeeded, 0 failed again.") {
		t.Fatalf("replay of the repaired function: exit %d\n%s%s", code, out, errOut)
	}
	outcomes := f.outcomes()
	for _, id := range ids {
		got := outcomes[id]
		if len(got) != 1 || got[0] != "invoke.results."+id {
			t.Fatalf("job %s ended as %v, want one result", id, got)
		}
	}
}

// TestDlqReplayDryRunAppliesTheConfiguredRequestLimit: a dry run flags a
// job whose body is over invoke.request_limit as invalid again, as the
// worker would dead-letter it, and says so in its summary.
func TestDlqReplayDryRunAppliesTheConfiguredRequestLimit(t *testing.T) {
	t.Parallel()
	n := testenv.StartNATS(t, queue.Topology{})
	writeDLQ(t, n) // bodies of 6 to 8 bytes: only job-10's {"n":10} is over 7
	code, out, errOut := runCLI(t, "dlq", "replay", "--all", "--dry-run", "--set", "invoke.request_limit=7", "--nats", n.Server.ClientURL())
	if code != 0 || !strings.Contains(out, "1 of these jobs fail again at once") {
		t.Fatalf("replay --dry-run: %d\n%s%s", code, out, errOut)
	}
	line := regexp.MustCompile(`(?m)^.*job-10 .*$`).FindString(out)
	if !strings.Contains(line, "invalid again") || !strings.Contains(line, "request limit of 7 bytes") {
		t.Fatalf("job-10's line does not say it is over the request limit: %q\n%s", line, out)
	}
}
