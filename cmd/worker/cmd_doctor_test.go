package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

var shippedConfig = filepath.Join("..", "..", "configs", "worker.yaml")

// The contract's exit codes: 0 clean, 1 something wrong, 2 bad usage or a
// configuration that cannot be read.
func TestDoctorExitCodes(t *testing.T) {
	code, out, errOut := runCLI(t, "doctor", "--config", shippedConfig, "--offline")
	if code != exitOK || !strings.Contains(out, "0 errors, 0 warnings: clean") {
		t.Fatalf("shipped config: exit %d\n%s%s", code, out, errOut)
	}

	code, out, _ = runCLI(t, "doctor", "--config", shippedConfig, "--offline", "--set", "consumer.ack_wait=30s")
	if code != exitFailed || !strings.Contains(out, "ack_wait.prefetch") || !strings.Contains(out, "fix:") {
		t.Fatalf("ack_wait 30s: exit %d\n%s", code, out)
	}

	code, _, errOut = runCLI(t, "doctor", "--offline", "--set", "consumer.ack_wiat=30s")
	if code != exitUsage || !strings.Contains(errOut, "consumer.ack_wiat") {
		t.Fatalf("unknown key: exit %d, stderr %q", code, errOut)
	}
	code, _, _ = runCLI(t, "doctor", "--no-such-flag")
	if code != exitUsage {
		t.Fatalf("unknown flag: exit %d", code)
	}
}

func TestDoctorJSON(t *testing.T) {
	code, out, errOut := runCLI(t, "doctor", "--config", shippedConfig, "--offline", "--json", "--set", "streams.dlq_max_age=24h")
	if code != exitFailed {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var r struct {
		Policy   []struct{ Topic, Text string }
		Findings []struct{ Check, Severity, What, Why, Fix string }
		Warnings int
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if r.Warnings != 1 || len(r.Policy) == 0 {
		t.Errorf("warnings %d, policy %d lines", r.Warnings, len(r.Policy))
	}
	for _, f := range r.Findings {
		if f.Check == "dlq.retention" && f.Severity == "warning" && f.Fix != "" {
			return
		}
	}
	t.Errorf("no dlq.retention warning in %s", out)
}
