package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/job"
	"github.com/invoke-worker/worker/queue"
)

// Job is what a publisher enqueues: function, body and the contract's
// optional headers. An empty ID gets a random one.
type Job = queue.Job

// JobID is a job's id: Invoke-Job-Id and Nats-Msg-Id of the job, the last
// token of its result's subject.
type JobID = string

// RecordHeadroom is room kept in a job message for the headers its
// dead-letter record adds (Invoke-Error, the attempt history, ...).
const RecordHeadroom = 16 << 10

// Defaults of Config.
const (
	MaxPendingDefault   = 256
	AckTimeoutDefault   = 30 * time.Second
	RequestLimitDefault = job.RequestLimitDefault // OCI Functions' request limit
)

// Config configures a Client.
type Config struct {
	// Topology names the streams, subject prefixes and claim-check buckets;
	// zero fields take the contract's defaults.
	Topology queue.Topology
	// MaxPending bounds the jobs a batch has published whose
	// acknowledgement has not arrived yet, across all of this client's
	// batches: a batch of any size holds at most this many in memory.
	// Defaults to 256.
	MaxPending int
	// AckTimeout bounds the wait for one job's acknowledgement in a batch.
	// Defaults to 30s.
	AckTimeout time.Duration
	// RequestLimit is the largest job body: the function service's request
	// limit. A larger job is refused with job.ErrInvalid, as a worker would
	// dead-letter it. Defaults to 6 MiB.
	RequestLimit int64
	// MaxMessage is the largest message (headers and body) NATS takes. A
	// job that would come within RecordHeadroom of it has its body stored
	// in the object store and refers to it with Invoke-Body-Object, so that
	// its dead-letter record, which adds headers, still fits a message.
	// Defaults to the smaller of the server's max payload and the jobs
	// stream's max message size.
	MaxMessage int64
}

func (c Config) withDefaults() Config {
	c.Topology = c.Topology.WithDefaults()
	if c.MaxPending == 0 {
		c.MaxPending = MaxPendingDefault
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = AckTimeoutDefault
	}
	if c.RequestLimit == 0 {
		c.RequestLimit = RequestLimitDefault
	}
	return c
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.MaxPending < 1:
		return fmt.Errorf("client: MaxPending must be at least 1, got %d", c.MaxPending)
	case c.AckTimeout <= 0:
		return fmt.Errorf("client: AckTimeout must be positive, got %s", c.AckTimeout)
	case c.RequestLimit < 0 || c.MaxMessage < 0:
		return errors.New("client: RequestLimit and MaxMessage must not be negative")
	}
	return nil
}

// Client publishes jobs and waits for their outcomes. It is safe for
// concurrent use; it owns no goroutine between calls.
type Client struct {
	cfg    Config
	js     jetstream.JetStream // batches: async acks bounded by slots
	bodies *queue.Bodies
	slots  chan struct{} // one per unacknowledged batch job
}

// New returns a Client on nc. It checks that the streams exist (a worker
// creates them) and learns the largest message the jobs stream takes.
func New(ctx context.Context, nc *nats.Conn, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc,
		// The slots bound what is outstanding; this is only a backstop.
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPending+1),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout))
	if err != nil {
		return nil, err
	}
	// Object store puts publish their chunks asynchronously too; they get
	// their own context so a full batch window cannot stall them.
	bjs, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	t := cfg.Topology
	if err := queue.CheckStreams(ctx, js, t); err != nil {
		return nil, err
	}
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = nc.MaxPayload()
		s, err := js.Stream(ctx, t.JobsStream)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", t.JobsStream, err)
		}
		if m := int64(s.CachedInfo().Config.MaxMsgSize); m > 0 && m < cfg.MaxMessage {
			cfg.MaxMessage = m
		}
	}
	return &Client{cfg: cfg, js: js, bodies: queue.NewBodies(bjs, t), slots: make(chan struct{}, cfg.MaxPending)}, nil
}

// Enqueue publishes j and returns its id once JetStream stored it (or
// recognised it as a duplicate of a job with the same id stored within
// the duplicate window). A body too large for a message is stored in the
// object store first.
func (c *Client) Enqueue(ctx context.Context, j Job) (JobID, error) {
	msg, err := c.message(ctx, &j)
	if err != nil {
		return j.ID, err
	}
	if _, err := c.js.PublishMsg(ctx, msg); err != nil {
		return j.ID, publishError(j.ID, msg.Subject, err)
	}
	return j.ID, nil
}

// Invoke enqueues j and waits for its outcome. It returns the result, or
// a *DeadLetterError (matching ErrDeadLettered) with the Outcome of the
// dead-letter record.
func (c *Client) Invoke(ctx context.Context, j Job) (Outcome, error) {
	id, err := c.Enqueue(ctx, j)
	if err != nil {
		return Outcome{}, err
	}
	o, err := c.Await(ctx, id)
	if err != nil {
		return Outcome{}, err
	}
	return o, o.Err()
}

// message validates j, fills its id and builds its NATS message, moving a
// body that does not fit a message into the object store.
func (c *Client) message(ctx context.Context, j *Job) (*nats.Msg, error) {
	if int64(len(j.Body)) > c.cfg.RequestLimit {
		if j.ID == "" {
			j.ID = queue.NewJobID()
		}
		return nil, fmt.Errorf("%w: body is %d bytes, over the function request limit of %d bytes", job.ErrInvalid, len(j.Body), c.cfg.RequestLimit)
	}
	msg, err := j.Message()
	if err != nil {
		return nil, err
	}
	if c.cfg.MaxMessage > 0 && int64(job.MessageSize(msg)) > max(c.cfg.MaxMessage-RecordHeadroom, c.cfg.MaxMessage/2) {
		ref, err := c.bodies.PutJob(ctx, j.ID, msg.Data)
		if err != nil {
			return nil, fmt.Errorf("enqueue %s: %w", j.ID, err)
		}
		msg.Header.Set(job.HeaderBodyObject, ref)
		msg.Data = nil
	}
	return msg, nil
}

func publishError(id, subject string, err error) error {
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("enqueue %s on %s: no stream takes this subject (is it under the jobs stream's subjects, invoke.jobs.> by default?): %w", id, subject, err)
	}
	return fmt.Errorf("enqueue %s on %s: %w", id, subject, err)
}

// Outcome is how a job ended: a result or a dead-letter record.
type Outcome struct {
	JobID JobID
	// DeadLettered is true for a dead-letter record, false for a result.
	DeadLettered bool
	// Reason is the dead-letter reason; "" for a result.
	Reason string
	// Status is Invoke-Status: the function's HTTP status (0 when it never
	// answered).
	Status int
	// Error is the record's Invoke-Error; "" for a result.
	Error string
	// Body is the function's response body for a result, fetched from the
	// object store when it was stored there. For a record it is the
	// record's body: the original job body, or empty when the job's body
	// was itself stored (Header then names it in Invoke-Body-Object).
	Body []byte
	// Subject and Header are the stored message's.
	Subject string
	Header  nats.Header
}

// Err is nil for a result and a *DeadLetterError for a record.
func (o Outcome) Err() error {
	if !o.DeadLettered {
		return nil
	}
	return &DeadLetterError{JobID: o.JobID, Reason: o.Reason, Status: o.Status, Message: o.Error}
}

func outcomeOf(subject string, h nats.Header, data []byte, dead bool) Outcome {
	// A record's job id and status headers are a result's.
	r := job.ParseResult(h)
	id := r.JobID
	if id == "" {
		id = subject[strings.LastIndexByte(subject, '.')+1:]
	}
	o := Outcome{
		JobID:        id,
		DeadLettered: dead,
		Status:       r.Status,
		Subject:      subject,
		Header:       h,
		Body:         data,
	}
	if dead {
		o.Reason = job.Lookup(h, job.HeaderDLQReason)
		o.Error = job.Lookup(h, job.HeaderError)
	}
	return o
}

// resolve replaces a result's reference with the stored body.
func (c *Client) resolve(ctx context.Context, o *Outcome) error {
	if o.DeadLettered {
		return nil
	}
	ref := job.ParseResult(o.Header).BodyObject
	if ref == "" {
		return nil
	}
	body, err := c.bodies.Get(ctx, ref, 0)
	if err != nil {
		return fmt.Errorf("result of %s: %w", o.JobID, err)
	}
	o.Body = body
	return nil
}
