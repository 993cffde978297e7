// Package client is the Go API for publishers: enqueue one job or a batch
// of any size with a bounded number of acknowledgements outstanding, and
// wait for a job's result or dead-letter record, including one stored
// before the caller started waiting. Bodies and results too large for a
// NATS message travel through the JetStream object store (the claim
// check) without the caller noticing: Enqueue stores them, Await returns
// them whole.
//
// It speaks the contract of docs/contract.md and nothing else, so a
// service can import it without the worker; it does not create streams (a worker
// does) and it does not log: every failure is an error, per job where a
// batch is concerned.
//
// Errors to branch on: a job refused before publishing (bad function id,
// job id, subject, header value, or a body over the request limit: what
// the worker would dead-letter as invalid) wraps job.ErrInvalid, and
// nothing was published; New wraps queue.ErrNotProvisioned when the
// streams do not exist (no worker has started against this NATS server
// yet); ErrDeadLettered and ErrIncomplete are this package's own.
package client
