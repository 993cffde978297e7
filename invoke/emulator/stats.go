package emulator

import (
	"net/http"
	"slices"
	"time"
)

// Stats is a snapshot of the emulator's counters since New or the last Reset.
type Stats struct {
	// Requests counts every request to the invoke route, rejected or not.
	Requests int64 `json:"requests"`
	// Calls counts requests that reached a function (passed method, size and
	// signature checks); it is the sum of Functions[*].Calls.
	Calls int64 `json:"calls"`
	// RejectedSignatures counts 401s from signature verification.
	RejectedSignatures int64 `json:"rejectedSignatures"`
	// RejectedTooLarge counts 413s for bodies over MaxRequestBytes.
	RejectedTooLarge int64 `json:"rejectedTooLarge"`
	// Lookups counts requests to the GetFunction route, answered or not.
	Lookups int64 `json:"lookups"`
	// InFlight is the number of function calls running now; MaxInFlight is
	// the highest it has been.
	InFlight    int64 `json:"inFlight"`
	MaxInFlight int64 `json:"maxInFlight"`
	// Functions holds per-function counters, keyed by function id, for every
	// function that was called or configured.
	Functions map[string]FunctionStats `json:"functions"`
}

// FunctionStats are one function's counters.
type FunctionStats struct {
	// Behavior is the current behaviour spec.
	Behavior    string `json:"behavior"`
	Calls       int64  `json:"calls"`
	InFlight    int64  `json:"inFlight"`
	MaxInFlight int64  `json:"maxInFlight"`
	// Statuses counts answers by HTTP status.
	Statuses map[int]int64 `json:"statuses"`
	// Dropped counts connections closed on purpose (Behavior.Drop).
	Dropped int64 `json:"dropped"`
	// Abandoned counts calls that ended without a whole answer because the
	// client gave up or the emulator closed (latency, hang, or a trickled
	// body cut off).
	Abandoned int64 `json:"abandoned"`
}

// Call records one function call (Config.RecordCalls).
type Call struct {
	FunctionID string
	// Start is when the call reached the function (after verification), End
	// when its answer was written or it was given up; both from Config.Now.
	Start, End time.Time
	// Status is the HTTP status answered, 0 if none (dropped or abandoned).
	Status    int
	RequestID string
	// Headers is a copy of the request headers as received, including
	// Authorization: do not log it.
	Headers http.Header
	BodyLen int
	// Signed is true when the request's signature was verified.
	Signed bool
}

// Stats returns a snapshot of the counters.
func (e *Emulator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Stats{
		Requests:           e.requests,
		RejectedSignatures: e.rejectedSig,
		RejectedTooLarge:   e.rejectedLarge,
		Lookups:            e.lookups,
		InFlight:           e.inFlight,
		MaxInFlight:        e.maxInFlight,
		Functions:          make(map[string]FunctionStats, len(e.fns)),
	}
	for id, st := range e.fns {
		statuses := make(map[int]int64, len(st.statuses))
		for k, v := range st.statuses {
			statuses[k] = v
		}
		s.Calls += st.calls
		s.Functions[id] = FunctionStats{
			Behavior:    st.behavior.String(),
			Calls:       st.calls,
			InFlight:    st.inFlight,
			MaxInFlight: st.maxInFlight,
			Statuses:    statuses,
			Dropped:     st.dropped,
			Abandoned:   st.abandoned,
		}
	}
	return s
}

// Calls returns copies of the recorded calls of a function in completion
// order; nil unless Config.RecordCalls.
func (e *Emulator) Calls(functionID string) []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, ok := e.fns[functionID]
	if !ok || len(st.records) == 0 {
		return nil
	}
	out := slices.Clone(st.records)
	for i := range out {
		out[i].Headers = out[i].Headers.Clone()
	}
	return out
}

// Reset zeroes counters and call records and restarts every function's
// FailFirst count, keeping behaviours. Calls in flight still finish and are
// counted; max in-flight restarts from the current in-flight.
func (e *Emulator) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests, e.rejectedSig, e.rejectedLarge, e.lookups = 0, 0, 0, 0
	e.maxInFlight = e.inFlight
	for _, st := range e.fns {
		st.attempts = 0
		st.calls, st.dropped, st.abandoned = 0, 0, 0
		st.maxInFlight = st.inFlight
		clear(st.statuses)
		st.records = nil
	}
}

// beginCall accounts a call reaching a function and decides, under the
// lock, whether it is one of the failing ones.
func (e *Emulator) beginCall(functionID string) (st *fnState, b Behavior, fail bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st = e.stateLocked(functionID)
	b = st.behavior
	st.attempts++
	st.calls++
	st.inFlight++
	st.maxInFlight = max(st.maxInFlight, st.inFlight)
	e.inFlight++
	e.maxInFlight = max(e.maxInFlight, e.inFlight)
	switch {
	case st.attempts <= b.FailFirst:
		fail = true
	case b.FailRatio > 0:
		fail = e.rng.Float64() < b.FailRatio
	}
	return st, b, fail
}

// outcome is how a call ended, for counters.
type outcome uint8

const (
	outcomeAnswered outcome = iota
	outcomeDropped
	outcomeAbandoned
)

// endCall accounts the end of a call; rec is appended when recording.
func (e *Emulator) endCall(st *fnState, status int, how outcome, rec *Call) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st.inFlight--
	e.inFlight--
	switch how {
	case outcomeDropped:
		st.dropped++
	case outcomeAbandoned:
		st.abandoned++
	default:
		st.statuses[status]++
	}
	if rec != nil {
		if e.maxRecs > 0 && len(st.records) >= e.maxRecs {
			// Shift rather than reslice so the backing array does not grow forever.
			n := copy(st.records, st.records[1:])
			st.records = st.records[:n]
		}
		st.records = append(st.records, *rec)
	}
}

func (e *Emulator) countRejected(tooLarge bool) {
	e.mu.Lock()
	if tooLarge {
		e.rejectedLarge++
	} else {
		e.rejectedSig++
	}
	e.mu.Unlock()
}
