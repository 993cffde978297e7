package worker_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/worker"
)

// lineBuffer collects JSON log lines from concurrent writers.
type lineBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the lines whose message starts with prefix, decoded.
func (b *lineBuffer) lines(t *testing.T, prefix string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if msg, _ := m["message"].(string); strings.HasPrefix(msg, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// TestOneLinePerJobOutcome: each job's fate is one line with its id,
// function, attempts, status, OCI error code, duration, outcome and trace
// id (read from the job's traceparent when the worker does not trace).
func TestOneLinePerJobOutcome(t *testing.T) {
	t.Parallel()
	var buf lineBuffer
	log := zerolog.New(&buf).Level(zerolog.DebugLevel)
	h := newHarness(t, worker.Config{Logger: &log}, map[string]emulator.Behavior{
		fnBroken: {Status: 404, Code: "NotAuthorizedOrNotFound"},
	})
	ok := jobHeader(fnEcho, "line-ok")
	ok.Set(job.HeaderTraceparent, pubTraceparent)
	h.publish("invoke.jobs.t", ok, []byte("x"))
	h.publish("invoke.jobs.t", jobHeader(fnBroken, "line-dead"), []byte("x"))
	h.waitSettled(1, 1)

	var got []map[string]any
	testenv.Eventually(t, "two job lines", func() bool {
		got = append(buf.lines(t, "job complete"), buf.lines(t, "job dead-letter")...)
		return len(got) == 2
	})
	byID := map[string]map[string]any{}
	for _, l := range got {
		byID[l["job_id"].(string)] = l
	}
	done, dead := byID["line-ok"], byID["line-dead"]
	if done == nil || dead == nil {
		t.Fatalf("lines %v", got)
	}
	for field, want := range map[string]any{
		"level": "debug", "function": fnEcho, "attempts": 1.0, "status": 200.0, "outcome": "completed", "trace_id": pubTraceID,
	} {
		if done[field] != want {
			t.Errorf("completed job's line: %s = %v, want %v (%v)", field, done[field], want, done)
		}
	}
	for field, want := range map[string]any{
		"level": "warn", "function": fnBroken, "attempts": 1.0, "status": 404.0, "code": "NotAuthorizedOrNotFound",
		"outcome": "dead_lettered", "reason": "permanent",
	} {
		if dead[field] != want {
			t.Errorf("dead-lettered job's line: %s = %v, want %v (%v)", field, dead[field], want, dead)
		}
	}
	for _, l := range got {
		if _, ok := l["duration_ms"]; !ok {
			t.Errorf("line without duration_ms: %v", l)
		}
	}
	if _, ok := dead["trace_id"]; ok {
		t.Errorf("a job without a traceparent logged a trace id: %v", dead)
	}
}
