// The emulator's own routes for tests and operators: stats, recorded
// calls, behaviours.

package emulator

import (
	"io"
	"net/http"
	"time"
)

func (e *Emulator) serveStats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET")
		return
	}
	writeJSON(w, http.StatusOK, e.Stats())
}

// callRecord is a recorded call as the admin route shows it: no headers,
// which hold the request's signature.
type callRecord struct {
	RequestID string    `json:"requestId"`
	Status    int       `json:"status"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	BodyLen   int       `json:"bodyLen"`
	Signed    bool      `json:"signed"`
}

// serveCalls lists a function's recorded calls (Config.RecordCalls), so a
// test driving the emulator in another process can count invocations
// per request id.
func (e *Emulator) serveCalls(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET")
		return
	}
	calls := e.Calls(r.PathValue("functionId"))
	out := make([]callRecord, len(calls))
	for i, c := range calls {
		out[i] = callRecord{RequestID: c.RequestID, Status: c.Status, Start: c.Start, End: c.End, BodyLen: c.BodyLen, Signed: c.Signed}
	}
	writeJSON(w, http.StatusOK, out)
}

// functionBehavior is the admin route's JSON answer.
type functionBehavior struct {
	FunctionID string `json:"functionId"`
	Behavior   string `json:"behavior"`
}

func (e *Emulator) serveFunction(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("functionId")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		writeJSON(w, http.StatusOK, functionBehavior{id, e.BehaviorOf(id).String()})
	case http.MethodPut:
		spec, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSpecBytes))
		if err != nil {
			writeError(w, http.StatusBadRequest, "InvalidParameter", "could not read behavior spec")
			return
		}
		b, err := ParseBehavior(string(spec))
		if err == nil {
			err = e.SetBehavior(id, b)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "InvalidParameter", err.Error())
			return
		}
		writeJSON(w, http.StatusOK, functionBehavior{id, b.String()})
	default:
		methodNotAllowed(w, "GET, PUT")
	}
}

func (e *Emulator) serveReset(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, "POST")
		return
	}
	e.Reset()
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok")
}
