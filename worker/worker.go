package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/job"
)

// Invoker makes one invocation attempt (invoke.Client).
type Invoker interface {
	Invoke(ctx context.Context, r invoke.Request) (*invoke.Response, error)
}

// ResultPublisher stores results (jetstream.JetStream).
type ResultPublisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// DeadLetterer stores dead-letter records (dlq.Writer).
type DeadLetterer interface {
	DeadLetter(ctx context.Context, j job.Job, f dlq.Failure) error
}

// ReplyPublisher sends a copy of a result to a job's Invoke-Reply-To subject
// (*nats.Conn). Best effort: core NATS.
type ReplyPublisher interface {
	PublishMsg(msg *nats.Msg) error
}

// ResultFinder reads the results stream (the jetstream.Stream of results).
type ResultFinder interface {
	GetLastMsgForSubject(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error)
}

// ConsumerSource returns the shared durable consumer, creating it when it
// is missing (queue.Ensure). The worker calls it again when the consumer
// was deleted under it.
type ConsumerSource func(ctx context.Context) (jetstream.Consumer, error)

// Deps are the worker's collaborators.
type Deps struct {
	Consumer    ConsumerSource
	Invoker     Invoker
	Results     ResultPublisher
	DeadLetters DeadLetterer
	// State keeps attempt counts and histories between deliveries
	// (queue.StateStore). Without it every delivery counts as an attempt
	// and records carry only the last attempt.
	State StateStore
	// StoredResults lets a redelivered job that already completed (its
	// acknowledgement was lost, or its worker died right after storing
	// the result) be acknowledged without invoking the function again.
	// Optional.
	StoredResults ResultFinder
	Replies       ReplyPublisher // optional
	// Bodies is the claim check for bodies too large for a message
	// (queue.Bodies). Optional: without it a job that refers to a stored
	// body is invalid, and a result over Config.MaxMessage is not stored.
	Bodies BodyStore
}

// Worker runs the invocation loop.
type Worker struct {
	cfg      Config
	deps     Deps
	log      zerolog.Logger
	metrics  *metrics
	breakers *breakers
	limits   *functionLimits

	running  atomic.Bool
	bound    atomic.Bool
	draining atomic.Bool
	inFlight atomic.Int64
}

// New builds a Worker.
func New(cfg Config, deps Deps) (*Worker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Consumer == nil || deps.Invoker == nil || deps.Results == nil || deps.DeadLetters == nil {
		return nil, errors.New("worker: Consumer, Invoker, Results and DeadLetters are required")
	}
	log := cfg.Logger.With().Str("component", "worker").Logger()
	m := newMetrics(cfg.Metrics)
	return &Worker{
		cfg:      cfg,
		deps:     deps,
		log:      log,
		metrics:  m,
		breakers: newBreakers(cfg.Breaker, log, m),
		limits:   newFunctionLimits(cfg.PerFunctionConcurrency, cfg.PerFunctionRate),
	}, nil
}

// Running reports whether the worker is bound to the consumer and taking
// jobs; readiness builds on it.
func (w *Worker) Running() bool { return w.running.Load() && w.bound.Load() && !w.draining.Load() }

// InFlight is the number of jobs being handled now.
func (w *Worker) InFlight() int { return int(w.inFlight.Load()) }

// BreakerStates returns each circuit breaker's state (closed, half-open,
// open) by key.
func (w *Worker) BreakerStates() map[string]string { return w.breakers.states() }

// Run takes jobs until ctx is cancelled, then stops gracefully: it stops
// pulling, gives jobs that have not started back for immediate redelivery,
// lets in-flight invocations finish for up to DrainTimeout, interrupts and
// gives back the rest, and returns nil. Acknowledgements it sent are
// flushed by the caller's connection drain.
//
// Concurrency goroutines each take the next job only when they are free;
// the client library keeps Prefetch more on their way, so a free goroutine
// never waits for a round trip. Those few are the only jobs whose ack
// deadline runs while they wait (see Config.Prefetch). The goroutines live
// as long as Run: a goroutine per job would grow a fresh stack for every
// HTTP call.
func (w *Worker) Run(ctx context.Context) error {
	// Invocations outlive ctx: a stop request must not cut them off before
	// DrainTimeout. workCtx is cancelled only when draining gives up.
	workCtx, interrupt := context.WithCancelCause(context.WithoutCancel(ctx))
	defer interrupt(nil)

	w.running.Store(true)
	defer w.running.Store(false)
	w.log.Info().Int("concurrency", w.cfg.Concurrency).Int("prefetch", w.cfg.Prefetch).Msg("worker started")

	slots := make([]*slot, w.cfg.Concurrency)
	hbs := make([]*heartbeat, len(slots))
	for i := range slots {
		slots[i] = newSlot()
		hbs[i] = &slots[i].hb
	}
	// Extensions go on while draining: in-flight jobs still run then.
	sweepCtx, stopSweeping := context.WithCancel(context.WithoutCancel(ctx))
	var sweeper sync.WaitGroup
	sweeper.Go(func() { sweepHeartbeats(sweepCtx, hbs, w.cfg.ProgressInterval) })
	defer func() { stopSweeping(); sweeper.Wait() }()

	// The client library delivers one job at a time and asks the server
	// for more only once it was taken: a job waits here until a goroutine
	// is free, and while it waits no more are pulled than Prefetch.
	handoff := make(chan jetstream.Msg)
	var (
		handBack       sync.WaitGroup
		handBackMu     sync.Mutex
		handBackClosed bool // set once Run waits for handBack
	)
	deliver := func(msg jetstream.Msg) {
		select {
		case handoff <- msg:
		case <-ctx.Done():
			// Stopping: on its way but not started. Straight back to
			// JetStream, holding no slot, so it does not wait behind
			// invocations still running; no invocation, so no heartbeat,
			// and a slot of its own that the sweeper does not visit.
			handBackMu.Lock()
			defer handBackMu.Unlock()
			if handBackClosed {
				// Later than the drain allows (feed gave up waiting):
				// never acknowledged, so JetStream redelivers it after
				// its ack wait.
				return
			}
			handBack.Go(func() { w.handle(workCtx, msg, true, newSlot()) })
		}
	}
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		w.feed(ctx, deliver)
	}()
	var wg sync.WaitGroup
	for _, s := range slots {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case msg := <-handoff:
					w.handle(workCtx, msg, false, s)
				}
			}
		})
	}
	<-ctx.Done()

	w.draining.Store(true)
	<-fed // every job that was on its way is running or handed back
	handBackMu.Lock()
	handBackClosed = true
	handBackMu.Unlock()
	w.log.Info().Int("in_flight", w.InFlight()).Dur("drain_timeout", w.cfg.DrainTimeout).Msg("worker stopping: letting in-flight jobs finish")
	allDone := make(chan struct{})
	go func() { wg.Wait(); handBack.Wait(); close(allDone) }()
	timer := time.NewTimer(w.cfg.DrainTimeout)
	defer timer.Stop()
	select {
	case <-allDone:
	case <-timer.C:
		w.log.Warn().Int("in_flight", w.InFlight()).Msg("drain timeout: interrupting in-flight jobs and giving them back")
		interrupt(errInterrupted)
		<-allDone
	}
	w.log.Info().Msg("worker stopped")
	return nil
}

// drainWait bounds how long a stopping worker waits for the jobs already on
// their way to it.
const drainWait = 5 * time.Second

// feed keeps the shared consumer's jobs coming to deliver until ctx is
// done: it binds to the consumer, binds again (creating the consumer
// again) when it is lost, and on stop drains what is on its way.
func (w *Worker) feed(ctx context.Context, deliver func(jetstream.Msg)) {
	failures := 0
	for ctx.Err() == nil {
		cc, err := w.bind(ctx, deliver)
		if err != nil {
			w.bound.Store(false)
			w.metrics.fetchError()
			w.log.Warn().Err(err).Msg("job consumer unavailable; retrying")
			failures++
			select {
			case <-ctx.Done():
			case <-time.After(min(time.Duration(failures)*100*time.Millisecond, 2*time.Second)):
			}
			continue
		}
		failures = 0
		w.bound.Store(true)
		select {
		case <-cc.Closed():
			// Deleted under us, or stopped for good: bind again.
			w.bound.Store(false)
			w.log.Warn().Msg("job consumer lost; binding again")
		case <-ctx.Done():
			// What is already here reaches deliver, which hands it back.
			cc.Drain()
			select {
			case <-cc.Closed():
			case <-time.After(drainWait):
				cc.Stop()
			}
			return
		}
	}
}

// bind gets the consumer and starts consuming it into deliver.
func (w *Worker) bind(ctx context.Context, deliver func(jetstream.Msg)) (jetstream.ConsumeContext, error) {
	cons, err := w.deps.Consumer(ctx)
	if err != nil {
		return nil, err
	}
	return cons.Consume(deliver,
		// At most Prefetch jobs, and at most PullMaxBytes in one pull,
		// so that large bodies never pile up in the server for us.
		jetstream.PullMaxMessagesWithBytesLimit(w.cfg.Prefetch, max(w.cfg.PullMaxBytes, int(w.cfg.MaxMessage))),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			// The client carries on (and stops by itself when the
			// consumer is gone, which feed notices).
			w.metrics.fetchError()
			w.log.Debug().Err(err).Msg("pull failed; the client retries")
		}),
	)
}

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
	return &slot{resultHeader: make(nats.Header, resultHeaders), resultValues: make([]string, 0, resultHeaders)}
}

// handle runs one delivery from parse to acknowledgement, using s for its
// heartbeat and scratch space. It never panics out: a panic becomes a
// delayed redelivery and an error log.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg, stopping bool, s *slot) {
	w.inFlight.Add(1)
	w.metrics.inFlightAdd(1)
	defer func() {
		w.inFlight.Add(-1)
		w.metrics.inFlightAdd(-1)
	}()
	hb := &s.hb
	hb.start(msg, time.Now(), w.cfg.ProgressInterval)
	defer hb.stop()
	defer func() {
		if p := recover(); p != nil {
			w.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Str("subject", msg.Subject()).Msg("panic while handling a job; giving it back")
			hb.stop()
			_ = msg.NakWithDelay(w.cfg.Retry.InitialInterval)
		}
	}()

	meta, err := msg.Metadata()
	if err != nil {
		// Only JetStream messages reach a consumer; this is a bug.
		w.log.Error().Err(err).Str("subject", msg.Subject()).Msg("job without JetStream metadata")
		_ = msg.Nak()
		return
	}
	o := outcome{}
	o.job, o.parseErr = job.Parse(job.Message{
		Subject: msg.Subject(),
		Header:  msg.Headers(),
		Data:    msg.Data(),
		Stream:  meta.Stream,
		Seq:     meta.Sequence.Stream,
		StoreAt: meta.Timestamp,
	}, job.Limits{MaxBody: w.cfg.RequestLimit})
	var st jobState
	var made *dlq.Attempt // the attempt this delivery made, if any
	if o.parseErr == nil && meta.NumDelivered > 1 && w.completedBefore(ctx, o.job) {
		hb.stop()
		if err := msg.Ack(); err != nil {
			w.log.Warn().Err(err).Str("job_id", o.job.ID).Msg("ack failed")
		}
		st = w.loadState(ctx, meta.Sequence.Stream, meta.NumDelivered)
		w.dropState(ctx, meta.Sequence.Stream, &st)
		w.dropBody(ctx, o.job)
		w.log.Info().Str("job_id", o.job.ID).Str("function", o.job.FunctionID).Msg("job already completed (its acknowledgement was lost); acknowledged without invoking again")
		w.metrics.job("already_completed")
		return
	}
	if o.parseErr == nil {
		st = w.loadState(ctx, meta.Sequence.Stream, meta.NumDelivered)
		o.attempt = max(1, int(meta.NumDelivered)-st.Free)
		made = w.run(ctx, &o, stopping)
	}
	o.decidedAt = w.cfg.Now()
	d := w.decide(o)
	hb.stop()
	w.apply(msg, o, d, &st, made, s)
	// The result is stored (or the job given back): nothing refers to the
	// answer's body any more.
	o.resp.Release()
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
	done, err := time.Parse(job.TimeFormatMillis, m.Header.Get(job.HeaderCompletedAt))
	return err == nil && !done.Before(j.StoreAt.Truncate(time.Millisecond))
}

// run checks what must be checked before an attempt and makes it. It
// fills o and returns the attempt's record, or nil when none was made.
func (w *Worker) run(ctx context.Context, o *outcome, stopping bool) *dlq.Attempt {
	now := w.cfg.Now()
	j := o.job
	switch {
	case o.attempt > w.cfg.Retry.MaxAttempts:
		o.spent = true
		return nil
	case stopping:
		o.deferCause = "shutdown"
		return nil
	}
	if o.expired = w.expiry(j, now); o.expired != "" {
		return nil
	}
	// Only the invocation gets a stored body: o.job keeps the message's,
	// so a dead-letter record still refers to the object and fits a message.
	body, err := w.bodyOf(ctx, j)
	switch {
	case errors.Is(err, job.ErrInvalid):
		o.parseErr = err
		return nil
	case err != nil:
		o.deferCause, o.deferFor = "body_unavailable", jitter(w.cfg.Retry.InitialInterval)
		w.log.Warn().Err(err).Str("job_id", j.ID).Msg("job body not readable; trying again later")
		return nil
	}
	j.Body = body
	release, wait, cause := w.limits.acquire(j.FunctionID, now)
	if cause != "" {
		o.deferCause, o.deferFor = cause, jitter(wait)
		return nil
	}
	defer release()
	if wait > 0 {
		time.Sleep(wait) // bounded by maxRateWait
	}
	done, breakerState, ok := w.breakers.allow(j.FunctionID)
	if !ok {
		// Retried after the open period, when a probe may be let through.
		o.deferCause, o.deferFor = "breaker_open", jitter(w.cfg.Breaker.OpenTimeout)
		return nil
	}
	start := w.cfg.Now()
	o.resp, o.err = w.attempt(ctx, j, o.attempt)
	elapsed := w.cfg.Now().Sub(start)
	done(o.err)

	a := &dlq.Attempt{N: o.attempt, At: start.UTC(), DurationMs: elapsed.Milliseconds(), Worker: w.cfg.ID, Breaker: breakerState}
	var ie *invoke.Error
	switch {
	case o.err == nil:
		a.Status = o.resp.Status
		w.metrics.attempt(statusClass(o.resp.Status), elapsed.Seconds())
	case errors.As(o.err, &ie):
		a.Status, a.Code, a.Error = ie.Status, ie.Code, ie.Error()
		w.metrics.attempt(errorClass(ie), elapsed.Seconds())
	default:
		a.Error = o.err.Error()
		w.metrics.attempt("other", elapsed.Seconds())
	}
	return a
}

// jitter spreads deferred jobs over ±20% so they do not return in a herd.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}

func statusClass(s int) string {
	return strconv.Itoa(s/100) + "xx"
}

func errorClass(e *invoke.Error) string {
	switch {
	case e.Status != 0:
		return statusClass(e.Status)
	case errors.Is(e.Err, invoke.ErrTimeout):
		return "timeout"
	case errors.Is(e.Err, invoke.ErrNetwork):
		return "network"
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
	if j.Traceparent != "" {
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

// settleTimeout bounds storing a result or record once the decision is
// made; it runs even while stopping, since the invocation already happened.
const settleTimeout = 30 * time.Second

// apply carries out the decision. The job is acknowledged only after
// JetStream stored its result or dead-letter record; if that store fails
// the job is given back, to be redelivered, rather than lost.
func (w *Worker) apply(msg jetstream.Msg, o outcome, d decision, st *jobState, made *dlq.Attempt, s *slot) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	j := o.job
	seq := j.Seq
	if made != nil && d.action != actComplete {
		st.History = dlq.AppendHistory(st.History, *made)
	}
	// One line per job is too many at thousands of jobs a second: a
	// completed job logs at debug, a retry at info, a dead letter at warn.
	var ev *zerolog.Event
	switch d.action {
	case actRetry:
		ev = w.log.Info()
	case actDeadLetter:
		ev = w.log.Warn()
	default:
		ev = w.log.Debug()
	}
	ev = ev.Str("job_id", j.ID).Str("function", j.FunctionID).Int("attempt", o.attempt)
	if d.status != 0 {
		ev = ev.Int("status", d.status)
	}
	if made != nil {
		ev = ev.Int64("duration_ms", made.DurationMs)
	}

	switch d.action {
	case actComplete:
		ev = ev.Str("opc_request_id", o.resp.OpcRequestID)
		res := w.resultMsg(j, o.resp, o.attempt, s)
		err := w.checkResult(ctx, res, j.ID)
		if err == nil {
			err = w.publishResult(ctx, res, j.ID)
		}
		if err != nil {
			// The function ran but its result is not stored: run it again
			// later rather than acknowledge and lose it.
			w.log.Error().Err(err).Str("job_id", j.ID).Str("function", j.FunctionID).Msg("result not stored; job given back")
			_ = msg.NakWithDelay(w.cfg.Retry.InitialInterval)
			w.metrics.job("result_not_stored")
			return
		}
		if j.ReplyTo != "" && w.deps.Replies != nil {
			reply := &nats.Msg{Subject: j.ReplyTo, Header: res.Header, Data: res.Data}
			if err := w.deps.Replies.PublishMsg(reply); err != nil {
				w.log.Warn().Err(err).Str("job_id", j.ID).Str("reply_to", j.ReplyTo).Msg("reply not sent (the result is stored)")
			}
		}
		if err := msg.Ack(); err != nil {
			w.log.Warn().Err(err).Str("job_id", j.ID).Msg("ack failed; the job will be redelivered and its result deduplicated")
		}
		w.dropState(ctx, seq, st)
		w.dropBody(ctx, j)
		w.metrics.job("completed")
	case actDeadLetter:
		ev = ev.Str("reason", string(d.reason)).Str("error", d.cause)
		attempts := o.attempt
		if made == nil {
			attempts = o.attempt - 1 // this delivery made no attempt
		}
		if o.parseErr != nil {
			attempts = 0
		}
		f := dlq.Failure{Reason: d.reason, Error: d.cause, Status: d.status, Attempts: max(0, attempts), FailedAt: w.cfg.Now(), Worker: w.cfg.ID, History: st.History}
		if f.Status == 0 && len(st.History) > 0 {
			f.Status = st.History[len(st.History)-1].Status
		}
		if err := w.deps.DeadLetters.DeadLetter(ctx, j, f); err != nil {
			w.log.Error().Err(err).Str("job_id", j.ID).Str("reason", string(d.reason)).Msg("dead-letter record not stored; job given back")
			_ = msg.NakWithDelay(w.cfg.Retry.InitialInterval)
			w.metrics.job("record_not_stored")
			return
		}
		if err := msg.TermWithReason(string(d.reason)); err != nil {
			w.log.Warn().Err(err).Str("job_id", j.ID).Msg("term failed; the job will be redelivered and its record deduplicated")
		}
		w.dropState(ctx, seq, st)
		w.metrics.job("dead_lettered_" + string(d.reason))
	case actRetry:
		ev = ev.Dur("retry_in", d.delay).Str("error", d.cause)
		if err := w.saveState(ctx, seq, st); err != nil {
			w.log.Warn().Err(err).Str("job_id", j.ID).Msg("attempt history not stored")
		}
		_ = msg.NakWithDelay(d.delay)
		w.metrics.job("retried")
	case actDefer:
		ev = ev.Str("cause", d.cause).Dur("retry_in", d.delay)
		st.Free++
		if err := w.saveState(ctx, seq, st); err != nil {
			// The redelivery will be charged as an attempt: fewer attempts,
			// never more.
			w.log.Warn().Err(err).Str("job_id", j.ID).Msg("deferral not recorded; the next delivery will count as an attempt")
		}
		if d.delay > 0 {
			_ = msg.NakWithDelay(d.delay)
		} else {
			_ = msg.Nak()
		}
		w.metrics.defer_(d.cause)
	case actRelease:
		if err := w.saveState(ctx, seq, st); err != nil {
			w.log.Debug().Err(err).Str("job_id", j.ID).Msg("attempt history not stored")
		}
		_ = msg.Nak()
		w.metrics.job("released")
	}
	ev.Msg(d.action.logMessage())
}

// publishResult stores a result, retrying briefly: the function already
// ran, and the Nats-Msg-Id (the job id) makes a repeated publish safe.
func (w *Worker) publishResult(ctx context.Context, res *nats.Msg, jobID string) error {
	var err error
	for i, wait := range []time.Duration{0, 100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second} {
		if wait > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			case <-time.After(wait):
			}
		}
		if _, err = w.deps.Results.PublishMsg(ctx, res, jetstream.WithMsgID(jobID)); err == nil {
			return nil
		}
		w.log.Debug().Err(err).Int("try", i+1).Str("job_id", jobID).Msg("result publish failed")
	}
	return err
}

// resultHeaders is how many headers a result has at most (the claim
// check's Invoke-Body-Object included).
const resultHeaders = 13

// resultMsg builds the contract's result message in s's header, which
// stays valid until s handles its next job.
func (w *Worker) resultMsg(j job.Job, r *invoke.Response, attempt int, s *slot) *nats.Msg {
	h := s.resultHeader
	clear(h)
	// One backing array for every header value.
	vals := s.resultValues[:0]
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set(job.HeaderMsgID, j.ID)
	set(job.HeaderJobID, j.ID)
	set(job.HeaderFunctionID, j.FunctionID)
	set(job.HeaderStatus, statusText(r.Status))
	set(job.HeaderAttempts, strconv.Itoa(attempt))
	set(job.HeaderDurationMs, strconv.FormatInt(r.Duration.Milliseconds(), 10))
	set(job.HeaderCompletedAt, w.cfg.Now().UTC().Format(job.TimeFormatMillis))
	if r.OpcRequestID != "" {
		set(job.HeaderOpcRequestID, r.OpcRequestID)
	}
	if r.FnCallID != "" {
		set(job.HeaderFnCallID, r.FnCallID)
	}
	if r.ContentType != "" {
		set(job.HeaderContentType, r.ContentType)
	}
	if j.Traceparent != "" {
		set(job.HeaderTraceparent, j.Traceparent)
		if j.Tracestate != "" {
			set(job.HeaderTracestate, j.Tracestate)
		}
	}
	s.resultValues = vals
	return &nats.Msg{Subject: w.cfg.ResultsPrefix + "." + j.ID, Header: h, Data: r.Body}
}

// statusText is strconv.Itoa without an allocation for the statuses of
// nearly every result.
func statusText(status int) string {
	switch status {
	case http.StatusOK:
		return "200"
	case http.StatusAccepted:
		return "202"
	}
	return strconv.Itoa(status)
}
