package emulator

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Spec bodies sent to the admin route are tiny; cap them anyway.
const maxSpecBytes = 4096

func (e *Emulator) routes() http.Handler {
	mux := http.NewServeMux()
	// Methods are checked in the handlers rather than in the patterns so that
	// a wrong method gets an OCI-style JSON 405 instead of ServeMux's text.
	mux.HandleFunc("/{apiVersion}/functions/{functionId}/actions/invoke", e.serveInvoke)
	mux.HandleFunc("/{apiVersion}/functions/{functionId}", e.serveGetFunction)
	mux.HandleFunc("/emulator/stats", e.serveStats)
	mux.HandleFunc("/emulator/calls/{functionId}", e.serveCalls)
	mux.HandleFunc("/emulator/functions/{functionId}", e.serveFunction)
	mux.HandleFunc("/emulator/reset", e.serveReset)
	mux.HandleFunc("/healthz", e.serveHealth)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotAuthorizedOrNotFound", "no such route")
	})
	return withRequestID(mux)
}

// withRequestID gives every response an opc-request-id, echoing the
// caller's like OCI so clients can correlate logs.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if id == "" {
			id = newID()
		}
		w.Header().Set(HeaderRequestID, id)
		next.ServeHTTP(w, r)
	})
}

// ociError is OCI's error body.
type ociError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	body, _ := json.Marshal(ociError{Code: code, Message: message}) // cannot fail for two strings
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client may be gone; nothing to do about it
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalServerError", "encode response")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "method not allowed, use "+allow)
}

// isAPIVersion accepts any 8-digit date-like version (20181201, 20260325, ...).
func isAPIVersion(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// reject answers an invoke that never reached a function and logs it at warn.
func (e *Emulator) reject(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	e.log.Warn().
		Str("function", r.PathValue("functionId")).
		Str("requestId", w.Header().Get(HeaderRequestID)).
		Int("status", status).
		Str("reason", message).
		Msg("emulator: invoke rejected")
	writeError(w, status, code, message)
}

func (e *Emulator) serveInvoke(w http.ResponseWriter, r *http.Request) {
	if !e.enter() {
		writeError(w, http.StatusServiceUnavailable, "FunctionInvokeServiceUnavailable", "emulator is closed")
		return
	}
	defer e.leave()

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		e.reject(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "invoke requires POST")
		return
	}
	fnID := r.PathValue("functionId")
	if !isAPIVersion(r.PathValue("apiVersion")) || validFunctionID(fnID) != nil {
		e.reject(w, r, http.StatusNotFound, "NotAuthorizedOrNotFound", "unknown API version or function id")
		return
	}

	// Refuse a declared oversize body before reading any of it; bodies of
	// unknown length are cut off by MaxBytesReader instead.
	if r.ContentLength > e.maxBody {
		e.countRejected(true)
		e.reject(w, r, http.StatusRequestEntityTooLarge, "FunctionInvokeRequestContentTooLarge", tooLargeMessage(e.maxBody))
		return
	}
	buf := e.getBuf()
	defer e.putBuf(buf)
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + 1) // +1 so ReadFrom sees EOF without regrowing
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, e.maxBody)); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			e.countRejected(true)
			e.reject(w, r, http.StatusRequestEntityTooLarge, "FunctionInvokeRequestContentTooLarge", tooLargeMessage(e.maxBody))
			return
		}
		e.reject(w, r, http.StatusBadRequest, "InvalidParameter", "could not read request body")
		return
	}
	body := buf.Bytes()

	signed := false
	if e.pub != nil {
		if _, err := verifyRequest(r, body, e.pub, e.keyID, e.now(), e.maxSkew); err != nil {
			e.countRejected(false)
			e.reject(w, r, http.StatusUnauthorized, "NotAuthenticated", err.Error())
			return
		}
		signed = true
	}
	if !e.exists(fnID) {
		e.reject(w, r, http.StatusNotFound, "NotAuthorizedOrNotFound", "function not found")
		return
	}

	e.call(w, r, fnID, body, signed)
}

// serveGetFunction answers the management API's GetFunction with the
// function's invokeEndpoint: this emulator, at the address the caller used.
// It is signed like any OCI request and verified the same way.
func (e *Emulator) serveGetFunction(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "use GET")
		return
	}
	e.countLookup()
	fnID := r.PathValue("functionId")
	if !isAPIVersion(r.PathValue("apiVersion")) || validFunctionID(fnID) != nil {
		writeError(w, http.StatusNotFound, "NotAuthorizedOrNotFound", "unknown API version or function id")
		return
	}
	if e.pub != nil {
		if _, err := verifyRequest(r, nil, e.pub, e.keyID, e.now(), e.maxSkew); err != nil {
			e.countRejected(false)
			e.reject(w, r, http.StatusUnauthorized, "NotAuthenticated", err.Error())
			return
		}
	}
	if !e.exists(fnID) || e.BehaviorOf(fnID).Status == http.StatusNotFound {
		writeError(w, http.StatusNotFound, "NotAuthorizedOrNotFound", "function not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id":               fnID,
		"displayName":      fnID,
		"lifecycleState":   "ACTIVE",
		"invokeEndpoint":   "http://" + r.Host,
		"timeoutInSeconds": 300,
		"memoryInMBs":      128,
	})
}

func tooLargeMessage(limit int64) string {
	return "request body exceeds " + strconv.FormatInt(limit, 10) + " bytes"
}

// call runs one function call according to its behaviour. Accounting is
// deferred so that it also happens when Drop has to abort the handler.
func (e *Emulator) call(w http.ResponseWriter, r *http.Request, fnID string, body []byte, signed bool) {
	began := time.Now() // monotonic, for the log only
	var rec *Call
	if e.record {
		rec = &Call{FunctionID: fnID, Start: e.now(), RequestID: w.Header().Get(HeaderRequestID),
			Headers: r.Header.Clone(), BodyLen: len(body), Signed: signed}
	}
	st, b, fail := e.beginCall(fnID)
	w.Header().Set(HeaderCallID, newID())

	status, how := 0, outcomeAbandoned
	accounted := false
	account := func() {
		if accounted {
			return
		}
		accounted = true
		if rec != nil {
			rec.End, rec.Status = e.now(), status
		}
		e.endCall(st, status, how, rec)
		if ev := e.log.Debug(); ev.Enabled() {
			ev.Str("function", fnID).
				Str("requestId", w.Header().Get(HeaderRequestID)).
				Int("status", status).
				Str("outcome", [...]string{"answered", "dropped", "abandoned"}[how]).
				Dur("duration", time.Since(began)).
				Msg("emulator: invoke")
		}
	}
	defer account()

	ctx := r.Context()
	if b.Latency > 0 {
		if ok, closing := e.sleep(ctx, b.Latency); !ok {
			e.abandon(w, closing)
			return
		}
	}

	// Hang and Drop apply to the failing calls when failures are injected,
	// otherwise to every call.
	if (b.Hang || b.Drop) && (fail || !b.injectsFailures()) {
		if b.Drop {
			// Counted before the connection closes: a client that saw the
			// drop must find it in Stats.
			how = outcomeDropped
			account()
			dropConn(w)
			return
		}
		e.abandon(w, e.hang(ctx))
		return
	}

	how = outcomeAnswered
	switch {
	case fail:
		status = b.failStatus()
		writeBehaviorError(w, b, status)
	case b.Status >= 400:
		status = b.Status
		writeBehaviorError(w, b, status)
	case strings.EqualFold(r.Header.Get(HeaderInvokeType), "detached"):
		// Detached: OCI acknowledges once it has accepted the call.
		status = http.StatusAccepted
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(status)
	case (b.Status != 0 || b.ResponseSize > 0) && !b.shapesBody():
		status = b.Status
		if status == 0 {
			status = http.StatusOK
		}
		e.writeSized(w, status, b.ResponseSize)
	case b.Status != 0 || b.ResponseSize > 0:
		status = b.Status
		if status == 0 {
			status = http.StatusOK
		}
		ct := ""
		if b.ResponseSize > 0 {
			ct = "application/octet-stream"
		}
		if !e.writeShaped(ctx, w, status, ct, SizedBody(b.ResponseSize), b) {
			how = outcomeAbandoned
			panic(http.ErrAbortHandler) // accounted by the deferred account
		}
	default:
		status = http.StatusOK
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/octet-stream"
		}
		if b.shapesBody() {
			if !e.writeShaped(ctx, w, status, ct, body, b) {
				how = outcomeAbandoned
				panic(http.ErrAbortHandler) // accounted by the deferred account
			}
			return
		}
		h := w.Header()
		h.Set("Content-Type", ct)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

// writeShaped answers status with body, gzip-compressed and trickled as b
// says. It reports false when the answer was cut off because the client
// went away or the emulator is closing; the caller must then abort the
// connection (http.ErrAbortHandler) rather than return, which would end
// the chunked body cleanly and pass the part sent off as the whole.
func (e *Emulator) writeShaped(ctx context.Context, w http.ResponseWriter, status int, ct string, body []byte, b Behavior) bool {
	h := w.Header()
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	if b.Gzip {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		_, _ = zw.Write(body) // writes to memory cannot fail
		_ = zw.Close()
		body = z.Bytes()
		h.Set("Content-Encoding", "gzip")
	}
	if b.Trickle <= 0 {
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return true
	}
	// No Content-Length: the body goes out chunked, as from a function
	// that writes its answer as it goes.
	rc := http.NewResponseController(w)
	w.WriteHeader(status)
	_ = rc.Flush()
	for len(body) > 0 {
		if ok, _ := e.sleep(ctx, b.Trickle); !ok {
			return false
		}
		n := min(len(body), TrickleChunk)
		if _, err := w.Write(body[:n]); err != nil {
			return false
		}
		_ = rc.Flush()
		body = body[n:]
	}
	return true
}

func writeBehaviorError(w http.ResponseWriter, b Behavior, status int) {
	code, msg := b.Code, b.Message
	if code == "" {
		code = DefaultCode(status)
	}
	if msg == "" {
		msg = "emulated failure (" + http.StatusText(status) + ")"
	}
	if b.RetryAfter > 0 {
		w.Header().Set(HeaderRetryAfter, strconv.FormatInt(int64(math.Ceil(b.RetryAfter.Seconds())), 10))
	}
	writeError(w, status, code, msg)
}

// writeSized answers status with n bytes of SizedBody content.
func (e *Emulator) writeSized(w http.ResponseWriter, status, n int) {
	h := w.Header()
	if n > 0 {
		h.Set("Content-Type", "application/octet-stream")
	}
	h.Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(status)
	for n > 0 {
		chunk := e.pattern[:min(n, len(e.pattern))]
		if _, err := w.Write(chunk); err != nil {
			return // client gone
		}
		n -= len(chunk)
	}
}

// abandon ends a call that will not be answered. When the emulator is
// closing the connection is closed so the client is not left waiting; when
// the client went away there is nobody to answer.
func (e *Emulator) abandon(w http.ResponseWriter, closing bool) {
	if !closing {
		return
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2, test recorders): an explicit 503 is the
		// closest honest answer.
		writeError(w, http.StatusServiceUnavailable, "FunctionInvokeServiceUnavailable", "emulator is closing")
		return
	}
	_ = conn.Close()
}

// dropConn closes the connection without writing a response. Where the
// connection cannot be hijacked, http.ErrAbortHandler makes net/http abort
// the response (reset the stream) without logging.
func dropConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
