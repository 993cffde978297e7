package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/invoke-worker/worker/admin"
	"github.com/invoke-worker/worker/fanout"
	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/tracing"
)

// maxPayloadLimit is the largest max_payload a NATS server accepts.
const maxPayloadLimit = 64 * MiB

// Validate checks every rule and returns all problems joined, each a
// *KeyError naming its key, or nil.
func (c Config) Validate() error {
	v := &validator{}

	n := c.NATS
	v.natsURLs("nats.url", n.URL)
	v.check(n.Creds == "" || n.NKey == "", "nats.nkey", "cannot be used with nats.creds (both sign the connection)")
	v.check(n.Password == "" || n.User != "", "nats.password", "needs nats.user")
	v.check(n.TLS.Cert == "" || n.TLS.Key != "", "nats.tls.key", "needs to be set with nats.tls.cert")
	v.check(n.TLS.Key == "" || n.TLS.Cert != "", "nats.tls.cert", "needs to be set with nats.tls.key")
	v.subject("nats.inbox_prefix", n.InboxPrefix, false)
	v.positive("nats.connect_timeout", n.ConnectTimeout)
	v.positive("nats.reconnect_wait", n.ReconnectWait)
	v.hostPort("nats.embedded.listen", n.Embedded.Listen)
	v.check(n.Embedded.StoreDir != "", "nats.embedded.store_dir", "must not be empty")
	v.sizeRange("nats.embedded.max_payload", n.Embedded.MaxPayload, maxPayloadLimit)

	s := c.Streams
	v.name("streams.jobs", s.Jobs)
	v.name("streams.results", s.Results)
	v.name("streams.dlq", s.DLQ)
	v.check(s.Results != s.Jobs, "streams.results", "must differ from streams.jobs")
	v.check(s.DLQ != s.Jobs && s.DLQ != s.Results, "streams.dlq", "must differ from streams.jobs and streams.results")
	v.check(len(s.JobsSubjects) > 0, "streams.jobs_subjects", "must list at least one subject")
	for _, subj := range s.JobsSubjects {
		v.subject("streams.jobs_subjects", subj, true)
	}
	v.subject("streams.results_prefix", s.ResultsPrefix, false)
	v.subject("streams.dlq_prefix", s.DLQPrefix, false)
	v.subject("streams.wait_prefix", s.WaitPrefix, false)
	v.streamOverlaps(s)
	v.check(s.Replicas >= 1 && s.Replicas <= 5, "streams.replicas", "must be 1 to 5, got %d", s.Replicas)
	v.sizeRange("streams.max_msg_size", s.MaxMsgSize, 0)
	v.nonNegative("streams.jobs_max_age", s.JobsMaxAge)
	v.nonNegative("streams.results_max_age", s.ResultsMaxAge)
	v.nonNegative("streams.dlq_max_age", s.DLQMaxAge)
	v.positive("streams.duplicate_window", s.DuplicateWindow)
	v.name("streams.state", s.State)
	v.bucket("streams.job_bodies", s.JobBodies)
	v.bucket("streams.result_bodies", s.ResultBodies)
	v.check(s.JobBodies != s.ResultBodies, "streams.result_bodies", "must differ from streams.job_bodies (they age out differently)")
	v.positive("streams.state_max_age", s.StateMaxAge)
	v.check(s.StateMaxAge <= 0 || c.Retry.MaxElapsed <= 0 || s.StateMaxAge > c.Retry.MaxElapsed, "streams.state_max_age",
		"%s must be longer than retry.max_elapsed (%s), or attempt counts would be forgotten while a job still retries", s.StateMaxAge, c.Retry.MaxElapsed)
	// JetStream refuses a duplicate window longer than the stream's max age.
	for _, a := range []struct {
		key string
		age time.Duration
	}{{"streams.jobs_max_age", s.JobsMaxAge}, {"streams.results_max_age", s.ResultsMaxAge}, {"streams.dlq_max_age", s.DLQMaxAge}} {
		v.check(a.age <= 0 || s.DuplicateWindow <= a.age, "streams.duplicate_window",
			"%s is longer than %s %s; JetStream requires the window to fit in the max age", s.DuplicateWindow, a.key, a.age)
	}

	// Prefetched jobs wait for a slot with their ack deadline running: a
	// slot frees within one invocation, so prefetch/concurrency rounds of
	// invocations at most.
	if w := c.Worker; w.Concurrency > 0 && w.Prefetch >= 0 {
		prefetch := w.Prefetch
		if prefetch == 0 {
			prefetch = w.Concurrency
		}
		rounds := (prefetch + w.Concurrency - 1) / w.Concurrency
		wait := c.Invoke.Timeout.Read * time.Duration(rounds)
		v.check(c.Consumer.AckWait > wait, "consumer.ack_wait",
			"%s is too short: a prefetched job may wait %s for a slot (invoke.timeout.read %s x ceil(worker.prefetch %d / worker.concurrency %d)); raise it, or lower invoke.timeout.read or worker.prefetch",
			c.Consumer.AckWait, wait, c.Invoke.Timeout.Read, prefetch, w.Concurrency)
	}
	v.check(c.Worker.Prefetch >= 0, "worker.prefetch", "must not be negative, got %d", c.Worker.Prefetch)
	cs := c.Consumer
	v.name("consumer.durable", cs.Durable)
	v.positive("consumer.ack_wait", cs.AckWait)
	v.check(cs.MaxAckPending >= 1, "consumer.max_ack_pending", "must be at least 1, got %d", cs.MaxAckPending)

	wk := c.Worker
	v.check(wk.Concurrency >= 1, "worker.concurrency", "must be at least 1, got %d", wk.Concurrency)
	v.positive("worker.drain_timeout", wk.DrainTimeout)
	v.nonNegative("worker.max_job_age", wk.MaxJobAge)
	v.check(wk.PerFunctionConcurrency >= 0, "worker.per_function_concurrency", "must be 0 (off) or more, got %d", wk.PerFunctionConcurrency)
	v.check(wk.PerFunctionRate >= 0, "worker.per_function_rate", "must be 0 (off) or more, got %g", wk.PerFunctionRate)
	v.check(wk.ReservedShare >= 0 && wk.ReservedShare < 1, "worker.reserved_share", "must be from 0 (none) to below 1, got %g", wk.ReservedShare)
	v.check(wk.MetricFunctions >= 1, "worker.metric_functions", "must be at least 1, got %d", wk.MetricFunctions)
	v.check(wk.WaitLogThreshold >= 0, "worker.wait_log_threshold", "must be 0 (off) or more, got %d", wk.WaitLogThreshold)
	v.positive("worker.sample_interval", wk.SampleInterval)
	// A job that was set waiting but whose acknowledgement was lost is
	// recognised on its redelivery by its copy's Nats-Msg-Id: the
	// redelivery must come within the duplicate window.
	v.check(s.DuplicateWindow <= 0 || cs.AckWait <= 0 || s.DuplicateWindow > cs.AckWait, "streams.duplicate_window",
		"%s must be longer than consumer.ack_wait (%s): a waiting job's lost acknowledgement is recognised by the duplicate window", s.DuplicateWindow, cs.AckWait)
	v.positive("worker.progress_interval", wk.ProgressInterval)
	v.check(wk.GCMinHeap >= 0, "worker.gc_min_heap", "must be 0 (off) or more, got %s", wk.GCMinHeap)
	v.sizeRange("worker.pull_max_bytes", wk.PullMaxBytes, 1<<30)
	// A single missed extension must not cost the job its delivery.
	if cs.AckWait > 0 && wk.ProgressInterval > 0 {
		v.check(cs.AckWait > 2*wk.ProgressInterval, "consumer.ack_wait",
			"%s must be more than twice worker.progress_interval (%s): the ack deadline must be extended at least twice per ack_wait",
			cs.AckWait, wk.ProgressInterval)
	}

	in := c.Invoke
	v.check(len(in.APIVersion) == 8 && strings.Trim(in.APIVersion, "0123456789") == "",
		"invoke.api_version", "%q is not a date version like 20260325", in.APIVersion)
	v.sizeRange("invoke.request_limit", in.RequestLimit, 0)
	v.sizeRange("invoke.response_limit", in.ResponseLimit, 0)
	v.positive("invoke.timeout.connect", in.Timeout.Connect)
	v.positive("invoke.timeout.read", in.Timeout.Read)
	v.nonNegative("invoke.timeout.total", in.Timeout.Total)
	for _, id := range sortedKeys(in.Endpoints) {
		v.mapKey("invoke.endpoints", id)
		v.httpURL("invoke.endpoints", id, in.Endpoints[id])
	}
	if in.ManagementEndpoint != "" {
		v.httpURL("invoke.management_endpoint", "", in.ManagementEndpoint)
	}
	v.oneOf("invoke.oci.auth", in.OCI.Auth, "api_key", "instance_principal", "resource_principal", "oke_workload_identity", "none")
	if in.OCI.Auth == "api_key" {
		v.check(in.OCI.ConfigFile != "", "invoke.oci.config_file", "must be set when invoke.oci.auth is api_key")
		v.check(in.OCI.Profile != "", "invoke.oci.profile", "must be set when invoke.oci.auth is api_key")
	}

	r := c.Retry
	v.check(r.MaxAttempts >= 1, "retry.max_attempts", "must be at least 1, got %d", r.MaxAttempts)
	v.positive("retry.initial_interval", r.InitialInterval)
	v.positive("retry.max_interval", r.MaxInterval)
	v.check(r.MaxInterval >= r.InitialInterval, "retry.max_interval",
		"%s is shorter than retry.initial_interval %s", r.MaxInterval, r.InitialInterval)
	v.check(r.Multiplier >= 1, "retry.multiplier", "must be at least 1, got %g", r.Multiplier)
	v.nonNegative("retry.max_elapsed", r.MaxElapsed)
	v.check(r.Randomization >= 0 && r.Randomization <= 1, "retry.randomization", "must be 0 to 1, got %g", r.Randomization)
	for _, e := range r.On {
		v.retryRule("retry.on", e)
	}
	for _, e := range r.Never {
		v.retryRule("retry.never", e)
	}

	b := c.Breaker
	v.oneOf("breaker.mode", b.Mode, "function", "host", "off")
	v.check(b.FailureRatio > 0 && b.FailureRatio <= 1, "breaker.failure_ratio", "must be more than 0 and at most 1, got %g", b.FailureRatio)
	v.check(b.MinRequests >= 1, "breaker.min_requests", "must be at least 1, got %d", b.MinRequests)
	v.positive("breaker.interval", b.Interval)
	v.positive("breaker.open_timeout", b.OpenTimeout)
	v.check(b.HalfOpenRequests >= 1, "breaker.half_open_requests", "must be at least 1, got %d", b.HalfOpenRequests)

	if c.HTTP.Listen != "" {
		v.hostPort("http.listen", c.HTTP.Listen)
	}
	v.check(!c.HTTP.Pprof || c.HTTP.Listen != "", "http.pprof", "needs the admin endpoint, but http.listen is empty")
	v.check(!c.HTTP.Pprof || c.HTTP.Listen == "" || c.HTTP.TokenFile != "" || admin.OnLoopback(c.HTTP.Listen), "http.pprof",
		"serves /debug/pprof beyond loopback (http.listen %s) only with http.token_file set", c.HTTP.Listen)

	v.oneOf("log.level", c.Log.Level, "trace", "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "json", "console")
	v.oneOf("tracing.exporter", c.Tracing.Exporter, tracing.ExporterOff, tracing.ExporterOTLPHTTP, tracing.ExporterOTLPGRPC)
	v.check(c.Tracing.SampleRatio >= 0 && c.Tracing.SampleRatio <= 1, "tracing.sample_ratio", "must be from 0 to 1, got %g", c.Tracing.SampleRatio)
	if c.Tracing.Endpoint != "" {
		u, err := url.Parse(c.Tracing.Endpoint)
		v.check(err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "", "tracing.endpoint",
			"want the collector's URL, such as http://collector:4318 (otlp-http) or http://collector:4317 (otlp-grpc), got %q", c.Tracing.Endpoint)
	}

	e := c.Emulator
	v.hostPort("emulator.listen", e.Listen)
	v.check(e.Default != "", "emulator.default", "must not be empty")
	v.check(e.RecordCalls >= 0, "emulator.record_calls", "must not be negative, got %d", e.RecordCalls)
	for _, id := range sortedKeys(e.Functions) {
		v.mapKey("emulator.functions", id)
		v.check(e.Functions[id] != "", "emulator.functions", "%s: behaviour must not be empty", id)
	}

	v.routes(c)
	return errors.Join(v.errs...)
}

// Route limits and defaults.
const (
	// RouteNameMax keeps a route's job ids (<name>-<stream>-<seq>-<n>)
	// within the 128 characters a job id may have.
	RouteNameMax = 32
	// RouteJobSubjectPrefix starts a route's default job subject.
	RouteJobSubjectPrefix = fanout.JobSubjectPrefix
)

// JobSubjectOf returns where r publishes its jobs.
func (r Route) JobSubjectOf() string {
	if r.JobSubject != "" {
		return r.JobSubject
	}
	return RouteJobSubjectPrefix + r.Name
}

// routeOwned are the job headers a route sets itself; header mapping may
// not produce them.
var routeOwned = []string{job.HeaderMsgID, job.HeaderJobID, job.HeaderFunctionID, job.HeaderBodyObject, job.HeaderFnIntent}

func (v *validator) routes(c Config) {
	names := map[string]int{}
	for i, r := range c.Routes {
		key := func(k string) string { return fmt.Sprintf("routes[%d].%s", i, k) }
		switch {
		case r.Name == "":
			v.check(false, key("name"), "is required")
		case len(r.Name) > RouteNameMax || job.ValidateJobID(r.Name) != nil:
			v.check(false, key("name"), "%q must be 1 to %d of A-Z a-z 0-9 _ -", r.Name, RouteNameMax)
		default:
			if j, dup := names[r.Name]; dup {
				v.check(false, key("name"), "%q is also the name of routes[%d]", r.Name, j)
			}
			names[r.Name] = i
		}
		v.name(key("stream"), r.Stream)
		v.check(r.Stream != c.Streams.Jobs, key("stream"), "%q is the jobs stream; a route reads events and publishes jobs", r.Stream)
		for _, s := range r.StreamSubjects {
			v.subject(key("stream_subjects"), s, true)
			for _, j := range append(slices.Clone(c.Streams.JobsSubjects), c.Streams.ResultsPrefix+".>", c.Streams.DLQPrefix+".>") {
				v.check(!subjectsOverlap(s, j), key("stream_subjects"), "%q overlaps the worker's own subjects %q", s, j)
			}
		}
		for _, s := range r.Subjects {
			v.subject(key("subjects"), s, true)
		}
		v.check(len(r.Functions) > 0, key("functions"), "must list at least one function OCID")
		seen := map[string]bool{}
		for _, fn := range r.Functions {
			if err := job.ValidateFunctionID(fn); err != nil {
				v.check(false, key("functions"), "%v", err)
			}
			v.check(!seen[fn], key("functions"), "%s is listed twice", fn)
			seen[fn] = true
		}
		v.oneOf(key("intent"), r.Intent, "", job.IntentHTTPRequest, job.IntentCloudEvent)
		if r.Name != "" {
			subj := r.JobSubjectOf()
			if r.JobSubject != "" {
				v.subject(key("job_subject"), subj, false)
			}
			captured := slices.ContainsFunc(c.Streams.JobsSubjects, func(p string) bool { return subjectsOverlap(p, subj) })
			what := "the default " + subj
			if r.JobSubject != "" {
				what = fmt.Sprintf("%q", subj)
			}
			v.check(captured, key("job_subject"), "%s is not under streams.jobs_subjects %q", what, c.Streams.JobsSubjects)
		}
		v.oneOf(key("deliver"), r.Deliver, "", "all", "new")

		h := r.Headers
		for _, k := range h.Copy {
			v.check(k == "*" || validHeaderName(k), key("headers.copy"), "%q is not a header name", k)
		}
		for _, from := range sortedKeys(h.Rename) {
			to := h.Rename[from]
			v.check(validHeaderName(from), key("headers.rename"), "%q is not a header name", from)
			v.check(validHeaderName(to), key("headers.rename"), "%s: %q is not a header name", from, to)
			v.routeOwned(key("headers.rename"), to, r)
		}
		for _, k := range sortedKeys(h.Set) {
			v.check(validHeaderName(k), key("headers.set"), "%q is not a header name", k)
			v.routeOwned(key("headers.set"), k, r)
		}
		if r.Intent != job.IntentCloudEvent {
			v.check(r.CloudEvent == (RouteCloudEvent{}), key("cloudevent"), "applies to intent cloudevent only, but intent is %q", r.Intent)
		}
	}
}

// routeOwned rejects mapping onto a header the route sets itself.
func (v *validator) routeOwned(key, h string, r Route) {
	for _, o := range routeOwned {
		v.check(!strings.EqualFold(h, o), key, "%s is set by the route itself", o)
	}
	if r.Intent == job.IntentCloudEvent {
		v.check(!strings.EqualFold(h, job.HeaderContentType), key, "%s is set by the route (application/cloudevents+json) when intent is cloudevent", job.HeaderContentType)
	}
}

// validHeaderName accepts what NATS accepts: printable ASCII without ':'
// or white space.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}
