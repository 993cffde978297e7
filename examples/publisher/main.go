// Command publisher is a publisher in Go: it enqueues a batch of jobs with
// the client package, waits for their outcomes, then invokes one job and
// prints its result. Run `worker dev` first, then:
//
//	go run ./examples/publisher -function ocid1.fnfunc.oc1.dev.aaaaaaaaecho -n 100
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/invoke-worker/worker/client"
)

func main() {
	url := flag.String("nats", "nats://127.0.0.1:4222", "NATS server URL (worker dev listens here)")
	function := flag.String("function", "ocid1.fnfunc.oc1.dev.aaaaaaaaecho", "function OCID")
	n := flag.Int("n", 100, "jobs in the batch")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *url, *function, *n); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, url, function string, n int) error {
	nc, err := nats.Connect(url, nats.Name("example-publisher"))
	if err != nil {
		return err
	}
	defer nc.Drain()

	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	// New fails with queue.ErrNotProvisioned until a worker has created
	// the streams.
	c, err := client.New(ctx, nc, client.Config{MaxPending: 256})
	if err != nil {
		return err
	}

	// A batch: published asynchronously, at most MaxPending unacknowledged.
	// Ids derived from your own keys make a re-run safe: within the
	// duplicate window (2 minutes by default) a job is stored once.
	jobs := make([]client.Job, n)
	for i := range jobs {
		jobs[i] = client.Job{
			FunctionID:  function,
			ID:          fmt.Sprintf("example-%d-%04d", os.Getpid(), i),
			Body:        fmt.Appendf(nil, `{"n":%d}`, i),
			ContentType: "application/json",
		}
	}
	results, err := c.EnqueueBatch(ctx, jobs)
	if err != nil && !errors.Is(err, client.ErrIncomplete) {
		return err
	}
	var ids []client.JobID
	for _, r := range results {
		if r.Err != nil {
			log.Printf("job %d not enqueued: %v", r.Index, r.Err)
			continue
		}
		ids = append(ids, r.ID)
	}

	// Outcomes of the whole batch, in the order they are stored.
	ok, failed := 0, 0
	err = c.AwaitAll(ctx, ids, func(o client.Outcome) {
		if err := o.Err(); err != nil {
			failed++
			log.Print(err)
			return
		}
		ok++
	})
	if err != nil {
		return err
	}
	fmt.Printf("%d succeeded, %d failed\n", ok, failed)

	// One job, waited for. A body larger than the server's max payload
	// would go through the object store on the way in and out.
	res, err := c.Invoke(ctx, client.Job{FunctionID: function, Body: []byte("hello")})
	var dle *client.DeadLetterError
	switch {
	case errors.As(err, &dle):
		fmt.Printf("dead-lettered (%s): %s\n", dle.Reason, dle.Message)
		return nil
	case err != nil:
		return err
	}
	fmt.Printf("%d %s\n", res.Status, res.Body)
	return nil
}
