package dlqops

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// watcher follows the outcomes of a replay's jobs: a result on
// <results>.<job-id> is a success, a new record on <dlq>.<reason>.<job-id>
// a failure. Two headers-only consumers deliver only what is stored after
// the watch started, so neither an old result nor the very records being
// replayed count.
type watcher struct {
	s      *Store
	opts   WatchOptions
	onTrip func()

	mu      sync.Mutex
	pending map[string]int // job id → replayed jobs awaiting an outcome
	tally   WatchTally
	tripped bool
	changed bool
	wake    chan struct{} // signalled on every counted outcome

	subs []watchSub
}

type watchSub struct {
	stream string
	cons   jetstream.Consumer
	cc     jetstream.ConsumeContext
}

func (s *Store) startWatch(ctx context.Context, opts WatchOptions, onTrip func()) (*watcher, error) {
	w := &watcher{s: s, opts: opts, onTrip: onTrip, pending: map[string]int{}, wake: make(chan struct{}, 1)}
	follow := func(stream, prefix string, failed bool) error {
		cons, err := s.js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
			Description:       "worker dlq replay: watch outcomes",
			AckPolicy:         jetstream.AckNonePolicy,
			DeliverPolicy:     jetstream.DeliverNewPolicy,
			FilterSubject:     prefix + ".>",
			HeadersOnly:       true,
			MemoryStorage:     true,
			Replicas:          1,
			InactiveThreshold: time.Minute,
		})
		if err != nil {
			return fmt.Errorf("watch %s: %w", stream, err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			rest := strings.TrimPrefix(m.Subject(), prefix+".")
			if failed {
				_, rest, _ = strings.Cut(rest, ".") // <reason>.<job-id>
			}
			w.outcome(rest, failed)
		})
		if err != nil {
			w.deleteConsumer(ctx, stream, cons)
			return fmt.Errorf("watch %s: %w", stream, err)
		}
		w.subs = append(w.subs, watchSub{stream, cons, cc})
		return nil
	}
	if err := follow(s.cfg.ResultsStream, s.cfg.ResultsPrefix, false); err != nil {
		return nil, err
	}
	if err := follow(s.cfg.Stream, s.cfg.Prefix, true); err != nil {
		w.stop(ctx)
		return nil, err
	}
	return w, nil
}

// stop ends both consumers and deletes them.
func (w *watcher) stop(ctx context.Context) {
	for _, sub := range w.subs {
		sub.cc.Stop()
		select {
		case <-sub.cc.Closed():
		case <-time.After(5 * time.Second):
		}
		w.deleteConsumer(ctx, sub.stream, sub.cons)
	}
	w.subs = nil
}

func (w *watcher) deleteConsumer(ctx context.Context, stream string, cons jetstream.Consumer) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := w.s.js.DeleteConsumer(dctx, stream, cons.CachedInfo().Name); err != nil {
		w.s.log.Debug().Err(err).Str("stream", stream).Msg("watch consumer not deleted; the server removes it after a minute")
	}
}

// expect registers a job about to be published, before it is: its outcome
// may come back before the PubAck.
func (w *watcher) expect(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending[id]++
	w.tally.Pending++
	w.changed = true
}

// forget withdraws an expect whose job was not (newly) enqueued.
func (w *watcher) forget(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending[id] == 0 {
		return
	}
	if w.pending[id]--; w.pending[id] == 0 {
		delete(w.pending, id)
	}
	w.tally.Pending--
	w.changed = true
}

// outcome counts an outcome of job id, if it is one the replay awaits.
func (w *watcher) outcome(id string, failed bool) {
	w.mu.Lock()
	if w.pending[id] == 0 {
		w.mu.Unlock()
		return
	}
	if w.pending[id]--; w.pending[id] == 0 {
		delete(w.pending, id)
	}
	w.tally.Pending--
	if failed {
		w.tally.FailedAgain++
	} else {
		w.tally.Succeeded++
	}
	w.changed = true
	trip := false
	finished := w.tally.FailedAgain + w.tally.Succeeded
	if !w.tripped && finished >= max(w.opts.MinSample, 1) &&
		float64(w.tally.FailedAgain) > w.opts.MaxFailureRatio*float64(finished) {
		w.tripped, trip = true, true
	}
	w.mu.Unlock()
	if trip {
		w.onTrip()
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// poll returns the tally and whether it changed since the last poll.
func (w *watcher) poll() (WatchTally, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	changed := w.changed
	w.changed = false
	return w.tally, changed
}

func (w *watcher) isTripped() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tripped
}

// settle waits until every replayed job has an outcome, the watch trips,
// opts.Settle passes or ctx ends, reporting changes to report.
func (w *watcher) settle(ctx context.Context, report func(WatchTally)) {
	timeout := time.NewTimer(w.opts.Settle)
	defer timeout.Stop()
	for {
		t, changed := w.poll()
		if changed && report != nil {
			report(t)
		}
		if t.Pending == 0 || w.isTripped() {
			return
		}
		select {
		case <-w.wake:
		case <-timeout.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
