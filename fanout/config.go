package fanout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/invoke-worker/worker/client"
	"github.com/invoke-worker/worker/job"
)

// Defaults of Config and Route.
const (
	AckWaitDefault     = 30 * time.Second
	MaxInFlightDefault = 64
	FetchWaitDefault   = time.Second
	DurablePrefix      = "invoke-route-"
	JobSubjectPrefix   = "invoke.jobs."
	CloudEventCT       = "application/cloudevents+json"
	retryDelayMax      = 30 * time.Second
	retryDelayFirst    = 500 * time.Millisecond
	publishTimeout     = 30 * time.Second
)

// Route fans one stream's events out into jobs.
type Route struct {
	// Name names the route: its consumer is invoke-route-<Name> and its
	// jobs' ids start with it. Required: 1 to 32 of A-Z a-z 0-9 _ -.
	Name string
	// Stream is the event stream. Required.
	Stream string
	// StreamSubjects, when set, creates Stream with these subjects if it
	// is missing (limits retention, file storage). An existing stream is
	// left as it is.
	StreamSubjects []string
	// Subjects filter the events; empty takes all.
	Subjects []string
	// Functions receive one job per event each. Required.
	Functions []string
	// Intent is the jobs' Fn-Intent: "", httprequest or cloudevent. With
	// cloudevent every job body is a structured CloudEvent.
	Intent string
	// JobSubject is where jobs are published. Defaults to
	// invoke.jobs.<Name>.
	JobSubject string
	// DeliverNew takes only events stored after the route's consumer was
	// first created; otherwise every event the stream holds.
	DeliverNew bool
	// Headers maps event headers onto job headers.
	Headers Headers
	// Source and Type name CloudEvents made from plain events. Defaults:
	// /<Stream> and the event's subject.
	Source, Type string
	// Replicas of a stream created from StreamSubjects. Defaults to 1.
	Replicas int
}

// Headers maps event headers onto job headers: Copy, then Rename, then
// Set. traceparent, tracestate and Content-Type always travel (with intent
// cloudevent, Content-Type becomes application/cloudevents+json).
type Headers struct {
	// Copy names event headers copied as they are; "*" copies every one
	// except Nats-* and those the route sets itself.
	Copy []string
	// Rename copies an event header (key) under another name (value).
	Rename map[string]string
	// Set gives job headers fixed values.
	Set map[string]string
}

func (r Route) withDefaults() Route {
	if r.JobSubject == "" {
		r.JobSubject = JobSubjectPrefix + r.Name
	}
	if r.Source == "" {
		r.Source = "/" + r.Stream
	}
	if r.Replicas == 0 {
		r.Replicas = 1
	}
	return r
}

// Validate reports the first unusable setting of r. The configuration
// loader checks more (and names keys); this guards programmatic use.
func (r Route) Validate() error {
	switch {
	case r.Name == "" || len(r.Name) > 32 || job.ValidateJobID(r.Name) != nil:
		return fmt.Errorf("fanout: route name %q must be 1 to 32 of A-Z a-z 0-9 _ -", r.Name)
	case r.Stream == "":
		return fmt.Errorf("fanout: route %s: Stream is required", r.Name)
	case len(r.Functions) == 0:
		return fmt.Errorf("fanout: route %s: at least one function is required", r.Name)
	case r.Intent != "" && r.Intent != job.IntentHTTPRequest && r.Intent != job.IntentCloudEvent:
		return fmt.Errorf("fanout: route %s: intent %q: want httprequest or cloudevent", r.Name, r.Intent)
	}
	for _, fn := range r.Functions {
		if err := job.ValidateFunctionID(fn); err != nil {
			return fmt.Errorf("fanout: route %s: %w", r.Name, err)
		}
	}
	if err := job.ValidatePublishSubject(r.withDefaults().JobSubject); err != nil {
		return fmt.Errorf("fanout: route %s: job subject: %w", r.Name, err)
	}
	return nil
}

// Publisher enqueues a batch of jobs and reports each one (*client.Client).
type Publisher interface {
	EnqueueBatch(ctx context.Context, jobs []client.Job) ([]client.BatchResult, error)
}

// Config configures a Fanout.
type Config struct {
	// Routes to run. Required.
	Routes []Route
	// JS reads the event streams and creates the routes' consumers.
	// Required.
	JS jetstream.JetStream
	// Publisher enqueues the jobs. Required.
	Publisher Publisher
	// NoStreamCreate keeps routes from creating their event streams, even
	// with StreamSubjects: a missing stream is an error naming it. For
	// workers that may not change stream configuration
	// (streams.manage: false).
	NoStreamCreate bool
	// AckWait is how long an event may stay unacknowledged before it is
	// delivered again; its jobs are deduplicated. Defaults to 30s.
	AckWait time.Duration
	// MaxInFlight is the most events one route fans out at once. Defaults
	// to 64.
	MaxInFlight int
	// FetchWait is how long one pull for events waits; a stop waits for
	// the last pull. Defaults to 1s.
	FetchWait time.Duration
	// Logger receives start-up lines and failures. Defaults to
	// zerolog.Nop().
	Logger zerolog.Logger
	// Metrics, when set, receives the routes' counters
	// (invoke_worker_route_events_total, invoke_worker_route_jobs_total).
	Metrics prometheus.Registerer
	// TracerProvider makes a span per event fanned out ("invoke.fanout"),
	// the child of the event's traceparent when it has one; each job the
	// event makes carries that span's traceparent, so the jobs' traces
	// start at the route. Defaults to a no-op provider: then the event's
	// traceparent and tracestate travel to the jobs as they are.
	TracerProvider trace.TracerProvider
}

func (c Config) withDefaults() Config {
	if c.AckWait == 0 {
		c.AckWait = AckWaitDefault
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = MaxInFlightDefault
	}
	if c.FetchWait == 0 {
		c.FetchWait = FetchWaitDefault
	}
	rs := make([]Route, len(c.Routes))
	for i, r := range c.Routes {
		rs[i] = r.withDefaults()
	}
	c.Routes = rs
	return c
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.JS == nil || c.Publisher == nil:
		return errors.New("fanout: JS and Publisher are required")
	case c.AckWait < time.Second:
		return fmt.Errorf("fanout: AckWait must be at least 1s, got %s", c.AckWait)
	case c.MaxInFlight < 1:
		return fmt.Errorf("fanout: MaxInFlight must be at least 1, got %d", c.MaxInFlight)
	case c.FetchWait < 100*time.Millisecond:
		return fmt.Errorf("fanout: FetchWait must be at least 100ms, got %s", c.FetchWait)
	}
	names := map[string]bool{}
	for _, r := range c.Routes {
		if err := r.Validate(); err != nil {
			return err
		}
		if names[r.Name] {
			return fmt.Errorf("fanout: two routes are named %s", r.Name)
		}
		names[r.Name] = true
	}
	return nil
}
