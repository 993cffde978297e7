package job

import (
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// Result is what a result message's headers say (docs/contract.md, "A
// result"); the message's body is the function's answer. Build the headers
// with AppendHeader, read them with ParseResult: the worker writes results
// and the client and the worker read them with the same code.
type Result struct {
	// JobID is Invoke-Job-Id, and the result's Nats-Msg-Id.
	JobID      string
	FunctionID string
	// Status is the function's HTTP status.
	Status int
	// Attempts counts the attempts the job took, this one included.
	Attempts int
	// Duration is this attempt's, in whole milliseconds on the wire.
	Duration time.Duration
	// CompletedAt is when the worker built the result, to the millisecond
	// on the wire.
	CompletedAt time.Time
	// The function's answer headers, when it sent them.
	OpcRequestID    string
	FnCallID        string
	ContentType     string
	ContentEncoding string
	// Traceparent and Tracestate are the job's, passed on (Tracestate only
	// with a Traceparent).
	Traceparent string
	Tracestate  string
	// BodyObject is Invoke-Body-Object: where the answer is stored when it
	// was too large for a message (the message body is then empty).
	BodyObject string
}

// ResultHeaders is how many headers a result has at most.
const ResultHeaders = 14

// AppendHeader sets r's headers in h: the contract's result headers, those
// that are optional only when set. Each value is a one-value slice of vals'
// backing array, appended to it; the grown vals is returned. A caller that
// keeps h and vals from one result to the next (clearing h, passing vals[:0])
// builds each without allocating but for the texts of its numbers and time.
func (r *Result) AppendHeader(h nats.Header, vals []string) []string {
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set(HeaderMsgID, r.JobID)
	set(HeaderJobID, r.JobID)
	set(HeaderFunctionID, r.FunctionID)
	set(HeaderStatus, statusText(r.Status))
	set(HeaderAttempts, strconv.Itoa(r.Attempts))
	set(HeaderDurationMs, strconv.FormatInt(r.Duration.Milliseconds(), 10))
	set(HeaderCompletedAt, r.CompletedAt.UTC().Format(TimeFormatMillis))
	if r.OpcRequestID != "" {
		set(HeaderOpcRequestID, r.OpcRequestID)
	}
	if r.FnCallID != "" {
		set(HeaderFnCallID, r.FnCallID)
	}
	if r.ContentType != "" {
		set(HeaderContentType, r.ContentType)
	}
	if r.ContentEncoding != "" {
		// The body is as the function sent it, compressed or not.
		set(HeaderContentEncoding, r.ContentEncoding)
	}
	if r.Traceparent != "" {
		set(HeaderTraceparent, r.Traceparent)
		if r.Tracestate != "" {
			set(HeaderTracestate, r.Tracestate)
		}
	}
	if r.BodyObject != "" {
		set(HeaderBodyObject, r.BodyObject)
	}
	return vals
}

// statusText is strconv.Itoa without an allocation for the statuses of
// nearly every result.
func statusText(status int) string {
	switch status {
	case http.StatusOK:
		return "200"
	case http.StatusAccepted:
		return "202"
	}
	return strconv.Itoa(status)
}

// ParseResult reads a result's headers, leniently: a header missing or
// unreadable is left zero. Names match as Lookup matches them. A
// dead-letter record's Invoke-Job-Id and Invoke-Status mean the same and
// are read the same way.
func ParseResult(h nats.Header) Result {
	r := Result{
		JobID:           Lookup(h, HeaderJobID),
		FunctionID:      Lookup(h, HeaderFunctionID),
		OpcRequestID:    Lookup(h, HeaderOpcRequestID),
		FnCallID:        Lookup(h, HeaderFnCallID),
		ContentType:     Lookup(h, HeaderContentType),
		ContentEncoding: Lookup(h, HeaderContentEncoding),
		Traceparent:     Lookup(h, HeaderTraceparent),
		Tracestate:      Lookup(h, HeaderTracestate),
		BodyObject:      Lookup(h, HeaderBodyObject),
	}
	r.Status, _ = strconv.Atoi(Lookup(h, HeaderStatus))
	r.Attempts, _ = strconv.Atoi(Lookup(h, HeaderAttempts))
	if ms, err := strconv.ParseInt(Lookup(h, HeaderDurationMs), 10, 64); err == nil {
		r.Duration = time.Duration(ms) * time.Millisecond
	}
	if t, err := time.Parse(TimeFormatMillis, Lookup(h, HeaderCompletedAt)); err == nil {
		r.CompletedAt = t
	}
	return r
}
