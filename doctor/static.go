package doctor

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/worker"
)

// dlqRetentionFloor is the shortest dead-letter retention that survives a
// long weekend with nobody looking.
const dlqRetentionFloor = 72 * time.Hour

// Static checks c without touching the network: the rules the worker
// enforces at start-up (as findings with a why and a fix) and the
// relations between keys that it accepts but that hurt in production.
func Static(c config.Config) Report {
	var r Report
	var own []Finding
	if sane(c) {
		p := makePlan(c)
		r.Policy = p.policy(c)
		for _, check := range staticChecks {
			own = append(own, check(c, p)...)
		}
	}
	// The start-up rules, less those an own check already explained.
	covered := map[string]bool{}
	for _, f := range own {
		if f.Severity == Error {
			for _, k := range f.Keys {
				covered[k] = true
			}
		}
	}
	r.add(validationFindings(c.Validate(), covered)...)
	r.add(own...)
	if !sane(c) {
		r.add(Finding{Check: "policy", Severity: Skipped,
			What: "the policy is not explained and the relations between keys are not checked until the errors above are fixed"})
	}
	return r
}

func validationFindings(err error, covered map[string]bool) []Finding {
	if err == nil {
		return nil
	}
	var out []Finding
	// Validate joins one *config.KeyError per problem; a KeyError alone
	// also unwraps to a list (ErrInvalid and its cause), so it is not split.
	errs := []error{err}
	if _, single := err.(*config.KeyError); !single {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
	}
	for _, e := range errs {
		var ke *config.KeyError
		if errors.As(e, &ke) {
			if covered[ke.Key] {
				continue
			}
			out = append(out, Finding{Check: "config.valid", Severity: Error, Keys: []string{ke.Key},
				What: ke.Key + ": " + ke.Err.Error(),
				Why:  "`worker run` refuses this configuration (exit 2)",
				Fix:  "change " + ke.Key + " as the message says"})
			continue
		}
		out = append(out, Finding{Check: "config.valid", Severity: Error, What: e.Error(),
			Why: "`worker run` refuses this configuration (exit 2)", Fix: "correct the configuration as the message says"})
	}
	return out
}

type staticCheck func(config.Config, plan) []Finding

// staticChecks run in this order; each returns an OK finding when it
// passes, so the report lists what was checked.
var staticChecks = []staticCheck{
	checkAckWaitPrefetch,
	checkAckWaitHeartbeat,
	checkDuplicateWindow,
	checkJobsMaxAgeWaits,
	checkJobsMaxAgeSilentDrop,
	checkBodyRetention,
	checkDLQRetention,
	checkStateRetention,
	checkMaxJobAge,
	checkPayload,
	checkBreakerWindow,
	checkBreakerTimeout,
	checkBreakerBudget,
	checkMaxAckPending,
	checkReplicas,
	checkNATSCredentialsInClear,
	checkPlainHTTP,
	checkUnsigned,
}

func ok(check, format string, args ...any) Finding {
	return Finding{Check: check, Severity: OK, What: fmt.Sprintf(format, args...)}
}

func checkAckWaitPrefetch(c config.Config, p plan) []Finding {
	const check = "ack_wait.prefetch"
	if c.Consumer.AckWait <= 0 {
		return nil
	}
	if c.Consumer.AckWait > p.slotWait {
		return []Finding{ok(check, "consumer.ack_wait %s covers a prefetched job's wait for a slot (%s)", dur(c.Consumer.AckWait), dur(p.slotWait))}
	}
	return []Finding{{Check: check, Severity: Error, Keys: []string{"consumer.ack_wait"},
		What: fmt.Sprintf("consumer.ack_wait %s is not longer than a prefetched job's wait for a slot, %s (invoke.timeout.read %s x ceil(prefetch %d / worker.concurrency %d))",
			dur(c.Consumer.AckWait), dur(p.slotWait), dur(c.Invoke.Timeout.Read), p.prefetch, c.Worker.Concurrency),
		Why: "a prefetched job's ack deadline runs while it waits: it would be redelivered to another worker and run twice; `worker run` refuses this (exit 2)",
		Fix: fmt.Sprintf("raise consumer.ack_wait above %s, or lower worker.prefetch or invoke.timeout.read", dur(p.slotWait))}}
}

func checkAckWaitHeartbeat(c config.Config, _ plan) []Finding {
	const check = "ack_wait.heartbeat"
	aw, pi := c.Consumer.AckWait, c.Worker.ProgressInterval
	if aw <= 0 || pi <= 0 {
		return nil
	}
	switch {
	case aw <= 2*pi:
		return []Finding{{Check: check, Severity: Error, Keys: []string{"consumer.ack_wait"},
			What: fmt.Sprintf("consumer.ack_wait %s is not more than twice worker.progress_interval %s", dur(aw), dur(pi)),
			Why:  "a running job's deadline is extended every progress_interval: one late extension and the job is redelivered while it runs; `worker run` refuses this (exit 2)",
			Fix:  fmt.Sprintf("raise consumer.ack_wait to at least %s, or lower worker.progress_interval", dur(3*pi))}}
	case aw < 3*pi:
		return []Finding{{Check: check, Severity: Warning, Keys: []string{"consumer.ack_wait", "worker.progress_interval"},
			What: fmt.Sprintf("consumer.ack_wait %s leaves room for only %d extensions of worker.progress_interval %s", dur(aw), int(aw/pi), dur(pi)),
			Why:  "a garbage-collection pause or a slow NATS round trip on top of one late extension lets a running job be redelivered and run twice",
			Fix:  fmt.Sprintf("raise consumer.ack_wait to at least %s (3 extensions), or lower worker.progress_interval", dur(3*pi))}}
	}
	return []Finding{ok(check, "consumer.ack_wait %s is extended every %s (%d chances before a running job is redelivered)", dur(aw), dur(pi), int(aw/pi))}
}

func checkDuplicateWindow(c config.Config, _ plan) []Finding {
	const check = "duplicate_window.ack_wait"
	dw, aw := c.Streams.DuplicateWindow, c.Consumer.AckWait
	if dw <= 0 || aw <= 0 {
		return nil
	}
	if dw > aw {
		return []Finding{ok(check, "streams.duplicate_window %s outlasts consumer.ack_wait %s", dur(dw), dur(aw))}
	}
	return []Finding{{Check: check, Severity: Error, Keys: []string{"streams.duplicate_window"},
		What: fmt.Sprintf("streams.duplicate_window %s is not longer than consumer.ack_wait %s", dur(dw), dur(aw)),
		Why:  "a job set waiting whose acknowledgement was lost is recognised on its redelivery by its copy's Nats-Msg-Id: redelivered after the window, it would be stored waiting twice and run twice; `worker run` refuses this (exit 2)",
		Fix:  fmt.Sprintf("raise streams.duplicate_window above %s (and keep it within every non-zero max age)", dur(aw))}}
}

func checkJobsMaxAgeWaits(c config.Config, p plan) []Finding {
	const check = "jobs_max_age.waits"
	ma := c.Streams.JobsMaxAge
	if ma <= 0 {
		return []Finding{ok(check, "streams.jobs_max_age is unlimited: waiting jobs' copies are kept until due")}
	}
	if p.longestWait < ma {
		return []Finding{ok(check, "streams.jobs_max_age %s outlasts the longest wait, %s", dur(ma), dur(p.longestWait))}
	}
	return []Finding{{Check: check, Severity: Error, Keys: []string{"streams.jobs_max_age"},
		What: fmt.Sprintf("streams.jobs_max_age %s is not longer than the longest wait, %s: %s", dur(ma), dur(p.longestWait), p.longestWaitCause),
		Why:  "a waiting job is a copy stored in the jobs stream until it is due: JetStream removes it at the max age before it fires, and the job is gone without a result or a dead-letter record",
		Fix:  fmt.Sprintf("raise streams.jobs_max_age well above %s, or set it to 0 and use worker.max_job_age to expire old jobs into the DLQ", dur(p.longestWait))}}
}

func checkJobsMaxAgeSilentDrop(c config.Config, _ plan) []Finding {
	const check = "jobs_max_age.silent_drop"
	ma, mja := c.Streams.JobsMaxAge, c.Worker.MaxJobAge
	if ma <= 0 {
		return []Finding{ok(check, "streams.jobs_max_age is unlimited: JetStream never drops an unprocessed job")}
	}
	if mja > 0 && mja < ma {
		return []Finding{ok(check, "worker.max_job_age %s dead-letters old jobs as expired before streams.jobs_max_age %s drops them", dur(mja), dur(ma))}
	}
	return []Finding{{Check: check, Severity: Warning, Keys: []string{"streams.jobs_max_age", "worker.max_job_age"},
		What: fmt.Sprintf("streams.jobs_max_age %s drops jobs that wait that long in a backlog, and worker.max_job_age (%s) does not expire them first", dur(ma), offOr(mja)),
		Why:  "JetStream drops them without a trace: no result, no dead-letter record, nothing to replay or alert on",
		Fix:  fmt.Sprintf("set worker.max_job_age below %s, so old jobs are dead-lettered as expired (and can be replayed), or set streams.jobs_max_age to 0", dur(ma))}}
}

func checkBodyRetention(c config.Config, p plan) []Finding {
	const check = "retry.body_retention"
	if p.jobBodyTTL <= 0 {
		return []Finding{ok(check, "large job bodies are kept until their job completes")}
	}
	if p.jobBodyTTL > p.budget {
		return []Finding{ok(check, "large job bodies (kept %s) outlast the retry budget, %s", dur(p.jobBodyTTL), dur(p.budget))}
	}
	return []Finding{{Check: check, Severity: Error, Keys: []string{"streams.dlq_max_age", "streams.jobs_max_age", "retry.max_attempts", "retry.max_elapsed"},
		What: fmt.Sprintf("large job bodies are kept %s (streams.dlq_max_age, or streams.jobs_max_age when longer), less than a job may spend retrying, %s", dur(p.jobBodyTTL), dur(p.budget)),
		Why:  "a claim-checked body removed while its job still retries makes the job invalid, and its dead-letter record cannot be replayed",
		Fix:  fmt.Sprintf("raise streams.dlq_max_age above %s, or shorten the retries (retry.max_elapsed, retry.max_attempts)", dur(p.budget))}}
}

func checkDLQRetention(c config.Config, _ plan) []Finding {
	const check = "dlq.retention"
	ma := c.Streams.DLQMaxAge
	if ma <= 0 || ma >= dlqRetentionFloor {
		return []Finding{ok(check, "dead-letter records are kept %s", age(ma))}
	}
	return []Finding{{Check: check, Severity: Warning, Keys: []string{"streams.dlq_max_age"},
		What: fmt.Sprintf("dead-letter records are kept only %s", dur(ma)),
		Why:  "a record is the only copy of a failed job: over a long weekend they age out before anyone can look at them or replay them",
		Fix:  fmt.Sprintf("raise streams.dlq_max_age to %s or more (720h is the default)", dur(dlqRetentionFloor))}}
}

func checkStateRetention(c config.Config, p plan) []Finding {
	const check = "retry.state_retention"
	sa := c.Streams.StateMaxAge
	if sa <= 0 {
		return nil
	}
	if c.Retry.MaxElapsed > 0 || sa > p.budget {
		return []Finding{ok(check, "attempt counts (kept %s after a job's last update) outlast its retries", dur(sa))}
	}
	return []Finding{{Check: check, Severity: Warning, Keys: []string{"streams.state_max_age", "retry.max_elapsed"},
		What: fmt.Sprintf("streams.state_max_age %s is shorter than the retry budget %s, and retry.max_elapsed is 0 (no limit)", dur(sa), dur(p.budget)),
		Why:  "a job handed back in place that outlives its state forgets its attempts and history, and may be invoked more than retry.max_attempts times",
		Fix:  fmt.Sprintf("raise streams.state_max_age above %s, or set retry.max_elapsed", dur(p.budget))}}
}

func checkMaxJobAge(c config.Config, p plan) []Finding {
	const check = "retry.max_job_age"
	mja := c.Worker.MaxJobAge
	if mja <= 0 {
		return []Finding{ok(check, "worker.max_job_age is off: retries end by the retry policy alone")}
	}
	if mja > p.budget {
		return []Finding{ok(check, "worker.max_job_age %s leaves room for the whole retry budget, %s", dur(mja), dur(p.budget))}
	}
	return []Finding{{Check: check, Severity: Warning, Keys: []string{"worker.max_job_age", "retry.max_attempts", "retry.max_elapsed"},
		What: fmt.Sprintf("worker.max_job_age %s is shorter than the retry budget %s", dur(mja), dur(p.budget)),
		Why:  "a failing job is dead-lettered as expired before its retries run out: retry.max_attempts and retry.max_elapsed never apply, and the DLQ says expired where it means exhausted",
		Fix:  fmt.Sprintf("raise worker.max_job_age above %s, or lower retry.max_elapsed below it", dur(p.budget))}}
}

func checkPayload(c config.Config, p plan) []Finding {
	const check = "payload.request_limit"
	need := int64(c.Invoke.RequestLimit) + headerAllowance
	if p.messageLimit >= need {
		return []Finding{ok(check, "a body at invoke.request_limit %s fits in a message of %s with its headers: the claim check is only for results", c.Invoke.RequestLimit, config.Size(p.messageLimit))}
	}
	keys := []string{"streams.max_msg_size", "invoke.request_limit"}
	if c.NATS.URL == "" {
		keys = append(keys, "nats.embedded.max_payload")
	}
	return []Finding{{Check: check, Severity: Warning, Keys: keys,
		What: fmt.Sprintf("messages are limited to %s, less than invoke.request_limit %s plus room for headers", config.Size(p.messageLimit), c.Invoke.RequestLimit),
		Why:  "bodies between the two only travel through the claim check, which `client`, `worker enqueue` and routes use; any other publisher (the nats CLI, another language's client) is refused with 'maximum payload exceeded'",
		Fix:  fmt.Sprintf("raise streams.max_msg_size (and the server's max_payload) to %s or more, or make sure every publisher uses the claim check", config.Size(need))}}
}

func checkBreakerWindow(c config.Config, _ plan) []Finding {
	const check = "breaker.window.backoff"
	b := c.Breaker
	if b.Mode == "off" || b.Interval <= 0 {
		return nil
	}
	if b.Interval >= c.Retry.MaxInterval {
		return []Finding{ok(check, "breaker.interval %s spans retry.max_interval %s", dur(b.Interval), dur(c.Retry.MaxInterval))}
	}
	return []Finding{{Check: check, Severity: Warning, Keys: []string{"breaker.interval", "retry.max_interval"},
		What: fmt.Sprintf("breaker.interval %s is shorter than retry.max_interval %s", dur(b.Interval), dur(c.Retry.MaxInterval)),
		Why:  fmt.Sprintf("the breaker counts failures per window: with retries spaced further apart than the window, a failing function with little traffic never reaches breaker.min_requests %d in one window, and its breaker never opens", b.MinRequests),
		Fix:  fmt.Sprintf("raise breaker.interval to %s or more, or lower retry.max_interval", dur(c.Retry.MaxInterval))}}
}

func checkBreakerTimeout(c config.Config, p plan) []Finding {
	const check = "breaker.window.timeout"
	b := c.Breaker
	if b.Mode == "off" || b.Interval <= 0 {
		return nil
	}
	if b.Interval > p.attempt {
		return []Finding{ok(check, "breaker.interval %s is longer than an attempt that times out (%s)", dur(b.Interval), dur(p.attempt))}
	}
	return []Finding{{Check: check, Severity: Warning, Keys: []string{"breaker.interval", "invoke.timeout.read"},
		What: fmt.Sprintf("breaker.interval %s is not longer than an attempt that times out, %s (connect + read, or invoke.timeout.total)", dur(b.Interval), dur(p.attempt)),
		Why:  "a function that hangs fails each slot's attempt less than once per window: the breaker judges too few failures to open, and every slot stays tied up in timeouts",
		Fix:  fmt.Sprintf("raise breaker.interval well above %s, or lower invoke.timeout.read", dur(p.attempt))}}
}

func checkBreakerBudget(c config.Config, _ plan) []Finding {
	const check = "breaker.open.max_elapsed"
	b, me := c.Breaker, c.Retry.MaxElapsed
	if b.Mode == "off" || me <= 0 || b.OpenTimeout <= 0 {
		return nil
	}
	hold := worker.BreakerWaitCapPeriods * b.OpenTimeout
	if hold < me {
		return []Finding{ok(check, "a job held back by an open breaker (up to %s per wait) still has its retries within retry.max_elapsed %s", dur(hold), dur(me))}
	}
	return []Finding{{Check: check, Severity: Warning, Keys: []string{"breaker.open_timeout", "retry.max_elapsed"},
		What: fmt.Sprintf("a job held back by an open breaker waits up to %s (%d x breaker.open_timeout %s), not less than retry.max_elapsed %s", dur(hold), worker.BreakerWaitCapPeriods, dur(b.OpenTimeout), dur(me)),
		Why:  "the retry budget runs from when the job was stored, waits included: a function down for a while gets its jobs dead-lettered after one or two waits, without a retry",
		Fix:  fmt.Sprintf("raise retry.max_elapsed above %s, or lower breaker.open_timeout", dur(hold))}}
}

func checkMaxAckPending(c config.Config, p plan) []Finding {
	const check = "consumer.max_ack_pending"
	per := c.Worker.Concurrency + p.prefetch
	if c.Consumer.MaxAckPending >= per {
		return []Finding{ok(check, "consumer.max_ack_pending %d feeds %d processes at %d jobs each (concurrency + prefetch)", c.Consumer.MaxAckPending, c.Consumer.MaxAckPending/per, per)}
	}
	return []Finding{{Check: check, Severity: Warning, Keys: []string{"consumer.max_ack_pending", "worker.concurrency", "worker.prefetch"},
		What: fmt.Sprintf("consumer.max_ack_pending %d is less than one process takes, %d (worker.concurrency %d + prefetch %d)", c.Consumer.MaxAckPending, per, c.Worker.Concurrency, p.prefetch),
		Why:  "the whole fleet shares max_ack_pending: not even one process fills its slots, and adding processes adds nothing",
		Fix:  fmt.Sprintf("raise consumer.max_ack_pending to %d x the number of processes (and roll it out with consumer.update: true)", per)}}
}

func checkReplicas(c config.Config, _ plan) []Finding {
	const check = "streams.replicas"
	servers := natsServers(c.NATS.URL)
	if len(servers) <= 1 || c.Streams.Replicas > 1 {
		if c.Streams.Replicas > 1 {
			return []Finding{ok(check, "streams and buckets have %d replicas", c.Streams.Replicas)}
		}
		return []Finding{ok(check, "one server: streams and buckets have 1 replica")}
	}
	return []Finding{{Check: check, Severity: Warning, Keys: []string{"streams.replicas", "nats.url"},
		What: fmt.Sprintf("nats.url lists %d servers (a cluster) but streams.replicas is 1", len(servers)),
		Why:  "each stream lives on one server only: when that server is down, jobs, results and dead letters are unavailable, and when its disk is lost, so are they",
		Fix:  "set streams.replicas to 3 (every worker applies it to the streams and buckets in place at start-up)"}}
}

func checkNATSCredentialsInClear(c config.Config, _ plan) []Finding {
	const check = "nats.credentials_in_clear"
	n := c.NATS
	secret := n.Password != "" || n.Token != "" || n.Creds != "" || n.NKey != "" || strings.Contains(n.URL, "@")
	tlsFiles := n.TLS.CA != "" || n.TLS.Cert != ""
	var clear []string
	for _, u := range natsServers(n.URL) {
		if (u.Scheme == "nats" || u.Scheme == "ws") && !loopback(u.Hostname()) {
			clear = append(clear, u.Host)
		}
	}
	if !secret || tlsFiles || len(clear) == 0 {
		return []Finding{ok(check, "no NATS credentials sent to a remote server without TLS")}
	}
	return []Finding{{Check: check, Severity: Warning, Keys: []string{"nats.url", "nats.tls.ca"},
		What: fmt.Sprintf("NATS credentials are configured and %s is reached with nats:// or ws:// and no nats.tls.* file", strings.Join(clear, ", ")),
		Why:  "unless the server itself requires TLS, user names, passwords, tokens and every job body cross the network unencrypted",
		Fix:  "use tls:// or wss:// URLs (with nats.tls.ca for a private CA), or confirm the server is configured with tls and verify:true"}}
}

func checkPlainHTTP(c config.Config, _ plan) []Finding {
	const check = "invoke.plain_http"
	var plain []string
	for _, raw := range endpointURLs(c) {
		u, err := url.Parse(raw)
		if err == nil && u.Scheme == "http" && !loopback(u.Hostname()) {
			plain = append(plain, u.Host)
		}
	}
	if len(plain) == 0 {
		return []Finding{ok(check, "every remote function endpoint is https")}
	}
	return []Finding{{Check: check, Severity: Warning, Keys: []string{"invoke.endpoints", "invoke.management_endpoint"},
		What: "http:// endpoint(s) on another host: " + strings.Join(plain, ", "),
		Why:  "request bodies and answers cross the network unencrypted; OCI Functions serves https only, so these are not OCI",
		Fix:  "use https:// endpoints; http:// is for the local emulator on 127.0.0.1"}}
}

func checkUnsigned(c config.Config, _ plan) []Finding {
	const check = "invoke.unsigned"
	if c.Invoke.OCI.Auth != "none" {
		return []Finding{ok(check, "requests are signed (invoke.oci.auth %s)", c.Invoke.OCI.Auth)}
	}
	var remote []string
	for _, raw := range endpointURLs(c) {
		if u, err := url.Parse(raw); err == nil && !loopback(u.Hostname()) {
			remote = append(remote, u.Host)
		}
	}
	if len(remote) == 0 {
		return []Finding{ok(check, "requests are unsigned (invoke.oci.auth none), to local endpoints only")}
	}
	return []Finding{{Check: check, Severity: Warning, Keys: []string{"invoke.oci.auth"},
		What: "invoke.oci.auth is none, and requests go to " + strings.Join(remote, ", "),
		Why:  "OCI refuses unsigned requests (401): every job would be dead-lettered as permanent",
		Fix:  "set invoke.oci.auth to api_key, instance_principal, resource_principal or oke_workload_identity; none is for the local emulator"}}
}

// natsServers parses nats.url's list; unparsable entries are left to
// config.Validate.
func natsServers(list string) []*url.URL {
	var out []*url.URL
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		if u, err := url.Parse(s); err == nil {
			out = append(out, u)
		}
	}
	return out
}

// endpointURLs are the configured invoke endpoints, sorted, then the
// management endpoint when set.
func endpointURLs(c config.Config) []string {
	var out []string
	for _, id := range sortedIDs(c.Invoke.Endpoints) {
		out = append(out, c.Invoke.Endpoints[id])
	}
	if c.Invoke.ManagementEndpoint != "" {
		out = append(out, c.Invoke.ManagementEndpoint)
	}
	return out
}

func sortedIDs(m map[string]string) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// offOr renders a duration where 0 is off.
func offOr(d time.Duration) string {
	if d <= 0 {
		return "off"
	}
	return dur(d)
}
