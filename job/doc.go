// Package job owns what an invocation job is on the wire: the NATS header
// names of the contract, docs/contract.md (jobs, results and dead-letter
// records), the rules a job must satisfy before it may be invoked, and
// parsing a JetStream message into a validated Job.
//
// It knows nothing of HTTP, signing or how jobs are consumed; queue, invoke,
// dlq and worker all speak its vocabulary so that the contract's names are
// spelled in one place.
package job
