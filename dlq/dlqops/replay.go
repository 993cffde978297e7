package dlqops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/job"
)

// Replaying a record, and why its job is not enqueued twice.
//
// For each selected record, in stream order:
//
//  1. read it whole (it may have gone since it was listed: skipped);
//  2. look for its replay marker in the KV bucket <stream>_REPLAYS. A
//     marker means an earlier run already enqueued the job and died before
//     deleting the record: only delete it;
//  3. publish the job to its original subject with Nats-Msg-Id
//     replay-<stream>-<seq> and wait for JetStream's PubAck;
//  4. write the marker (its TTL is the dead-letter stream's max age, so it
//     lives as long as the record could);
//  5. delete the record (unless Keep).
//
// A run that dies between 3 and 4 and is started again within the jobs
// stream's duplicate window (2 minutes by default) republishes with the same
// Nats-Msg-Id: JetStream answers Duplicate and stores nothing; the re-run
// writes the marker and deletes. A run that dies between 4 and 5 leaves a
// marker that any later re-run finds. The one window left: the process dies
// after the PubAck and before the marker is written (a single KV put, a few
// milliseconds) and the re-run comes after the duplicate window; that re-run
// enqueues the job a second time. Writing the marker before publishing
// would close it, but a death between marker and publish would then lose
// the job (the re-run would trust the marker and delete the record), and a
// duplicate is the lesser harm: the product is at least once already (a
// function may run twice for one job when a worker dies mid-call), and the
// results stream keeps one result per job id within its duplicate window.
//
// Steps 3 to 5 run to the end even when ctx is cancelled (Ctrl-C): a cancel
// never cuts a record's replay in half, it stops before the next record.

// ReplayOutcome is what Replay did with one record.
type ReplayOutcome int

const (
	// Replayed: the job was enqueued (and the record deleted unless Keep).
	Replayed ReplayOutcome = iota + 1
	// WouldReplay: dry run; the job would be enqueued.
	WouldReplay
	// AlreadyReplayed: an earlier, interrupted run had enqueued the job;
	// this run only finished its clean-up (or, dry run, would).
	AlreadyReplayed
	// Skipped: the record is gone or no longer matches.
	Skipped
	// Failed: the job could not be enqueued; the record stays.
	Failed
)

func (o ReplayOutcome) String() string {
	switch o {
	case Replayed:
		return "replayed"
	case WouldReplay:
		return "would replay"
	case AlreadyReplayed:
		return "already replayed"
	case Skipped:
		return "skipped"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// ReplayOptions select and pace a replay.
type ReplayOptions struct {
	// Filter selects the records. Filter.Seqs names them one by one;
	// without Seqs, All must be set.
	Filter Filter
	// All confirms that a replay without Seqs means every record the
	// filter selects.
	All bool
	// ToFunction, when set, replays every job against this function OCID
	// instead of its own.
	ToFunction string
	// Rate is the most jobs enqueued per second; 0 means no limit.
	Rate float64
	// DryRun reads and reports, and changes nothing.
	DryRun bool
	// Keep leaves the records in the stream after replaying them (their
	// markers keep them from being replayed twice).
	Keep bool
	// Watch follows the replayed jobs' outcomes and stops the replay when
	// too many fail again. Ignored on a dry run.
	Watch *WatchOptions
	// OnPlan is called once, before anything is replayed, with the
	// selected records (without Header and History).
	OnPlan func(selected []dlq.Record)
	// OnEvent is called after each record, on the calling goroutine.
	OnEvent func(ReplayEvent)
	// OnWatch is called, on the calling goroutine, when the watch's tally
	// changed: between records and while waiting for the last outcomes.
	OnWatch func(WatchTally)
}

// WatchOptions make a replay self-protecting.
type WatchOptions struct {
	// MaxFailureRatio stops the replay once more than this share of the
	// replayed jobs that finished failed again. Default 0.5.
	MaxFailureRatio float64
	// MinSample is how many replayed jobs must have finished before the
	// ratio is judged. Default 10.
	MinSample int
	// Settle is how long to wait, after the last record, for the
	// outstanding outcomes. Default 2m.
	Settle time.Duration
}

// Defaults of WatchOptions.
const (
	MaxFailureRatioDefault = 0.5
	MinSampleDefault       = 10
	SettleDefault          = 2 * time.Minute
)

func (w WatchOptions) withDefaults() WatchOptions {
	if w.MaxFailureRatio == 0 {
		w.MaxFailureRatio = MaxFailureRatioDefault
	}
	if w.MinSample == 0 {
		w.MinSample = MinSampleDefault
	}
	if w.Settle == 0 {
		w.Settle = SettleDefault
	}
	return w
}

// Validate reports the first unusable field.
func (w WatchOptions) Validate() error {
	switch {
	case math.IsNaN(w.MaxFailureRatio) || w.MaxFailureRatio < 0 || w.MaxFailureRatio >= 1:
		return fieldErr("max-failure-ratio", "%v: want a share in [0, 1), such as 0.5", w.MaxFailureRatio)
	case w.MinSample < 0:
		return fieldErr("min-sample", "%d: must not be negative", w.MinSample)
	case w.Settle < 0:
		return fieldErr("watch-timeout", "%s: must not be negative", w.Settle)
	}
	return nil
}

// Validate reports the first unusable field.
func (o ReplayOptions) Validate() error {
	if err := validateSelection(o.Filter, o.All); err != nil {
		return err
	}
	if o.ToFunction != "" {
		if err := job.ValidateFunctionID(o.ToFunction); err != nil {
			return &FieldError{Field: "to-function", Err: err}
		}
	}
	if math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) || o.Rate < 0 {
		return fieldErr("rate", "%v: want a positive number of jobs per second", o.Rate)
	}
	if o.Watch != nil {
		return o.Watch.Validate()
	}
	return nil
}

func validateSelection(f Filter, all bool) error {
	if err := f.Validate(); err != nil {
		return err
	}
	switch {
	case all && len(f.Seqs) > 0:
		return fieldErr("all", "name record sequences or select all, not both")
	case !all && len(f.Seqs) == 0:
		return fieldErr("all", "name record sequences, or select all (with filters to narrow)")
	}
	return nil
}

// ReplayEvent is what happened to one record.
type ReplayEvent struct {
	Record  dlq.Record
	Outcome ReplayOutcome
	// Subject and FunctionID are where the job went (or would go).
	Subject    string
	FunctionID string
	// MsgID is the replayed job's Nats-Msg-Id.
	MsgID string
	// Deleted is set when the record was removed from the stream.
	Deleted bool
	// Note says why a record was skipped, already replayed or failed, or
	// what went wrong after a successful replay.
	Note string
	// Warning, for a job replayed (or that would be), says why the worker
	// will dead-letter it again at once: it is invalid as written, or its
	// Invoke-Deadline has passed.
	Warning string
	Err     error
}

// ReplayResult sums a replay up.
type ReplayResult struct {
	DryRun   bool
	Selected int
	// Replayed counts jobs enqueued (on a dry run: that would be).
	Replayed int
	// AlreadyReplayed counts records whose job an earlier run had
	// enqueued; Skipped counts records gone or no longer matching.
	AlreadyReplayed int
	Skipped         int
	Failed          int
	// Deleted counts records removed from the stream.
	Deleted int
	// Left counts selected records not reached because the replay stopped.
	Left int
	// Watch is the replayed jobs' outcomes, when watched.
	Watch *WatchTally
	// Stopped is set when the watch stopped the replay.
	Stopped bool
}

// WatchTally counts the outcomes of a watched replay's jobs.
type WatchTally struct {
	Succeeded   int
	FailedAgain int
	// Pending are replayed jobs with no outcome yet.
	Pending int
}

// ReplayMsgID is the Nats-Msg-Id of the job replayed from record seq.
func ReplayMsgID(stream string, seq uint64) string {
	return "replay-" + stream + "-" + strconv.FormatUint(seq, 10)
}

// deadLetterHeaders are added by dead-lettering; a replayed job drops them.
var deadLetterHeaders = []string{
	job.HeaderDLQReason, job.HeaderError, job.HeaderStatus, job.HeaderAttempts,
	job.HeaderOriginalSubject, job.HeaderOriginalSeq, job.HeaderFirstSeenAt, job.HeaderFailedAt,
	job.HeaderWorker, dlq.HeaderAttemptHistory, job.HeaderOriginalMsgID, dlq.HeaderDroppedHeaders,
}

// ReplayMessage builds the job that replaying r (read whole, with Get)
// enqueues: r's body and original headers, to its original subject, with
// its job id, Invoke-Replay-Count one higher, Nats-Msg-Id
// ReplayMsgID(stream, r.Seq), and toFunction as the function when set.
// A publisher's Invoke-Job-Id that was refused (r.RejectedJobID) goes back
// as it was sent, not replaced by the id the record is filed under: the
// job is invalid again, and the replay's warning says so.
func ReplayMessage(r dlq.Record, stream, toFunction string) (*nats.Msg, error) {
	if r.OriginalSubject == "" {
		return nil, fmt.Errorf("record %d has no %s header: nowhere to replay to", r.Seq, job.HeaderOriginalSubject)
	}
	if err := job.ValidatePublishSubject(r.OriginalSubject); err != nil {
		return nil, fmt.Errorf("record %d: %s %q: %w", r.Seq, job.HeaderOriginalSubject, r.OriginalSubject, err)
	}
	if err := job.ValidateJobID(r.JobID); err != nil {
		return nil, fmt.Errorf("record %d: %w", r.Seq, err)
	}
	msg := nats.NewMsg(r.OriginalSubject)
	msg.Data = r.Body
	for k, vs := range r.Header {
		if isDeadLetterHeader(k) || len(k) >= 5 && strings.EqualFold(k[:5], "Nats-") {
			continue
		}
		msg.Header[k] = append([]string(nil), vs...)
	}
	if r.RejectedJobID == "" {
		setHeader(msg.Header, job.HeaderJobID, r.JobID)
	}
	if toFunction != "" {
		setHeader(msg.Header, job.HeaderFunctionID, toFunction)
	}
	setHeader(msg.Header, dlq.HeaderReplayCount, strconv.Itoa(r.ReplayCount+1))
	setHeader(msg.Header, job.HeaderMsgID, ReplayMsgID(stream, r.Seq))
	return msg, nil
}

func isDeadLetterHeader(k string) bool {
	for _, d := range deadLetterHeaders {
		if strings.EqualFold(k, d) {
			return true
		}
	}
	return false
}

// setHeader sets k, dropping spellings of k in another case: the worker
// reads a header case-insensitively when the exact name is absent.
func setHeader(h nats.Header, k, v string) {
	for have := range h {
		if have != k && strings.EqualFold(have, k) {
			delete(h, have)
		}
	}
	h[k] = []string{v}
}

// ReplayMarker records that a record's job was enqueued by a replay.
type ReplayMarker struct {
	JobID string `json:"job_id"`
	// RecordStoredAt identifies the record together with its sequence: a
	// stream deleted and created again reuses sequences, and a marker of a
	// record of the old stream must not pass for one of the new.
	RecordStoredAt time.Time `json:"record_stored_at"`
	MsgID          string    `json:"msg_id"`
	Subject        string    `json:"subject"`
	FunctionID     string    `json:"function_id,omitempty"`
	// JobsSeq is the replayed job's sequence in the jobs stream.
	JobsSeq    uint64    `json:"jobs_seq"`
	ReplayedAt time.Time `json:"replayed_at"`
}

func (m *ReplayMarker) matches(r dlq.Record) bool {
	return m.JobID == r.JobID && m.RecordStoredAt.Equal(r.StoredAt)
}

func markerKey(seq uint64) string { return strconv.FormatUint(seq, 10) }

// markers returns the marker bucket; nil (no error) when it does not exist
// and create is false.
func (s *Store) markers(ctx context.Context, create bool) (jetstream.KeyValue, error) {
	kv, err := s.js.KeyValue(ctx, s.cfg.ReplayBucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("replay markers %s: %w", s.cfg.ReplayBucket, err)
	}
	if !create {
		return nil, nil
	}
	sc := s.stream.CachedInfo().Config
	ttl := s.cfg.ReplayMarkerTTL
	if ttl == 0 {
		ttl = sc.MaxAge
	}
	kv, err = s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      s.cfg.ReplayBucket,
		Description: "replayed dead-letter records of " + s.cfg.Stream + " (key: record sequence)",
		TTL:         ttl,
		Replicas:    sc.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = s.js.KeyValue(ctx, s.cfg.ReplayBucket) // created meanwhile by another replay
	}
	if err != nil {
		return nil, fmt.Errorf("replay markers %s: %w", s.cfg.ReplayBucket, err)
	}
	return kv, nil
}

// ReplayMarker returns r's replay marker, or nil when r was never replayed.
func (s *Store) ReplayMarker(ctx context.Context, r dlq.Record) (*ReplayMarker, error) {
	kv, err := s.markers(ctx, false)
	if err != nil || kv == nil {
		return nil, err
	}
	return s.marker(ctx, kv, r)
}

func (s *Store) marker(ctx context.Context, kv jetstream.KeyValue, r dlq.Record) (*ReplayMarker, error) {
	if kv == nil {
		return nil, nil
	}
	e, err := kv.Get(ctx, markerKey(r.Seq))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("replay marker of record %d: %w", r.Seq, err)
	}
	var m ReplayMarker
	if err := json.Unmarshal(e.Value(), &m); err != nil || !m.matches(r) {
		return nil, nil // not this record's: written by an older stream of the same name
	}
	return &m, nil
}

// recordOpTimeout bounds the uninterruptible part of one record's replay.
const recordOpTimeout = 30 * time.Second

// Replay republishes the selected records' jobs; see the comment at the top
// of replay.go for the steps and why no job is enqueued twice. It returns
// ErrTooManyFailures when the watch stopped it, ErrIncomplete when some
// records failed, and ctx's error when cancelled (between records).
func (s *Store) Replay(ctx context.Context, o ReplayOptions) (ReplayResult, error) {
	res := ReplayResult{DryRun: o.DryRun}
	if err := o.Validate(); err != nil {
		return res, err
	}
	records, err := s.selection(ctx, o.Filter)
	if err != nil {
		return res, err
	}
	res.Selected = len(records)
	if o.OnPlan != nil {
		o.OnPlan(records)
	}
	if len(records) == 0 {
		return res, nil
	}
	kv, err := s.markers(ctx, !o.DryRun)
	if err != nil {
		return res, err
	}

	loopCtx, stopLoop := context.WithCancelCause(ctx)
	defer stopLoop(nil)
	var w *watcher
	if o.Watch != nil && !o.DryRun {
		w, err = s.startWatch(ctx, o.Watch.withDefaults(), func() { stopLoop(ErrTooManyFailures) })
		if err != nil {
			return res, err
		}
		defer w.stop(ctx)
	}
	var limiter *rate.Limiter
	if o.Rate > 0 && !o.DryRun {
		limiter = rate.NewLimiter(rate.Limit(o.Rate), 1)
	}

	subjects := &subjectCheck{js: s.js, stream: s.cfg.JobsStream, seen: map[string]error{}}
	done := 0
	for _, r := range records {
		if limiter != nil {
			if err := limiter.Wait(loopCtx); err != nil {
				break
			}
		}
		if loopCtx.Err() != nil {
			break
		}
		ev, stop, err := s.replayOne(loopCtx, kv, w, subjects, r, o)
		if err != nil {
			return res, err // a test hook: the "process" died here
		}
		if stop {
			break
		}
		done++
		switch ev.Outcome {
		case Replayed, WouldReplay:
			res.Replayed++
		case AlreadyReplayed:
			res.AlreadyReplayed++
		case Skipped:
			res.Skipped++
		case Failed:
			res.Failed++
		}
		if ev.Deleted {
			res.Deleted++
		}
		if w != nil && o.OnWatch != nil {
			if t, changed := w.poll(); changed {
				o.OnWatch(t)
			}
		}
		if o.OnEvent != nil {
			o.OnEvent(ev)
		}
	}
	res.Left = len(records) - done

	if w != nil {
		if !errors.Is(context.Cause(loopCtx), ErrTooManyFailures) && ctx.Err() == nil {
			w.settle(ctx, o.OnWatch)
		}
		t, _ := w.poll()
		res.Watch = &t
		if w.isTripped() {
			res.Stopped = res.Left > 0
			return res, fmt.Errorf("%w: %d of %d finished jobs failed again (over %.0f%%)",
				ErrTooManyFailures, t.FailedAgain, t.FailedAgain+t.Succeeded, w.opts.MaxFailureRatio*100)
		}
	}
	if err := ctx.Err(); err != nil && res.Left > 0 {
		return res, fmt.Errorf("replay interrupted with %d records left: %w", res.Left, err)
	}
	if res.Failed > 0 {
		return res, fmt.Errorf("%w: %d of %d records not replayed", ErrIncomplete, res.Failed, res.Selected)
	}
	return res, nil
}

// replayOne replays one record. stop means ctx ended before anything was
// changed for it. err is only a test hook's.
func (s *Store) replayOne(ctx context.Context, kv jetstream.KeyValue, w *watcher, subjects *subjectCheck, listed dlq.Record, o ReplayOptions) (ev ReplayEvent, stop bool, err error) {
	ev = ReplayEvent{Record: listed}
	r, err := s.Get(ctx, listed.Seq)
	switch {
	case errors.Is(err, ErrRecordNotFound):
		ev.Outcome, ev.Note = Skipped, "gone since it was listed (replayed, purged or aged out)"
		return ev, false, nil
	case ctx.Err() != nil:
		return ev, true, nil
	case err != nil:
		ev.Outcome, ev.Err = Failed, err
		return ev, false, nil
	case !r.StoredAt.Equal(listed.StoredAt):
		ev.Outcome, ev.Note = Skipped, "another record has taken its sequence since it was listed"
		return ev, false, nil
	}
	ev.Record = r
	msg, err := ReplayMessage(r, s.cfg.Stream, o.ToFunction)
	if err != nil {
		ev.Outcome, ev.Err = Failed, err
		return ev, false, nil
	}
	ev.Subject, ev.FunctionID, ev.MsgID = msg.Subject, msg.Header.Get(job.HeaderFunctionID), msg.Header.Get(job.HeaderMsgID)
	ev.Warning = s.doomed(msg)
	if err := subjects.check(ctx, msg.Subject); err != nil {
		if ctx.Err() != nil {
			return ev, true, nil
		}
		ev.Outcome, ev.Err = Failed, err
		return ev, false, nil
	}

	m, err := s.marker(ctx, kv, r)
	if err != nil {
		if ctx.Err() != nil {
			return ev, true, nil
		}
		ev.Outcome, ev.Err = Failed, err
		return ev, false, nil
	}
	if m != nil {
		ev.Outcome = AlreadyReplayed
		ev.Note = fmt.Sprintf("replayed at %s (jobs stream sequence %d)", m.ReplayedAt.UTC().Format(time.RFC3339), m.JobsSeq)
		if o.DryRun || o.Keep {
			return ev, false, nil
		}
		opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordOpTimeout)
		defer cancel()
		if err := s.deleteRecord(opCtx, r.Seq); err != nil {
			ev.Err = err
			ev.Note += "; the record could not be deleted"
		} else {
			ev.Deleted = true
			ev.Note += "; record deleted"
		}
		return ev, false, nil
	}
	if o.DryRun {
		ev.Outcome = WouldReplay
		return ev, false, nil
	}
	if ctx.Err() != nil {
		return ev, true, nil
	}

	// From here on the record's replay runs to its end: see the top of
	// this file.
	opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordOpTimeout)
	defer cancel()
	if w != nil {
		w.expect(r.JobID)
	}
	// No WithExpectStream: its header would be stored with the job and
	// copied into the job's next dead-letter record, whose publish to the
	// DLQ stream it would then fail. checkSubject did that check instead.
	ack, err := s.js.PublishMsg(opCtx, msg)
	if err != nil {
		if w != nil {
			w.forget(r.JobID)
		}
		ev.Outcome, ev.Err = Failed, fmt.Errorf("publish to %s: %w", msg.Subject, err)
		return ev, false, nil
	}
	if s.afterPublish != nil {
		if err := s.afterPublish(r.Seq); err != nil {
			return ev, true, err
		}
	}
	ev.Outcome = Replayed
	if ack.Duplicate {
		// An earlier run enqueued it inside the duplicate window and died
		// before writing its marker; its outcome may already be stored.
		ev.Outcome, ev.Note = AlreadyReplayed, "an interrupted earlier replay had enqueued it (duplicate within the jobs stream's window)"
		if w != nil {
			w.forget(r.JobID)
		}
	}
	marker := ReplayMarker{
		JobID: r.JobID, RecordStoredAt: r.StoredAt, MsgID: ev.MsgID, Subject: msg.Subject,
		FunctionID: ev.FunctionID, JobsSeq: ack.Sequence, ReplayedAt: s.cfg.Now().UTC(),
	}
	val, _ := json.Marshal(marker)
	if _, err := kv.Put(opCtx, markerKey(r.Seq), val); err != nil {
		// Deleting the record still protects a re-run; only a record kept
		// (or not deleted) without a marker could be replayed twice.
		ev.Err = fmt.Errorf("replay marker not written: %w", err)
		s.log.Warn().Err(err).Uint64("seq", r.Seq).Str("job_id", r.JobID).Msg("replay marker not written")
	}
	if s.afterMark != nil {
		if err := s.afterMark(r.Seq); err != nil {
			return ev, true, err
		}
	}
	if o.Keep {
		return ev, false, nil
	}
	if err := s.deleteRecord(opCtx, r.Seq); err != nil {
		ev.Err = errors.Join(ev.Err, err)
		ev.Note = "enqueued, but the record could not be deleted"
		return ev, false, nil
	}
	ev.Deleted = true
	if ev.Outcome == AlreadyReplayed {
		ev.Note += "; record deleted"
	}
	return ev, false, nil
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

// subjectCheck tells whether a subject is stored by the jobs stream, asking
// the server once per subject: a job replayed to a subject no longer
// captured there would be lost or land in another stream.
type subjectCheck struct {
	js     jetstream.JetStream
	stream string
	seen   map[string]error
}

func (c *subjectCheck) check(ctx context.Context, subject string) error {
	if err, ok := c.seen[subject]; ok {
		return err
	}
	name, err := c.js.StreamNameBySubject(ctx, subject)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		err = fmt.Errorf("no stream stores %s any more: the job would be lost", subject)
	case err != nil:
		return fmt.Errorf("which stream stores %s: %w", subject, err) // not cached: may be transient
	case name != c.stream:
		err = fmt.Errorf("%s is stored by stream %s, not %s", subject, name, c.stream)
	}
	c.seen[subject] = err
	return err
}

// doomed says why the worker will dead-letter msg again without invoking
// it, or "". It applies the worker's own checks, request limit included, so
// that a dry run sees what the replay would meet.
func (s *Store) doomed(msg *nats.Msg) string {
	j, err := job.Parse(job.Message{Subject: msg.Subject, Header: msg.Header, Data: msg.Data}, job.Limits{MaxBody: s.cfg.RequestLimit})
	if err != nil {
		return "invalid again: " + strings.TrimPrefix(err.Error(), job.ErrInvalid.Error()+": ")
	}
	if !j.Deadline.IsZero() && s.cfg.Now().After(j.Deadline) {
		return fmt.Sprintf("expires again: %s %s has passed", job.HeaderDeadline, j.Deadline.UTC().Format(time.RFC3339))
	}
	return ""
}
