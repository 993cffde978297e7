package doctor

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/service"
	"github.com/invoke-worker/worker/worker"
)

// plan is the configuration's policy in numbers, computed once for the
// checks and the explanation.
type plan struct {
	// pauses are the nominal pauses between attempts (before jitter).
	pauses []time.Duration
	// attempt is the longest attempt that ends in a timeout: connect plus
	// read, or invoke.timeout.total when set. An answer that keeps
	// trickling in is not bounded without invoke.timeout.total.
	attempt time.Duration
	// budget is the worst case from storing a job to the end of its last
	// attempt: every attempt timing out, every pause at its longest.
	budget time.Duration
	// budgetByElapsed says retry.max_elapsed, not retry.max_attempts,
	// ends the retries in the worst case.
	budgetByElapsed bool
	// longestWait is the longest a waiting copy stays in the jobs stream,
	// and longestWaitCause what makes it.
	longestWait      time.Duration
	longestWaitCause string
	// prefetch is worker.prefetch with 0 resolved; slotWait the longest a
	// prefetched job may wait for a slot.
	prefetch int
	slotWait time.Duration
	// messageLimit is the largest message the jobs stream takes (the
	// smaller of streams.max_msg_size and, for the embedded server, its
	// max_payload): bodies above it go through the claim check.
	messageLimit int64
	// jobBodyTTL is the age at which claim-checked job bodies are
	// removed (0: never), as queue.Topology.BodyBuckets sets it.
	jobBodyTTL time.Duration
}

// headerAllowance is room for a job's headers beside its body: its own
// headers are small, but a dead-letter record adds up to JetStream's
// 64 KiB header limit.
const headerAllowance = 64 << 10

// sane reports whether the values the plan divides or multiplies by are
// usable; config.Validate reports them otherwise.
func sane(c config.Config) bool {
	r := c.Retry
	return r.MaxAttempts >= 1 && r.InitialInterval > 0 && r.MaxInterval >= r.InitialInterval &&
		r.Multiplier >= 1 && r.Randomization >= 0 && r.Randomization <= 1 &&
		c.Worker.Concurrency >= 1 && c.Worker.Prefetch >= 0 &&
		c.Invoke.Timeout.Read > 0 && c.Invoke.Timeout.Connect > 0 && c.Invoke.Timeout.Total >= 0
}

func makePlan(c config.Config) plan {
	var p plan
	r := c.Retry
	d := r.InitialInterval
	var longest time.Duration
	for i := 1; i < r.MaxAttempts; i++ {
		if len(p.pauses) < 64 {
			p.pauses = append(p.pauses, d)
		}
		longest = satAdd(longest, min(time.Duration(float64(d)*(1+r.Randomization)), r.MaxInterval))
		if d >= r.MaxInterval {
			// The rest are all at the cap: no need to walk a million attempts.
			longest = satAdd(longest, satMul(r.MaxInterval, r.MaxAttempts-1-i))
			break
		}
		d = time.Duration(math.Min(float64(d)*r.Multiplier, float64(r.MaxInterval)))
	}
	p.attempt = c.Invoke.Timeout.Connect + c.Invoke.Timeout.Read
	if c.Invoke.Timeout.Total > 0 {
		p.attempt = min(p.attempt, c.Invoke.Timeout.Total)
	}
	p.budget = satAdd(satMul(p.attempt, r.MaxAttempts), longest)
	if r.MaxElapsed > 0 && r.MaxElapsed+p.attempt < p.budget {
		p.budget, p.budgetByElapsed = r.MaxElapsed+p.attempt, true
	}

	p.longestWait, p.longestWaitCause = r.MaxInterval, "a retry's pause (retry.max_interval)"
	if b := c.Breaker; b.Mode != "off" && worker.BreakerWaitCapPeriods*b.OpenTimeout > p.longestWait {
		p.longestWait = worker.BreakerWaitCapPeriods * b.OpenTimeout
		p.longestWaitCause = fmt.Sprintf("a job held back by an open breaker (%d x breaker.open_timeout)", worker.BreakerWaitCapPeriods)
	}
	if w := c.Worker; (w.FairShare || w.PerFunctionConcurrency > 0) && worker.ShareWaitCap > p.longestWait {
		p.longestWait = worker.ShareWaitCap
		p.longestWaitCause = "a job waiting for its function's share of the slots (worker.fair_share, worker.per_function_concurrency)"
	}

	w := c.Worker
	p.prefetch = w.Prefetch
	if p.prefetch == 0 {
		p.prefetch = w.Concurrency
	}
	p.slotWait = c.Invoke.Timeout.Read * time.Duration((p.prefetch+w.Concurrency-1)/w.Concurrency)

	p.messageLimit = int64(c.Streams.MaxMsgSize)
	if c.NATS.URL == "" && c.NATS.Embedded.MaxPayload > 0 {
		p.messageLimit = min(p.messageLimit, int64(c.NATS.Embedded.MaxPayload))
	}
	for _, b := range service.Topology(c).BodyBuckets() {
		if b.Bucket == c.Streams.JobBodies {
			p.jobBodyTTL = b.TTL
		}
	}
	return p
}

// policy explains the plan in a few lines.
func (p plan) policy(c config.Config) []PolicyLine {
	var out []PolicyLine
	add := func(topic, format string, args ...any) {
		out = append(out, PolicyLine{Topic: topic, Text: fmt.Sprintf(format, args...)})
	}
	if c.NATS.URL == "" {
		add("nats", "no nats.url: `worker run` starts an embedded NATS server on %s, data in %s (one process; for a fleet, point every worker at a NATS cluster)", c.NATS.Embedded.Listen, c.NATS.Embedded.StoreDir)
	} else {
		add("nats", "%d server URL(s); streams and buckets with %d replica(s)", len(strings.Split(c.NATS.URL, ",")), c.Streams.Replicas)
	}
	add("delivery", "a delivered job is redelivered after consumer.ack_wait %s unless acknowledged; running jobs extend it every %s, so a crashed worker's jobs come back within %s",
		dur(c.Consumer.AckWait), dur(c.Worker.ProgressInterval), dur(c.Consumer.AckWait))
	add("slots", "%d invocations in flight per process, %d more prefetched; a prefetched job may wait up to %s for a slot", c.Worker.Concurrency, p.prefetch, dur(p.slotWait))
	add("attempt", "connect %s, then at most %s of silence while waiting for the answer (read); %s",
		dur(c.Invoke.Timeout.Connect), dur(c.Invoke.Timeout.Read), totalText(c.Invoke.Timeout.Total))
	add("retry", "up to %d attempts; pauses %s (x%g, jitter ±%g%%, at most %s)", c.Retry.MaxAttempts, pausesText(p.pauses, c.Retry.MaxAttempts), c.Retry.Multiplier, c.Retry.Randomization*100, dur(c.Retry.MaxInterval))
	end := fmt.Sprintf("retry.max_attempts %d", c.Retry.MaxAttempts)
	if p.budgetByElapsed {
		end = fmt.Sprintf("retry.max_elapsed %s", dur(c.Retry.MaxElapsed))
	}
	add("budget", "a job that fails every time is dead-lettered as exhausted at most %s after it was stored (every attempt timing out, %s ends it)", dur(p.budget), end)
	if c.Breaker.Mode == "off" {
		add("breaker", "off: failing functions are called at full rate")
	} else {
		add("breaker", "one per %s; opens when %g%% of at least %d attempts within %s fail, then holds jobs back %s (up to %s for a job held back again and again), uncharged",
			c.Breaker.Mode, c.Breaker.FailureRatio*100, c.Breaker.MinRequests, dur(c.Breaker.Interval), dur(c.Breaker.OpenTimeout), dur(worker.BreakerWaitCapPeriods*c.Breaker.OpenTimeout))
	}
	add("waits", "the longest a waiting job's copy stays in %s is %s: %s", c.Streams.Jobs, dur(p.longestWait), p.longestWaitCause)
	add("sizes", "request bodies up to %s; messages up to %s, larger job and result bodies go through the object store (claim check); answers read up to %s",
		c.Invoke.RequestLimit, config.Size(p.messageLimit), c.Invoke.ResponseLimit)
	add("retention", "jobs %s, results %s, dead letters %s, large job bodies %s, attempt state %s after its last update, duplicates remembered %s",
		age(c.Streams.JobsMaxAge), age(c.Streams.ResultsMaxAge), age(c.Streams.DLQMaxAge), age(p.jobBodyTTL), dur(c.Streams.StateMaxAge), dur(c.Streams.DuplicateWindow))
	add("shutdown", "in-flight jobs get worker.drain_timeout %s to finish; give the process longer than that to stop (Kubernetes: terminationGracePeriodSeconds)", dur(c.Worker.DrainTimeout))
	return out
}

func totalText(total time.Duration) string {
	if total <= 0 {
		return "no cap on a whole attempt (invoke.timeout.total 0): an answer that keeps arriving is read however long it takes"
	}
	return "a whole attempt is capped at " + dur(total)
}

func pausesText(pauses []time.Duration, attempts int) string {
	if len(pauses) == 0 {
		return "none (a single attempt)"
	}
	var parts []string
	for i, d := range pauses {
		if i > 0 && d == pauses[i-1] {
			parts = append(parts, fmt.Sprintf("then %s for the rest", dur(d)))
			break
		}
		parts = append(parts, dur(d))
	}
	if attempts-1 > len(pauses) && !strings.HasPrefix(parts[len(parts)-1], "then") {
		parts = append(parts, "...")
	}
	return strings.Join(parts, ", ")
}

// dur renders a duration the way an operator writes one: whole seconds
// once it is more than a few seconds.
func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		d = d.Round(time.Second)
	case d >= time.Second:
		d = d.Round(100 * time.Millisecond)
	}
	s := d.String()
	// 2m0s -> 2m, 1h0m0s -> 1h
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// age renders a max age, where 0 is unlimited.
func age(d time.Duration) string {
	if d <= 0 {
		return "unlimited"
	}
	return dur(d)
}

// satAdd and satMul saturate instead of overflowing, for budgets built
// from absurd values (a million attempts of an hour each).
func satAdd(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func satMul(d time.Duration, n int) time.Duration {
	if n > 0 && d > math.MaxInt64/time.Duration(n) {
		return math.MaxInt64
	}
	return d * time.Duration(n)
}
