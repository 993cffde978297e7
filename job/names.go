package job

// The contract's stream names and subjects (docs/contract.md): the
// defaults of queue.Topology, and of every library that needs a name
// without importing queue (worker, dlq). The configuration's
// streams.* defaults come from here through queue.DefaultTopology.
const (
	JobsStreamDefault    = "INVOKE_JOBS"
	ResultsStreamDefault = "INVOKE_RESULTS"
	DLQStreamDefault     = "INVOKE_DLQ"
	// JobsSubjectDefault is the jobs stream's subject filter.
	JobsSubjectDefault   = "invoke.jobs.>"
	ResultsPrefixDefault = "invoke.results"
	DLQPrefixDefault     = "invoke.dlq"
	WaitPrefixDefault    = "invoke.wait"
)
