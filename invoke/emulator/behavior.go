package emulator

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultFailStatus is the status of injected failures when Behavior.FailStatus is 0.
// 503 is what OCI answers when it lacks capacity, the most common retryable failure.
const DefaultFailStatus = http.StatusServiceUnavailable

// Behavior decides how one function answers. The zero value echoes: 200 with
// the request body byte for byte and the request's Content-Type (or
// application/octet-stream).
//
// Each call goes through these steps:
//  1. wait Latency (abandoned if the client gives up or the emulator closes);
//  2. decide whether the call fails: it is one of the first FailFirst calls
//     since the behaviour was set (or the emulator reset), or a draw from the
//     emulator's seeded random source is below FailRatio;
//  3. a failing call hangs if Hang, drops the connection if Drop, and
//     otherwise answers FailStatus with an OCI error body. When neither
//     FailFirst nor FailRatio is set, Hang and Drop apply to every call;
//  4. a succeeding call answers 202 with no body if the request has
//     "fn-invoke-type: detached" (unless Status >= 400), otherwise Status
//     (an OCI error body when >= 400), ResponseSize bytes, or the echo;
//     that body is gzip-compressed if Gzip, and trickled out if Trickle.
//
// Behaviours have a compact spec form, see ParseBehavior and String.
type Behavior struct {
	// Status, when non-zero, replaces the echo with a fixed status. A status
	// >= 400 answers with an OCI error body (Code/Message apply); below 400
	// the body is empty, or ResponseSize bytes. Spec: "status=404".
	Status int
	// Latency is slept before every answer, including failures. Spec: "latency=200ms".
	Latency time.Duration
	// FailFirst makes the first N calls fail; the count restarts when the
	// behaviour is set again or the emulator is reset. Spec: "fail=2".
	FailFirst int
	// FailRatio is the probability in [0,1] that a call fails, drawn from the
	// emulator's random source (Config.Seed), so runs are reproducible when
	// calls arrive in the same order. Spec: "fail_ratio=0.3".
	FailRatio float64
	// FailStatus is the status of injected failures; 0 means DefaultFailStatus.
	// Spec: "fail_status=502".
	FailStatus int
	// Code overrides the OCI error code of error answers (default: by status,
	// see DefaultCode). Spec: "code=LockConflict".
	Code string
	// Message overrides the OCI error message of error answers. It may not
	// contain commas (the spec separator). Spec: "message=try later".
	Message string
	// RetryAfter, when positive, adds "Retry-After: <seconds, rounded up>" to
	// error answers, to exercise clients that honour it. Spec: "retry_after=2s".
	RetryAfter time.Duration
	// Hang never answers: the handler waits until the client gives up or the
	// emulator closes (then the connection is closed without a response).
	// Spec: "hang".
	Hang bool
	// Drop closes the connection without any response, which clients see as
	// io.EOF or a connection reset. It hijacks the connection; where that is
	// impossible (HTTP/2, httptest.ResponseRecorder) the handler panics with
	// http.ErrAbortHandler, which net/http turns into an aborted response.
	// Spec: "drop".
	Drop bool
	// ResponseSize, when positive, answers with that many deterministic bytes
	// (see SizedBody) instead of the echo. Spec: "size=1024".
	ResponseSize int
	// Trickle, when positive, streams a success answer: the status and
	// headers go out at once, then the body in TrickleChunk pieces with a
	// wait of Trickle before each, without a Content-Length. It is how a
	// function that answered and then streams slowly (or stalls) looks to a
	// client. Spec: "trickle=100ms".
	Trickle time.Duration
	// Gzip compresses a success answer's body with gzip and says so in
	// Content-Encoding, whatever the request's Accept-Encoding, as a
	// function that compresses on purpose does. Spec: "gzip".
	Gzip bool
}

// TrickleChunk is the size of the pieces a Trickle answer is written in.
const TrickleChunk = 1024

// Echoes reports whether a successful call answers with the request body.
func (b Behavior) Echoes() bool { return b.Status == 0 && b.ResponseSize == 0 }

// shapesBody reports whether a success body is compressed or trickled.
func (b Behavior) shapesBody() bool { return b.Trickle > 0 || b.Gzip }

// failStatus is the effective status of an injected failure.
func (b Behavior) failStatus() int {
	if b.FailStatus == 0 {
		return DefaultFailStatus
	}
	return b.FailStatus
}

// injectsFailures reports whether only some calls fail; otherwise Hang and
// Drop apply to all calls.
func (b Behavior) injectsFailures() bool { return b.FailFirst > 0 || b.FailRatio > 0 }

// Validate reports the first problem that would make the behaviour
// meaningless or not representable as a spec string.
func (b Behavior) Validate() error {
	switch {
	case b.Status != 0 && (b.Status < 200 || b.Status > 599):
		return fmt.Errorf("status %d: must be 200-599", b.Status)
	case b.Status >= 400 && b.ResponseSize > 0:
		return errors.New("size cannot be combined with an error status")
	case b.Latency < 0:
		return fmt.Errorf("latency %s: must not be negative", b.Latency)
	case b.FailFirst < 0:
		return fmt.Errorf("fail %d: must not be negative", b.FailFirst)
	case math.IsNaN(b.FailRatio) || b.FailRatio < 0 || b.FailRatio > 1:
		return fmt.Errorf("fail_ratio %v: must be in [0,1]", b.FailRatio)
	case b.FailStatus != 0 && (b.FailStatus < 400 || b.FailStatus > 599):
		return fmt.Errorf("fail_status %d: must be 400-599", b.FailStatus)
	case b.RetryAfter < 0:
		return fmt.Errorf("retry_after %s: must not be negative", b.RetryAfter)
	case b.Hang && b.Drop:
		return errors.New("hang and drop are exclusive")
	case b.ResponseSize < 0:
		return fmt.Errorf("size %d: must not be negative", b.ResponseSize)
	case b.Trickle < 0:
		return fmt.Errorf("trickle %s: must not be negative", b.Trickle)
	case b.Status >= 400 && (b.Trickle > 0 || b.Gzip):
		return errors.New("trickle and gzip cannot be combined with an error status")
	}
	if err := checkSpecText("code", b.Code); err != nil {
		return err
	}
	if strings.ContainsAny(b.Code, " \t") {
		return fmt.Errorf("code %q: must not contain spaces", b.Code)
	}
	return checkSpecText("message", b.Message)
}

// checkSpecText keeps free text representable in the comma-separated spec
// and safe to put in a header-free JSON body.
func checkSpecText(name, s string) error {
	if strings.ContainsRune(s, ',') {
		return fmt.Errorf("%s %q: must not contain commas", name, s)
	}
	if strings.TrimSpace(s) != s {
		return fmt.Errorf("%s %q: must not start or end with spaces", name, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s %q: must not contain control characters", name, s)
		}
	}
	return nil
}

// ParseBehavior parses a comma-separated behaviour spec. Items:
//
//	echo              explicit default (cannot be combined with status or size)
//	status=404        Status
//	latency=200ms     Latency (Go duration)
//	fail=2            FailFirst
//	fail_ratio=0.3    FailRatio
//	fail_status=503   FailStatus
//	code=LockConflict Code
//	message=text      Message (no commas)
//	retry_after=2s    RetryAfter (Go duration)
//	hang              Hang
//	drop              Drop
//	size=1024         ResponseSize
//	trickle=100ms     Trickle (Go duration)
//	gzip              Gzip
//
// Spaces around items are ignored and an empty spec is the echo. Errors name
// the offending item. Example: "fail=2,fail_status=503" fails twice with 503
// and then echoes.
func ParseBehavior(spec string) (Behavior, error) {
	var b Behavior
	seen := make(map[string]bool)
	echo := false
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, val, hasVal := strings.Cut(item, "=")
		key = strings.TrimSpace(key)
		val = strings.TrimSpace(val)
		if seen[key] {
			return Behavior{}, fmt.Errorf("behavior item %q: %s given twice", item, key)
		}
		seen[key] = true
		flag := func(dst *bool) error {
			if hasVal {
				return errors.New("takes no value")
			}
			*dst = true
			return nil
		}
		var err error
		switch key {
		case "echo":
			err = flag(&echo)
		case "hang":
			err = flag(&b.Hang)
		case "drop":
			err = flag(&b.Drop)
		case "gzip":
			err = flag(&b.Gzip)
		case "status":
			b.Status, err = parseInt(val, hasVal)
		case "fail":
			b.FailFirst, err = parseInt(val, hasVal)
		case "fail_status":
			b.FailStatus, err = parseInt(val, hasVal)
		case "size":
			b.ResponseSize, err = parseInt(val, hasVal)
		case "latency":
			b.Latency, err = parseDuration(val, hasVal)
		case "retry_after":
			b.RetryAfter, err = parseDuration(val, hasVal)
		case "trickle":
			b.Trickle, err = parseDuration(val, hasVal)
		case "fail_ratio":
			if !hasVal || val == "" {
				err = errors.New("needs a value")
			} else {
				b.FailRatio, err = strconv.ParseFloat(val, 64)
			}
		case "code":
			b.Code, err = needValue(val, hasVal)
		case "message":
			b.Message, err = needValue(val, hasVal)
		default:
			err = errors.New("unknown item")
		}
		if err != nil {
			return Behavior{}, fmt.Errorf("behavior item %q: %w", item, err)
		}
	}
	if echo && !b.Echoes() {
		return Behavior{}, errors.New("behavior item \"echo\": cannot be combined with status or size")
	}
	if err := b.Validate(); err != nil {
		return Behavior{}, fmt.Errorf("behavior %q: %w", spec, err)
	}
	return b, nil
}

func needValue(val string, hasVal bool) (string, error) {
	if !hasVal || val == "" {
		return "", errors.New("needs a value")
	}
	return val, nil
}

func parseInt(val string, hasVal bool) (int, error) {
	if _, err := needValue(val, hasVal); err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(val)
	if err != nil {
		return 0, errors.New("not an integer")
	}
	return n, nil
}

func parseDuration(val string, hasVal bool) (time.Duration, error) {
	if _, err := needValue(val, hasVal); err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(val)
	if err != nil {
		return 0, errors.New("not a duration (e.g. 200ms, 2s)")
	}
	return d, nil
}

// String returns the canonical spec; ParseBehavior(b.String()) == b for
// every valid b. An echoing behaviour starts with "echo".
func (b Behavior) String() string {
	var parts []string
	add := func(k, v string) { parts = append(parts, k+"="+v) }
	if b.Echoes() {
		parts = append(parts, "echo")
	}
	if b.Status != 0 {
		add("status", strconv.Itoa(b.Status))
	}
	if b.ResponseSize != 0 {
		add("size", strconv.Itoa(b.ResponseSize))
	}
	if b.Latency != 0 {
		add("latency", b.Latency.String())
	}
	if b.FailFirst != 0 {
		add("fail", strconv.Itoa(b.FailFirst))
	}
	if b.FailRatio != 0 {
		add("fail_ratio", strconv.FormatFloat(b.FailRatio, 'g', -1, 64))
	}
	if b.FailStatus != 0 {
		add("fail_status", strconv.Itoa(b.FailStatus))
	}
	if b.Code != "" {
		add("code", b.Code)
	}
	if b.Message != "" {
		add("message", b.Message)
	}
	if b.RetryAfter != 0 {
		add("retry_after", b.RetryAfter.String())
	}
	if b.Hang {
		parts = append(parts, "hang")
	}
	if b.Drop {
		parts = append(parts, "drop")
	}
	if b.Trickle != 0 {
		add("trickle", b.Trickle.String())
	}
	if b.Gzip {
		parts = append(parts, "gzip")
	}
	return strings.Join(parts, ",")
}

// MarshalText encodes the behaviour as its spec, so Behaviors read and
// write naturally in JSON/YAML/flag configuration.
func (b Behavior) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText parses a spec, see ParseBehavior.
func (b *Behavior) UnmarshalText(text []byte) error {
	p, err := ParseBehavior(string(text))
	if err != nil {
		return err
	}
	*b = p
	return nil
}

// DefaultCode is the OCI error code the emulator uses for an error status
// when Behavior.Code is empty.
func DefaultCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "InvalidParameter"
	case http.StatusUnauthorized:
		return "NotAuthenticated"
	case http.StatusNotFound:
		return "NotAuthorizedOrNotFound"
	case http.StatusConflict:
		return "IncorrectState"
	case http.StatusRequestEntityTooLarge:
		return "FunctionInvokeRequestContentTooLarge"
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusInternalServerError:
		return "InternalServerError"
	case http.StatusNotImplemented:
		return "MethodNotImplemented"
	case http.StatusBadGateway:
		return "FunctionInvokeExecutionFailed"
	case http.StatusServiceUnavailable:
		return "FunctionInvokeServiceUnavailable"
	case http.StatusGatewayTimeout:
		return "FunctionInvokeTimeout"
	default:
		return "Error"
	}
}

// SizedBody returns the deterministic content of a ResponseSize answer of n
// bytes ('a'..'z' repeating), so clients can check what they received.
func SizedBody(n int) []byte {
	if n <= 0 {
		return []byte{}
	}
	p := make([]byte, n)
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
	return p
}
