package fanout

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/invoke-worker/worker/client"
	"github.com/invoke-worker/worker/job"
)

// metrics count what the routes do, labelled by route name (bounded by the
// configuration). A nil *metrics records nothing.
type metrics struct {
	events *prometheus.CounterVec
	jobs   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, routes []Route) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invoke_worker_route_events_total",
			Help: "Events a fan-out route took in, by route and outcome: fanned_out (every job stored), given_back (some job not stored; redelivered later), unusable (not a JetStream message; dropped).",
		}, []string{"route", "outcome"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invoke_worker_route_jobs_total",
			Help: "Jobs a fan-out route made, by route and outcome: enqueued, duplicate (already stored from an earlier delivery of the event), refused (invalid: stored as is for the worker to dead-letter), not_stored.",
		}, []string{"route", "outcome"}),
	}
	// Every route's series start at 0, for rate() and the dashboard.
	for _, r := range routes {
		for _, o := range []string{"fanned_out", "given_back", "unusable"} {
			m.events.WithLabelValues(r.Name, o)
		}
		for _, o := range []string{"enqueued", "duplicate", "refused", "not_stored"} {
			m.jobs.WithLabelValues(r.Name, o)
		}
	}
	for _, c := range []prometheus.Collector{m.events, m.jobs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// event counts an event's outcome.
func (m *metrics) event(route, outcome string) {
	if m != nil {
		m.events.WithLabelValues(route, outcome).Inc()
	}
}

// batch counts each job of an event by what became of it. A job with no
// result (the batch was cut short) was not stored.
func (m *metrics) batch(route string, res []client.BatchResult) {
	if m == nil {
		return
	}
	for _, jr := range res {
		outcome := "enqueued"
		switch {
		case errors.Is(jr.Err, job.ErrInvalid):
			outcome = "refused"
		case jr.Err != nil || jr.ID == "":
			outcome = "not_stored"
		case jr.Duplicate:
			outcome = "duplicate"
		}
		m.jobs.WithLabelValues(route, outcome).Inc()
	}
}
