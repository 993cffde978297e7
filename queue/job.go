package queue

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/invoke-worker/worker/job"
)

// Job is what a publisher enqueues (client.Client publishes it).
type Job struct {
	// FunctionID is the function OCID. Required.
	FunctionID string
	// Subject is where the job is published. Defaults to
	// "invoke.jobs.default".
	Subject string
	// ID is the job id, also used as the Nats-Msg-Id so that publishing the
	// same job twice inside the duplicate window stores it once. Defaults
	// to a random id.
	ID   string
	Body []byte
	// Intent (httprequest, cloudevent), InvokeType (sync, detached),
	// ContentType, Timeout and Deadline map to the contract's headers when
	// set.
	Intent      string
	InvokeType  string
	ContentType string
	Timeout     time.Duration
	Deadline    time.Time
	// ReplyTo also receives the result by core NATS publish.
	ReplyTo string
	// Header holds further headers (traceparent, …); the fields above win.
	Header nats.Header
}

// DefaultJobSubject is where jobs go when no subject is given.
const DefaultJobSubject = "invoke.jobs.default"

// Message validates j and builds its NATS message, filling j.ID when unset.
// The worker would dead-letter an invalid job; refusing it here tells the
// publisher at once instead.
func (j *Job) Message() (*nats.Msg, error) {
	if j.ID == "" {
		j.ID = NewJobID()
	}
	if err := job.ValidateJobID(j.ID); err != nil {
		return nil, fmt.Errorf("%w: id: %w", job.ErrInvalid, err)
	}
	if err := job.ValidateFunctionID(j.FunctionID); err != nil {
		return nil, fmt.Errorf("%w: function: %w", job.ErrInvalid, err)
	}
	msg := j.RawMessage()
	if err := job.ValidatePublishSubject(msg.Subject); err != nil {
		return nil, fmt.Errorf("%w: subject %q: %w", job.ErrInvalid, msg.Subject, err)
	}
	// Validate the way the worker will, so nothing the worker rejects is
	// accepted here.
	if _, err := job.Parse(job.Message{Subject: msg.Subject, Header: msg.Header, Data: j.Body}, job.Limits{}); err != nil {
		return nil, err // already wraps job.ErrInvalid
	}
	return msg, nil
}

// RawMessage builds j's NATS message without validating it (filling j.ID
// when unset). It is for code that must still enqueue a job it knows to be
// invalid, so that the worker dead-letters it with its reason instead of
// the job vanishing (fan-out routes); publishers use Message.
func (j *Job) RawMessage() *nats.Msg {
	if j.ID == "" {
		j.ID = NewJobID()
	}
	subject := j.Subject
	if subject == "" {
		subject = DefaultJobSubject
	}
	msg := nats.NewMsg(subject)
	msg.Data = j.Body
	for k, vs := range j.Header {
		msg.Header[k] = append([]string(nil), vs...)
	}
	h := msg.Header
	h.Set(job.HeaderFunctionID, j.FunctionID)
	h.Set(job.HeaderJobID, j.ID)
	h.Set(job.HeaderMsgID, j.ID)
	set := func(k, v string) {
		if v != "" {
			h.Set(k, v)
		}
	}
	set(job.HeaderFnIntent, j.Intent)
	set(job.HeaderFnInvokeType, j.InvokeType)
	set(job.HeaderContentType, j.ContentType)
	set(job.HeaderReplyTo, j.ReplyTo)
	if j.Timeout > 0 {
		h.Set(job.HeaderTimeout, j.Timeout.String())
	}
	if !j.Deadline.IsZero() {
		h.Set(job.HeaderDeadline, j.Deadline.UTC().Format(time.RFC3339Nano))
	}
	return msg
}

// NewJobID returns a random job id: 20 characters of Crockford base32.
func NewJobID() string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var b [20]byte
	_, _ = rand.Read(b[:])
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		sb.WriteByte(alphabet[c&31])
	}
	return sb.String()
}
