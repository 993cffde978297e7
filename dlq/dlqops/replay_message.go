package dlqops

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/job"
)

// ReplayMsgID is the Nats-Msg-Id of the job replayed from record seq.
func ReplayMsgID(stream string, seq uint64) string {
	return "replay-" + stream + "-" + strconv.FormatUint(seq, 10)
}

// deadLetterHeaders are added by dead-lettering; a replayed job drops them.
var deadLetterHeaders = []string{
	job.HeaderDLQReason, job.HeaderError, job.HeaderStatus, job.HeaderAttempts,
	job.HeaderOriginalSubject, job.HeaderOriginalSeq, job.HeaderFirstSeenAt, job.HeaderFailedAt,
	job.HeaderWorker, dlq.HeaderAttemptHistory, job.HeaderOriginalMsgID, dlq.HeaderDroppedHeaders,
}

// ReplayMessage builds the job that replaying r (read whole, with Get)
// enqueues: r's body and original headers, to its original subject, with
// its job id, Invoke-Replay-Count one higher, Nats-Msg-Id
// ReplayMsgID(stream, r.Seq), and toFunction as the function when set.
// A publisher's Invoke-Job-Id that was refused (r.RejectedJobID) goes back
// as it was sent, not replaced by the id the record is filed under: the
// job is invalid again, and the replay's warning says so.
func ReplayMessage(r dlq.Record, stream, toFunction string) (*nats.Msg, error) {
	if r.OriginalSubject == "" {
		return nil, fmt.Errorf("record %d has no %s header: nowhere to replay to", r.Seq, job.HeaderOriginalSubject)
	}
	if err := job.ValidatePublishSubject(r.OriginalSubject); err != nil {
		return nil, fmt.Errorf("record %d: %s %q: %w", r.Seq, job.HeaderOriginalSubject, r.OriginalSubject, err)
	}
	if err := job.ValidateJobID(r.JobID); err != nil {
		return nil, fmt.Errorf("record %d: %w", r.Seq, err)
	}
	msg := nats.NewMsg(r.OriginalSubject)
	msg.Data = r.Body
	for k, vs := range r.Header {
		if isDeadLetterHeader(k) || len(k) >= 5 && strings.EqualFold(k[:5], "Nats-") {
			continue
		}
		msg.Header[k] = append([]string(nil), vs...)
	}
	if r.RejectedJobID == "" {
		setHeader(msg.Header, job.HeaderJobID, r.JobID)
	}
	if toFunction != "" {
		setHeader(msg.Header, job.HeaderFunctionID, toFunction)
	}
	setHeader(msg.Header, dlq.HeaderReplayCount, strconv.Itoa(r.ReplayCount+1))
	setHeader(msg.Header, job.HeaderMsgID, ReplayMsgID(stream, r.Seq))
	return msg, nil
}

func isDeadLetterHeader(k string) bool {
	for _, d := range deadLetterHeaders {
		if strings.EqualFold(k, d) {
			return true
		}
	}
	return false
}

// setHeader sets k, dropping spellings of k in another case: the worker
// reads a header case-insensitively when the exact name is absent.
func setHeader(h nats.Header, k, v string) {
	for have := range h {
		if have != k && strings.EqualFold(have, k) {
			delete(h, have)
		}
	}
	h[k] = []string{v}
}
