package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/invoke-worker/worker/job"
	"github.com/nats-io/nats.go/jetstream"
)

// Topology names and sizes the contract's streams and the shared consumer.
// DefaultTopology has every default. WithDefaults fills the zero fields
// whose zero means nothing; the max ages keep their zero, which is
// unlimited, as in JetStream.
type Topology struct {
	JobsStream    string   // INVOKE_JOBS
	ResultsStream string   // INVOKE_RESULTS
	DLQStream     string   // INVOKE_DLQ
	JobsSubjects  []string // invoke.jobs.>
	// WaitPrefix is where waiting jobs' scheduled copies are stored in the
	// jobs stream, <WaitPrefix>.<stream sequence>; the shared consumer
	// does not read it. It must not be matched by JobsSubjects. Default
	// invoke.wait.
	WaitPrefix    string
	ResultsPrefix string // invoke.results
	DLQPrefix     string // invoke.dlq
	Replicas      int    // 1
	MaxMsgSize    int32  // 8 MiB
	JobsMaxAge    time.Duration
	ResultsMaxAge time.Duration // 0: unlimited; default 24h
	DLQMaxAge     time.Duration // 0: unlimited; default 30 days
	// DuplicateWindow is how long JetStream remembers Nats-Msg-Id values on
	// every stream. Defaults to 2m.
	DuplicateWindow time.Duration
	Durable         string        // invoke-workers
	AckWait         time.Duration // 90s
	MaxAckPending   int           // 20000
	// JobBodies and ResultBodies are the object store buckets of the claim
	// check: job bodies and results too large for a message. Defaults
	// INVOKE_JOB_BODIES and INVOKE_RESULT_BODIES.
	JobBodies    string
	ResultBodies string
}

// WithDefaults fills the fields whose zero means "unset". JobsMaxAge,
// ResultsMaxAge and DLQMaxAge are left alone: their zero is "unlimited".
func (t Topology) WithDefaults() Topology {
	d := DefaultTopology()
	t.JobsStream = cmp.Or(t.JobsStream, d.JobsStream)
	t.ResultsStream = cmp.Or(t.ResultsStream, d.ResultsStream)
	t.DLQStream = cmp.Or(t.DLQStream, d.DLQStream)
	t.ResultsPrefix = cmp.Or(t.ResultsPrefix, d.ResultsPrefix)
	t.DLQPrefix = cmp.Or(t.DLQPrefix, d.DLQPrefix)
	t.WaitPrefix = cmp.Or(t.WaitPrefix, d.WaitPrefix)
	t.Durable = cmp.Or(t.Durable, d.Durable)
	t.JobBodies = cmp.Or(t.JobBodies, d.JobBodies)
	t.ResultBodies = cmp.Or(t.ResultBodies, d.ResultBodies)
	if len(t.JobsSubjects) == 0 {
		t.JobsSubjects = d.JobsSubjects
	}
	t.Replicas = cmp.Or(t.Replicas, d.Replicas)
	t.MaxMsgSize = cmp.Or(t.MaxMsgSize, d.MaxMsgSize)
	t.DuplicateWindow = cmp.Or(t.DuplicateWindow, d.DuplicateWindow)
	t.AckWait = cmp.Or(t.AckWait, d.AckWait)
	t.MaxAckPending = cmp.Or(t.MaxAckPending, d.MaxAckPending)
	return t
}

// DefaultTopology returns the contract's topology, every field at its
// default; the configuration's streams.* and consumer.* defaults come from
// here.
func DefaultTopology() Topology {
	return Topology{
		JobsStream:      job.JobsStreamDefault,
		ResultsStream:   job.ResultsStreamDefault,
		DLQStream:       job.DLQStreamDefault,
		JobsSubjects:    []string{job.JobsSubjectDefault},
		WaitPrefix:      job.WaitPrefixDefault,
		ResultsPrefix:   job.ResultsPrefixDefault,
		DLQPrefix:       job.DLQPrefixDefault,
		Replicas:        ReplicasDefault,
		MaxMsgSize:      MaxMsgSizeDefault,
		ResultsMaxAge:   ResultsMaxAgeDefault,
		DLQMaxAge:       DLQMaxAgeDefault,
		DuplicateWindow: DuplicateWindowDefault,
		Durable:         DurableDefault,
		AckWait:         AckWaitDefault,
		MaxAckPending:   MaxAckPendingDefault,
		JobBodies:       JobBodiesDefault,
		ResultBodies:    ResultBodiesDefault,
	}
}

// Defaults of Topology, the contract's limits; its stream names and
// subjects are job's (job.JobsStreamDefault ...), which worker and dlq
// share. The jobs stream's max age has none: unlimited.
const (
	ReplicasDefault        = 1
	MaxMsgSizeDefault      = 8 << 20 // a 6 MiB body and its headers
	ResultsMaxAgeDefault   = 24 * time.Hour
	DLQMaxAgeDefault       = 30 * 24 * time.Hour
	DuplicateWindowDefault = 2 * time.Minute
	DurableDefault         = "invoke-workers"
	AckWaitDefault         = 90 * time.Second
	MaxAckPendingDefault   = 20000
	JobBodiesDefault       = "INVOKE_JOB_BODIES"
	ResultBodiesDefault    = "INVOKE_RESULT_BODIES"
)

// ResultSubject is where the result of jobID is published.
func (t Topology) ResultSubject(jobID string) string { return t.ResultsPrefix + "." + jobID }

// Streams returns the three stream configurations.
func (t Topology) Streams() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        t.JobsStream,
			Description: "invocation jobs (work queue: acknowledged jobs are removed) and waiting jobs' scheduled copies",
			Subjects:    append(append([]string(nil), t.JobsSubjects...), t.WaitPrefix+".>"),
			Retention:   jetstream.WorkQueuePolicy,
			// A job that must wait is stored as a copy that JetStream
			// publishes back to its subject when the wait is over, so
			// waiting holds none of the consumer's delivery slots.
			AllowMsgSchedules: true,
			Storage:           jetstream.FileStorage,
			Replicas:          t.Replicas,
			MaxAge:            t.JobsMaxAge,
			MaxMsgSize:        t.MaxMsgSize,
			Duplicates:        t.DuplicateWindow,
		},
		{
			Name:        t.ResultsStream,
			Description: "invocation results, one subject per job",
			Subjects:    []string{t.ResultsPrefix + ".>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			MaxAge:      t.ResultsMaxAge,
			MaxMsgSize:  t.MaxMsgSize,
			Duplicates:  t.DuplicateWindow,
			AllowDirect: true,
		},
		{
			Name:        t.DLQStream,
			Description: "dead-lettered jobs: invoke.dlq.<reason>.<job-id>",
			Subjects:    []string{t.DLQPrefix + ".>"},
			Retention:   jetstream.LimitsPolicy,
			// Never discard new records: when limits bite, the oldest
			// go first, so a failing job always finds room.
			Discard:     jetstream.DiscardOld,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			MaxAge:      t.DLQMaxAge,
			MaxMsgSize:  t.MaxMsgSize,
			Duplicates:  t.DuplicateWindow,
			AllowDirect: true,
		},
	}
}

// ConsumerConfig is the shared durable pull consumer on the jobs stream.
func (t Topology) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       t.Durable,
		Description:   "invoke workers (shared by every worker process)",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       t.AckWait,
		// Attempts are counted by the worker; the server must not drop a
		// job on its own (a message that hits MaxDeliver stays in the
		// stream, unacknowledged, forever).
		MaxDeliver:    -1,
		MaxAckPending: t.MaxAckPending,
		// Waiting copies live in the same stream (schedules fire within
		// their stream) but are not jobs until they fire.
		FilterSubjects: t.JobsSubjects,
	}
}

// BodyBuckets returns the claim-check buckets. An object lives as long as
// what refers to it can: a result body as long as results are kept; a job
// body as long as its dead-letter record (a replay needs it) or its job,
// whichever is longer. Job bodies are also deleted as soon as their job
// completes. A JobsMaxAge of 0 (jobs kept until consumed) does not extend
// the job bodies' age: a job that waits longer than that loses its body and
// is dead-lettered as invalid.
func (t Topology) BodyBuckets() []jetstream.ObjectStoreConfig {
	jobAge := t.DLQMaxAge
	if jobAge > 0 && t.JobsMaxAge > jobAge {
		jobAge = t.JobsMaxAge
	}
	return []jetstream.ObjectStoreConfig{
		{
			Bucket:      t.JobBodies,
			Description: "job bodies too large for a message (claim check)",
			TTL:         jobAge,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
		},
		{
			Bucket:      t.ResultBodies,
			Description: "result bodies too large for a message (claim check)",
			TTL:         t.ResultsMaxAge,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
		},
	}
}

// Ensure creates the streams, the claim-check buckets and the consumer
// when missing and updates them when they differ (EnsureStreams, then
// EnsureConsumer allowed to update), and returns the consumer. It is for
// tests and tools that own the deployment; worker processes call
// EnsureConsumer with the configured ConsumerPolicy.
func Ensure(ctx context.Context, js jetstream.JetStream, t Topology) (jetstream.Consumer, error) {
	if err := EnsureStreams(ctx, js, t); err != nil {
		return nil, err
	}
	cons, _, err := EnsureConsumer(ctx, js, t, ConsumerPolicy{Update: true})
	return cons, err
}

// ErrNotProvisioned means the streams do not exist yet: no worker has
// started against this NATS server.
var ErrNotProvisioned = errors.New("streams not found: start a worker (worker run or worker dev) first")

// CheckStreams verifies the streams exist, for clients that must not
// create them (enqueue, dlq).
func CheckStreams(ctx context.Context, js jetstream.JetStream, t Topology) error {
	t = t.WithDefaults()
	for _, name := range []string{t.JobsStream, t.ResultsStream, t.DLQStream} {
		if _, err := js.Stream(ctx, name); err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("%w (stream %s is missing)", ErrNotProvisioned, name)
			}
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
	return nil
}

// CheckProvisioned verifies that everything EnsureStreams and
// EnsureStateStore would create exists (the three streams, the
// claim-check buckets and the state bucket), for workers that must not
// create or change them. It names every missing one in one error wrapping
// ErrNotProvisioned. It needs only the permission to read stream info.
func CheckProvisioned(ctx context.Context, js jetstream.JetStream, t Topology, stateBucket string) error {
	t = t.WithDefaults()
	if stateBucket == "" {
		stateBucket = StateBucketDefault
	}
	var missing []string
	check := func(what, stream string) error {
		_, err := js.Stream(ctx, stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			missing = append(missing, what)
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	for _, name := range []string{t.JobsStream, t.ResultsStream, t.DLQStream} {
		if err := check("stream "+name, name); err != nil {
			return err
		}
	}
	for _, bc := range t.BodyBuckets() {
		if err := check("object store "+bc.Bucket, "OBJ_"+bc.Bucket); err != nil {
			return err
		}
	}
	if err := check("key-value bucket "+stateBucket, "KV_"+stateBucket); err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrNotProvisioned, strings.Join(missing, ", "))
	}
	return nil
}

// ErrWaitPrefixOverlaps means the wait prefix is also a jobs subject: the
// workers would take waiting copies for jobs before their time.
var ErrWaitPrefixOverlaps = errors.New("the wait prefix overlaps the jobs subjects")

func (t Topology) checkWaitPrefix() error {
	for _, s := range t.JobsSubjects {
		if job.SubjectsOverlap(s, t.WaitPrefix+".>") {
			return fmt.Errorf("%w: %s.> is taken by jobs subject %s", ErrWaitPrefixOverlaps, t.WaitPrefix, s)
		}
	}
	return nil
}
