package queue

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/job"
)

// Outcome is how a job ended: a result, or a dead-letter record.
type Outcome struct {
	// DeadLettered is true for a dead-letter record, false for a result.
	DeadLettered bool
	// Reason is the dead-letter reason ("" for a result).
	Reason  string
	Subject string
	Header  nats.Header
	Data    []byte
}

// Error returns the record's Invoke-Error ("" for a result).
func (o Outcome) Error() string { return o.Header.Get(job.HeaderError) }

// Await waits for the result or dead-letter record of jobID. It finds an
// outcome stored before it was called as well as one stored later, because
// it reads the streams from the start of the job's subjects rather than
// subscribing to new messages only. A result whose body was too large for
// a message comes with empty Data and Invoke-Body-Object naming the stored
// body; client.Await fetches it.
func Await(ctx context.Context, js jetstream.JetStream, t Topology, jobID string) (Outcome, error) {
	t = t.WithDefaults()
	if err := job.ValidateJobID(jobID); err != nil {
		return Outcome{}, fmt.Errorf("await: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	found := make(chan Outcome, 2)
	watch := func(stream, subject string, dead bool) (jetstream.ConsumeContext, error) {
		cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{subject},
			DeliverPolicy:  jetstream.DeliverAllPolicy,
		})
		if err != nil {
			return nil, fmt.Errorf("await %s on %s: %w", jobID, stream, err)
		}
		return cons.Consume(func(m jetstream.Msg) {
			o := Outcome{DeadLettered: dead, Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}
			if dead {
				o.Reason = m.Headers().Get(job.HeaderDLQReason)
			}
			select {
			case found <- o:
			default:
			}
		})
	}
	results, err := watch(t.ResultsStream, t.ResultSubject(jobID), false)
	if err != nil {
		return Outcome{}, err
	}
	defer results.Stop()
	dead, err := watch(t.DLQStream, t.DLQPrefix+".*."+jobID, true)
	if err != nil {
		return Outcome{}, err
	}
	defer dead.Stop()

	select {
	case o := <-found:
		return o, nil
	case <-ctx.Done():
		return Outcome{}, fmt.Errorf("await %s: %w", jobID, ctx.Err())
	}
}
