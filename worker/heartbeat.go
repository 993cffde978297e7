package worker

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// heartbeat extends one running job's ack deadline, so a slow function
// never makes JetStream redeliver a job that is still running. Each of the
// worker's goroutines owns one and reuses it job after job; a single
// sweeper (sweepHeartbeats) sends the extensions for all of them, instead
// of a timer per job.
type heartbeat struct {
	mu  sync.Mutex
	msg jetstream.Msg // nil while idle
	due time.Time     // when the next extension is owed
}

// start begins extending msg's deadline every interval from now.
func (hb *heartbeat) start(msg jetstream.Msg, now time.Time, every time.Duration) {
	hb.mu.Lock()
	hb.msg, hb.due = msg, now.Add(every)
	hb.mu.Unlock()
}

// stop ends the heartbeat; after it returns no InProgress is sent, so an
// ack that follows cannot race one. Stopping twice is harmless.
func (hb *heartbeat) stop() {
	hb.mu.Lock()
	hb.msg = nil
	hb.mu.Unlock()
}

// beat sends the extension if one is owed at now.
func (hb *heartbeat) beat(now time.Time, every time.Duration) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	if hb.msg == nil || now.Before(hb.due) {
		return
	}
	_ = hb.msg.InProgress()
	hb.due = now.Add(every)
}

// heartbeatSweepsPerInterval is how many times per interval the sweeper
// looks: an extension is at most interval/4 late, well inside the ack
// wait, which config validation keeps above twice the interval.
const heartbeatSweepsPerInterval = 4
