package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/invoke-worker/worker/job"
)

// BodyStore keeps bodies too large for a NATS message (queue.Bodies), the
// claim check: a job whose Invoke-Body-Object header names a stored body
// is invoked with that body, and a result too large for a message is
// stored and published with an empty body and Invoke-Body-Object.
//
// Get and Delete take the reference ("<bucket>/<name>"). Get wraps
// job.ErrInvalid when the body can never be had (no such object, or one
// over maxSize); other errors are taken as passing.
type BodyStore interface {
	Get(ctx context.Context, ref string, maxSize int64) ([]byte, error)
	PutResult(ctx context.Context, jobID string, body []byte) (string, error)
	Delete(ctx context.Context, ref string) error
}

// bodyOf returns the body to invoke j with: its message body, or the
// stored body its Invoke-Body-Object names. Ordinary jobs cost nothing
// here; only a job with a reference makes a round trip.
func (w *Worker) bodyOf(ctx context.Context, j job.Job) ([]byte, error) {
	ref := j.BodyObject
	switch {
	case ref == "":
		return j.Body, nil
	case len(j.Body) > 0:
		return nil, fmt.Errorf("%w: the job has both a body and %s", job.ErrInvalid, job.HeaderBodyObject)
	case w.deps.Bodies == nil:
		return nil, fmt.Errorf("%w: %s is set but this worker has no object store for bodies", job.ErrInvalid, job.HeaderBodyObject)
	}
	body, err := w.deps.Bodies.Get(ctx, ref, w.cfg.RequestLimit)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", job.HeaderBodyObject, ref, err)
	}
	return body, nil
}

// checkResult moves a result body that would make res too large for a
// message into the body store, leaving the reference in res.
func (w *Worker) checkResult(ctx context.Context, res *nats.Msg, jobID string) error {
	if w.cfg.MaxMessage <= 0 || int64(job.MessageSize(res)) <= w.cfg.MaxMessage {
		return nil
	}
	if w.deps.Bodies == nil {
		return fmt.Errorf("result of %d bytes does not fit a message of at most %d bytes, and there is no object store for bodies", len(res.Data), w.cfg.MaxMessage)
	}
	ref, err := w.deps.Bodies.PutResult(ctx, jobID, res.Data)
	if err != nil {
		return err
	}
	res.Header.Set(job.HeaderBodyObject, ref)
	res.Data = nil
	return nil
}

// dropBody deletes a completed job's stored body: nothing refers to it any
// more. Best effort: the bucket's max age removes what is left.
func (w *Worker) dropBody(ctx context.Context, j job.Job) {
	ref := j.BodyObject
	if ref == "" || w.deps.Bodies == nil {
		return
	}
	if err := w.deps.Bodies.Delete(ctx, ref); err != nil && !errors.Is(err, job.ErrInvalid) {
		w.log.Debug().Err(err).Str("job_id", j.ID).Msg("job body object not deleted; it ages out")
	}
}
