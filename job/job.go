package job

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/invoke-worker/worker/internal/httpfield"
)

// ErrInvalid is wrapped by every error Parse returns: the job cannot be run as
// written and belongs in the dead-letter stream with reason "invalid".
var ErrInvalid = errors.New("invalid job")

// Job is one invocation request, parsed and validated from a JetStream
// message. Body aliases the message data; it is never copied.
type Job struct {
	// ID is the job id: Invoke-Job-Id, else Nats-Msg-Id, else
	// <stream>-<sequence>. It is always subject-safe, even when Parse fails,
	// so a dead-letter subject can be built from it.
	ID string
	// RejectedID is the publisher's Invoke-Job-Id, as sent, when Parse
	// failed because it is not a valid job id (ID is then the fallback);
	// "" otherwise. A dead-letter record keeps it instead of overwriting it.
	RejectedID   string
	FunctionID   string
	Intent       string        // "" when the publisher did not set Fn-Intent
	InvokeType   string        // sync (default) or detached
	ContentType  string        // "" when unset
	Timeout      time.Duration // 0 when unset; capped by the worker's config
	Deadline     time.Time     // zero when unset
	ReplyTo      string
	OpcRequestID string
	Traceparent  string
	Tracestate   string
	// BodyObject is Invoke-Body-Object: where the body is stored when it
	// was too large for a message ("" when the body is in the message).
	BodyObject string

	Body    []byte
	Header  nats.Header // the original headers, untouched
	Subject string      // the subject the job was published to
	Stream  string
	Seq     uint64    // stream sequence
	StoreAt time.Time // when JetStream stored the job (first seen)
}

// Message is what Parse needs from a JetStream message.
type Message struct {
	Subject string
	Header  nats.Header
	Data    []byte
	Stream  string
	Seq     uint64
	StoreAt time.Time
}

// Limits bound what a job may carry.
type Limits struct {
	// MaxBody is the function service's request limit in bytes (6 MiB for
	// OCI Functions). Zero means no limit.
	MaxBody int64
}

// RequestLimitDefault is OCI Functions' request limit, 6 MiB: what a
// request limit left at zero means wherever a caller stands for the
// worker (invoke.request_limit in docs/contract.md).
const RequestLimitDefault = 6 << 20

// Parse validates msg and returns the job. On failure the returned Job still
// carries ID (a safe fallback when the given one is unusable), the original
// headers, body and provenance, and the error wraps ErrInvalid with a
// one-line reason fit for the Invoke-Error header.
func Parse(msg Message, limits Limits) (Job, error) {
	j := Job{
		Body:    msg.Data,
		Header:  msg.Header,
		Subject: msg.Subject,
		Stream:  msg.Stream,
		Seq:     msg.Seq,
		StoreAt: msg.StoreAt,
	}
	h := scanHeaders(msg.Header)
	invalid := func(format string, args ...any) (Job, error) {
		if j.ID == "" {
			j.ID = fallbackID(msg.Stream, msg.Seq)
		}
		return j, fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}

	if id := h[hJobID]; id != "" {
		if err := ValidateJobID(id); err != nil {
			j.RejectedID = id
			return invalid("%s %q is not a valid job id: %v", HeaderJobID, truncate(id, 64), err)
		}
		j.ID = id
	} else if id := h[hMsgID]; id != "" {
		if err := ValidateJobID(id); err != nil {
			return invalid("%s %q cannot serve as the job id (%v); set %s", HeaderMsgID, truncate(id, 64), err, HeaderJobID)
		}
		j.ID = id
	}

	j.FunctionID = h[hFunctionID]
	if j.FunctionID == "" {
		return invalid("missing %s header", HeaderFunctionID)
	}
	if err := ValidateFunctionID(j.FunctionID); err != nil {
		return invalid("%s: %v", HeaderFunctionID, err)
	}
	for _, p := range passedOn {
		if err := checkPassedOn(h[p.header], p.max); err != nil {
			return invalid("%s %q: %v", parsedHeaders[p.header], truncate(h[p.header], 64), err)
		}
	}
	if limits.MaxBody > 0 && int64(len(msg.Data)) > limits.MaxBody {
		return invalid("body is %d bytes, over the function request limit of %d bytes", len(msg.Data), limits.MaxBody)
	}
	if v := h[hFnIntent]; v != "" {
		v = strings.ToLower(v)
		if v != IntentHTTPRequest && v != IntentCloudEvent {
			return invalid("%s %q: want %s or %s", HeaderFnIntent, truncate(v, 64), IntentHTTPRequest, IntentCloudEvent)
		}
		j.Intent = v
	}
	j.InvokeType = InvokeTypeSync
	if v := h[hFnInvokeType]; v != "" {
		v = strings.ToLower(v)
		if v != InvokeTypeSync && v != InvokeTypeDetached {
			return invalid("%s %q: want %s or %s", HeaderFnInvokeType, truncate(v, 64), InvokeTypeSync, InvokeTypeDetached)
		}
		j.InvokeType = v
	}
	if v := h[hTimeout]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return invalid("%s %q: want a positive Go duration such as 30s", HeaderTimeout, truncate(v, 64))
		}
		j.Timeout = d
	}
	if v := h[hDeadline]; v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return invalid("%s %q: want an RFC 3339 time", HeaderDeadline, truncate(v, 64))
		}
		j.Deadline = t
	}
	if v := h[hReplyTo]; v != "" {
		if err := ValidatePublishSubject(v); err != nil {
			return invalid("%s %q: %v", HeaderReplyTo, truncate(v, 64), err)
		}
		j.ReplyTo = v
	}
	if j.ID == "" {
		j.ID = fallbackID(msg.Stream, msg.Seq)
	}
	j.ContentType = h[hContentType]
	j.OpcRequestID = h[hOpcRequestID]
	j.Traceparent = h[hTraceparent]
	j.Tracestate = h[hTracestate]
	j.BodyObject = h[hBodyObject]
	return j, nil
}

// passedOn are the headers whose values go on the wire as they are, with
// the longest value each may have (see headers.go). Fn-Intent and
// Fn-Invoke-Type go too, but only as one of their few accepted words.
var passedOn = [...]struct{ header, max int }{
	{hContentType, MaxContentTypeLength},
	{hOpcRequestID, MaxOpcRequestIDLength},
	{hTraceparent, MaxTraceparentLength},
	{hTracestate, MaxTracestateLength},
}

// checkPassedOn holds a value passed on to the function to what HTTP can
// carry and to max bytes.
func checkPassedOn(v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%d bytes, over the limit of %d", len(v), max)
	}
	if i := httpfield.InvalidValueByte(v); i >= 0 {
		return fmt.Errorf("control character %q at byte %d: HTTP cannot carry it", v[i], i)
	}
	return nil
}

func fallbackID(stream string, seq uint64) string {
	return stream + "-" + strconv.FormatUint(seq, 10)
}

// The headers Parse reads, by index into a scan.
const (
	hFunctionID = iota
	hMsgID
	hJobID
	hFnIntent
	hFnInvokeType
	hContentType
	hTimeout
	hDeadline
	hReplyTo
	hOpcRequestID
	hTraceparent
	hTracestate
	hBodyObject
	numHeaders
)

var parsedHeaders = [numHeaders]string{
	hFunctionID: HeaderFunctionID, hMsgID: HeaderMsgID, hJobID: HeaderJobID, hFnIntent: HeaderFnIntent,
	hFnInvokeType: HeaderFnInvokeType, hContentType: HeaderContentType, hTimeout: HeaderTimeout,
	hDeadline: HeaderDeadline, hReplyTo: HeaderReplyTo, hOpcRequestID: HeaderOpcRequestID,
	hTraceparent: HeaderTraceparent, hTracestate: HeaderTracestate, hBodyObject: HeaderBodyObject,
}

// scanHeaders reads every header Parse needs in one pass over the message's
// headers (instead of one map walk per header a publisher did not set). An
// exact name wins over a case-insensitive match, as in Lookup.
func scanHeaders(h nats.Header) (out [numHeaders]string) {
	var exact [numHeaders]bool
	var spelt [numHeaders]string // the other spelling chosen so far
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		for i, name := range parsedHeaders {
			if len(k) != len(name) || exact[i] {
				continue
			}
			if k == name {
				out[i], exact[i] = vs[0], true
				break
			}
			if strings.EqualFold(k, name) {
				if spelt[i] == "" || k < spelt[i] {
					out[i], spelt[i] = vs[0], k
				}
				break
			}
		}
	}
	return out
}

// Lookup returns the first value of the header key. NATS headers are
// case-sensitive, but publishers in other languages lower-case them, so an
// exact match is tried first and a case-insensitive one second. Of several
// other spellings the one that sorts first wins, so the answer does not
// depend on map order (nor change between deliveries of one job).
func Lookup(h nats.Header, key string) string {
	if len(h) == 0 {
		return ""
	}
	if v, ok := h[key]; ok && len(v) > 0 {
		return v[0]
	}
	var val, spelt string
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, key) && (spelt == "" || k < spelt) {
			val, spelt = v[0], k
		}
	}
	return val
}

// ValidateJobID checks the contract's job id rule: [A-Za-z0-9_-]{1,128}.
func ValidateJobID(id string) error {
	if id == "" {
		return errors.New("empty job id")
	}
	if len(id) > MaxJobIDLength {
		return fmt.Errorf("job id is %d characters, over %d", len(id), MaxJobIDLength)
	}
	for i := 0; i < len(id); i++ {
		if !IsIDChar(id[i]) {
			return fmt.Errorf("job id has %q at position %d; only A-Z a-z 0-9 _ - are allowed", id[i], i)
		}
	}
	return nil
}

// IsIDChar reports whether c may stand in a job id or a bucket name:
// A-Z a-z 0-9 _ -.
func IsIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// ValidBucketName reports whether s can name a JetStream key-value or
// object store bucket, as nats.go requires: one or more of A-Z a-z 0-9 _ -
// (the characters of a job id). The <bucket> of an Invoke-Body-Object is
// one.
func ValidBucketName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !IsIDChar(s[i]) {
			return false
		}
	}
	return true
}

// BucketName makes a bucket name of s (not empty): each character a bucket
// name may not have becomes '_'.
func BucketName(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x80 && IsIDChar(byte(r)) {
			return r
		}
		return '_'
	}, s)
}

// ValidateFunctionID checks that id has OCI's function OCID shape:
// ocid1.fnfunc.<realm>.[<region>][.<future use>].<unique id>.
func ValidateFunctionID(id string) error {
	if len(id) > MaxFunctionIDLength {
		return fmt.Errorf("%q is %d bytes, over the limit of %d for a function OCID", truncate(id, 64), len(id), MaxFunctionIDLength)
	}
	parts := strings.Split(id, ".")
	if len(parts) < 5 || len(parts) > 6 {
		return fmt.Errorf("%q is not a function OCID (want ocid1.fnfunc.<realm>.<region>.<unique id>)", truncate(id, 64))
	}
	if parts[0] != "ocid1" || parts[1] != "fnfunc" {
		return fmt.Errorf("%q is not a function OCID (want the prefix ocid1.fnfunc.)", truncate(id, 64))
	}
	if parts[2] == "" || !isLowerAlnum(parts[2], false) {
		return fmt.Errorf("%q has a malformed realm %q", truncate(id, 64), truncate(parts[2], 16))
	}
	// Region and the reserved segment may be empty, as in OCI's own format.
	for _, p := range parts[3 : len(parts)-1] {
		if !isLowerAlnum(p, true) {
			return fmt.Errorf("%q has a malformed segment %q", truncate(id, 64), truncate(p, 16))
		}
	}
	unique := parts[len(parts)-1]
	if unique == "" || len(unique) > 255 || !isLowerAlnum(unique, false) {
		return fmt.Errorf("%q has a malformed unique id", truncate(id, 64))
	}
	return nil
}

func isLowerAlnum(s string, dash bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || dash && c == '-' {
			continue
		}
		return false
	}
	return true
}

// ValidatePublishSubject checks that s can be published to: non-empty
// tokens, no wildcards, no white space or other control characters, at most
// MaxSubjectLength bytes.
func ValidatePublishSubject(s string) error {
	if s == "" {
		return errors.New("empty subject")
	}
	if len(s) > MaxSubjectLength {
		return fmt.Errorf("subject is %d bytes, over the limit of %d", len(s), MaxSubjectLength)
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return errors.New("empty subject token")
		}
		if tok == "*" || tok == ">" {
			return errors.New("wildcards are not allowed")
		}
		if strings.ContainsAny(tok, " \t\r\n") {
			return errors.New("white space is not allowed")
		}
		if i := httpfield.InvalidValueByte(tok); i >= 0 {
			return fmt.Errorf("control character %q is not allowed", tok[i])
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// OneLine makes s fit the Invoke-Error header: one line, at most
// MaxErrorHeaderBytes bytes, cut on a UTF-8 boundary.
func OneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= MaxErrorHeaderBytes {
		return s
	}
	cut := MaxErrorHeaderBytes - len("…")
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
