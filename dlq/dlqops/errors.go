package dlqops

import (
	"errors"
	"fmt"
)

// ErrRecordNotFound is returned by Store.Get when the stream holds no record
// at that sequence (never written, replayed, purged or aged out).
var ErrRecordNotFound = errors.New("no dead-letter record at this sequence")

// ErrTooManyFailures is returned by Store.Replay with a watch when more
// replayed jobs failed again than WatchOptions.MaxFailureRatio allows. The
// ReplayResult says how far the replay got; records not yet replayed stay in
// the dead-letter stream.
var ErrTooManyFailures = errors.New("too many replayed jobs failed again")

// ErrIncomplete is returned by Store.Replay and Store.Purge when some
// records could not be replayed or deleted (Failed > 0 in the result); the
// others were. The records that failed stay in the dead-letter stream.
var ErrIncomplete = errors.New("some records failed")

// ErrNotConfirmed is returned by Store.Purge when PurgeOptions.Confirm
// declined: nothing was deleted.
var ErrNotConfirmed = errors.New("not confirmed")

// FieldError is an invalid Filter, ReplayOptions or PurgeOptions field.
// Field is named like the CLI flag that sets it (reason, since, rate…), so
// a command line can point at the flag.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %v", e.Field, e.Err) }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}
