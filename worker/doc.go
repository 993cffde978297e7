// Package worker owns the invocation engine: pulling jobs from the shared
// durable consumer, running at most Concurrency invocations at once,
// keeping each running job's ack deadline alive, deciding from each
// attempt's outcome whether the job is completed, retried later or
// dead-lettered (one switch, in decide.go), and acknowledging a job only
// after JetStream stored its result or its dead-letter record.
//
// It declares the small interfaces it needs (Invoker, ResultPublisher,
// DeadLetterer) and is wired to queue, invoke and dlq by package service.
package worker
