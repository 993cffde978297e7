package job

import (
	"strings"

	"github.com/nats-io/nats.go"
)

// Headers of a waiting job's copy (docs/contract.md, "Waiting jobs").
//
// A job that must wait (a retry's backoff, an open circuit breaker, a
// function over its share of a worker) is not handed back to its consumer,
// where it would hold a delivery slot while it waits: the worker stores a
// copy as a scheduled message on <wait prefix>.<stream sequence> in the
// jobs stream, which JetStream publishes back to the job's own subject when
// the wait is over, and only then acknowledges the original. The copy keeps
// every header of the job (Nats-Msg-Id kept as Invoke-Original-Msg-Id, the
// job id made explicit in Invoke-Job-Id) and carries what the next
// delivery must know in the Invoke-Wait-* headers below. Those are the
// worker's own: a dead-letter record drops them, so a replayed job starts
// afresh.
const (
	// HeaderWaitPrefix is what every header below starts with.
	HeaderWaitPrefix = "Invoke-Wait-"
	// HeaderWaitAttempts: attempts charged before the copy was stored
	// (decimal, 0..max_attempts).
	HeaderWaitAttempts = "Invoke-Wait-Attempts"
	// HeaderWaitDefers: waits in a row without an attempt (decimal); each
	// one waits longer, so a long outage costs ever fewer deliveries.
	HeaderWaitDefers = "Invoke-Wait-Defers"
	// HeaderWaitCause: why the job waited (retry, breaker_open, fair_share,
	// function_limit, rate_limit, body_unavailable).
	HeaderWaitCause = "Invoke-Wait-Cause"
	// HeaderWaitEnqueuedAt: when the job was first stored, RFC 3339 with
	// nanoseconds; the retry budget and the job's age run from it, not from
	// the copy's own time.
	HeaderWaitEnqueuedAt = "Invoke-Wait-Enqueued-At"
	// HeaderWaitHistory: the attempts so far, in the dead-letter record's
	// Invoke-Attempt-History format.
	HeaderWaitHistory = "Invoke-Wait-History"
	// HeaderWaitUntil: when the copy is due, RFC 3339 (informational).
	HeaderWaitUntil = "Invoke-Wait-Until"
	// HeaderWaitTraceparent and HeaderWaitTracestate: the W3C trace
	// context of the delivery that stored the copy, set only by a worker
	// that traces; the next delivery's span continues that trace, so every
	// attempt of a job is one trace. The job's own traceparent is kept as
	// the publisher sent it.
	HeaderWaitTraceparent = "Invoke-Wait-Traceparent"
	HeaderWaitTracestate  = "Invoke-Wait-Tracestate"
)

// CopyCarried copies into dst the headers of src that a job carries
// forward when it is stored again (as a waiting copy or a dead-letter
// record), leaving behind the ones it must not:
//
//   - JetStream's own (Nats-*): Nats-Msg-Id is kept by the caller as
//     Invoke-Original-Msg-Id, a schedule's Nats-Scheduler from an earlier
//     wait would make the store fail, and an expectation such as
//     Nats-Expected-Stream would make the publish fail;
//   - the last wait's (Invoke-Wait-*): a waiting copy writes them afresh,
//     and a dead-letter record drops them so that a replay starts afresh.
//
// Values are copied, so dst can be changed without touching src.
func CopyCarried(dst, src nats.Header) {
	for k, vs := range src {
		if hasPrefixFold(k, "Nats-") || hasPrefixFold(k, HeaderWaitPrefix) {
			continue
		}
		dst[k] = append([]string(nil), vs...)
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
