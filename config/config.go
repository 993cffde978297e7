package config

import (
	"time"
)

// Config is the whole worker configuration. The yaml tags are the key names
// used in the file, in WORKER_ environment variables and in overrides.
type Config struct {
	// NATS is how the worker connects to NATS, or runs it embedded.
	NATS NATS `yaml:"nats"`
	// Streams names the JetStream streams and their subjects and limits.
	Streams Streams `yaml:"streams"`
	// Consumer is the durable pull consumer shared by all workers.
	Consumer Consumer `yaml:"consumer"`
	// Worker is this process's job scheduling.
	Worker Worker `yaml:"worker"`
	// Invoke is how functions are called.
	Invoke Invoke `yaml:"invoke"`
	// Retry is the backoff policy between invocation attempts.
	Retry Retry `yaml:"retry"`
	// Breaker is the circuit breaker in front of failing functions.
	Breaker Breaker `yaml:"breaker"`
	// HTTP is the admin endpoint (metrics, health).
	HTTP HTTP `yaml:"http"`
	// Log is the log output.
	Log Log `yaml:"log"`
	// Tracing is where OpenTelemetry spans go.
	Tracing Tracing `yaml:"tracing"`
	// Emulator is the local function emulator (worker dev, worker emulator).
	Emulator Emulator `yaml:"emulator"`
	// Routes fan events out into jobs. Read from the file only: environment
	// variables and --set cannot set them.
	Routes []Route `yaml:"routes"`
}

// NATS is the connection to NATS.
type NATS struct {
	// URL is the server URL, or a comma-separated list of them; empty starts
	// the embedded server. Default "".
	URL string `yaml:"url"`
	// Creds is the path to a .creds file (JWT and nkey seed). Default "".
	Creds string `yaml:"creds"`
	// NKey is the path to an nkey seed file. Default "".
	NKey string `yaml:"nkey"`
	// User is the user name for user/password auth. Default "".
	User string `yaml:"user"`
	// Password is the password for user/password auth; secret. Default "".
	Password string `yaml:"password"`
	// PasswordFile is a file holding the password instead (its trailing
	// newline dropped); not with Password. Default "".
	PasswordFile string `yaml:"password_file"`
	// Token is the auth token; secret. Default "".
	Token string `yaml:"token"`
	// TokenFile is a file holding the token instead; not with Token.
	// Default "".
	TokenFile string `yaml:"token_file"`
	// TLS is client TLS. Default: all empty (system roots, no client cert).
	TLS TLS `yaml:"tls"`
	// InboxPrefix starts the subjects this connection receives replies on,
	// including JetStream API responses, so that a NATS user can be allowed
	// to subscribe to its own replies only (<prefix>.>). Default "_INBOX".
	InboxPrefix string `yaml:"inbox_prefix"`
	// Name is the connection name shown by the server. Default "invoke-worker".
	Name string `yaml:"name"`
	// ConnectTimeout bounds the initial connection. Default 5s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ReconnectWait is the pause between reconnect attempts. Default 1s.
	ReconnectWait time.Duration `yaml:"reconnect_wait"`
	// Embedded is the server started when URL is empty.
	Embedded Embedded `yaml:"embedded"`
}

// TLS holds client TLS file paths.
type TLS struct {
	// CA is a PEM file of CAs to trust instead of the system roots. Default "".
	CA string `yaml:"ca"`
	// Cert is the PEM client certificate; needs Key. Default "".
	Cert string `yaml:"cert"`
	// Key is the PEM client key; needs Cert. Default "".
	Key string `yaml:"key"`
}

// Embedded is the embedded NATS server with JetStream.
type Embedded struct {
	// Listen is the client address; other commands find a local worker
	// here. Default "127.0.0.1:4222".
	Listen string `yaml:"listen"`
	// StoreDir is where JetStream keeps its data. Default "./data/nats".
	StoreDir string `yaml:"store_dir"`
	// MaxPayload is the largest message the server accepts. Default 8MiB.
	MaxPayload Size `yaml:"max_payload"`
}

// Streams are the JetStream streams the worker creates or updates.
type Streams struct {
	// Jobs is the work-queue stream of jobs. Default "INVOKE_JOBS".
	Jobs string `yaml:"jobs"`
	// Results is the stream of results. Default "INVOKE_RESULTS".
	Results string `yaml:"results"`
	// DLQ is the dead-letter stream. Default "INVOKE_DLQ".
	DLQ string `yaml:"dlq"`
	// JobsSubjects are the subjects the jobs stream captures.
	// Default ["invoke.jobs.>"].
	JobsSubjects []string `yaml:"jobs_subjects"`
	// ResultsPrefix: results go to <prefix>.<job-id>. Default "invoke.results".
	ResultsPrefix string `yaml:"results_prefix"`
	// DLQPrefix: records go to <prefix>.<reason>.<job-id>. Default "invoke.dlq".
	DLQPrefix string `yaml:"dlq_prefix"`
	// WaitPrefix: waiting jobs' scheduled copies are kept in the jobs
	// stream under <prefix>.<sequence>; it must not overlap jobs_subjects.
	// Default "invoke.wait".
	WaitPrefix string `yaml:"wait_prefix"`
	// Replicas is the stream replica count (1 to 5). Default 1.
	Replicas int `yaml:"replicas"`
	// Manage lets the worker create the streams and buckets and update
	// their configuration at start-up; false only checks that they exist,
	// for workers whose NATS user may not manage streams. Default true.
	Manage bool `yaml:"manage"`
	// MaxMsgSize is the largest message the streams accept. Default 8MiB.
	MaxMsgSize Size `yaml:"max_msg_size"`
	// JobsMaxAge is how long an unprocessed job is kept; 0 is unlimited.
	// Default 0.
	JobsMaxAge time.Duration `yaml:"jobs_max_age"`
	// ResultsMaxAge is how long results are kept; 0 is unlimited. Default 24h.
	ResultsMaxAge time.Duration `yaml:"results_max_age"`
	// DLQMaxAge is how long dead-letter records are kept; 0 is unlimited.
	// Default 720h (30 days).
	DLQMaxAge time.Duration `yaml:"dlq_max_age"`
	// DuplicateWindow is how long Nats-Msg-Id values are remembered for
	// dedupe. Default 2m.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// State is the key-value bucket where workers keep each job's attempt
	// count and history between deliveries. Default "INVOKE_ATTEMPTS".
	State string `yaml:"state"`
	// StateMaxAge is how long a job's state outlives its last update (it is
	// also deleted when the job ends). Keep it above retry.max_elapsed.
	// Default 24h.
	StateMaxAge time.Duration `yaml:"state_max_age"`
	// JobBodies is the object store bucket holding job bodies too large for
	// a message (the claim check); objects live as long as dead-letter
	// records (dlq_max_age, or jobs_max_age when longer) and are deleted
	// when their job completes. Default "INVOKE_JOB_BODIES".
	JobBodies string `yaml:"job_bodies"`
	// ResultBodies is the bucket holding results too large for a message;
	// objects live as long as results (results_max_age).
	// Default "INVOKE_RESULT_BODIES".
	ResultBodies string `yaml:"result_bodies"`
}

// Consumer is the durable pull consumer on the jobs stream.
type Consumer struct {
	// Durable is the consumer name shared by all workers. Default "invoke-workers".
	Durable string `yaml:"durable"`
	// AckWait is how long a delivered job may go unacknowledged (and not
	// extended) before it is redelivered. Default 90s.
	AckWait time.Duration `yaml:"ack_wait"`
	// MaxAckPending caps unacknowledged jobs across all workers. Default 20000.
	MaxAckPending int `yaml:"max_ack_pending"`
	// Update lets this process change an existing consumer's ack_wait and
	// max_ack_pending to its own values. Without it a process whose
	// values differ logs them and runs with the consumer's, so that a
	// fleet with mixed settings does not flip them. Default false.
	Update bool `yaml:"update"`
}

// Worker is this process's scheduling of jobs.
type Worker struct {
	// ID names this process in DLQ records and logs; empty means
	// <hostname>-<pid>, filled in by the caller. Default "".
	ID string `yaml:"id"`
	// Concurrency is the number of invocations in flight. Default 64.
	Concurrency int `yaml:"concurrency"`
	// DrainTimeout is how long shutdown waits for in-flight jobs. Default 30s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// MaxJobAge dead-letters jobs older than this as expired; 0 is off.
	// Default 0.
	MaxJobAge time.Duration `yaml:"max_job_age"`
	// PerFunctionConcurrency caps in-flight invocations of one function;
	// 0 is off. Default 0.
	PerFunctionConcurrency int `yaml:"per_function_concurrency"`
	// PerFunctionRate caps invocations per second of one function; 0 is off.
	// Default 0.
	PerFunctionRate float64 `yaml:"per_function_rate"`
	// FairShare shares this process's slots among the functions that have
	// jobs in flight, and keeps reserved_share of them from any single
	// function. Default true.
	FairShare bool `yaml:"fair_share"`
	// ReservedShare is the share of concurrency no single function may
	// take (rounded down), so a function with a backlog of slow calls
	// never holds every slot; 0 reserves none. Default 0.125.
	ReservedShare float64 `yaml:"reserved_share"`
	// MetricFunctions bounds how many function ids become metric label
	// values, at least 1; later ones count as "other". Default 100.
	MetricFunctions int `yaml:"metric_functions"`
	// WaitLogThreshold: a function with this many jobs set waiting within
	// a minute in this process is logged; 0 is off. Default 1000.
	WaitLogThreshold int `yaml:"wait_log_threshold"`
	// SampleInterval is how often each process reads the consumer's
	// state and the dead-letter depth for its gauges. Default 15s.
	SampleInterval time.Duration `yaml:"sample_interval"`
	// ProgressInterval is how often a running job's ack deadline is
	// extended. Default 10s.
	ProgressInterval time.Duration `yaml:"progress_interval"`
	// Prefetch is how many jobs are kept on their way beyond those running,
	// so a freed slot never waits for a round trip; 0 means concurrency.
	// Their ack deadlines run while they wait. Default 0.
	Prefetch int `yaml:"prefetch"`
	// GCMinHeap is the heap size the process may reach between garbage
	// collections at least: while the live heap is small, GOGC is raised
	// so that the worker does not collect dozens of times a second; a
	// large live heap keeps GOGC's own value. 0 leaves GOGC alone; so
	// does GOGC=off. Default 32MiB.
	GCMinHeap Size `yaml:"gc_min_heap"`
	// PullMaxBytes bounds what one pull request for jobs may bring, so
	// that the server never holds much more than that on its way to this
	// process: NATS disconnects a client whose unsent data passes its
	// max_pending (64 MiB by default), which prefetched jobs of a MiB each
	// would reach. Raised to the largest job message when smaller.
	// Default 16MiB.
	PullMaxBytes Size `yaml:"pull_max_bytes"`
}

// Invoke is how functions are invoked.
type Invoke struct {
	// APIVersion is the path version of the invoke API. Default "20260325".
	APIVersion string `yaml:"api_version"`
	// RequestLimit is the largest request body sent; larger jobs are
	// dead-lettered as invalid. Default 6MiB.
	RequestLimit Size `yaml:"request_limit"`
	// ResponseLimit is the largest response body read. Default 100MiB.
	ResponseLimit Size `yaml:"response_limit"`
	// Timeout bounds one attempt.
	Timeout InvokeTimeout `yaml:"timeout"`
	// Endpoints maps a function OCID to its invoke endpoint URL; functions
	// not listed are looked up with GetFunction. Default empty.
	Endpoints map[string]string `yaml:"endpoints"`
	// ManagementEndpoint is the Functions management API used for
	// GetFunction; empty means the region's own
	// (https://functions.<region>.oci.oraclecloud.com). Default empty.
	ManagementEndpoint string `yaml:"management_endpoint"`
	// OCI is how requests are authenticated.
	OCI OCI `yaml:"oci"`
}

// InvokeTimeout bounds one invocation attempt, with the OCI SDK's meaning
// of timeout=(connect, read).
type InvokeTimeout struct {
	// Connect bounds establishing the connection (dial and TLS
	// handshake). Default 10s.
	Connect time.Duration `yaml:"connect"`
	// Read bounds every wait once connected: for the answer's status and
	// headers, and between reads of its body (an idle timeout: a body that
	// keeps arriving is read however long it takes). A job's
	// Invoke-Timeout header sets its own read timeout, capped by this one.
	// Default 60s.
	Read time.Duration `yaml:"read"`
	// Total caps one attempt from start to the last byte of the answer;
	// 0 means no cap beyond Connect and Read. Default 0.
	Total time.Duration `yaml:"total"`
}

// OCI is request signing.
type OCI struct {
	// Auth is api_key, instance_principal, resource_principal,
	// oke_workload_identity or none (unsigned, for the emulator).
	// Default "api_key".
	Auth string `yaml:"auth"`
	// ConfigFile is the OCI config file, for api_key. Default "~/.oci/config".
	ConfigFile string `yaml:"config_file"`
	// Profile is the profile in ConfigFile, for api_key. Default "DEFAULT".
	Profile string `yaml:"profile"`
	// Passphrase unlocks the API key; secret. Default "".
	Passphrase string `yaml:"passphrase"`
	// PassphraseFile is a file holding the passphrase instead; not with
	// Passphrase. Default "".
	PassphraseFile string `yaml:"passphrase_file"`
}

// Retry is the backoff between attempts at one job.
type Retry struct {
	// MaxAttempts counts attempts including the first. Default 8.
	MaxAttempts int `yaml:"max_attempts"`
	// InitialInterval is the first backoff. Default 500ms.
	InitialInterval time.Duration `yaml:"initial_interval"`
	// MaxInterval caps one backoff. Default 30s.
	MaxInterval time.Duration `yaml:"max_interval"`
	// Multiplier grows the backoff after each attempt. Default 2.
	Multiplier float64 `yaml:"multiplier"`
	// MaxElapsed caps the time spent retrying one job; 0 is no cap.
	// Default 10m.
	MaxElapsed time.Duration `yaml:"max_elapsed"`
	// Randomization is the jitter factor, 0 to 1. Default 0.5.
	Randomization float64 `yaml:"randomization"`
	// On lists the retryable failures: network, timeout, NNN, NNN/Code or
	// */Code (invoke.ParseRetryRule). Default invoke.RetryOnDefault():
	// ["network", "timeout", "429", "500", "502", "503", "504",
	// "409/IncorrectState", "409/LockConflict"].
	On []string `yaml:"on"`
	// Never lists failures never retried even if On matches, in the same
	// form. Default [].
	Never []string `yaml:"never"`
}

// Breaker is the circuit breaker.
type Breaker struct {
	// Mode is function (one breaker per function), host (per endpoint host)
	// or off. Default "function".
	Mode string `yaml:"mode"`
	// FailureRatio of failed requests in Interval opens the breaker.
	// Default 0.8.
	FailureRatio float64 `yaml:"failure_ratio"`
	// MinRequests is the fewest requests in Interval before the ratio
	// counts. Default 10.
	MinRequests int `yaml:"min_requests"`
	// Interval is the window over which the ratio is counted. Default 120s.
	Interval time.Duration `yaml:"interval"`
	// OpenTimeout is how long an open breaker waits before probing.
	// Default 30s.
	OpenTimeout time.Duration `yaml:"open_timeout"`
	// HalfOpenRequests is the number of probes let through. Default 1.
	HalfOpenRequests int `yaml:"half_open_requests"`
}

// HTTP is the admin endpoint.
type HTTP struct {
	// Listen is the admin address; empty turns the endpoint off.
	// Default "127.0.0.1:9090".
	Listen string `yaml:"listen"`
	// Pprof serves /debug/pprof on the admin endpoint. On an address
	// other than loopback it needs TokenFile. Default false.
	Pprof bool `yaml:"pprof"`
	// TokenFile holds the bearer token every request but /healthz and
	// /readyz must carry; empty: no token. There is no inline form, so the
	// token is never in the YAML or on a command line. Default "".
	TokenFile string `yaml:"token_file"`
	// Token is read from TokenFile by Load; it is not a key.
	Token string `yaml:"-"`
}

// Log is log output.
type Log struct {
	// Level is trace, debug, info, warn or error. Default "info".
	Level string `yaml:"level"`
	// Format is json or console. Default "json".
	Format string `yaml:"format"`
}

// Tracing is OpenTelemetry tracing (package tracing).
type Tracing struct {
	// Exporter is off, otlp-http or otlp-grpc. Default "off".
	Exporter string `yaml:"exporter"`
	// Endpoint is the collector's URL (http:// for plain text); empty
	// takes the exporter's default, or OTEL_EXPORTER_OTLP_ENDPOINT.
	// Default "".
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of the traces started here that are
	// sampled, 0 to 1; a job's traceparent decides for its own trace.
	// Default 1.
	SampleRatio float64 `yaml:"sample_ratio"`
}

// Emulator is the local function emulator.
type Emulator struct {
	// Listen is the emulator's address. Default "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// PublicKey is a PEM public key file that request signatures are
	// verified against; empty means not verified. Default "".
	PublicKey string `yaml:"public_key"`
	// Default is the behaviour spec of functions not in Functions.
	// Default "echo".
	Default string `yaml:"default"`
	// Functions maps a function OCID to its behaviour spec. Default empty.
	Functions map[string]string `yaml:"functions"`
	// RecordCalls keeps the last this many calls of each function (request
	// id, status, times), listed by GET /emulator/calls/{functionId}; 0
	// keeps none. Default 0.
	RecordCalls int `yaml:"record_calls"`
}

// Route fans the events of a stream out into jobs: for every event, one
// job per function, each with a dedupe id derived from the event, so a
// redelivered event never enqueues a job twice.
type Route struct {
	// Name names the route in logs, in its durable consumer
	// (invoke-route-<name>) and in its jobs' ids. Required: 1 to 32 of
	// A-Z a-z 0-9 _ -, unique among routes.
	Name string `yaml:"name"`
	// Stream is the event stream the route reads. Required.
	Stream string `yaml:"stream"`
	// StreamSubjects, when set, has the worker create Stream with these
	// subjects if it does not exist; empty means it must exist. Default [].
	StreamSubjects []string `yaml:"stream_subjects"`
	// Subjects filter the stream's events (wildcards allowed); empty takes
	// every event. Default [].
	Subjects []string `yaml:"subjects"`
	// Functions are the function OCIDs every event is sent to. Required.
	Functions []string `yaml:"functions"`
	// Intent is the jobs' Fn-Intent: httprequest, cloudevent (events are
	// sent as structured CloudEvents) or empty (none). Default "".
	Intent string `yaml:"intent"`
	// JobSubject is where the jobs are published, under
	// streams.jobs_subjects. Default invoke.jobs.<name>.
	JobSubject string `yaml:"job_subject"`
	// Deliver is all (every event the stream holds) or new (only events
	// stored after the route's consumer was first created). Default all.
	Deliver string `yaml:"deliver"`
	// Headers maps event headers onto job headers.
	Headers RouteHeaders `yaml:"headers"`
	// CloudEvent names plain events wrapped into CloudEvents (intent
	// cloudevent only).
	CloudEvent RouteCloudEvent `yaml:"cloudevent"`
}

// RouteHeaders maps event headers onto job headers: Copy, then Rename,
// then Set. traceparent, tracestate and Content-Type always travel.
type RouteHeaders struct {
	// Copy lists event headers copied to every job; "*" copies all but
	// NATS's own (Nats-*) and those the route sets. Default [].
	Copy []string `yaml:"copy"`
	// Rename copies an event header to a job header of another name.
	// Default {}.
	Rename map[string]string `yaml:"rename"`
	// Set gives job headers fixed values, e.g. Invoke-Timeout: 30s.
	// Default {}.
	Set map[string]string `yaml:"set"`
}

// RouteCloudEvent names the CloudEvents made from plain events.
type RouteCloudEvent struct {
	// Source is the source attribute. Default /<stream>.
	Source string `yaml:"source"`
	// Type is the type attribute. Default: the event's subject.
	Type string `yaml:"type"`
}
