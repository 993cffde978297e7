package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/invoke-worker/worker/client"
	"github.com/invoke-worker/worker/internal/testenv"
	"github.com/invoke-worker/worker/invoke/emulator"
	"github.com/invoke-worker/worker/job"
)

// Functions of the examples' emulator: echo answers with the request
// body, gone with 404.
const (
	echoFn = "ocid1.fnfunc.oc1.phx.aaaaaaaaecho"
	goneFn = "ocid1.fnfunc.oc1.phx.aaaaaaaagone"
)

// demo starts, in this process, what a publisher talks to: a NATS server
// with the worker's streams, the function emulator and a worker. It
// returns the server's URL and a function that stops everything.
func demo() (url string, stop func()) {
	st, err := testenv.RunStack(testenv.StackConfig{Functions: map[string]emulator.Behavior{goneFn: {Status: 404}}})
	if err != nil {
		panic(err)
	}
	return st.Server.ClientURL(), st.Close
}

// Invoke enqueues a job and waits for its result.
func ExampleClient_Invoke() {
	url, stop := demo()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	nc, err := nats.Connect(url)
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	c, err := client.New(ctx, nc, client.Config{})
	if err != nil {
		panic(err)
	}
	res, err := c.Invoke(ctx, client.Job{FunctionID: echoFn, Body: []byte("hello"), ContentType: "text/plain"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d %s\n", res.Status, res.Body)

	// A job that is dead-lettered returns its reason.
	_, err = c.Invoke(ctx, client.Job{FunctionID: goneFn, Body: []byte("anyone?")})
	var dle *client.DeadLetterError
	if errors.As(err, &dle) {
		fmt.Println(dle.Reason, dle.Status)
	}
	// Output:
	// 200 hello
	// permanent 404
}

// EnqueueBatch publishes many jobs with a bounded number of
// acknowledgements outstanding and reports each job; AwaitAll then waits
// for all their outcomes at once.
func ExampleClient_EnqueueBatch() {
	url, stop := demo()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	nc, err := nats.Connect(url)
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	c, err := client.New(ctx, nc, client.Config{MaxPending: 64})
	if err != nil {
		panic(err)
	}
	jobs := []client.Job{
		{FunctionID: echoFn, ID: "order-1", Body: []byte("one")},
		{FunctionID: echoFn, ID: "order-2", Body: []byte("two")},
		{FunctionID: "not-a-function", ID: "order-3"},
		{FunctionID: goneFn, ID: "order-4"},
	}
	results, err := c.EnqueueBatch(ctx, jobs)
	fmt.Println("incomplete:", errors.Is(err, client.ErrIncomplete))
	var ids []client.JobID
	for _, r := range results {
		if r.Err != nil {
			fmt.Println(r.ID, "refused:", errors.Is(r.Err, job.ErrInvalid))
			continue
		}
		ids = append(ids, r.ID)
	}

	var lines []string
	err = c.AwaitAll(ctx, ids, func(o client.Outcome) {
		if o.DeadLettered {
			lines = append(lines, fmt.Sprintf("%s dead-lettered: %s", o.JobID, o.Reason))
			return
		}
		lines = append(lines, fmt.Sprintf("%s: %s", o.JobID, o.Body))
	})
	if err != nil {
		panic(err)
	}
	slices.Sort(lines) // outcomes arrive in the order jobs finish
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// incomplete: true
	// order-3 refused: true
	// order-1: one
	// order-2: two
	// order-4 dead-lettered: permanent
}

// Await finds an outcome whether it was stored before or after the call.
func ExampleClient_Await() {
	url, stop := demo()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	nc, err := nats.Connect(url)
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	c, err := client.New(ctx, nc, client.Config{})
	if err != nil {
		panic(err)
	}
	id, err := c.Enqueue(ctx, client.Job{FunctionID: echoFn, Body: []byte("done long ago")})
	if err != nil {
		panic(err)
	}
	time.Sleep(300 * time.Millisecond) // the result is most likely stored by now
	o, err := c.Await(ctx, id)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(o.Body))
	// Output: done long ago
}
