// Package dlq owns the dead-letter record: what a record on
// invoke.dlq.<reason>.<job-id> says (the original job byte for byte plus
// why, when and where it failed, with its attempt history), writing one and
// waiting for JetStream to store it (Writer, on the worker's hot path), and
// reading one back (ParseRecord). The record's subject and headers are those
// of docs/contract.md, "A dead-letter record".
//
// It does not decide when a job is dead-lettered; the worker's outcome
// switch does. Nor does it operate on the dead-letter stream: listing,
// stats, replay and purge are package dlqops, which the worker does not
// link.
package dlq
