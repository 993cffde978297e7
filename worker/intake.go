package worker

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// intake holds the jobs pulled for this worker: every job the server has
// delivered to it is either waiting in ready or running in a slot, and
// the sweeper extends the ack deadline of both. Nothing the worker holds
// is hidden in a client library's buffer, so the consumer's ack wait does
// not have to cover a job's wait behind the invocations ahead of it: it
// covers a few missed heartbeats, and a dead worker's jobs come back
// after that, not after the longest invocation.
//
// It also keeps the count that paces pulling: held (waiting or running)
// plus requested (asked of the server, not yet arrived) never exceeds
// capacity, Concurrency + Prefetch.
type intake struct {
	ready     chan *pulled
	capacity  int
	threshold int // the least room worth a pull request

	mu        sync.Mutex
	held      int
	requested int
	waiting   map[*pulled]struct{} // in ready, for the sweeper
	scratch   []*pulled            // the sweeper's copy of waiting

	room chan struct{} // signalled (capacity 1) when room grows
}

// pulled is one job waiting in the intake, with its own heartbeat.
type pulled struct {
	msg     jetstream.Msg
	arrived time.Time // when the pull that brought it was sent
	hb      heartbeat
}

func newIntake(concurrency, prefetch int) *intake {
	return &intake{
		ready:     make(chan *pulled, concurrency+prefetch),
		capacity:  concurrency + prefetch,
		threshold: max(1, prefetch/2),
		waiting:   make(map[*pulled]struct{}, concurrency+prefetch),
		room:      make(chan struct{}, 1),
	}
}

// reserve returns how many jobs a pull may ask for now, and counts them as
// requested; 0 when there is less room than a pull is worth.
func (in *intake) reserve() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := in.capacity - in.held - in.requested
	if n < in.threshold {
		return 0
	}
	in.requested += n
	return n
}

// unrequest gives back n requested jobs that will not arrive (the pull
// ended short of its batch, or was never sent).
func (in *intake) unrequest(n int) {
	if n == 0 {
		return
	}
	in.mu.Lock()
	in.requested -= n
	in.mu.Unlock()
	in.signal()
}

// put queues an arrived job, held since asked (when its pull was sent),
// its ack deadline extended from now on. It never blocks: the job's place
// was reserved when it was requested.
func (in *intake) put(msg jetstream.Msg, asked, now time.Time, every time.Duration) {
	p := &pulled{msg: msg, arrived: asked}
	p.hb.start(msg, now, every)
	in.mu.Lock()
	in.requested--
	in.held++
	in.waiting[p] = struct{}{}
	in.mu.Unlock()
	in.ready <- p
}

// arrivedElsewhere counts an arrived job that is not queued (a stopping
// worker hands it straight back): it no longer counts as requested.
func (in *intake) arrivedElsewhere() {
	in.mu.Lock()
	in.requested--
	in.mu.Unlock()
}

// take ends p's wait: the sweeper no longer extends it, and the slot's
// heartbeat takes over from when the next extension is owed.
func (in *intake) take(p *pulled) (due time.Time) {
	in.mu.Lock()
	delete(in.waiting, p)
	in.mu.Unlock()
	return p.hb.end()
}

// done counts a taken job as finished, making room for another.
func (in *intake) done() {
	in.mu.Lock()
	in.held--
	in.mu.Unlock()
	in.signal()
}

func (in *intake) signal() {
	select {
	case in.room <- struct{}{}:
	default:
	}
}

// beat sends the owed extensions of the waiting jobs.
func (in *intake) beat(now time.Time, every time.Duration) {
	in.mu.Lock()
	in.scratch = in.scratch[:0]
	for p := range in.waiting {
		in.scratch = append(in.scratch, p)
	}
	due := in.scratch
	in.mu.Unlock()
	// Only the sweeper uses scratch, so it is safe outside the lock; a
	// job taken meanwhile has its heartbeat ended, and beat skips it.
	for _, p := range due {
		p.hb.beat(now, every)
	}
}
