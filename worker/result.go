package worker

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/invoke"
	"github.com/invoke-worker/worker/job"
)

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
const resultHeaders = 14

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
	if r.ContentEncoding != "" {
		// The body is as the function sent it, compressed or not.
		set(job.HeaderContentEncoding, r.ContentEncoding)
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
