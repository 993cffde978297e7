package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/job"
)

// slot is what one of the worker's goroutines reuses from job to job, so
// that the hot path allocates less.
type slot struct {
	hb heartbeat
	// resultHeader and resultValues hold the result message's header,
	// cleared and refilled for each job: nats.go encodes a message before
	// its publish returns, so nothing refers to them afterwards.
	resultHeader nats.Header
	resultValues []string
}

func newSlot() *slot {
	return &slot{resultHeader: make(nats.Header, job.ResultHeaders), resultValues: make([]string, 0, job.ResultHeaders)}
}

// handle runs one delivery from parse to acknowledgement, using s for its
// heartbeat and scratch space: examine finds out what happened, decide
// says what follows, settle carries it out. It never panics out: a panic
// is an outcome like any other. arrived is when the job reached this
// worker (see lapsedSince).
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg, arrived time.Time, stopping bool, s *slot) {
	w.inFlight.Add(1)
	w.metrics.inFlightAdd(1)
	defer func() {
		w.inFlight.Add(-1)
		w.metrics.inFlightAdd(-1)
	}()
	hb := &s.hb
	hb.start(msg, w.cfg.Now(), w.cfg.ProgressInterval)
	defer hb.stop()
	var span trace.Span // settle ends it
	if w.tracing != nil {
		ctx, span = w.tracing.startJob(ctx, msg.Headers())
	}
	var o outcome
	defer func() {
		if p := recover(); p != nil {
			w.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Str("subject", msg.Subject()).Msg("panic while handling a job; giving it back")
			hb.stop()
			po := outcome{panicked: p, job: o.job, now: w.cfg.Now(), span: span}
			w.settle(msg, po, decide(po, w.policy), s)
		}
	}()
	o = w.examine(ctx, msg, arrived, stopping)
	o.lapsed = o.lapsed || w.lapsedSince(arrived)
	o.now = w.cfg.Now()
	o.span = span
	d := decide(o, w.policy)
	hb.stop()
	if d.action == actDefer && w.settleAside(msg, o, d) {
		return
	}
	w.settle(msg, o, d, s)
	// The result is stored (or the job given back): nothing refers to the
	// answer's body any more.
	o.resp.Release()
}

// settleAside stores a deferred job's wait outside the slot, so that
// moving a backlog aside (an open breaker's, a function's over its share)
// is not bounded by the few slots the busy functions leave free: the slot
// takes its next job at once. At most Concurrency waits are stored at a
// time; past that the slot stores its own (back-pressure). It reports
// whether it took the job.
func (w *Worker) settleAside(msg jetstream.Msg, o outcome, d decision) bool {
	if !w.waits() {
		return false
	}
	select {
	case w.settlers <- struct{}{}:
	default:
		return false
	}
	w.settling.Go(func() {
		defer func() { <-w.settlers }()
		defer func() {
			if p := recover(); p != nil {
				w.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Str("job_id", o.job.ID).Msg("panic while storing a wait; JetStream redelivers the job after its ack wait")
			}
		}()
		w.settle(msg, o, d, nil)
	})
	return true
}

// examine reads the delivery, checks what must be checked before an
// attempt and makes it, and returns what happened.
func (w *Worker) examine(ctx context.Context, msg jetstream.Msg, arrived time.Time, stopping bool) outcome {
	var o outcome
	meta, err := msg.Metadata()
	if err != nil {
		// Only JetStream messages reach a consumer; this is a bug.
		o.unusable = fmt.Errorf("job without JetStream metadata: %w", err)
		return o
	}
	o.job, o.parseErr = job.Parse(job.Message{
		Subject: msg.Subject(),
		Header:  msg.Headers(),
		Data:    msg.Data(),
		Stream:  meta.Stream,
		Seq:     meta.Sequence.Stream,
		StoreAt: meta.Timestamp,
	}, job.Limits{MaxBody: w.cfg.RequestLimit})
	var ws waitState
	if o.parseErr == nil {
		ws, o.parseErr = readWaitState(msg.Headers(), meta.Timestamp)
	}
	if o.parseErr == nil && o.job.ReplyTo != "" {
		o.parseErr = w.checkReplyTo(o.job.ReplyTo)
	}
	if o.parseErr != nil {
		return o
	}
	if !ws.enqueued.IsZero() {
		// A waiting copy: the job's age runs from when it was first stored.
		o.job.StoreAt = ws.enqueued
	}
	if ws.cause != "" {
		w.metrics.resumed(o.job.FunctionID, ws.cause)
	}
	o.defers, o.history = ws.defers, ws.history
	if meta.NumDelivered > 1 {
		if w.waits() {
			mark, err := w.loadWaitMark(ctx, meta.Sequence.Stream)
			if err != nil {
				// A copy may exist: running the job now could run it twice.
				o.markUnreadable = err
				return o
			}
			if mark != nil {
				o.resume = mark
				return o
			}
		}
		if w.completedBefore(ctx, o.job) {
			o.completed = true
			return o
		}
		st := w.loadState(ctx, meta.Sequence.Stream, meta.NumDelivered)
		o.freeDeliveries, o.stateStored = st.Free, st.stored
		if len(st.History) > 0 {
			// Saved in full by an earlier delivery of this message.
			o.history = st.History
		}
	}
	o.attempt = max(1, ws.attempts+int(meta.NumDelivered)-o.freeDeliveries)
	if o.lapsed = w.lapsedSince(arrived); o.lapsed {
		// Another worker may be running it now.
		return o
	}
	w.try(ctx, &o, stopping)
	return o
}

// checkReplyTo refuses a reply subject inside the product's own streams.
func (w *Worker) checkReplyTo(subject string) error {
	for _, own := range w.cfg.OwnSubjects {
		if job.SubjectsOverlap(own, subject) {
			return fmt.Errorf("%w: %s %q is a subject of the worker's own streams (%s): the reply would be stored there", job.ErrInvalid, job.HeaderReplyTo, subject, own)
		}
	}
	return nil
}

// settledElsewhere says whether j already has an outcome stored ("result"
// or "record"), "" if not, and an error when the dead-letter stream could
// not be read. Only slow paths ask (a dead-letter, a result held across a
// lapse of NATS): two lookups, none on the hot path.
func (w *Worker) settledElsewhere(ctx context.Context, j job.Job) (string, error) {
	if j.ID == "" {
		return "", nil
	}
	if w.completedBefore(ctx, j) {
		return "result", nil
	}
	if w.deps.StoredRecords == nil {
		return "", nil
	}
	m, err := w.deps.StoredRecords.GetLastMsgForSubject(ctx, w.cfg.DLQPrefix+".*."+j.ID)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	seen, err := time.Parse(job.TimeFormatMillis, m.Header.Get(job.HeaderFirstSeenAt))
	if err == nil && !seen.Before(j.StoreAt.Truncate(time.Millisecond)) {
		return "record", nil
	}
	return "", nil
}

// completedBefore reports whether a result of j is already stored. A
// result completed before j was stored belongs to an older job that reused
// the id, not to this one.
func (w *Worker) completedBefore(ctx context.Context, j job.Job) bool {
	if w.deps.StoredResults == nil {
		return false
	}
	m, err := w.deps.StoredResults.GetLastMsgForSubject(ctx, w.cfg.ResultsPrefix+"."+j.ID)
	if err != nil {
		if !errors.Is(err, jetstream.ErrMsgNotFound) {
			w.log.Debug().Err(err).Str("job_id", j.ID).Msg("results lookup failed; invoking")
		}
		return false
	}
	done := job.ParseResult(m.Header).CompletedAt
	return !done.IsZero() && !done.Before(j.StoreAt.Truncate(time.Millisecond))
}

// try checks what must be checked before an attempt (budget, stop,
// expiry, body, the function's share and limits, its breaker) and makes
// the attempt, filling o.
func (w *Worker) try(ctx context.Context, o *outcome, stopping bool) {
	now := w.cfg.Now()
	j := o.job
	switch {
	case o.attempt > w.cfg.Retry.MaxAttempts:
		o.spent = true
		return
	case stopping:
		o.stopping = true
		return
	}
	if o.expired = w.expiry(j, now); o.expired != "" {
		return
	}
	// Only the invocation gets a stored body: o.job keeps the message's,
	// so a dead-letter record still refers to the object and fits a message.
	body, err := w.bodyOf(ctx, j)
	switch {
	case errors.Is(err, job.ErrInvalid):
		o.parseErr = err
		return
	case err != nil:
		o.deferCause = causeBodyUnavailable
		w.log.Warn().Err(err).Str("job_id", j.ID).Msg("job body not readable; trying again later")
		return
	}
	j.Body = body
	if w.breakers.open(j.FunctionID) {
		// Before the share: a function that cannot be called must not
		// count as one in flight, shrinking the others' shares.
		o.deferCause = causeBreakerOpen
		return
	}
	release, wait, cause := w.limits.acquire(j.FunctionID, now)
	if cause != "" {
		o.deferCause, o.deferHint = cause, wait
		return
	}
	var took time.Duration
	defer func() { release(took) }()
	if wait > 0 {
		// Bounded by maxRateWait; a stop cuts it short.
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			o.err = fmt.Errorf("%w: waiting for the function's rate limit", errInterrupted)
			return
		}
	}
	done, breakerState, ok := w.breakers.allow(j.FunctionID)
	if !ok {
		// Tried again after the open period, when a probe may be let through.
		o.deferCause = causeBreakerOpen
		return
	}
	start := w.cfg.Now()
	if w.tracing != nil {
		actx, span := w.tracing.startAttempt(ctx, j, o.attempt)
		o.resp, o.err = w.attempt(actx, j, o.attempt)
		endAttempt(span, o.resp, o.err)
	} else {
		o.resp, o.err = w.attempt(ctx, j, o.attempt)
	}
	elapsed := w.cfg.Now().Sub(start)
	took = elapsed
	done(o.err)
	if errors.Is(o.err, invoke.ErrBadRequest) || errors.Is(o.err, invoke.ErrRequestTooLarge) {
		// Refused before anything was sent: no attempt was made.
		return
	}
	o.made = true

	a := dlq.Attempt{N: o.attempt, At: start.UTC(), DurationMs: elapsed.Milliseconds(), Worker: w.cfg.ID, Breaker: breakerState}
	var ie *invoke.Error
	switch {
	case o.err == nil:
		a.Status = o.resp.Status
		w.metrics.attempt(statusClass(o.resp.Status), elapsed.Seconds())
		return // a completed job's history is not kept
	case errors.As(o.err, &ie):
		a.Status, a.Code, a.Error = ie.Status, ie.Code, ie.Error()
		w.metrics.attempt(errorClass(ie), elapsed.Seconds())
	default:
		a.Error = o.err.Error()
		w.metrics.attempt("other", elapsed.Seconds())
	}
	o.history = dlq.AppendHistory(o.history, a)
}

func statusClass(s int) string {
	return strconv.Itoa(s/100) + "xx"
}

// errorClass names a failed attempt for the attempts metric. A timeout or
// a broken connection wins over a status: an answer that stalled after
// its 200 is a timeout, not a 2xx.
func errorClass(e *invoke.Error) string {
	switch {
	case errors.Is(e.Err, invoke.ErrTimeout):
		return "timeout"
	case errors.Is(e.Err, invoke.ErrNetwork):
		return "network"
	case e.Status != 0:
		return statusClass(e.Status)
	}
	return "other"
}

// expiry says why j may no longer be invoked, or "".
func (w *Worker) expiry(j job.Job, now time.Time) string {
	if !j.Deadline.IsZero() && now.After(j.Deadline) {
		return fmt.Sprintf("deadline %s passed before the job could be invoked", j.Deadline.UTC().Format(time.RFC3339))
	}
	if w.cfg.MaxJobAge > 0 && !j.StoreAt.IsZero() && now.Sub(j.StoreAt) > w.cfg.MaxJobAge {
		return fmt.Sprintf("job is %s old, over worker.max_job_age %s", now.Sub(j.StoreAt).Round(time.Millisecond), w.cfg.MaxJobAge)
	}
	return ""
}

// attempt invokes the function once.
func (w *Worker) attempt(ctx context.Context, j job.Job, attempt int) (*invoke.Response, error) {
	req := invoke.Request{
		FunctionID:   j.FunctionID,
		Body:         j.Body,
		ContentType:  j.ContentType,
		Intent:       j.Intent,
		InvokeType:   j.InvokeType,
		OpcRequestID: j.OpcRequestID,
		Timeout:      j.Timeout,
	}
	if req.OpcRequestID == "" {
		// Stable per job and attempt, so the service's logs can be
		// matched to ours and a retried call told from a duplicate.
		req.OpcRequestID = j.ID + "-" + strconv.Itoa(attempt)
	}
	switch {
	case w.tracing != nil:
		// The attempt's span is the function's parent.
		req.Header = make(http.Header, 2)
		w.tracing.inject(ctx, req.Header)
	case j.Traceparent != "":
		req.Header = http.Header{"Traceparent": {j.Traceparent}}
		if j.Tracestate != "" {
			req.Header.Set("Tracestate", j.Tracestate)
		}
	}
	resp, err := w.deps.Invoker.Invoke(ctx, req)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("%w: %w", errInterrupted, err)
	}
	return resp, err
}
