package dlq

import (
	"encoding/json"
	"fmt"
	"time"
)

// HeaderAttemptHistory carries a record's attempt history as a JSON array.
const HeaderAttemptHistory = "Invoke-Attempt-History"

// MaxHistory is how many attempts a record keeps (the latest).
const MaxHistory = 16

// maxAttemptError bounds each attempt's error text so the header stays a
// few KiB.
const maxAttemptError = 160

// Attempt is one invocation attempt of a job.
type Attempt struct {
	// N is the attempt number, from 1.
	N  int       `json:"n"`
	At time.Time `json:"at"`
	// Status is the HTTP status, 0 when there was no answer.
	Status int `json:"status,omitempty"`
	// Code is OCI's error code, when the answer had one.
	Code       string `json:"code,omitempty"`
	DurationMs int64  `json:"duration_ms"`
	Worker     string `json:"worker,omitempty"`
	// Breaker is the state of the function's circuit breaker when the
	// attempt was made (closed, half-open), "" when breakers are off.
	Breaker string `json:"breaker,omitempty"`
	// Error is a short description of the failure, "" for a success.
	Error string `json:"error,omitempty"`
}

// AppendHistory adds a to h, keeping the latest MaxHistory attempts and
// cutting a's error text short.
func AppendHistory(h []Attempt, a Attempt) []Attempt {
	if len(a.Error) > maxAttemptError {
		a.Error = a.Error[:maxAttemptError] + "…"
	}
	h = append(h, a)
	if len(h) > MaxHistory {
		h = append(h[:0:0], h[len(h)-MaxHistory:]...)
	}
	return h
}

// EncodeHistory renders h for the header.
func EncodeHistory(h []Attempt) string {
	b, err := json.Marshal(h)
	if err != nil {
		return "[]"
	}
	return string(b)
}

// DecodeHistory parses the header value; an empty value is no history.
func DecodeHistory(v string) ([]Attempt, error) {
	if v == "" {
		return nil, nil
	}
	var h []Attempt
	if err := json.Unmarshal([]byte(v), &h); err != nil {
		return nil, fmt.Errorf("%s: %w", HeaderAttemptHistory, err)
	}
	return h, nil
}
