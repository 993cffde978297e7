package worker

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// metrics are the worker's Prometheus collectors. A nil *metrics records
// nothing, so the hot path needs no checks at the call sites.
type metrics struct {
	jobs        *prometheus.CounterVec
	completed   prometheus.Counter // jobs{outcome="completed"}, resolved once: the hot path
	attempt2xx  prometheus.Counter
	attempts    *prometheus.CounterVec
	duration    prometheus.Histogram
	inFlight    prometheus.Gauge
	breaker     *prometheus.GaugeVec
	deferred    *prometheus.CounterVec
	fetchErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invoke_worker_jobs_total",
			Help: "Jobs settled, by outcome: completed, retried (given back with a delay), dead_lettered_<reason>, released.",
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
			Help: "Circuit breaker state by key (function or host): 0 closed, 1 half-open, 2 open.",
		}, []string{"key"}),
		deferred: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invoke_worker_deferred_total",
			Help: "Jobs given back without an attempt, by cause: breaker_open, function_limit, rate_limit, shutdown.",
		}, []string{"cause"}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "invoke_worker_fetch_errors_total",
			Help: "Failed pull requests on the jobs consumer.",
		}),
	}
	m.completed = m.jobs.WithLabelValues("completed")
	m.attempt2xx = m.attempts.WithLabelValues("2xx")
	reg.MustRegister(m.jobs, m.attempts, m.duration, m.inFlight, m.breaker, m.deferred, m.fetchErrors)
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

func (m *metrics) breakerState(key string, s gobreaker.State) {
	if m != nil {
		m.breaker.WithLabelValues(key).Set(float64(s))
	}
}

func (m *metrics) defer_(cause string) {
	if m != nil {
		m.deferred.WithLabelValues(cause).Inc()
	}
}

func (m *metrics) fetchError() {
	if m != nil {
		m.fetchErrors.Inc()
	}
}
