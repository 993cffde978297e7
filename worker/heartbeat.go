package worker

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// heartbeat extends a running job's ack deadline every interval, so a slow
// function never makes JetStream redeliver a job that is still running.
type heartbeat struct {
	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

func startHeartbeat(msg jetstream.Msg, every time.Duration) *heartbeat {
	hb := &heartbeat{}
	var tick func()
	tick = func() {
		hb.mu.Lock()
		defer hb.mu.Unlock()
		if hb.stopped {
			return
		}
		_ = msg.InProgress()
		hb.timer = time.AfterFunc(every, tick)
	}
	hb.mu.Lock()
	hb.timer = time.AfterFunc(every, tick)
	hb.mu.Unlock()
	return hb
}

// stop ends the heartbeat; after it returns no InProgress is sent, so an
// ack that follows cannot race one.
func (hb *heartbeat) stop() {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	hb.stopped = true
	hb.timer.Stop()
}
