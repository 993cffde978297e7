package client

import (
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// BatchResult is what became of one job of a batch.
type BatchResult struct {
	// Index is the job's position in the batch, from 0.
	Index int
	// ID is the job's id (filled in when the job had none).
	ID JobID
	// Duplicate means JetStream already held a job with this id from
	// within the duplicate window: this one was not stored again.
	Duplicate bool
	// Err says why the job was not enqueued: it wraps job.ErrInvalid for a
	// job refused before publishing. nil when it was stored.
	Err error
}

// BatchSummary counts a batch's results.
type BatchSummary struct {
	// Enqueued jobs were stored, Duplicates among them only recognised.
	Enqueued, Duplicates int
	// Failed jobs were not enqueued.
	Failed int
	// PeakPending is the most jobs that were published and not yet
	// acknowledged at any one time; never more than Config.MaxPending.
	PeakPending int
}

// EnqueueBatch publishes jobs asynchronously, with at most
// Config.MaxPending acknowledgements outstanding, and returns one result
// per job, in order. The error wraps ErrIncomplete when some jobs were not
// enqueued (their results say why), or is the context's error when ctx
// ended first; every other job was stored.
func (c *Client) EnqueueBatch(ctx context.Context, jobs []Job) ([]BatchResult, error) {
	out := make([]BatchResult, len(jobs))
	_, err := c.EnqueueAll(ctx, slices.Values(jobs), func(r BatchResult) { out[r.Index] = r })
	return out, err
}

// inflight is a published job awaiting its acknowledgement, or (fut nil)
// a job refused before publishing, queued so results keep their order.
type inflight struct {
	res BatchResult
	fut jetstream.PubAckFuture
}

// EnqueueAll is EnqueueBatch for a stream of jobs of any length: it takes
// the next job only when fewer than Config.MaxPending are unacknowledged,
// and calls each with every job's result, in order, from one goroutine.
// Jobs not taken because ctx ended get no result.
func (c *Client) EnqueueAll(ctx context.Context, jobs iter.Seq[Job], each func(BatchResult)) (BatchSummary, error) {
	if each == nil {
		each = func(BatchResult) {}
	}
	var sum BatchSummary
	ordered := make(chan inflight, c.cfg.MaxPending)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for it := range ordered {
			if it.fut != nil {
				it.res = c.settle(ctx, it)
				<-c.slots
			}
			switch {
			case it.res.Err != nil:
				sum.Failed++
			case it.res.Duplicate:
				sum.Duplicates++
				sum.Enqueued++
			default:
				sum.Enqueued++
			}
			each(it.res)
		}
	}()

	peak := 0
	var stopped error
	i := 0
	for j := range jobs {
		if stopped = ctx.Err(); stopped != nil {
			break
		}
		res := BatchResult{Index: i}
		i++
		msg, err := c.message(ctx, &j)
		res.ID = j.ID
		if err != nil {
			res.Err = err
			ordered <- inflight{res: res}
			continue
		}
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			stopped = ctx.Err()
		}
		if stopped != nil {
			break
		}
		fut, err := c.js.PublishMsgAsync(msg)
		if err != nil {
			<-c.slots
			res.Err = publishError(j.ID, msg.Subject, err)
			ordered <- inflight{res: res}
			continue
		}
		// Measured by the JetStream client itself: publishes whose
		// acknowledgement has not arrived, this one included.
		peak = max(peak, c.js.PublishAsyncPending())
		ordered <- inflight{res: res, fut: fut}
	}
	close(ordered)
	<-collected
	sum.PeakPending = peak
	switch {
	case stopped != nil:
		return sum, fmt.Errorf("batch stopped after %d results: %w", sum.Enqueued+sum.Failed, stopped)
	case sum.Failed > 0:
		return sum, fmt.Errorf("%w: %d of %d failed", ErrIncomplete, sum.Failed, sum.Failed+sum.Enqueued)
	}
	return sum, nil
}

// settle waits for one acknowledgement. The publish timeout resolves every
// future, so this ends even if ctx never does.
func (c *Client) settle(ctx context.Context, it inflight) BatchResult {
	res := it.res
	select {
	case ack := <-it.fut.Ok():
		res.Duplicate = ack.Duplicate
	case err := <-it.fut.Err():
		res.Err = publishError(res.ID, it.fut.Msg().Subject, err)
	case <-ctx.Done():
		res.Err = fmt.Errorf("enqueue %s: not confirmed (it may still be stored): %w", res.ID, ctx.Err())
	}
	return res
}
