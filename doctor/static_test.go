package doctor_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/doctor"
)

const fn = "ocid1.fnfunc.oc1.phx.aaaaaaaaexample"

// shipped reads configs/worker.yaml as `worker doctor --config` does.
func shipped(t *testing.T) config.Config {
	t.Helper()
	c, err := config.Read(config.LoadOptions{File: filepath.Join("..", "configs", "worker.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// find returns the finding of check with severity, failing the test with
// the whole report when there is none.
func find(t *testing.T, r doctor.Report, check string, sev doctor.Severity) doctor.Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.Check == check && f.Severity == sev {
			return f
		}
	}
	var b strings.Builder
	_ = r.WriteText(&b)
	t.Fatalf("no %s finding %s in:\n%s", sev, check, b.String())
	return doctor.Finding{}
}

func TestShippedConfigPassesTheStaticChecks(t *testing.T) {
	r := doctor.Static(shipped(t))
	if r.Failed() || r.Errors+r.Warnings != 0 {
		var b strings.Builder
		_ = r.WriteText(&b)
		t.Fatalf("configs/worker.yaml is not clean:\n%s", b.String())
	}
	if len(r.Policy) == 0 {
		t.Error("no policy explained")
	}
	for _, f := range r.Findings {
		if f.Severity != doctor.OK {
			t.Errorf("%s: %s %s", f.Check, f.Severity, f.What)
		}
	}
}

// TestStaticChecksFlagSeededMisconfigurations has one row per check: the
// shipped configuration with one thing wrong, and the finding it must
// produce (with a why and a fix).
func TestStaticChecksFlagSeededMisconfigurations(t *testing.T) {
	for _, tc := range []struct {
		check string
		sev   doctor.Severity
		seed  func(*config.Config)
		want  string // in What
	}{
		{"ack_wait.prefetch", doctor.Error, func(c *config.Config) { c.Consumer.AckWait = 50 * time.Second }, "prefetched job's wait for a slot, 1m"},
		{"ack_wait.prefetch", doctor.Error, func(c *config.Config) { c.Worker.Prefetch = 128 }, "2m"},
		{"ack_wait.heartbeat", doctor.Error, func(c *config.Config) { c.Worker.ProgressInterval = 45 * time.Second }, "not more than twice"},
		{"ack_wait.heartbeat", doctor.Warning, func(c *config.Config) { c.Worker.ProgressInterval = 35 * time.Second }, "only 2 extensions"},
		{"duplicate_window.ack_wait", doctor.Error, func(c *config.Config) { c.Streams.DuplicateWindow = time.Minute }, "1m is not longer than consumer.ack_wait 1m30s"},
		{"jobs_max_age.waits", doctor.Error, func(c *config.Config) { c.Streams.JobsMaxAge = 10 * time.Minute }, "longest wait, 15m"},
		{"jobs_max_age.waits", doctor.Error, func(c *config.Config) {
			c.Worker.FairShare = false
			c.Streams.JobsMaxAge = 3 * time.Minute
		}, "open breaker"},
		{"jobs_max_age.silent_drop", doctor.Warning, func(c *config.Config) { c.Streams.JobsMaxAge = 24 * time.Hour }, "does not expire them first"},
		{"retry.body_retention", doctor.Error, func(c *config.Config) { c.Streams.DLQMaxAge = 5 * time.Minute }, "kept 5m"},
		{"dlq.retention", doctor.Warning, func(c *config.Config) { c.Streams.DLQMaxAge = 24 * time.Hour }, "only 24h"},
		{"retry.state_retention", doctor.Warning, func(c *config.Config) {
			c.Retry.MaxElapsed = 0
			c.Retry.MaxAttempts = 2000
		}, "retry.max_elapsed is 0"},
		{"retry.max_job_age", doctor.Warning, func(c *config.Config) { c.Worker.MaxJobAge = 5 * time.Minute }, "shorter than the retry budget"},
		{"payload.request_limit", doctor.Warning, func(c *config.Config) { c.Streams.MaxMsgSize = 4 * config.MiB }, "limited to 4MiB"},
		{"payload.request_limit", doctor.Warning, func(c *config.Config) { c.NATS.Embedded.MaxPayload = 6 * config.MiB }, "limited to 6MiB"},
		{"breaker.window.backoff", doctor.Warning, func(c *config.Config) { c.Breaker.Interval = 20 * time.Second }, "shorter than retry.max_interval 30s"},
		{"breaker.window.timeout", doctor.Warning, func(c *config.Config) { c.Breaker.Interval = time.Minute }, "1m10s"},
		{"breaker.open.max_elapsed", doctor.Warning, func(c *config.Config) { c.Breaker.OpenTimeout = 2 * time.Minute }, "16m"},
		{"consumer.max_ack_pending", doctor.Warning, func(c *config.Config) { c.Consumer.MaxAckPending = 100 }, "less than one process takes, 128"},
		{"streams.replicas", doctor.Warning, func(c *config.Config) { c.NATS.URL = "nats://a:4222,nats://b:4222,nats://c:4222" }, "3 servers"},
		{"nats.credentials_in_clear", doctor.Warning, func(c *config.Config) {
			c.NATS.URL = "nats://nats.example.com:4222"
			c.NATS.Creds = "/etc/nats/worker.creds"
		}, "nats.example.com:4222"},
		{"invoke.plain_http", doctor.Warning, func(c *config.Config) { c.Invoke.Endpoints = map[string]string{fn: "http://fn.example.com"} }, "fn.example.com"},
		{"invoke.unsigned", doctor.Warning, func(c *config.Config) {
			c.Invoke.OCI.Auth = "none"
			c.Invoke.Endpoints = map[string]string{fn: "https://abc.us-phoenix-1.functions.oci.oraclecloud.com"}
		}, "abc.us-phoenix-1"},
		{"config.valid", doctor.Error, func(c *config.Config) { c.Retry.MaxAttempts = 0 }, "retry.max_attempts"},
		// A budget too large for a time.Duration saturates instead of
		// wrapping around (this many attempts of 70s wrap to about 7.7h,
		// which would pass).
		{"retry.state_retention", doctor.Warning, func(c *config.Config) {
			c.Retry.MaxElapsed = 0
			c.Retry.MaxAttempts = 184467720
		}, "retry.max_elapsed is 0"},
	} {
		t.Run(tc.check+"/"+string(tc.sev), func(t *testing.T) {
			c := shipped(t)
			tc.seed(&c)
			r := doctor.Static(c)
			f := find(t, r, tc.check, tc.sev)
			if !strings.Contains(f.What, tc.want) {
				t.Errorf("what = %q, want it to say %q", f.What, tc.want)
			}
			if f.Why == "" || f.Fix == "" {
				t.Errorf("finding without why or fix: %+v", f)
			}
			if !r.Failed() {
				t.Error("report does not fail")
			}
		})
	}
}

// A rule the worker enforces at start-up and an own check that explains
// it are reported once, by the check with the why and the fix.
func TestStartupRuleExplainedOnce(t *testing.T) {
	c := shipped(t)
	c.Consumer.AckWait = 50 * time.Second
	if c.Validate() == nil {
		t.Fatal("the seed must break a start-up rule")
	}
	r := doctor.Static(c)
	for _, f := range r.Findings {
		if f.Check == "config.valid" {
			t.Errorf("start-up rule reported twice: %s", f.What)
		}
	}
	if r.Errors != 1 {
		t.Errorf("errors = %d, want 1", r.Errors)
	}
}

// A configuration too broken to compute a policy from still gets every
// start-up error, and says the rest was skipped.
func TestBrokenConfigReportsValidationErrorsAndSkipsThePolicy(t *testing.T) {
	c := shipped(t)
	c.Worker.Concurrency = 0
	c.Retry.Multiplier = 0.5
	r := doctor.Static(c)
	find(t, r, "config.valid", doctor.Error)
	find(t, r, "policy", doctor.Skipped)
	if len(r.Policy) != 0 {
		t.Errorf("policy explained from a broken configuration: %v", r.Policy)
	}
	if r.Errors < 2 {
		t.Errorf("errors = %d, want one per broken key", r.Errors)
	}
}
