package client

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/job"
)

// lookupConcurrency bounds AwaitAll's lookups of outcomes stored before it
// was called.
const lookupConcurrency = 16

// exactFilterMax is the most ids AwaitAll reads the streams for by their
// own subjects; for more it reads every outcome and picks its own.
const exactFilterMax = 64

// Await waits for the outcome of jobID: its result, or its dead-letter
// record. It finds an outcome stored before it was called as well as one
// stored later. A result's body is returned whole, fetched from the
// object store when it was stored there.
func (c *Client) Await(ctx context.Context, jobID JobID) (Outcome, error) {
	var got Outcome
	err := c.AwaitAll(ctx, []JobID{jobID}, func(o Outcome) { got = o })
	return got, err
}

// AwaitAll waits for the outcome of every id and calls each once per id,
// from one goroutine, in the order outcomes are found. It returns nil once
// every id has its outcome, or an error wrapping ctx's when ctx ended
// first. Like Await it finds outcomes stored before it was called; where a
// job has both a dead-letter record and a later result (it was replayed),
// a stored result is preferred.
//
// Its cost does not grow with the number of results stored by others: it
// reads the results and dead-letter streams from where they end when it
// starts, and looks each id up once in what they held before.
func (c *Client) AwaitAll(ctx context.Context, ids []JobID, each func(Outcome)) error {
	pending := make(map[JobID]struct{}, len(ids))
	for _, id := range ids {
		if err := job.ValidateJobID(id); err != nil {
			return fmt.Errorf("await %q: %w", id, err)
		}
		pending[id] = struct{}{}
	}
	if len(pending) == 0 {
		return nil
	}
	workers := min(lookupConcurrency, len(pending))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	t := c.cfg.Topology

	var mu sync.Mutex // guards pending and finished, and serialises each
	finished := false // AwaitAll returned: each must not be called again
	done := make(chan struct{})
	deliver := func(o Outcome) {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := pending[o.JobID]; !ok || finished {
			return
		}
		if err := c.resolve(ctx, &o); err != nil {
			cancel(err)
			return
		}
		delete(pending, o.JobID)
		each(o)
		if len(pending) == 0 {
			close(done)
		}
	}

	// Read what is stored from now on first, then look up what was stored
	// before: an outcome stored in between is seen by both, and counted
	// once.
	// A few ids are read by their own subjects, so a waiter does not
	// receive every other job's outcome.
	type source struct {
		stream  string
		filters []string
		dead    bool
	}
	results := source{stream: t.ResultsStream, filters: []string{t.ResultsPrefix + ".>"}}
	dead := source{stream: t.DLQStream, filters: []string{t.DLQPrefix + ".>"}, dead: true}
	if len(pending) <= exactFilterMax {
		results.filters, dead.filters = nil, nil
		for id := range pending {
			results.filters = append(results.filters, t.ResultSubject(id))
			dead.filters = append(dead.filters, t.DLQPrefix+".*."+id)
		}
	}
	streams := make([]jetstream.Stream, 2)
	for i, s := range []source{results, dead} {
		st, err := c.js.Stream(ctx, s.stream)
		if err != nil {
			return fmt.Errorf("await: stream %s: %w", s.stream, err)
		}
		streams[i] = st
		cons, err := c.js.OrderedConsumer(ctx, s.stream, jetstream.OrderedConsumerConfig{
			FilterSubjects: s.filters,
			DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:    st.CachedInfo().State.LastSeq + 1,
		})
		if err != nil {
			return fmt.Errorf("await: read %s: %w", s.stream, err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			deliver(outcomeOf(m.Subject(), m.Headers(), m.Data(), s.dead))
		})
		if err != nil {
			return fmt.Errorf("await: read %s: %w", s.stream, err)
		}
		defer cc.Stop()
	}

	lookups := make(chan JobID)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for id := range lookups {
				if o, ok, err := c.lookup(ctx, streams, id); err != nil {
					cancel(err)
				} else if ok {
					deliver(o)
				}
			}
		})
	}
	for _, id := range ids {
		select {
		case lookups <- id:
		case <-ctx.Done():
		}
	}
	close(lookups)
	wg.Wait()

	select {
	case <-done:
		return nil
	case <-ctx.Done():
		mu.Lock()
		left := len(pending)
		finished = true
		mu.Unlock()
		return fmt.Errorf("await: %d of %d jobs without an outcome: %w", left, len(ids), context.Cause(ctx))
	}
}

// lookup finds an outcome of id stored before AwaitAll started: a result
// first, else a dead-letter record.
func (c *Client) lookup(ctx context.Context, streams []jetstream.Stream, id JobID) (Outcome, bool, error) {
	t := c.cfg.Topology
	for i, subject := range []string{t.ResultSubject(id), t.DLQPrefix + ".*." + id} {
		m, err := streams[i].GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return Outcome{}, false, nil
			}
			return Outcome{}, false, fmt.Errorf("await %s: look up %s: %w", id, subject, err)
		}
		return outcomeOf(m.Subject, m.Header, m.Data, i == 1), true, nil
	}
	return Outcome{}, false, nil
}
