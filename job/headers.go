package job

// Job headers set by publishers (docs/contract.md, "A job").
const (
	HeaderFunctionID   = "Invoke-Function-Id"
	HeaderMsgID        = "Nats-Msg-Id"
	HeaderJobID        = "Invoke-Job-Id"
	HeaderFnIntent     = "Fn-Intent"
	HeaderFnInvokeType = "Fn-Invoke-Type"
	HeaderContentType  = "Content-Type"
	HeaderTimeout      = "Invoke-Timeout"
	HeaderDeadline     = "Invoke-Deadline"
	HeaderReplyTo      = "Invoke-Reply-To"
	HeaderOpcRequestID = "Opc-Request-Id"
	HeaderTraceparent  = "traceparent"
	HeaderTracestate   = "tracestate"
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
	HeaderBodyObject      = "Invoke-Body-Object"
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
