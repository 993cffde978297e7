package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/job"
)

// Waiting without holding a delivery slot.
//
// A job handed back with NakWithDelay stays "ack pending" until it comes
// back, and counts against the consumer's MaxAckPending: one failing
// function's waiting jobs can fill that budget, and then JetStream delivers
// nothing to anyone. So a job that must wait is not handed back. Instead:
//
//  1. mark: a key park.<seq> in the state bucket records the wait (cause,
//     due time, attempts, history), with a TTL;
//  2. copy: a scheduled message on <wait prefix>.<seq> in the jobs stream
//     holds the job (body and headers, plus the Invoke-Wait-* headers);
//     its Nats-Msg-Id wait-<stream>-<seq> makes a repeated store a no-op.
//     When it is due, JetStream publishes it to the job's subject, where
//     the consumer delivers it as a new message, and removes the copy;
//  3. acknowledge the original.
//
// A crash at any step leaves the job exactly once somewhere. Before 1:
// the original is redelivered and runs again (the delivery is charged, as
// any crash mid-attempt). Between 1 and 3: the original is redelivered,
// finds its mark and finishes the wait (stores the copy, a duplicate if
// step 2 had happened, and acknowledges) without running the job; this
// relies on the redelivery coming within the stream's duplicate window,
// which config validation keeps above consumer.ack_wait. After 3: the copy
// is the job.

// waitMark is what step 1 records: enough to store the same copy again.
type waitMark struct {
	Cause    string        `json:"cause"`
	Until    time.Time     `json:"until"`
	Attempts int           `json:"attempts"`
	Defers   int           `json:"defers,omitempty"`
	History  []dlq.Attempt `json:"history,omitempty"`
	// Traceparent and Tracestate are the trace the copy continues (a
	// tracing worker's delivery span), empty when not tracing.
	Traceparent string `json:"traceparent,omitempty"`
	Tracestate  string `json:"tracestate,omitempty"`
}

func waitMarkKey(seq uint64) string { return "park." + strconv.FormatUint(seq, 10) }

// WaitStore stores waiting jobs' copies in the jobs stream
// (jetstream.JetStream).
type WaitStore interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// waits reports whether this worker can wait without a delivery slot.
func (w *Worker) waits() bool { return w.deps.Waits != nil && w.deps.State != nil }

// wait carries out steps 1 to 3 for j (delivered as msg): it returns nil
// once the original is acknowledged or its acknowledgement sent. On an
// error nothing is acknowledged, and marked says whether the mark was
// stored: if it was, the copy may have been stored too (a publish that
// timed out can still have landed), so the caller must give the job back
// soon, for its redelivery to finish the wait inside the duplicate window;
// if not, the job may wait in place.
func (w *Worker) wait(ctx context.Context, msg jetstream.Msg, j job.Job, m waitMark) (marked bool, err error) {
	if !w.copyFits(j, m) {
		return false, errCopyTooLarge
	}
	b, err := json.Marshal(m)
	if err != nil {
		return false, err
	}
	if err := w.deps.State.Mark(ctx, waitMarkKey(j.Seq), b, w.cfg.WaitMarkTTL); err != nil {
		return false, fmt.Errorf("wait mark not stored: %w", err)
	}
	return true, w.finishWait(ctx, msg, j, m)
}

// errCopyTooLarge: the job and the wait's headers would not fit a message.
var errCopyTooLarge = errors.New("the waiting copy would be larger than a message may be")

// maxHeaderBytes is the header block JetStream accepts at most.
const maxHeaderBytes = 64 << 10

// copyFits says whether j's waiting copy fits a message: a job near the
// limits would have its copy refused on every try, so it waits in place.
func (w *Worker) copyFits(j job.Job, m waitMark) bool {
	cp := w.waitCopy(j, m)
	if job.HeaderSize(cp.Header) > maxHeaderBytes {
		return false
	}
	return w.cfg.MaxMessage <= 0 || int64(job.MessageSize(cp)) <= w.cfg.MaxMessage
}

// finishWait is steps 2 and 3, also run by a redelivery that found the mark.
func (w *Worker) finishWait(ctx context.Context, msg jetstream.Msg, j job.Job, m waitMark) error {
	cp := w.waitCopy(j, m)
	if _, err := w.deps.Waits.PublishMsg(ctx, cp, jetstream.WithMsgID(waitCopyID(j)), jetstream.WithExpectStream(j.Stream)); err != nil {
		return fmt.Errorf("waiting copy not stored: %w", err)
	}
	if err := msg.Ack(); err != nil {
		// The mark makes the redelivery finish this wait instead of
		// running the job a second time.
		w.log.Warn().Err(err).Str("job_id", j.ID).Msg("ack after storing the waiting copy failed; the redelivery finds its mark")
		w.metrics.ackFailure()
	}
	return nil
}

func waitCopyID(j job.Job) string { return "wait-" + j.Stream + "-" + strconv.FormatUint(j.Seq, 10) }

// waitCopy builds the scheduled copy of j.
func (w *Worker) waitCopy(j job.Job, m waitMark) *nats.Msg {
	h := make(nats.Header, len(j.Header)+10)
	// Without JetStream's own headers (Nats-Msg-Id is kept as
	// Invoke-Original-Msg-Id below) and the last wait's, written afresh.
	job.CopyCarried(h, j.Header)
	if id := job.Lookup(j.Header, job.HeaderMsgID); id != "" {
		h.Set(job.HeaderOriginalMsgID, id)
	}
	// The id may have come from Nats-Msg-Id or the stream sequence, which
	// the copy does not keep: results are stored under it.
	h.Set(job.HeaderJobID, j.ID)
	h.Set(job.HeaderWaitAttempts, strconv.Itoa(m.Attempts))
	if m.Defers > 0 {
		h.Set(job.HeaderWaitDefers, strconv.Itoa(m.Defers))
	}
	h.Set(job.HeaderWaitCause, m.Cause)
	if !j.StoreAt.IsZero() {
		h.Set(job.HeaderWaitEnqueuedAt, j.StoreAt.UTC().Format(time.RFC3339Nano))
	}
	if len(m.History) > 0 {
		h.Set(job.HeaderWaitHistory, dlq.EncodeHistory(m.History))
	}
	if m.Traceparent != "" {
		h.Set(job.HeaderWaitTraceparent, m.Traceparent)
		if m.Tracestate != "" {
			h.Set(job.HeaderWaitTracestate, m.Tracestate)
		}
	}
	until := m.Until.UTC().Format(time.RFC3339Nano)
	h.Set(job.HeaderWaitUntil, until)
	h.Set("Nats-Schedule", "@at "+until)
	h.Set("Nats-Schedule-Target", j.Subject)
	return &nats.Msg{Subject: w.cfg.WaitPrefix + "." + strconv.FormatUint(j.Seq, 10), Header: h, Data: j.Body}
}

// waitState is what a delivered copy carries from the wait before.
type waitState struct {
	attempts int // charged before the copy was stored
	defers   int
	cause    string // "" when the job never waited
	enqueued time.Time
	history  []dlq.Attempt
}

// readWaitState reads the Invoke-Wait-* headers of h. They are the
// worker's own; a value that does not parse makes the job invalid rather
// than let a publisher buy itself more attempts.
func readWaitState(h nats.Header, storedAt time.Time) (waitState, error) {
	var ws waitState
	if h == nil {
		return ws, nil
	}
	ws.cause = h.Get(job.HeaderWaitCause)
	if ws.cause != "" && !knownCause(ws.cause) {
		// Also a metric label: only the worker's own values.
		return ws, fmt.Errorf("%w: %s %q: not a cause the worker writes", job.ErrInvalid, job.HeaderWaitCause, cut(ws.cause))
	}
	if v := h.Get(job.HeaderWaitAttempts); v != "" {
		// Over max_attempts is not invalid: the maximum may have been
		// lowered while the copy waited; the job is then spent.
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return ws, fmt.Errorf("%w: %s %q: want a count", job.ErrInvalid, job.HeaderWaitAttempts, cut(v))
		}
		ws.attempts = n
	}
	if v := h.Get(job.HeaderWaitDefers); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return ws, fmt.Errorf("%w: %s %q: want a count", job.ErrInvalid, job.HeaderWaitDefers, cut(v))
		}
		ws.defers = n
	}
	if v := h.Get(job.HeaderWaitEnqueuedAt); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || (!storedAt.IsZero() && t.After(storedAt.Add(time.Minute))) {
			// A first-stored time later than the copy itself would let a
			// job escape retry.max_elapsed and worker.max_job_age (a
			// minute's grace for clocks of cluster nodes).
			return ws, fmt.Errorf("%w: %s %q: want an RFC 3339 time no later than the message", job.ErrInvalid, job.HeaderWaitEnqueuedAt, cut(v))
		}
		ws.enqueued = t
	}
	if v := h.Get(job.HeaderWaitHistory); v != "" {
		hist, err := dlq.DecodeHistory(v)
		if err != nil {
			return ws, fmt.Errorf("%w: %s: %w", job.ErrInvalid, job.HeaderWaitHistory, err)
		}
		ws.history = hist
	}
	return ws, nil
}

// loadWaitMark returns the mark an earlier delivery of seq left, or nil.
func (w *Worker) loadWaitMark(ctx context.Context, seq uint64) (*waitMark, error) {
	b, err := w.deps.State.Get(ctx, waitMarkKey(seq))
	if err != nil || b == nil {
		return nil, err
	}
	var m waitMark
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("wait mark unreadable: %w", err)
	}
	return &m, nil
}

func knownCause(c string) bool {
	switch c {
	case causeRetry, causeBreakerOpen, causeFairShare, causeFunctionLimit, causeRateLimit, causeBodyUnavailable:
		return true
	}
	return false
}

// cut shortens a header value quoted in an error.
func cut(v string) string {
	if len(v) > 64 {
		return v[:64] + "…"
	}
	return v
}
