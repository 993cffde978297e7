package worker

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/invoke-worker/worker/dlq"
)

// StateStore keeps per-job state between deliveries (queue.StateStore).
type StateStore interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
	// Mark stores value under key unless it exists, for ttl.
	Mark(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// jobState is what a job carries from one delivery to the next.
//
// The attempt number is JetStream's delivery count minus Free: deliveries
// are counted by the server, so a worker crash mid-attempt still counts
// that attempt (it may have reached the function), and no crash or restart
// can reset the count. Deliveries that made no attempt (the breaker was
// open, a per-function limit was full, the worker was stopping) are
// recorded in Free before the job is given back, so they are not charged.
// If that record cannot be written, the delivery is charged: a job may then
// get fewer attempts than configured, never more.
type jobState struct {
	Free    int           `json:"free,omitempty"`
	History []dlq.Attempt `json:"history,omitempty"`

	stored bool // a record exists in the store
}

func stateKey(seq uint64) string { return "job." + strconv.FormatUint(seq, 10) }

func (w *Worker) loadState(ctx context.Context, seq uint64, delivered uint64) jobState {
	var st jobState
	if w.deps.State == nil || delivered <= 1 {
		// First delivery: nothing can have been stored yet, and skipping
		// the read keeps the common path to one round trip.
		return st
	}
	b, err := w.deps.State.Get(ctx, stateKey(seq))
	if err != nil {
		w.log.Warn().Err(err).Uint64("seq", seq).Msg("job state not readable; counting every delivery as an attempt")
		return st
	}
	if b == nil {
		return st
	}
	if err := json.Unmarshal(b, &st); err != nil {
		w.log.Warn().Err(err).Uint64("seq", seq).Msg("job state unreadable; ignoring it")
		return jobState{}
	}
	st.stored = true
	return st
}

func (w *Worker) saveState(ctx context.Context, seq uint64, st *jobState) error {
	if w.deps.State == nil {
		return nil
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := w.deps.State.Put(ctx, stateKey(seq), b); err != nil {
		return err
	}
	st.stored = true
	return nil
}

func (w *Worker) dropState(ctx context.Context, seq uint64, o outcome) {
	if w.deps.State == nil || !o.stateStored {
		return
	}
	if err := w.deps.State.Delete(ctx, stateKey(seq)); err != nil {
		// The bucket's TTL removes it later.
		w.log.Debug().Err(err).Uint64("seq", seq).Msg("job state not deleted")
	}
}
