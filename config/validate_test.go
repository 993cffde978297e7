package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mut  func(c *Config)
		key  string
		frag string
	}{
		{"nats url scheme", func(c *Config) { c.NATS.URL = "http://a:4222" }, "nats.url", `scheme "http"`},
		{"nats url no host", func(c *Config) { c.NATS.URL = "nats://:4222" }, "nats.url", "no host"},
		{"nats url empty entry", func(c *Config) { c.NATS.URL = "nats://a:4222,,nats://b" }, "nats.url", "entry 2 is empty"},
		{"nats url bad port", func(c *Config) { c.NATS.URL = "nats://a:99999" }, "nats.url", "bad port"},
		{"nats url hides password", func(c *Config) { c.NATS.URL = "http://u:hunter2@a" }, "nats.url", "u:REDACTED@a"},
		{"nats inbox prefix wildcard", func(c *Config) { c.NATS.InboxPrefix = "_INBOX.*" }, "nats.inbox_prefix", "wildcard"},
		{"nats inbox prefix empty", func(c *Config) { c.NATS.InboxPrefix = "" }, "nats.inbox_prefix", "must not be empty"},
		{"creds and nkey", func(c *Config) { c.NATS.Creds, c.NATS.NKey = "a", "b" }, "nats.nkey", "nats.creds"},
		{"password without user", func(c *Config) { c.NATS.Password = "p" }, "nats.password", "needs nats.user"},
		{"tls cert without key", func(c *Config) { c.NATS.TLS.Cert = "c" }, "nats.tls.key", "nats.tls.cert"},
		{"tls key without cert", func(c *Config) { c.NATS.TLS.Key = "k" }, "nats.tls.cert", "nats.tls.key"},
		{"connect timeout", func(c *Config) { c.NATS.ConnectTimeout = 0 }, "nats.connect_timeout", "more than 0"},
		{"reconnect wait", func(c *Config) { c.NATS.ReconnectWait = -time.Second }, "nats.reconnect_wait", "more than 0"},
		// A zero that would only be replaced by a default is refused.
		{"reconnect wait zero", func(c *Config) { c.NATS.ReconnectWait = 0 }, "nats.reconnect_wait", "more than 0"},
		{"embedded listen", func(c *Config) { c.NATS.Embedded.Listen = "4222" }, "nats.embedded.listen", "host:port"},
		{"embedded listen port", func(c *Config) { c.NATS.Embedded.Listen = "localhost:nats" }, "nats.embedded.listen", "host:port"},
		{"store dir", func(c *Config) { c.NATS.Embedded.StoreDir = "" }, "nats.embedded.store_dir", "empty"},
		{"max payload zero", func(c *Config) { c.NATS.Embedded.MaxPayload = 0 }, "nats.embedded.max_payload", "more than 0"},
		{"max payload huge", func(c *Config) { c.NATS.Embedded.MaxPayload = 65 * MiB }, "nats.embedded.max_payload", "limit of 64MiB"},
		{"stream empty", func(c *Config) { c.Streams.Jobs = "" }, "streams.jobs", "empty"},
		{"stream space", func(c *Config) { c.Streams.Results = "A B" }, "streams.results", "spaces"},
		{"stream dot", func(c *Config) { c.Streams.DLQ = "A.B" }, "streams.dlq", "'.'"},
		{"stream star", func(c *Config) { c.Streams.Jobs = "A*" }, "streams.jobs", "'*'"},
		{"stream gt", func(c *Config) { c.Streams.Jobs = "A>" }, "streams.jobs", "'>'"},
		{"stream slash", func(c *Config) { c.Streams.Jobs = "A/B" }, "streams.jobs", "'/'"},
		{"streams same", func(c *Config) { c.Streams.DLQ = c.Streams.Jobs }, "streams.dlq", "must differ"},
		{"no jobs subjects", func(c *Config) { c.Streams.JobsSubjects = nil }, "streams.jobs_subjects", "at least one"},
		{"jobs subject empty token", func(c *Config) { c.Streams.JobsSubjects = []string{"a..b"} }, "streams.jobs_subjects", "empty token"},
		{"jobs subject bad gt", func(c *Config) { c.Streams.JobsSubjects = []string{"a.>.b"} }, "streams.jobs_subjects", "'>' before the end"},
		{"jobs subject partial wildcard", func(c *Config) { c.Streams.JobsSubjects = []string{"a.b*"} }, "streams.jobs_subjects", "wildcard"},
		{"prefix wildcard", func(c *Config) { c.Streams.ResultsPrefix = "invoke.*" }, "streams.results_prefix", "wildcards"},
		{"prefix empty token", func(c *Config) { c.Streams.DLQPrefix = "invoke..dlq" }, "streams.dlq_prefix", "empty token"},
		{"prefix trailing dot", func(c *Config) { c.Streams.DLQPrefix = "invoke.dlq." }, "streams.dlq_prefix", "empty token"},
		{"prefix space", func(c *Config) { c.Streams.ResultsPrefix = "invoke results" }, "streams.results_prefix", "spaces"},
		{"results inside jobs", func(c *Config) { c.Streams.JobsSubjects = []string{"invoke.>"} }, "streams.results_prefix", "overlaps streams.jobs_subjects"},
		{"dlq inside results", func(c *Config) { c.Streams.DLQPrefix = "invoke.results.dlq" }, "streams.dlq_prefix", "overlaps streams.results_prefix"},
		{"replicas 0", func(c *Config) { c.Streams.Replicas = 0 }, "streams.replicas", "1 to 5"},
		{"replicas 6", func(c *Config) { c.Streams.Replicas = 6 }, "streams.replicas", "1 to 5"},
		{"max msg size", func(c *Config) { c.Streams.MaxMsgSize = -1 }, "streams.max_msg_size", "more than 0"},
		{"max age negative", func(c *Config) { c.Streams.DLQMaxAge = -1 }, "streams.dlq_max_age", "negative"},
		{"dup window over age", func(c *Config) { c.Streams.JobsMaxAge = time.Minute }, "streams.duplicate_window", "streams.jobs_max_age"},
		{"dup window zero", func(c *Config) { c.Streams.DuplicateWindow = 0 }, "streams.duplicate_window", "more than 0"},
		{"durable empty", func(c *Config) { c.Consumer.Durable = "" }, "consumer.durable", "empty"},
		{"durable dot", func(c *Config) { c.Consumer.Durable = "a.b" }, "consumer.durable", "'.'"},
		{"ack wait zero", func(c *Config) { c.Consumer.AckWait = 0 }, "consumer.ack_wait", "more than 0"},
		{"ack wait vs progress", func(c *Config) { c.Consumer.AckWait = 20 * time.Second }, "consumer.ack_wait", "extended at least twice per ack_wait"},
		{"max ack pending", func(c *Config) { c.Consumer.MaxAckPending = 0 }, "consumer.max_ack_pending", "at least 1"},
		{"concurrency", func(c *Config) { c.Worker.Concurrency = 0 }, "worker.concurrency", "must be at least 1, got 0"},
		{"drain timeout", func(c *Config) { c.Worker.DrainTimeout = -1 }, "worker.drain_timeout", "more than 0"},
		{"drain timeout zero", func(c *Config) { c.Worker.DrainTimeout = 0 }, "worker.drain_timeout", "more than 0"},
		{"metric functions zero", func(c *Config) { c.Worker.MetricFunctions = 0 }, "worker.metric_functions", "at least 1"},
		{"sample interval zero", func(c *Config) { c.Worker.SampleInterval = 0 }, "worker.sample_interval", "more than 0"},
		{"max job age", func(c *Config) { c.Worker.MaxJobAge = -1 }, "worker.max_job_age", "negative"},
		{"per function concurrency", func(c *Config) { c.Worker.PerFunctionConcurrency = -1 }, "worker.per_function_concurrency", "0 (off)"},
		{"per function rate", func(c *Config) { c.Worker.PerFunctionRate = -0.5 }, "worker.per_function_rate", "0 (off)"},
		{"progress interval", func(c *Config) { c.Worker.ProgressInterval = 0 }, "worker.progress_interval", "more than 0"},
		{"api version", func(c *Config) { c.Invoke.APIVersion = "v1" }, "invoke.api_version", "date version"},
		{"request limit", func(c *Config) { c.Invoke.RequestLimit = 0 }, "invoke.request_limit", "more than 0"},
		{"response limit", func(c *Config) { c.Invoke.ResponseLimit = 0 }, "invoke.response_limit", "more than 0"},
		{"connect timeout invoke", func(c *Config) { c.Invoke.Timeout.Connect = 0 }, "invoke.timeout.connect", "more than 0"},
		{"read timeout", func(c *Config) { c.Invoke.Timeout.Read = -1 }, "invoke.timeout.read", "more than 0"},
		{"endpoint scheme", func(c *Config) { c.Invoke.Endpoints["ocid1.fnfunc.x"] = "ftp://x" }, "invoke.endpoints", "ocid1.fnfunc.x: \"ftp://x\""},
		{"endpoint host", func(c *Config) { c.Invoke.Endpoints["ocid1.fnfunc.x"] = "https:///p" }, "invoke.endpoints", "with a host"},
		{"endpoint key", func(c *Config) { c.Invoke.Endpoints["ocid1 x"] = "https://x" }, "invoke.endpoints", "not a function id"},
		{"oci auth", func(c *Config) { c.Invoke.OCI.Auth = "password" }, "invoke.oci.auth", "not one of api_key"},
		{"oci config file", func(c *Config) { c.Invoke.OCI.ConfigFile = "" }, "invoke.oci.config_file", "api_key"},
		{"oci profile", func(c *Config) { c.Invoke.OCI.Profile = "" }, "invoke.oci.profile", "api_key"},
		{"max attempts", func(c *Config) { c.Retry.MaxAttempts = 0 }, "retry.max_attempts", "must be at least 1, got 0"},
		{"initial interval", func(c *Config) { c.Retry.InitialInterval = 0 }, "retry.initial_interval", "more than 0"},
		{"max interval below initial", func(c *Config) { c.Retry.MaxInterval = 100 * time.Millisecond }, "retry.max_interval", "shorter than retry.initial_interval"},
		{"multiplier", func(c *Config) { c.Retry.Multiplier = 0.5 }, "retry.multiplier", "at least 1"},
		{"max elapsed", func(c *Config) { c.Retry.MaxElapsed = -1 }, "retry.max_elapsed", "negative"},
		{"randomization high", func(c *Config) { c.Retry.Randomization = 1.5 }, "retry.randomization", "0 to 1"},
		{"randomization low", func(c *Config) { c.Retry.Randomization = -0.1 }, "retry.randomization", "0 to 1"},
		{"retry on word", func(c *Config) { c.Retry.On = []string{"sometimes"} }, "retry.on", `"sometimes"`},
		{"retry on status range", func(c *Config) { c.Retry.On = []string{"600"} }, "retry.on", `"600"`},
		{"retry on status digits", func(c *Config) { c.Retry.On = []string{"5xx"} }, "retry.on", `"5xx"`},
		{"retry on empty code", func(c *Config) { c.Retry.On = []string{"409/"} }, "retry.on", `"409/"`},
		{"retry on star alone", func(c *Config) { c.Retry.On = []string{"*"} }, "retry.on", `"*"`},
		{"retry never code", func(c *Config) { c.Retry.Never = []string{"502/Bad Code"} }, "retry.never", `"502/Bad Code"`},
		{"breaker mode", func(c *Config) { c.Breaker.Mode = "global" }, "breaker.mode", "not one of function, host, off"},
		{"failure ratio zero", func(c *Config) { c.Breaker.FailureRatio = 0 }, "breaker.failure_ratio", "more than 0"},
		{"failure ratio high", func(c *Config) { c.Breaker.FailureRatio = 1.1 }, "breaker.failure_ratio", "at most 1"},
		{"min requests", func(c *Config) { c.Breaker.MinRequests = 0 }, "breaker.min_requests", "at least 1"},
		{"breaker interval", func(c *Config) { c.Breaker.Interval = 0 }, "breaker.interval", "more than 0"},
		{"open timeout", func(c *Config) { c.Breaker.OpenTimeout = 0 }, "breaker.open_timeout", "more than 0"},
		{"half open", func(c *Config) { c.Breaker.HalfOpenRequests = 0 }, "breaker.half_open_requests", "at least 1"},
		{"http listen", func(c *Config) { c.HTTP.Listen = "9090" }, "http.listen", "host:port"},
		{"pprof without http", func(c *Config) { c.HTTP.Listen, c.HTTP.Pprof = "", true }, "http.pprof", "http.listen is empty"},
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, "log.level", `"verbose" is not one of trace, debug, info, warn, error`},
		{"log format", func(c *Config) { c.Log.Format = "text" }, "log.format", "json, console"},
		{"emulator listen", func(c *Config) { c.Emulator.Listen = "" }, "emulator.listen", "host:port"},
		{"emulator default", func(c *Config) { c.Emulator.Default = "" }, "emulator.default", "empty"},
		{"emulator function", func(c *Config) { c.Emulator.Functions["ocid1.fnfunc.x"] = "" }, "emulator.functions", "ocid1.fnfunc.x: behaviour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tt.mut(&c)
			err := c.Validate()
			wantErr(t, err, "config: "+tt.key+": ", tt.frag)
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != tt.key {
				t.Errorf("first KeyError = %v, want key %s", ke, tt.key)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mut  func(c *Config)
	}{
		{"nats url list", func(c *Config) { c.NATS.URL = "nats://a:4222, tls://b:4222,ws://c,wss://u:p@d:443" }},
		{"nats url without scheme", func(c *Config) { c.NATS.URL = "localhost:4222" }},
		{"nats user password", func(c *Config) { c.NATS.User, c.NATS.Password = "u", "p" }},
		{"tls pair", func(c *Config) { c.NATS.TLS.Cert, c.NATS.TLS.Key = "c", "k" }},
		{"listen all interfaces", func(c *Config) { c.NATS.Embedded.Listen = ":4222" }},
		{"listen random port", func(c *Config) { c.NATS.Embedded.Listen = "127.0.0.1:0" }},
		{"listen ipv6", func(c *Config) { c.HTTP.Listen = "[::1]:9090" }},
		{"http off", func(c *Config) { c.HTTP.Listen = "" }},
		{"retry classes", func(c *Config) {
			c.Retry.On = []string{"network", "timeout", "100", "599", "409/IncorrectState", "*/TooManyRequests"}
			c.Retry.Never = []string{"502/FunctionInvokeExecutionFailed", "504/FunctionInvokeTimeout"}
		}},
		{"no retries listed", func(c *Config) { c.Retry.On = nil }},
		{"max elapsed off", func(c *Config) { c.Retry.MaxElapsed = 0 }},
		// Every key documented with "0 is unlimited/off/none" takes 0.
		{"zeros that mean unlimited, off or none", func(c *Config) {
			c.Streams.JobsMaxAge, c.Streams.ResultsMaxAge, c.Streams.DLQMaxAge = 0, 0, 0
			c.Worker.MaxJobAge, c.Worker.PerFunctionConcurrency, c.Worker.PerFunctionRate = 0, 0, 0
			c.Worker.Prefetch, c.Worker.GCMinHeap, c.Retry.Randomization = 0, 0, 0
			c.Worker.ReservedShare, c.Worker.WaitLogThreshold, c.Invoke.Timeout.Total = 0, 0, 0
		}},
		{"multiplier one", func(c *Config) { c.Retry.Multiplier = 1 }},
		{"ratio one", func(c *Config) { c.Breaker.FailureRatio = 1 }},
		{"breaker off", func(c *Config) { c.Breaker.Mode = "off" }},
		{"auth without file", func(c *Config) { c.Invoke.OCI.Auth, c.Invoke.OCI.ConfigFile = "instance_principal", "" }},
		{"endpoints", func(c *Config) {
			c.Invoke.Endpoints["ocid1.fnfunc.oc1.phx.a"] = "https://a.example.com"
			c.Invoke.Endpoints["ocid1.fnfunc.oc1.phx.b"] = "http://127.0.0.1:8080"
		}},
		{"replicas 5", func(c *Config) { c.Streams.Replicas = 5 }},
		{"subjects", func(c *Config) {
			c.Streams.JobsSubjects = []string{"invoke.jobs.>", "a.*.b"}
			c.Streams.ResultsPrefix = "x"
			c.Streams.DLQPrefix = "y"
		}},
		{"ack wait just over", func(c *Config) { c.Consumer.AckWait = 20*time.Second + 1; c.Invoke.Timeout.Read = 20 * time.Second }},
		{"dup window equals age", func(c *Config) { c.Streams.JobsMaxAge = 2 * time.Minute }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tt.mut(&c)
			if err := c.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestValidateReportsAll(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Worker.Concurrency = 0
	c.Retry.MaxAttempts = 0
	c.Log.Level = "loud"
	err := c.Validate()
	wantErr(t, err, "worker.concurrency", "retry.max_attempts", "log.level")
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("%d problems reported, want 3:\n%v", n, err)
	}
	// Load runs Validate and keeps its errors.
	_, err = Load(LoadOptions{Overrides: []Override{{Key: "retry.max_attempts", Value: "0"}}})
	wantErr(t, err, "config: retry.max_attempts: must be at least 1, got 0")
}

func TestSubjectsOverlap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"invoke.jobs.>", "invoke.results.>", false},
		{"invoke.>", "invoke.results.>", true},
		{"invoke.*", "invoke.results.>", false},
		{"invoke.*.x", "invoke.results.>", true},
		{">", "a.>", true},
		{"a.b", "a.b", true},
		{"a.b", "a.b.c", false},
		{"a.*", "a.b", true},
	}
	for _, tt := range tests {
		if got := subjectsOverlap(tt.a, tt.b); got != tt.want {
			t.Errorf("subjectsOverlap(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}

// TestAckWaitMustCoverAPrefetchedJobsWait: prefetched jobs wait for a slot
// with their ack deadline running, up to one invocation per round of
// prefetch/concurrency.
func TestAckWaitMustCoverAPrefetchedJobsWait(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Invoke.Timeout.Read = 5 * time.Minute
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "consumer.ack_wait") || !strings.Contains(err.Error(), "worker.prefetch") {
		t.Fatalf("a 5m read timeout with a 90s ack wait: %v", err)
	}
	c.Worker.Prefetch = 1
	c.Worker.Concurrency = 1
	c.Consumer.AckWait = 5*time.Minute + time.Second
	c.Streams.DuplicateWindow = 6 * time.Minute
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
