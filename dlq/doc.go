// Package dlq owns dead-letter records: what a record on
// invoke.dlq.<reason>.<job-id> says (the original job byte for byte plus
// why, when and where it failed), writing one and waiting for JetStream to
// store it, and the operations on the dead-letter stream. The record's
// subject and headers are those of docs/contract.md, "A dead-letter record".
//
// It does not decide when a job is dead-lettered; the worker's outcome
// switch does.
package dlq
