package worker

import (
	"context"
	"errors"
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

// resultMsg builds the contract's result message in s's header, which
// stays valid until s handles its next job.
func (w *Worker) resultMsg(j job.Job, r *invoke.Response, attempt int, s *slot) *nats.Msg {
	res := job.Result{
		JobID: j.ID, FunctionID: j.FunctionID, Status: r.Status, Attempts: attempt, Duration: r.Duration,
		CompletedAt: w.cfg.Now(), OpcRequestID: r.OpcRequestID, FnCallID: r.FnCallID, ContentType: r.ContentType,
		ContentEncoding: r.ContentEncoding, Traceparent: j.Traceparent, Tracestate: j.Tracestate,
	}
	clear(s.resultHeader)
	s.resultValues = res.AppendHeader(s.resultHeader, s.resultValues[:0])
	return &nats.Msg{Subject: w.cfg.ResultsPrefix + "." + j.ID, Header: s.resultHeader, Data: r.Body}
}
