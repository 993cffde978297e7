package dlqops

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/job"
)

// ReplayBucketSuffix names the replay-marker bucket after the stream:
// INVOKE_DLQ_REPLAYS.
const ReplayBucketSuffix = "_REPLAYS"

// StoreConfig says where the dead-letter stream and its neighbours are.
// Zero values take the contract's defaults (job.DLQStreamDefault and the
// other names there).
type StoreConfig struct {
	// Stream and Prefix: the dead-letter stream and its subject prefix
	// (records on <Prefix>.<reason>.<job-id>). Default INVOKE_DLQ and
	// invoke.dlq.
	Stream string
	Prefix string
	// JobsStream is where replayed jobs must land. Default INVOKE_JOBS.
	JobsStream string
	// ResultsStream and ResultsPrefix are where a replay's watch looks for
	// results. Default INVOKE_RESULTS and invoke.results.
	ResultsStream string
	ResultsPrefix string
	// ReplayBucket is the KV bucket of replay markers. Default: Stream +
	// "_REPLAYS".
	ReplayBucket string
	// ReplayMarkerTTL is how long a replay marker lives. Default: the
	// dead-letter stream's max age (a kept record cannot outlive it).
	ReplayMarkerTTL time.Duration
	// RequestLimit is the largest job body the workers accept
	// (invoke.request_limit): a replayed job over it is flagged as invalid
	// again, on a dry run as on a real replay. Default
	// job.RequestLimitDefault (6 MiB).
	RequestLimit int64
	// Logger reports what the caller cannot act on (a failed cleanup).
	// Defaults to zerolog.Nop().
	Logger *zerolog.Logger
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

func (c StoreConfig) withDefaults() StoreConfig {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Stream, job.DLQStreamDefault)
	def(&c.Prefix, job.DLQPrefixDefault)
	def(&c.JobsStream, job.JobsStreamDefault)
	def(&c.ResultsStream, job.ResultsStreamDefault)
	def(&c.ResultsPrefix, job.ResultsPrefixDefault)
	def(&c.ReplayBucket, ReplayBucketName(c.Stream))
	if c.RequestLimit == 0 {
		c.RequestLimit = job.RequestLimitDefault
	}
	if c.Logger == nil {
		l := zerolog.Nop()
		c.Logger = &l
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// ReplayBucketName is the replay-marker bucket of a dead-letter stream
// (StoreConfig.ReplayBucket's default).
func ReplayBucketName(stream string) string { return job.BucketName(stream + ReplayBucketSuffix) }

// Validate reports the first unusable field.
func (c StoreConfig) Validate() error {
	c = c.withDefaults()
	if strings.ContainsAny(c.Prefix, "*> ") || strings.HasSuffix(c.Prefix, ".") {
		return fieldErr("prefix", "%q is not a subject prefix", c.Prefix)
	}
	if strings.ContainsAny(c.ResultsPrefix, "*> ") || strings.HasSuffix(c.ResultsPrefix, ".") {
		return fieldErr("results prefix", "%q is not a subject prefix", c.ResultsPrefix)
	}
	if c.ReplayMarkerTTL < 0 {
		return fieldErr("replay marker ttl", "%s: must not be negative", c.ReplayMarkerTTL)
	}
	if c.RequestLimit < 0 {
		return fieldErr("request limit", "%d: must not be negative", c.RequestLimit)
	}
	return nil
}

// Store reads and operates on the dead-letter stream: list, stats, get,
// replay and purge. Reading never changes the stream. A Store is safe for
// concurrent use, but two replays of the same records at once are only
// protected by the dedupe scheme, not serialised.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    StoreConfig
	log    zerolog.Logger

	// Test hooks: a replay that returns their error stops right there, as
	// if the process died at that point.
	afterPublish func(seq uint64) error
	afterMark    func(seq uint64) error
}

// NewStore looks the dead-letter stream up; it does not create it.
func NewStore(ctx context.Context, js jetstream.JetStream, cfg StoreConfig) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dlq store: %w", err)
	}
	cfg = cfg.withDefaults()
	s, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", cfg.Stream, err)
	}
	return &Store{js: js, stream: s, cfg: cfg, log: cfg.Logger.With().Str("component", "dlq").Logger()}, nil
}

// Config returns the store's configuration, defaults filled in.
func (s *Store) Config() StoreConfig { return s.cfg }

// State is the stream's state now: messages, bytes, first and last sequence.
func (s *Store) State(ctx context.Context) (jetstream.StreamState, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return jetstream.StreamState{}, fmt.Errorf("dead-letter stream %s: %w", s.cfg.Stream, err)
	}
	return info.State, nil
}

// Get reads one record whole, body included.
func (s *Store) Get(ctx context.Context, seq uint64) (dlq.Record, error) {
	m, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return dlq.Record{}, fmt.Errorf("record %d in %s: %w", seq, s.cfg.Stream, ErrRecordNotFound)
		}
		return dlq.Record{}, fmt.Errorf("record %d in %s: %w", seq, s.cfg.Stream, err)
	}
	return dlq.ParseRecord(s.cfg.Prefix, m), nil
}

// selection lists what a replay or purge will act on, without the headers
// and histories it does not need: a selection of a million records then
// takes a few hundred megabytes, not gigabytes.
func (s *Store) selection(ctx context.Context, f Filter) ([]dlq.Record, error) {
	var out []dlq.Record
	for r, err := range s.Records(ctx, f) {
		if err != nil {
			return nil, err
		}
		r.Header, r.History = nil, nil
		out = append(out, r)
	}
	return out, nil
}

// Records yields the records f selects, oldest first, without bodies (Size
// is set; Get reads one whole). It reads the stream as it was when the
// iteration started: records stored later are not yielded, so a replay
// whose jobs fail again never meets their new records. It reads through a
// headers-only ephemeral consumer (or direct gets for a few named
// sequences) and changes nothing in the stream.
func (s *Store) Records(ctx context.Context, f Filter) iter.Seq2[dlq.Record, error] {
	return func(yield func(dlq.Record, error) bool) {
		m, err := f.compile()
		if err != nil {
			yield(dlq.Record{}, err)
			return
		}
		n := 0
		err = s.scan(ctx, m, func(r dlq.Record) bool {
			if !m.match(&r) {
				return true
			}
			n++
			if !yield(r, nil) {
				return false
			}
			return f.Limit == 0 || n < f.Limit
		})
		if err != nil {
			yield(dlq.Record{}, err)
		}
	}
}

// clockSkewMargin widens a time-bounded read.
const clockSkewMargin = 5 * time.Minute

// readBatch is how many records one pull asks for.
const readBatch = 512

// scan calls fn with the stream's records that m's bounds and subjects
// allow, in order, until fn returns false. Matching is fn's job.
func (s *Store) scan(ctx context.Context, m *matcher, fn func(dlq.Record) bool) error {
	state, err := s.State(ctx)
	if err != nil {
		return err
	}
	if state.Msgs == 0 {
		return nil
	}
	lo, hi := m.seqBounds()
	hi = min(hi, state.LastSeq) // the snapshot: later records are not read
	lo = max(lo, state.FirstSeq)
	if lo > hi {
		return nil
	}
	if seqs := m.explicitSeqs(); seqs != nil {
		for _, seq := range seqs {
			if seq < lo || seq > hi {
				continue
			}
			r, err := s.Get(ctx, seq)
			if errors.Is(err, ErrRecordNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			r.Body = nil
			if !fn(r) {
				return nil
			}
		}
		return nil
	}

	cc := jetstream.ConsumerConfig{
		Description: "worker dlq: read-only scan",
		AckPolicy:   jetstream.AckNonePolicy,
		HeadersOnly: true,
		// Memory storage and one replica: the consumer is a cursor for a
		// few seconds, deleted when the scan ends; the inactive threshold
		// removes it should this process die first.
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: time.Minute,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
	}
	if subs := m.subjects(s.cfg.Prefix); len(subs) == 1 {
		cc.FilterSubject = subs[0]
	} else {
		cc.FilterSubjects = subs
	}
	switch {
	case lo > state.FirstSeq:
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, lo
	case !m.f.Since.IsZero():
		// A record is stored after it failed, so starting at Since's
		// storage time misses none; the margin allows for clock skew
		// between the worker that stamped Invoke-Failed-At and the server.
		since := m.f.Since.Add(-clockSkewMargin)
		cc.DeliverPolicy, cc.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := s.js.CreateConsumer(ctx, s.cfg.Stream, cc)
	if err != nil {
		return fmt.Errorf("read %s: %w", s.cfg.Stream, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.js.DeleteConsumer(dctx, s.cfg.Stream, cons.CachedInfo().Name); err != nil {
			s.log.Debug().Err(err).Msg("read consumer not deleted; the server removes it after a minute")
		}
	}()
	if cons.CachedInfo().NumPending == 0 {
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := cons.FetchNoWait(readBatch)
		if err != nil {
			return fmt.Errorf("read %s: %w", s.cfg.Stream, err)
		}
		got, done := 0, false
		for msg := range batch.Messages() {
			if done {
				continue // drain the batch
			}
			got++
			meta, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("read %s: %w", s.cfg.Stream, err)
			}
			seq := meta.Sequence.Stream
			if seq > hi {
				done = true
				continue
			}
			if !fn(recordFromMsg(s.cfg.Prefix, msg, meta)) || meta.NumPending == 0 || seq == hi {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("read %s: %w", s.cfg.Stream, err)
		}
		if done || got == 0 {
			return nil
		}
	}
}

// recordFromMsg reads a record delivered by a headers-only consumer: its
// body's size is in Nats-Msg-Size.
func recordFromMsg(prefix string, m jetstream.Msg, meta *jetstream.MsgMetadata) dlq.Record {
	size, err := strconv.Atoi(m.Headers().Get("Nats-Msg-Size"))
	if err != nil {
		size = len(m.Data())
	}
	r := dlq.ParseRecord(prefix, &jetstream.RawStreamMsg{Subject: m.Subject(), Sequence: meta.Sequence.Stream, Header: m.Headers(), Time: meta.Timestamp})
	r.Size = size
	return r
}

// deleteRecord deletes one record; a record already gone counts as deleted.
func (s *Store) deleteRecord(ctx context.Context, seq uint64) error {
	err := s.stream.DeleteMsg(ctx, seq)
	if err == nil {
		return nil
	}
	// The delete API's "not found" carries no code to match: ask.
	if _, gerr := s.stream.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
		return nil
	}
	return fmt.Errorf("delete record %d: %w", seq, err)
}
