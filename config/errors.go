package config

import "errors"

// ErrInvalid is wrapped by every error Load and Validate return, so callers
// can tell bad configuration (exit code 2) from other failures.
var ErrInvalid = errors.New("invalid configuration")

// ErrUnknownKey is wrapped by the errors for keys and WORKER_ variables
// that match no configuration key.
var ErrUnknownKey = errors.New("unknown key")

// KeyError is a problem with one configuration key. Key is the dotted key
// (retry.max_attempts) or, for an unknown environment variable, its name.
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return "config: " + e.Key + ": " + e.Err.Error() }

// Unwrap reports both ErrInvalid and the cause, so errors.Is works for
// either without the message repeating "invalid configuration".
func (e *KeyError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// invalidError is a configuration problem not tied to one key (an unreadable
// or malformed file).
type invalidError struct{ err error }

func (e *invalidError) Error() string   { return "config: " + e.err.Error() }
func (e *invalidError) Unwrap() []error { return []error{ErrInvalid, e.err} }

func invalid(err error) error { return &invalidError{err: err} }
