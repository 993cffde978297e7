// Package dlqops is the operator's toolkit for the dead-letter stream, the
// `worker dlq` commands' library: a Store that lists and gets records
// through a Filter, groups them by failure signature (Stats), replays their
// jobs without enqueuing one twice (Replay, with replay markers and an
// optional watch of the replayed jobs' outcomes) and purges them.
//
// It reads and writes records in package dlq's format and changes nothing
// in the stream but what Replay and Purge are asked to. It is not on the
// worker's path: the worker links dlq alone.
package dlqops
