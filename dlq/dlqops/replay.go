package dlqops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
//
// This file is the loop and the checks before a publish. The options and
// what a replay reports are in replay_options.go, the job a record becomes
// in replay_message.go, the markers in replay_marker.go, and the watch of
// the replayed jobs' outcomes in watch.go.

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
