package client

import (
	"errors"
	"fmt"
)

// ErrDeadLettered is matched (errors.Is) by the *DeadLetterError that
// Invoke returns, and by Outcome.Err of a dead-letter record.
var ErrDeadLettered = errors.New("job dead-lettered")

// ErrIncomplete is wrapped by the error of EnqueueBatch and EnqueueAll
// when some jobs were not enqueued; each one's BatchResult.Err says why.
// The other jobs were.
var ErrIncomplete = errors.New("some jobs were not enqueued")

// DeadLetterError is the outcome of a job that went to the dead-letter
// stream instead of producing a result.
type DeadLetterError struct {
	JobID JobID
	// Reason is the contract's reason: invalid, permanent, exhausted or
	// expired.
	Reason string
	// Status is the function's last HTTP status, 0 when it never answered.
	Status int
	// Message is the record's Invoke-Error.
	Message string
}

func (e *DeadLetterError) Error() string {
	s := fmt.Sprintf("job %s dead-lettered (%s", e.JobID, e.Reason)
	if e.Status != 0 {
		s += fmt.Sprintf(", status %d", e.Status)
	}
	s += ")"
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is makes errors.Is(err, ErrDeadLettered) hold.
func (e *DeadLetterError) Is(target error) bool { return target == ErrDeadLettered }
