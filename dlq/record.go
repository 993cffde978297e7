package dlq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/job"
)

// Reason is the <reason> token of a dead-letter subject.
type Reason string

// The contract's reasons.
const (
	// ReasonInvalid: the job cannot be run as written.
	ReasonInvalid Reason = "invalid"
	// ReasonPermanent: the function service answered with a status that
	// retrying cannot fix.
	ReasonPermanent Reason = "permanent"
	// ReasonExhausted: retryable failures until the retry budget ran out.
	ReasonExhausted Reason = "exhausted"
	// ReasonExpired: the job's deadline passed before it could be invoked.
	ReasonExpired Reason = "expired"
)

// reasons are the contract's reasons, in its order.
var reasons = [...]Reason{ReasonInvalid, ReasonPermanent, ReasonExhausted, ReasonExpired}

// Reasons lists every reason, in the contract's order, in a new slice.
func Reasons() []Reason { return slices.Clone(reasons[:]) }

// ParseReason accepts one of Reasons.
func ParseReason(s string) (Reason, error) {
	for _, r := range reasons {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown dead-letter reason %q (want invalid, permanent, exhausted or expired)", s)
}

// Failure says why and where a job failed.
type Failure struct {
	Reason Reason
	// Error is a description of the failure, free of credentials; it is cut
	// to one line of at most 1 KiB.
	Error string
	// Status is the last HTTP status, 0 when the service never answered.
	Status   int
	Attempts int
	FailedAt time.Time
	// Worker is the id of the worker process that dead-letters the job.
	Worker string
	// History is the job's attempts, oldest first (at most MaxHistory).
	History []Attempt
	// Traceparent and Tracestate, when Traceparent is set, are the trace
	// context of the run that failed (a tracing worker's span): they
	// replace the job's own on the record, so the record, and a replay of
	// it, point at the spans where the job failed. Empty keeps the job's.
	Traceparent, Tracestate string
}

// NewMessage builds the dead-letter record of j: the original body, every
// original header except Nats-Msg-Id (kept as Invoke-Original-Msg-Id), and
// the contract's dead-letter headers. subjectPrefix is the DLQ subject
// prefix (invoke.dlq by default).
//
// The record is filed under j.ID. Invoke-Job-Id is set to it, except when
// the publisher's own Invoke-Job-Id was refused (j.RejectedID): that one
// stays as it was sent, so the record shows what the publisher sent and a
// replay sends it again, and the record's id is the subject's.
//
// A record whose headers would pass JetStream's limit (MaxRecordHeaderBytes)
// leaves out the largest original headers until it fits, and names them in
// HeaderDroppedHeaders: a record JetStream refuses would never be stored,
// and its job would be given back and come back for ever.
func NewMessage(subjectPrefix string, j job.Job, f Failure) *nats.Msg {
	msg := nats.NewMsg(subjectPrefix + "." + string(f.Reason) + "." + j.ID)
	msg.Data = j.Body
	h := msg.Header
	// Without JetStream's own headers (Nats-Msg-Id is kept as
	// Invoke-Original-Msg-Id) and a waiting copy's, which belong to this
	// run of the job: a replay starts afresh.
	job.CopyCarried(h, j.Header)
	ours := make(map[string]bool, 16) // headers set here, never dropped
	set := func(k, v string) { h[k], ours[k] = []string{v}, true }
	if id := j.Header.Get(job.HeaderMsgID); id != "" {
		// (A waiting copy has none: it carries Invoke-Original-Msg-Id.)
		set(job.HeaderOriginalMsgID, id)
	}
	if j.RejectedID == "" {
		set(job.HeaderJobID, j.ID)
	}
	if j.FunctionID != "" {
		set(job.HeaderFunctionID, j.FunctionID)
	}
	set(job.HeaderDLQReason, string(f.Reason))
	set(job.HeaderError, job.OneLine(f.Error))
	if f.Status != 0 {
		set(job.HeaderStatus, strconv.Itoa(f.Status))
	} else {
		h.Del(job.HeaderStatus)
	}
	set(job.HeaderAttempts, strconv.Itoa(f.Attempts))
	set(job.HeaderOriginalSubject, j.Subject)
	set(job.HeaderOriginalSeq, strconv.FormatUint(j.Seq, 10))
	if !j.StoreAt.IsZero() {
		set(job.HeaderFirstSeenAt, j.StoreAt.UTC().Format(job.TimeFormatMillis))
	}
	set(job.HeaderFailedAt, f.FailedAt.UTC().Format(job.TimeFormatMillis))
	set(job.HeaderWorker, f.Worker)
	if f.Traceparent != "" {
		dropSpellings(h, job.HeaderTraceparent)
		dropSpellings(h, job.HeaderTracestate)
		set(job.HeaderTraceparent, f.Traceparent)
		if f.Tracestate != "" {
			set(job.HeaderTracestate, f.Tracestate)
		}
	}
	if len(f.History) > 0 {
		set(HeaderAttemptHistory, EncodeHistory(f.History))
	} else {
		h.Del(HeaderAttemptHistory)
	}
	h.Del(HeaderDroppedHeaders)
	fitHeaders(h, ours)
	return msg
}

// dropSpellings deletes key from h in every case.
func dropSpellings(h nats.Header, key string) {
	for k := range h {
		if strings.EqualFold(k, key) {
			delete(h, k)
		}
	}
}

// HeaderDroppedHeaders names the original headers a dead-letter record
// left out to fit JetStream's header limit, with their sizes.
const HeaderDroppedHeaders = "Invoke-Dropped-Headers"

// MaxRecordHeaderBytes is the largest header block JetStream stores
// (nats-server refuses more than 65535 bytes: "header size exceeds maximum
// allowed of 64k"). A job's headers can be just under it; its record adds
// the dead-letter headers.
const MaxRecordHeaderBytes = 65535

// fitHeaders drops the largest headers not in keep from h until h's
// encoded header block fits MaxRecordHeaderBytes, and lists them in
// HeaderDroppedHeaders.
func fitHeaders(h nats.Header, keep map[string]bool) {
	size := job.HeaderSize(h)
	if size <= MaxRecordHeaderBytes {
		return
	}
	type entry struct {
		name        string
		size, bytes int // lines in the block; bytes of the values
	}
	var candidates []entry
	for k, vs := range h {
		if !keep[k] {
			e := entry{name: k, size: job.HeaderLinesSize(k, vs)}
			for _, v := range vs {
				e.bytes += len(v)
			}
			candidates = append(candidates, e)
		}
	}
	slices.SortFunc(candidates, func(a, b entry) int {
		return cmp.Or(cmp.Compare(b.size, a.size), cmp.Compare(a.name, b.name))
	})
	var dropped []string
	for _, c := range candidates {
		delete(h, c.name)
		dropped = append(dropped, fmt.Sprintf("%s (%d bytes)", c.name, c.bytes))
		h.Set(HeaderDroppedHeaders, job.OneLine(strings.Join(dropped, ", ")))
		if job.HeaderSize(h) <= MaxRecordHeaderBytes {
			return
		}
	}
}

// DedupeID is the Nats-Msg-Id of j's record: a job dead-lettered again after
// a redelivery (its first acknowledgement lost) is stored once.
func DedupeID(j job.Job) string {
	return "dlq-" + j.Stream + "-" + strconv.FormatUint(j.Seq, 10)
}

// Writer stores dead-letter records.
type Writer struct {
	js     jetstream.JetStream
	stream string
	prefix string
}

// NewWriter writes records under subjectPrefix; stream is the stream that
// holds them.
func NewWriter(js jetstream.JetStream, stream, subjectPrefix string) *Writer {
	return &Writer{js: js, stream: stream, prefix: subjectPrefix}
}

// ErrNotStored wraps a failed dead-letter publish: the job must not be
// acknowledged.
var ErrNotStored = errors.New("dead-letter record not stored")

// DeadLetter publishes j's record and returns once JetStream has stored it.
func (w *Writer) DeadLetter(ctx context.Context, j job.Job, f Failure) error {
	msg := NewMessage(w.prefix, j, f)
	if _, err := w.js.PublishMsg(ctx, msg, jetstream.WithMsgID(DedupeID(j))); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotStored, msg.Subject, err)
	}
	return nil
}
