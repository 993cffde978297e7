package fanout

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/client"
	"github.com/invoke-worker/worker/job"
)

// The event's jobs: one per function, with the id that makes a
// redelivered event enqueue nothing twice, and the headers mapped from
// the event's (Route.Headers). Building them touches no server.

// jobs builds the event's jobs, one per function.
func (r *route) jobs(msg jetstream.Msg, meta *jetstream.MsgMetadata) []client.Job {
	body := msg.Data()
	contentType := ""
	if r.Intent == job.IntentCloudEvent {
		body = structuredCloudEvent(event{
			header:  msg.Headers(),
			data:    msg.Data(),
			subject: msg.Subject(),
			stream:  meta.Stream,
			seq:     meta.Sequence.Stream,
			stored:  meta.Timestamp,
		}, r.Source, r.Type)
		contentType = CloudEventCT
	}
	hdr := r.jobHeader(msg.Headers())
	jobs := make([]client.Job, len(r.Functions))
	for n, fn := range r.Functions {
		jobs[n] = client.Job{
			FunctionID:  fn,
			ID:          JobID(r.Name, meta.Stream, meta.Sequence.Stream, n),
			Subject:     r.JobSubject,
			Body:        body,
			Intent:      r.Intent,
			ContentType: contentType,
			Header:      hdr, // copied by Job.Message
		}
	}
	return jobs
}

// JobID is the id of the job route publishes for the n-th function of
// event seq of stream: <route>-<stream>-<seq>-<n>, with characters a job
// id may not have replaced by '_', and shortened with a hash of the whole
// when longer than a job id may be.
func JobID(route, stream string, seq uint64, n int) string {
	id := []byte(route + "-" + stream + "-" + strconv.FormatUint(seq, 10) + "-" + strconv.Itoa(n))
	for i, c := range id {
		if !job.IsIDChar(c) {
			id[i] = '_'
		}
	}
	if len(id) <= job.MaxJobIDLength {
		return string(id)
	}
	// Keep the tail (sequence and n) whole; the hash keeps ids distinct.
	sum := fnv64(string(id))
	tail := "-" + strconv.FormatUint(seq, 10) + "-" + strconv.Itoa(n)
	head := job.MaxJobIDLength - len(tail) - 17
	return string(id[:head]) + "-" + fmt.Sprintf("%016x", sum) + tail
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// jobHeader maps an event's headers onto its jobs' headers.
func (r *route) jobHeader(ev nats.Header) nats.Header {
	h := nats.Header{}
	carry := func(from, to string) bool {
		k, vs := lookupAll(ev, from)
		if k == "" {
			return false
		}
		h[to] = slices.Clone(vs)
		return true
	}
	carry(job.HeaderTraceparent, job.HeaderTraceparent)
	carry(job.HeaderTracestate, job.HeaderTracestate)
	if r.Intent != job.IntentCloudEvent {
		carry(job.HeaderContentType, job.HeaderContentType)
	}
	for _, name := range r.Headers.Copy {
		if name == "*" {
			for k, vs := range ev {
				if !r.reserved(k) {
					h[k] = slices.Clone(vs)
				}
			}
			continue
		}
		if !r.reserved(name) {
			if k, _ := lookupAll(ev, name); k != "" {
				carry(k, k)
			}
		}
	}
	for from, to := range r.Headers.Rename {
		if k, _ := lookupAll(ev, from); k != "" && carry(k, to) && k != to {
			delete(h, k) // renamed, not copied twice by "*"
		}
	}
	for k, v := range r.Headers.Set {
		h[k] = []string{v}
	}
	return h
}

// reserved are the event headers never copied: NATS's own and those the
// route sets itself.
func (r *route) reserved(k string) bool {
	if len(k) >= 5 && strings.EqualFold(k[:5], "nats-") {
		return true
	}
	for _, o := range []string{job.HeaderJobID, job.HeaderFunctionID, job.HeaderBodyObject, job.HeaderFnIntent} {
		if strings.EqualFold(k, o) {
			return true
		}
	}
	if r.Intent == job.IntentCloudEvent {
		// The CloudEvent carries them in its body.
		return strings.EqualFold(k, job.HeaderContentType) || len(k) > 3 && strings.EqualFold(k[:3], "ce-")
	}
	return false
}

// lookupAll finds a header exactly, else case-insensitively, and returns
// its key as the event has it.
func lookupAll(h nats.Header, key string) (string, []string) {
	if vs, ok := h[key]; ok && len(vs) > 0 {
		return key, vs
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, key) {
			return k, vs
		}
	}
	return "", nil
}
