package job

// Job headers set by publishers (docs/contract.md, "A job"). Next to each
// name is the rule Parse holds its value to; a job that breaks one is
// invalid, and the error names the header and quotes the value (%q, cut to
// 64 bytes).
//
// A value the worker passes on as it is, to the function over HTTP or onto
// the result over NATS, must also be a valid HTTP field value (no control
// character but tab) and no longer than its limit below: the HTTP client
// refuses to send the one and the service or a proxy
// on the way refuses the other, so either would fail every attempt of a
// healthy function instead of failing the job.
const (
	// HeaderFunctionID is required: a function OCID (ValidateFunctionID),
	// at most MaxFunctionIDLength bytes. It goes into the invoke URL's path
	// (escaped) and onto the result.
	HeaderFunctionID = "Invoke-Function-Id"
	// HeaderMsgID is the publisher's dedupe id. It is the job id when
	// Invoke-Job-Id is unset, and then held to ValidateJobID.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderJobID is the job id: ValidateJobID, [A-Za-z0-9_-]{1,128}. It
	// goes into subjects, the default Opc-Request-Id and result headers.
	HeaderJobID = "Invoke-Job-Id"
	// HeaderFnIntent is sent as fn-intent: httprequest or cloudevent (any
	// case; sent in lower case).
	HeaderFnIntent = "Fn-Intent"
	// HeaderFnInvokeType is sent as fn-invoke-type: sync or detached (any
	// case; sent in lower case).
	HeaderFnInvokeType = "Fn-Invoke-Type"
	// HeaderContentType is sent as Content-Type (and signed): a field value
	// of at most MaxContentTypeLength bytes.
	HeaderContentType = "Content-Type"
	// HeaderTimeout is a positive Go duration (never sent).
	HeaderTimeout = "Invoke-Timeout"
	// HeaderDeadline is an RFC 3339 time (never sent).
	HeaderDeadline = "Invoke-Deadline"
	// HeaderReplyTo is the subject a copy of the result is published to:
	// ValidatePublishSubject, at most MaxSubjectLength bytes.
	HeaderReplyTo = "Invoke-Reply-To"
	// HeaderOpcRequestID is sent as opc-request-id: a field value of at
	// most MaxOpcRequestIDLength bytes.
	HeaderOpcRequestID = "Opc-Request-Id"
	// HeaderTraceparent is sent to the function and set on the result: a
	// field value of at most MaxTraceparentLength bytes.
	HeaderTraceparent = "traceparent"
	// HeaderTracestate is sent with traceparent and set on the result: a
	// field value of at most MaxTracestateLength bytes.
	HeaderTracestate = "tracestate"
)

// Limits of the header values passed on (see the job headers above).
const (
	// MaxFunctionIDLength bounds a function OCID: OCI's are under 100
	// bytes; the bound keeps URLs, breaker keys and metric labels small.
	MaxFunctionIDLength = 255
	// MaxContentTypeLength: a media type is at most 127+1+127 bytes (RFC
	// 6838), with room for parameters such as a multipart boundary.
	MaxContentTypeLength = 1024
	// MaxOpcRequestIDLength: OCI's own request ids are under 100 bytes.
	MaxOpcRequestIDLength = 256
	// MaxTraceparentLength: W3C trace context version 00 is 55 bytes; later
	// versions may only append fields.
	MaxTraceparentLength = 512
	// MaxTracestateLength: the longest header line common servers accept
	// (nginx's 8 KiB buffer); W3C asks vendors to pass on at least 512.
	MaxTracestateLength = 8192
	// MaxSubjectLength keeps a publish well inside NATS' 4 KiB protocol
	// line (max_control_line), past which the server closes the connection.
	MaxSubjectLength = 1024
)

// Result headers set by workers (docs/contract.md, "A result"). Results also carry
// HeaderMsgID, HeaderJobID, HeaderFunctionID, HeaderOpcRequestID and
// HeaderContentType.
const (
	// HeaderContentEncoding is the function's Content-Encoding, when it
	// compressed its answer: the result body is that compressed body.
	HeaderContentEncoding = "Content-Encoding"
	HeaderStatus          = "Invoke-Status"
	HeaderAttempts        = "Invoke-Attempts"
	HeaderDurationMs      = "Invoke-Duration-Ms"
	HeaderCompletedAt     = "Invoke-Completed-At"
	HeaderFnCallID        = "Fn-Call-Id"
	// HeaderBodyObject is also a job header: where the job's body is
	// stored (<bucket>/<name>); the claim check validates it when it
	// fetches the body (queue.Bodies), and it is never sent to the function.
	HeaderBodyObject = "Invoke-Body-Object"
)

// Dead-letter headers set by workers (docs/contract.md, "A dead-letter
// record").
const (
	HeaderOriginalMsgID   = "Invoke-Original-Msg-Id"
	HeaderDLQReason       = "Invoke-Dlq-Reason"
	HeaderError           = "Invoke-Error"
	HeaderOriginalSubject = "Invoke-Original-Subject"
	HeaderOriginalSeq     = "Invoke-Original-Seq"
	HeaderFirstSeenAt     = "Invoke-First-Seen-At"
	HeaderFailedAt        = "Invoke-Failed-At"
	HeaderWorker          = "Invoke-Worker"
)

// Invoke types and intents accepted in Fn-Invoke-Type and Fn-Intent.
const (
	InvokeTypeSync      = "sync"
	InvokeTypeDetached  = "detached"
	IntentHTTPRequest   = "httprequest"
	IntentCloudEvent    = "cloudevent"
	TimeFormatMillis    = "2006-01-02T15:04:05.000Z07:00"
	MaxJobIDLength      = 128
	MaxErrorHeaderBytes = 1024
)
