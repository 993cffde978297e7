package invoke

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors callers branch on. An *Error from Invoke wraps at most one
// of them; match with errors.Is.
var (
	// ErrNoEndpoint: no invoke endpoint is known for the function.
	ErrNoEndpoint = errors.New("no invoke endpoint for function")
	// ErrRequestTooLarge: the body is over the function's request limit.
	ErrRequestTooLarge = errors.New("request body over the limit")
	// ErrResponseTooLarge: the answer is over the response buffer limit.
	ErrResponseTooLarge = errors.New("response body over the limit")
	// ErrTimeout: the attempt ran out of time before the answer was read.
	ErrTimeout = errors.New("invocation timed out")
	// ErrNetwork: the request could not be sent or the answer not read.
	ErrNetwork = errors.New("network error")
	// ErrSigning: the request could not be signed (credentials unusable).
	ErrSigning = errors.New("request signing failed")
	// ErrBadRequest: no HTTP request can be built from the Request (a
	// header name or value HTTP cannot carry). Nothing was sent: it is the
	// caller's fault, not the function's, so it is never retried, whatever
	// the RetryPolicy's rules, and never Unhealthy.
	ErrBadRequest = errors.New("request cannot be built")
)

// Error describes one failed attempt. Status is set whenever an answer's
// status arrived; Err is set when there was no complete answer to judge by
// its status (none came, its body could not be read, the request never
// left, or the endpoint could not be found). With Status and no Err the
// function answered a non-success status.
type Error struct {
	FunctionID string
	// Status is the HTTP status that arrived, 0 when none did: a
	// non-success answer's; a success answer's whose body then failed
	// (timed out, broke off, over the response limit); or GetFunction's
	// when it said the function does not exist or cannot be read.
	Status int
	// Code and Message come from OCI's JSON error body {code, message}.
	Code    string
	Message string
	// RetryAfter is the service's Retry-After hint, 0 when absent.
	RetryAfter   time.Duration
	OpcRequestID string
	Duration     time.Duration
	// Err is the cause when there was no complete answer: it wraps one of
	// the sentinels above, and its message says what status arrived, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else if e.Status != 0 {
		fmt.Fprintf(&b, "function answered %d", e.Status)
		if e.Code != "" {
			b.WriteString(" ")
			b.WriteString(e.Code)
		}
		if e.Message != "" {
			b.WriteString(": ")
			b.WriteString(e.Message)
		}
	} else {
		b.WriteString("invocation failed")
	}
	if e.OpcRequestID != "" {
		fmt.Fprintf(&b, " (opc-request-id %s)", e.OpcRequestID)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Unhealthy reports whether the failure says the function service is in
// trouble (timeouts, connection errors, throttling, 5xx), as opposed to a
// problem with this one request. Circuit breakers count only these.
func (e *Error) Unhealthy() bool {
	switch {
	case errors.Is(e.Err, ErrBadRequest):
		return false
	case errors.Is(e.Err, ErrTimeout), errors.Is(e.Err, ErrNetwork):
		return true
	case e.Status == 429, e.Status >= 500 && e.Status != 501:
		return true
	}
	return false
}

// RetryPolicy decides which failures are worth another attempt. Rules are
// written as in configuration (see ParseRetryRule). A failure is retryable
// when it matches a rule in On and none in Never.
type RetryPolicy struct {
	on, never []retryRule
}

type retryRule struct {
	network, timeout bool
	status           int // 0 = any status (with a code)
	code             string
}

// RetryOnDefault returns the contract's list of retryable failures, which
// is also what the OCI Go SDK's default retry policy retries: a new slice
// on every call.
func RetryOnDefault() []string {
	return []string{"network", "timeout", "429", "500", "502", "503", "504", "409/IncorrectState", "409/LockConflict"}
}

// NewRetryPolicy parses the rule lists.
func NewRetryPolicy(on, never []string) (*RetryPolicy, error) {
	p := &RetryPolicy{}
	for _, s := range on {
		r, err := parseRetryRule(s)
		if err != nil {
			return nil, err
		}
		p.on = append(p.on, r)
	}
	for _, s := range never {
		r, err := parseRetryRule(s)
		if err != nil {
			return nil, err
		}
		p.never = append(p.never, r)
	}
	return p, nil
}

// ParseRetryRule checks one rule. The grammar, exactly: "network",
// "timeout", "NNN" (an HTTP status, three digits from 100 to 599),
// "NNN/Code" (a status with an OCI error code) or "*/Code" (a code with any
// status), Code being ASCII letters, digits, '_', '-' and '.'. Codes match
// case-insensitively. This is the only parser of the grammar: configuration
// is validated with it.
func ParseRetryRule(s string) error { _, err := parseRetryRule(s); return err }

func parseRetryRule(s string) (retryRule, error) {
	switch s {
	case "network":
		return retryRule{network: true}, nil
	case "timeout":
		return retryRule{timeout: true}, nil
	}
	bad := fmt.Errorf("%q is not network, timeout, NNN, NNN/Code or */Code (NNN an HTTP status 100-599; Code of letters, digits, _ - .)", s)
	status, code, hasCode := strings.Cut(s, "/")
	var r retryRule
	if hasCode {
		if !validErrorCode(code) {
			return r, bad
		}
		r.code = code
		if status == "*" {
			return r, nil
		}
	}
	if len(status) != 3 || strings.Trim(status, "0123456789") != "" {
		return r, bad
	}
	n, _ := strconv.Atoi(status)
	if n < 100 || n > 599 {
		return r, bad
	}
	r.status = n
	return r, nil
}

func validErrorCode(code string) bool {
	return code != "" && !strings.ContainsFunc(code, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.')
	})
}

func (r retryRule) matches(e *Error) bool {
	switch {
	case r.network:
		// Signing failures are counted here: with principals they come
		// from refreshing a token over the network.
		return errors.Is(e.Err, ErrNetwork) || errors.Is(e.Err, ErrSigning)
	case r.timeout:
		// Also when a status arrived and the body then stalled.
		return errors.Is(e.Err, ErrTimeout)
	case e.Status == 0 || e.Err != nil:
		// Status rules judge complete answers only.
		return false
	case r.status != 0 && r.status != e.Status:
		return false
	case r.code != "" && !strings.EqualFold(r.code, e.Code):
		return false
	}
	return true
}

// Retryable reports whether err (any error from Invoke) is worth retrying.
// Errors that are not *Error (a cancelled context, say) are not, nor is
// ErrBadRequest: the same request cannot be built the next time either.
func (p *RetryPolicy) Retryable(err error) bool {
	var e *Error
	if !errors.As(err, &e) || errors.Is(e.Err, ErrBadRequest) {
		return false
	}
	for _, r := range p.never {
		if r.matches(e) {
			return false
		}
	}
	for _, r := range p.on {
		if r.matches(e) {
			return true
		}
	}
	return false
}
