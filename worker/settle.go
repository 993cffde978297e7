package worker

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/dlq"
)

// settle carries out d, one function per action. A job is acknowledged
// only after JetStream stored what replaces it (its result, its
// dead-letter record, its waiting copy); if that store fails the job is
// given back in place, to be redelivered, rather than lost. It ends with
// the job's log line and the end of its span, both naming the outcome.
func (w *Worker) settle(msg jetstream.Msg, o outcome, d decision, s *slot) {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.SettleTimeout)
	defer cancel()
	ev := w.jobLine(o, d)
	var result string
	switch d.action {
	case actComplete:
		result = w.settleComplete(ctx, msg, o, d, s, ev)
	case actDeadLetter:
		result = w.settleDeadLetter(ctx, msg, o, d, ev)
	case actRetry, actDefer:
		result = w.settleWait(ctx, msg, o, d, ev)
	case actRelease:
		result = w.settleRelease(ctx, msg, o, d)
	case actHandBack:
		result = w.settleHandBack(ctx, msg, o)
	case actAcknowledge:
		result = w.settleAcknowledge(ctx, msg, o)
	case actResumeWait:
		result = w.settleResumeWait(ctx, msg, o, d)
	case actLeave:
		result = w.settleLeave(ctx, o)
	}
	var code string
	if ev != nil || o.span != nil {
		code = errorCode(o)
	}
	if ev != nil {
		if code != "" {
			ev.Str("code", code)
		}
		if id := traceIDOf(o); id != "" {
			ev.Str("trace_id", id)
		}
		ev.Str("outcome", result).Msg(d.action.logMessage())
	}
	endJobSpan(o, d, result, code)
}

// Outcomes of a delivery: the outcome field of its log line and span.
const (
	outcomeCompleted        = "completed"
	outcomeResultNotStored  = "result_not_stored"
	outcomeDeadLettered     = "dead_lettered"
	outcomeRecordNotStored  = "record_not_stored"
	outcomeAlreadySettled   = "already_settled"
	outcomeRetried          = "retried"
	outcomeDeferred         = "deferred"
	outcomeWaitNotStored    = "wait_not_stored"
	outcomeReleased         = "released"
	outcomeHandedBack       = "handed_back"
	outcomeAlreadyCompleted = "already_completed"
	outcomeWaitResumed      = "wait_resumed"
	outcomeLeft             = "left"
)

// jobLine starts the job's log line, nil when its level is off. One line
// per job is too many at thousands of jobs a second: a completed job logs
// at debug, a retry at info, a dead letter at warn.
func (w *Worker) jobLine(o outcome, d decision) *zerolog.Event {
	var ev *zerolog.Event
	switch d.action {
	case actRetry, actResumeWait:
		ev = w.log.Info()
	case actDeadLetter, actRelease, actLeave:
		ev = w.log.Warn()
	default:
		ev = w.log.Debug()
	}
	if ev == nil {
		return nil
	}
	ev = ev.Str("job_id", o.job.ID).Str("function", o.job.FunctionID).Int("attempt", o.attempt).Int("attempts", d.attempts)
	if d.status != 0 {
		ev = ev.Int("status", d.status)
	}
	if o.made && len(o.history) > 0 {
		ev = ev.Int64("duration_ms", o.history[len(o.history)-1].DurationMs)
	} else if o.made && o.resp != nil {
		ev = ev.Int64("duration_ms", o.resp.Duration.Milliseconds())
	}
	if d.cause != "" {
		ev = ev.Str("cause", d.cause)
	}
	return ev
}

// The settle functions return the delivery's outcome; ev (nil when the
// job's line is off) takes what only they know.

func (w *Worker) settleComplete(ctx context.Context, msg jetstream.Msg, o outcome, d decision, s *slot, ev *zerolog.Event) string {
	j := o.job
	ev.Str("opc_request_id", o.resp.OpcRequestID)
	if o.lapsed {
		// Another worker may have had the job meanwhile. Its result
		// would be deduplicated with this one; its dead-letter record
		// stands, and a result beside it would contradict it.
		by, err := w.settledElsewhere(ctx, j)
		if err != nil {
			// Unknown: leave the job to JetStream rather than risk a
			// result beside a record.
			w.log.Warn().Err(err).Str("job_id", j.ID).Msg("dead-letter stream not readable after a lapse of NATS; the job is left to JetStream")
			w.metrics.job("left")
			return outcomeLeft
		}
		if by != "" {
			if err := msg.Ack(); err != nil {
				w.metrics.ackFailure()
			}
			w.log.Warn().Str("job_id", j.ID).Str("outcome", by).Msg("job already settled elsewhere; this worker's late result dropped")
			w.metrics.job("already_settled")
			return outcomeAlreadySettled
		}
	}
	if tp, ts := w.traceContext(o); tp != "" {
		// The result continues the delivery's trace.
		j.Traceparent, j.Tracestate = tp, ts
	}
	res := w.resultMsg(j, o.resp, d.attempts, s)
	err := w.checkResult(ctx, res, j.ID)
	if err == nil {
		start := w.cfg.Now()
		err = w.publishResult(ctx, res, j.ID)
		done := w.cfg.Now()
		w.metrics.published(done.Sub(start).Seconds())
		if err == nil && !j.StoreAt.IsZero() {
			w.metrics.stored(max(0, done.Sub(j.StoreAt).Seconds()))
		}
	}
	if err != nil {
		// The function ran but its result is not stored: run it again
		// later rather than acknowledge and lose it.
		w.log.Error().Err(err).Str("job_id", j.ID).Str("function", j.FunctionID).Msg("result not stored; job given back")
		w.giveBackUnlessLapsed(msg, o, j.ID)
		w.metrics.job("result_not_stored")
		return outcomeResultNotStored
	}
	if j.ReplyTo != "" && w.deps.Replies != nil {
		reply := &nats.Msg{Subject: j.ReplyTo, Header: res.Header, Data: res.Data}
		if err := w.deps.Replies.PublishMsg(reply); err != nil {
			w.log.Warn().Err(err).Str("job_id", j.ID).Str("reply_to", j.ReplyTo).Msg("reply not sent (the result is stored)")
		}
	}
	if err := msg.Ack(); err != nil {
		w.log.Warn().Err(err).Str("job_id", j.ID).Msg("ack failed; the job will be redelivered and its result found")
		w.metrics.ackFailure()
	}
	w.dropState(ctx, j.Seq, o)
	w.dropBody(ctx, j)
	w.metrics.job("completed")
	return outcomeCompleted
}

func (w *Worker) settleDeadLetter(ctx context.Context, msg jetstream.Msg, o outcome, d decision, ev *zerolog.Event) string {
	j := o.job
	ev.Str("reason", string(d.reason))
	// Not being able to look is no reason to keep a failed job: the
	// record is stored once whoever stores it.
	if by, _ := w.settledElsewhere(ctx, j); by != "" {
		// Another worker settled it while this one held a stale
		// delivery (cut off from NATS past the ack wait): its outcome
		// stands; a second one would contradict it.
		if err := msg.Ack(); err != nil {
			w.metrics.ackFailure()
		}
		w.log.Warn().Str("job_id", j.ID).Str("outcome", by).Str("reason", string(d.reason)).Msg("job already settled elsewhere; this worker's late dead-letter dropped")
		w.metrics.job("already_settled")
		return outcomeAlreadySettled
	}
	f := dlq.Failure{Reason: d.reason, Error: d.cause, Status: d.status, Attempts: d.attempts, FailedAt: w.cfg.Now(), Worker: w.cfg.ID, History: o.history}
	f.Traceparent, f.Tracestate = w.traceContext(o)
	if err := w.deps.DeadLetters.DeadLetter(ctx, j, f); err != nil {
		w.log.Error().Err(err).Str("job_id", j.ID).Str("reason", string(d.reason)).Msg("dead-letter record not stored; job given back")
		w.giveBackUnlessLapsed(msg, o, j.ID)
		w.metrics.job("record_not_stored")
		return outcomeRecordNotStored
	}
	if err := msg.TermWithReason(string(d.reason)); err != nil {
		w.log.Warn().Err(err).Str("job_id", j.ID).Msg("term failed; the job will be redelivered and its record deduplicated")
		w.metrics.ackFailure()
	}
	w.dropState(ctx, j.Seq, o)
	w.metrics.job("dead_lettered_" + string(d.reason))
	return outcomeDeadLettered
}

// settleWait makes the job wait d.delay: as a scheduled copy when the
// worker can (holding no delivery slot), else handed back with a delay.
func (w *Worker) settleWait(ctx context.Context, msg jetstream.Msg, o outcome, d decision, ev *zerolog.Event) string {
	j := o.job
	cause := d.cause
	defers := d.defers
	result := outcomeDeferred
	if d.action == actRetry {
		cause, defers, result = causeRetry, 0, outcomeRetried
	}
	ev.Dur("retry_in", d.delay)
	if d.action == actRetry {
		w.metrics.job("retried")
	}
	if w.waits() {
		m := waitMark{Cause: cause, Until: o.now.Add(d.delay), Attempts: d.attempts, Defers: defers, History: o.history}
		m.Traceparent, m.Tracestate = w.traceContext(o)
		marked, err := w.wait(ctx, msg, j, m)
		if err == nil {
			w.dropState(ctx, j.Seq, o)
			w.metrics.waited(j.FunctionID, cause)
			w.watch.note(j.FunctionID, cause)
			return result
		}
		w.metrics.waitFailure()
		if marked {
			// The copy may be stored after all: the redelivery must
			// come soon, to find the mark and finish the wait while the
			// copy's dedupe id is still remembered. It keeps the due time.
			w.log.Warn().Err(err).Str("job_id", j.ID).Msg("waiting copy not confirmed; the job comes back shortly to finish its wait")
			w.giveBack(msg, w.policy.giveBack, j.ID)
			return outcomeWaitNotStored
		}
		w.log.Warn().Err(err).Str("job_id", j.ID).Msg("waiting copy not stored; handing the job back with a delay instead")
	}
	// In place: the job keeps a delivery slot while it waits.
	st := jobState{History: o.history, stored: o.stateStored}
	if d.action == actDefer {
		st.Free = o.freeDeliveries + 1
	}
	if err := w.saveState(ctx, j.Seq, &st); err != nil {
		// The redelivery will be charged as an attempt: fewer attempts,
		// never more.
		w.log.Warn().Err(err).Str("job_id", j.ID).Msg("job state not stored; the next delivery counts as an attempt")
	}
	w.giveBack(msg, d.delay, j.ID)
	w.metrics.held(cause)
	return result
}

func (w *Worker) settleRelease(ctx context.Context, msg jetstream.Msg, o outcome, d decision) string {
	if o.made && o.job.Seq != 0 {
		st := jobState{History: o.history, Free: o.freeDeliveries}
		if err := w.saveState(ctx, o.job.Seq, &st); err != nil {
			w.log.Debug().Err(err).Str("job_id", o.job.ID).Msg("attempt history not stored")
		}
	}
	w.giveBack(msg, d.delay, o.job.ID)
	w.metrics.job("released")
	return outcomeReleased
}

func (w *Worker) settleHandBack(ctx context.Context, msg jetstream.Msg, o outcome) string {
	st := jobState{History: o.history, Free: o.freeDeliveries + 1}
	if err := w.saveState(ctx, o.job.Seq, &st); err != nil {
		w.log.Warn().Err(err).Str("job_id", o.job.ID).Msg("hand-back not recorded; the next delivery counts as an attempt")
	}
	w.giveBack(msg, 0, o.job.ID)
	w.metrics.held(causeShutdown)
	return outcomeHandedBack
}

// settleLeave leaves the job to JetStream. A delivery that made no
// attempt is recorded as free, as a hand-back is, so that stale deliveries
// (a pull sent before the lapse, answered after it) do not spend the
// job's attempts; the job may be running elsewhere, so nothing else is
// done. If the record is lost the delivery is charged: fewer attempts,
// never more.
func (w *Worker) settleLeave(ctx context.Context, o outcome) string {
	if !o.made && o.job.Seq != 0 {
		st := jobState{History: o.history, Free: o.freeDeliveries + 1}
		if err := w.saveState(ctx, o.job.Seq, &st); err != nil {
			w.log.Warn().Err(err).Str("job_id", o.job.ID).Msg("left job not recorded as free; its next delivery counts as an attempt")
		}
	}
	w.metrics.job("left")
	return outcomeLeft
}

func (w *Worker) settleAcknowledge(ctx context.Context, msg jetstream.Msg, o outcome) string {
	if err := msg.Ack(); err != nil {
		w.log.Warn().Err(err).Str("job_id", o.job.ID).Msg("ack failed")
		w.metrics.ackFailure()
	}
	w.dropState(ctx, o.job.Seq, o)
	w.dropBody(ctx, o.job)
	w.metrics.job("already_completed")
	return outcomeAlreadyCompleted
}

func (w *Worker) settleResumeWait(ctx context.Context, msg jetstream.Msg, o outcome, d decision) string {
	if err := w.finishWait(ctx, msg, o.job, *o.resume); err != nil {
		// The mark stays: the next redelivery tries again.
		w.log.Warn().Err(err).Str("job_id", o.job.ID).Msg("waiting copy not stored; the job will be redelivered to finish its wait")
		w.giveBack(msg, w.policy.giveBack, o.job.ID)
		return outcomeWaitNotStored
	}
	w.metrics.waited(o.job.FunctionID, d.cause)
	return outcomeWaitResumed
}

// giveBack hands msg back to JetStream for redelivery after delay. If that
// fails (the connection is down), nothing more can be done from here: the
// server redelivers the job once its ack wait (consumer.ack_wait) passes,
// so a short retry becomes a long one, but nothing is lost.
func (w *Worker) giveBack(msg jetstream.Msg, delay time.Duration, jobID string) {
	var err error
	if delay > 0 {
		err = msg.NakWithDelay(delay)
	} else {
		err = msg.Nak()
	}
	if err != nil {
		w.log.Warn().Err(err).Str("job_id", jobID).Dur("delay", delay).Msg("give-back failed; JetStream redelivers the job after its ack wait")
		w.metrics.nakFailure()
	}
}

// giveBackUnlessLapsed gives a job back after a failed store, unless the
// worker lost NATS while it held the job: the job may be another worker's
// by now, and a give-back would have it run a third time. JetStream
// redelivers it after its ack wait otherwise.
func (w *Worker) giveBackUnlessLapsed(msg jetstream.Msg, o outcome, jobID string) {
	if o.lapsed {
		return
	}
	w.giveBack(msg, w.policy.giveBack, jobID)
}
