package worker

import (
	"context"
	"time"
)

// Reach confirms that the NATS server can be reached (*nats.Conn): a
// flush is answered only when the connection works both ways.
type Reach interface {
	FlushTimeout(timeout time.Duration) error
	IsConnected() bool
}

// A worker cut off from NATS (a partition, a stalled connection) keeps
// running the jobs it holds, but the extensions of their ack deadlines no
// longer reach the server: once the ack wait passes, JetStream gives them
// to another worker. What the cut-off worker then settles is stale: a late
// success would add a result to a job another worker dead-lettered, a late
// retry would store a second waiting copy or lose the other worker's
// count of attempts, a late give-back would run the job a third time. So
// the worker watches its own reach, and a job held across a lapse long
// enough for that is settled only where it cannot conflict (see decide's
// lapsed rule and settleComplete).

// watchReach confirms the server's reach every quarter progress interval
// until ctx is done, and records a lapse when the time between two
// confirmations was long enough for held jobs' deadlines to pass.
func (w *Worker) watchReach(ctx context.Context) {
	t := time.NewTicker(w.cfg.ProgressInterval / heartbeatSweepsPerInterval)
	defer t.Stop()
	last := w.cfg.Now()
	w.reached.Store(last.UnixNano())
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.deps.Reach.FlushTimeout(w.cfg.ProgressInterval); err != nil {
			continue
		}
		now := w.cfg.Now()
		if gap := now.Sub(last); gap > w.lapseGap() {
			w.lapsedAt.Store(now.UnixNano())
			w.metrics.reachLapse()
			w.log.Warn().Dur("unreachable_for", gap).Dur("ack_wait", w.cfg.AckWait).
				Msg("NATS was out of reach long enough for held jobs to be redelivered: what this worker held across it is settled only where it cannot conflict with another worker")
		}
		last = now
		w.reached.Store(now.UnixNano())
	}
}

// lapseGap is the longest time without a confirmed reach after which a
// held job may have been redelivered: its last extension that reached the
// server may be a progress interval older than the last confirmation, and
// the next one up to a sweep late.
func (w *Worker) lapseGap() time.Duration {
	return max(w.cfg.ProgressInterval, w.cfg.AckWait-2*w.cfg.ProgressInterval)
}

// lapsedSince reports whether the worker lost its reach of NATS long
// enough for a job it has held since arrived to be redelivered: a lapse
// ended after arrived, or one is going on now. arrived is when the client
// library handed the job over; jobs the server delivered into a stalled
// connection are handed over in a burst as it comes back, around when the
// lapse is recorded, so a job that arrived up to a progress interval after
// a lapse ended counts as held across it (a fresh one so caught waits out
// its ack wait, uncharged).
func (w *Worker) lapsedSince(arrived time.Time) bool {
	if w.deps.Reach == nil || w.cfg.AckWait <= 0 {
		return false
	}
	if at := w.lapsedAt.Load(); at != 0 && at > arrived.Add(-w.cfg.ProgressInterval).UnixNano() {
		return true
	}
	r := w.reached.Load()
	return r != 0 && w.cfg.Now().Sub(time.Unix(0, r)) > w.lapseGap()
}
