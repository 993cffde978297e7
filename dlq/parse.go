package dlq

import (
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invoke-worker/worker/job"
)

// HeaderReplayCount counts how often a job was replayed from the
// dead-letter stream. Replay sets it on the job it republishes (previous
// value + 1); a job that fails again carries it into its new record.
const HeaderReplayCount = "Invoke-Replay-Count"

// Record is one dead-letter record as read back from the stream. Parsing is
// lenient: a record written by another tool or an older worker still lists,
// with what could not be read left zero (and HistoryErr set for a malformed
// history).
type Record struct {
	// Seq is the record's sequence in the dead-letter stream: its handle for
	// show, replay and purge.
	Seq      uint64    `json:"seq"`
	Subject  string    `json:"subject"`
	StoredAt time.Time `json:"stored_at"`

	Reason Reason `json:"reason"`
	// JobID is the id the record is filed under: its subject's last token,
	// always a valid job id.
	JobID string `json:"job_id"`
	// RejectedJobID is the publisher's Invoke-Job-Id when it was not a valid
	// job id (the job was invalid for it, and JobID is <stream>-<seq>); the
	// record keeps it as it was sent. "" otherwise.
	RejectedJobID string `json:"rejected_job_id,omitempty"`
	FunctionID    string `json:"function_id,omitempty"`
	// Status is the last HTTP status, 0 when the service never answered.
	Status int `json:"status,omitempty"`
	// Code is OCI's error code of the last attempt, from the attempt
	// history; "" when there is none.
	Code     string `json:"code,omitempty"`
	Attempts int    `json:"attempts"`
	Error    string `json:"error,omitempty"`
	// FailedAt is Invoke-Failed-At, else the time the record was stored.
	FailedAt    time.Time `json:"failed_at"`
	FirstSeenAt time.Time `json:"first_seen_at,omitzero"`
	Worker      string    `json:"worker,omitempty"`

	OriginalSubject string `json:"original_subject,omitempty"`
	OriginalSeq     uint64 `json:"original_seq,omitempty"`
	// ReplayCount is how often the job was replayed before this record.
	ReplayCount int `json:"replay_count,omitempty"`

	History    []Attempt `json:"history,omitempty"`
	HistoryErr error     `json:"-"`

	// Header is every header of the record (JetStream's transport headers
	// of a direct get removed).
	Header nats.Header `json:"headers"`
	// Size is the body's size in bytes; Body is nil when the record was
	// read without its body (dlqops.Store.Records).
	Size int    `json:"size"`
	Body []byte `json:"-"`
}

// transportHeaders are added by JetStream when a message is read (direct
// get, headers-only delivery); they are not part of the record.
var transportHeaders = []string{
	jetstream.StreamHeader, jetstream.SequenceHeader, jetstream.TimeStampHeaer,
	jetstream.SubjectHeader, "Nats-Num-Pending", "Nats-Last-Sequence", "Nats-UpTo-Sequence",
	"Nats-Msg-Size",
}

// ParseRecord reads a record from its stored form, as a direct get
// (jetstream.Stream.GetMsg) returns it; prefix is the dead-letter subject
// prefix (invoke.dlq by default), the fallback for a record whose headers
// lack its reason or job id. A record read without its body (a
// headers-only consumer) has Size 0: the caller sets it from Nats-Msg-Size.
func ParseRecord(prefix string, m *jetstream.RawStreamMsg) Record {
	subject, stored, hdr := m.Subject, m.Time, m.Header
	h := make(nats.Header, len(hdr))
	for k, vs := range hdr {
		h[k] = vs
	}
	for _, k := range transportHeaders {
		h.Del(k)
	}
	get := func(k string) string { return job.Lookup(h, k) }
	r := Record{
		Seq:             m.Sequence,
		Subject:         subject,
		StoredAt:        stored,
		Reason:          Reason(get(job.HeaderDLQReason)),
		JobID:           get(job.HeaderJobID),
		FunctionID:      get(job.HeaderFunctionID),
		Error:           get(job.HeaderError),
		Worker:          get(job.HeaderWorker),
		OriginalSubject: get(job.HeaderOriginalSubject),
		Header:          h,
		Size:            len(m.Data),
		Body:            m.Data,
	}
	// A publisher's Invoke-Job-Id that could not be the job id is kept as
	// sent (NewMessage); the record is filed under the subject's id.
	if r.JobID != "" && job.ValidateJobID(r.JobID) != nil {
		r.RejectedJobID, r.JobID = r.JobID, ""
	}
	// The subject is invoke.dlq.<reason>.<job-id>: the fallback for a record
	// whose headers lack either.
	if rest, ok := strings.CutPrefix(subject, prefix+"."); ok {
		if reason, id, ok := strings.Cut(rest, "."); ok {
			if r.Reason == "" {
				r.Reason = Reason(reason)
			}
			if r.JobID == "" {
				r.JobID = id
			}
		}
	}
	r.Status, _ = strconv.Atoi(get(job.HeaderStatus))
	r.Attempts, _ = strconv.Atoi(get(job.HeaderAttempts))
	r.OriginalSeq, _ = strconv.ParseUint(get(job.HeaderOriginalSeq), 10, 64)
	r.ReplayCount, _ = strconv.Atoi(get(HeaderReplayCount))
	r.FailedAt = parseTime(get(job.HeaderFailedAt), stored)
	r.FirstSeenAt = parseTime(get(job.HeaderFirstSeenAt), time.Time{})
	r.History, r.HistoryErr = DecodeHistory(get(HeaderAttemptHistory))
	if n := len(r.History); n > 0 {
		r.Code = r.History[n-1].Code
	}
	return r
}

func parseTime(v string, def time.Time) time.Time {
	if v == "" {
		return def
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return def
	}
	return t
}
