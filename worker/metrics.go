package worker

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/invoke-worker/worker/dlq"
)

// metrics are the worker's Prometheus collectors. A nil *metrics records
// nothing, so the hot path needs no checks at the call sites.
//
// Label values are bounded: function ids become labels for the first
// MetricFunctions functions a process sees, and "other" after that; job ids
// never do.
type metrics struct {
	jobs        *prometheus.CounterVec
	completed   prometheus.Counter // jobs{outcome="completed"}, resolved once: the hot path
	attempt2xx  prometheus.Counter
	attempts    *prometheus.CounterVec
	duration    prometheus.Histogram
	inFlight    prometheus.Gauge
	breaker     *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	deferred    *prometheus.CounterVec
	waits       *prometheus.CounterVec
	resumes     *prometheus.CounterVec
	waitFails   prometheus.Counter
	nakFails    prometheus.Counter
	ackFails    prometheus.Counter
	fetchErrors prometheus.Counter
	reachLapses prometheus.Counter
	endToEnd    prometheus.Histogram
	publish     prometheus.Histogram

	consumerPending    prometheus.Gauge
	consumerAckPending prometheus.Gauge
	consumerMaxAck     prometheus.Gauge
	jobsWaiting        prometheus.Gauge
	dlqDepth           *prometheus.GaugeVec

	functions labelCap // function label values
	breakerMu sync.Mutex
	breakers  map[string]struct{} // keys with a breaker_state series
}

// labelCap admits the first max distinct values as labels; later ones are
// "other".
type labelCap struct {
	mu   sync.Mutex
	max  int
	seen map[string]struct{}
}

const otherLabel = "other"

func (c *labelCap) label(v string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[v]; ok {
		return v
	}
	if len(c.seen) >= c.max {
		return otherLabel
	}
	c.seen[v] = struct{}{}
	return v
}

func newMetrics(reg prometheus.Registerer, maxFunctions int) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invoke_worker_jobs_total",
			Help: "Jobs settled, by outcome: completed, retried, dead_lettered_<reason>, released, already_completed, result_not_stored, record_not_stored.",
		}, []string{"outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invoke_worker_attempts_total",
			Help: "Invocation attempts by result class: 2xx, 4xx, 5xx, timeout, network, other.",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "invoke_worker_attempt_duration_seconds",
			Help:    "Duration of invocation attempts.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "invoke_worker_in_flight",
			Help: "Jobs being handled now.",
		}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "invoke_worker_breaker_state",
			Help: "Circuit breaker state by key (function or host): 0 closed, 1 half-open, 2 open. Idle closed breakers are dropped; at most worker.metric_functions keys.",
		}, []string{"key"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invoke_worker_breaker_transitions_total",
			Help: "Circuit breaker state changes, by the state entered: closed, half-open, open.",
		}, []string{"to"}),
		deferred: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invoke_worker_deferred_total",
			Help: "Jobs given back in place (holding a delivery slot while they wait), by cause: shutdown, or a wait whose copy could not be stored.",
		}, []string{"cause"}),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invoke_worker_waits_total",
			Help: "Jobs set to wait as scheduled copies (holding no delivery slot), by function and cause: retry, breaker_open, fair_share, function_limit, rate_limit, body_unavailable.",
		}, []string{"function", "cause"}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invoke_worker_wait_returns_total",
			Help: "Waiting copies delivered back, by function and the cause they waited for. Fleet-wide, waits minus returns is what is waiting.",
		}, []string{"function", "cause"}),
		waitFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "invoke_worker_wait_failures_total",
			Help: "Waits whose copy could not be stored; the job was handed back in place instead.",
		}),
		nakFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "invoke_worker_nak_failures_total",
			Help: "Give-backs (Nak) that failed; JetStream redelivers those jobs after their ack wait.",
		}),
		ackFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "invoke_worker_ack_failures_total",
			Help: "Acknowledgements that failed after the job's result, record or copy was stored; the redelivery finds it.",
		}),
		reachLapses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "invoke_worker_nats_reach_lapses_total",
			Help: "Times NATS was out of reach long enough for held jobs to be redelivered elsewhere.",
		}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "invoke_worker_fetch_errors_total",
			Help: "Failed pull requests on the jobs consumer.",
		}),
		consumerPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "invoke_worker_consumer_pending",
			Help: "Jobs stored and not yet delivered by the shared consumer (sampled).",
		}),
		consumerAckPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "invoke_worker_consumer_ack_pending",
			Help: "Jobs delivered and not yet acknowledged, fleet-wide (sampled); delivery stops at invoke_worker_consumer_max_ack_pending.",
		}),
		consumerMaxAck: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "invoke_worker_consumer_max_ack_pending",
			Help: "The shared consumer's MaxAckPending.",
		}),
		jobsWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "invoke_worker_jobs_waiting",
			Help: "Waiting copies in the jobs stream, fleet-wide (sampled).",
		}),
		endToEnd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "invoke_worker_job_latency_seconds",
			Help:    "Time from a job's first store in JetStream (a waiting copy keeps it) to its result stored: queueing, waits, retries and the call.",
			Buckets: prometheus.ExponentialBuckets(0.005, 3, 14),
		}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "invoke_worker_result_publish_seconds",
			Help:    "Time to store a result in JetStream, retries included, whether it was stored or not.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}),
		dlqDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "invoke_worker_dlq_depth",
			Help: "Dead-letter records held, by reason: invalid, permanent, exhausted, expired (sampled, fleet-wide).",
		}, []string{"reason"}),
		functions: labelCap{max: maxFunctions, seen: map[string]struct{}{}},
		breakers:  map[string]struct{}{},
	}
	m.completed = m.jobs.WithLabelValues("completed")
	m.attempt2xx = m.attempts.WithLabelValues("2xx")
	// Every known label value starts at 0: rate() and increase() then see
	// a first failure, and alerts and dashboards have series to work on.
	for _, o := range []string{"retried", "released", "already_completed", "already_settled", "result_not_stored", "record_not_stored", "left"} {
		m.jobs.WithLabelValues(o)
	}
	for _, r := range dlq.Reasons() {
		m.jobs.WithLabelValues("dead_lettered_" + string(r))
	}
	for _, r := range []string{"4xx", "5xx", "timeout", "network", "other"} {
		m.attempts.WithLabelValues(r)
	}
	for _, s := range []gobreaker.State{gobreaker.StateClosed, gobreaker.StateHalfOpen, gobreaker.StateOpen} {
		m.transitions.WithLabelValues(s.String())
	}
	for _, c := range []string{causeShutdown, causeRetry, causeBreakerOpen, causeFairShare, causeFunctionLimit, causeRateLimit, causeBodyUnavailable} {
		m.deferred.WithLabelValues(c)
	}
	reg.MustRegister(m.jobs, m.attempts, m.duration, m.inFlight, m.breaker, m.transitions, m.deferred,
		m.waits, m.resumes, m.waitFails, m.nakFails, m.ackFails, m.fetchErrors, m.reachLapses,
		m.consumerPending, m.consumerAckPending, m.consumerMaxAck, m.jobsWaiting,
		m.endToEnd, m.publish, m.dlqDepth)
	return m
}

func (m *metrics) job(outcome string) {
	switch {
	case m == nil:
	case outcome == "completed":
		m.completed.Inc()
	default:
		m.jobs.WithLabelValues(outcome).Inc()
	}
}

func (m *metrics) attempt(result string, seconds float64) {
	switch {
	case m == nil:
		return
	case result == "2xx":
		m.attempt2xx.Inc()
	default:
		m.attempts.WithLabelValues(result).Inc()
	}
	m.duration.Observe(seconds)
}

func (m *metrics) inFlightAdd(d float64) {
	if m != nil {
		m.inFlight.Add(d)
	}
}

// breakerState sets key's series, for at most functions.max keys at once.
func (m *metrics) breakerState(key string, s gobreaker.State) {
	if m == nil {
		return
	}
	m.breakerMu.Lock()
	defer m.breakerMu.Unlock()
	if _, ok := m.breakers[key]; !ok {
		if len(m.breakers) >= m.functions.max {
			return
		}
		m.breakers[key] = struct{}{}
	}
	m.breaker.WithLabelValues(key).Set(float64(s))
}

// breakerGone removes the series of a breaker that was dropped.
func (m *metrics) breakerGone(key string) {
	if m == nil {
		return
	}
	m.breakerMu.Lock()
	defer m.breakerMu.Unlock()
	if _, ok := m.breakers[key]; ok {
		delete(m.breakers, key)
		m.breaker.DeleteLabelValues(key)
	}
}

func (m *metrics) breakerTransition(to gobreaker.State) {
	if m != nil {
		m.transitions.WithLabelValues(to.String()).Inc()
	}
}

// held counts a job handed back in place.
func (m *metrics) held(cause string) {
	if m != nil {
		m.deferred.WithLabelValues(cause).Inc()
	}
}

func (m *metrics) waited(fn, cause string) {
	if m != nil {
		m.waits.WithLabelValues(m.functions.label(fn), cause).Inc()
	}
}

func (m *metrics) resumed(fn, cause string) {
	if m != nil {
		m.resumes.WithLabelValues(m.functions.label(fn), cause).Inc()
	}
}

func (m *metrics) waitFailure() {
	if m != nil {
		m.waitFails.Inc()
	}
}

func (m *metrics) nakFailure() {
	if m != nil {
		m.nakFails.Inc()
	}
}

func (m *metrics) ackFailure() {
	if m != nil {
		m.ackFails.Inc()
	}
}

func (m *metrics) fetchError() {
	if m != nil {
		m.fetchErrors.Inc()
	}
}

func (m *metrics) reachLapse() {
	if m != nil {
		m.reachLapses.Inc()
	}
}

func (m *metrics) consumer(s Sample) {
	if m != nil {
		m.consumerPending.Set(float64(s.Pending))
		m.consumerAckPending.Set(float64(s.AckPending))
		m.consumerMaxAck.Set(float64(s.MaxAckPending))
		m.jobsWaiting.Set(float64(s.Waiting))
		for reason, n := range s.DeadLetters {
			m.dlqDepth.WithLabelValues(reason).Set(float64(n))
		}
	}
}

// stored records a completed job's time from its first store to its
// result's.
func (m *metrics) stored(seconds float64) {
	if m != nil {
		m.endToEnd.Observe(seconds)
	}
}

func (m *metrics) published(seconds float64) {
	if m != nil {
		m.publish.Observe(seconds)
	}
}
