package dlqops

import (
	"math"
	"time"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/job"
)

// ReplayOutcome is what Replay did with one record.
type ReplayOutcome int

const (
	// Replayed: the job was enqueued (and the record deleted unless Keep).
	Replayed ReplayOutcome = iota + 1
	// WouldReplay: dry run; the job would be enqueued.
	WouldReplay
	// AlreadyReplayed: an earlier, interrupted run had enqueued the job;
	// this run only finished its clean-up (or, dry run, would).
	AlreadyReplayed
	// Skipped: the record is gone or no longer matches.
	Skipped
	// Failed: the job could not be enqueued; the record stays.
	Failed
)

func (o ReplayOutcome) String() string {
	switch o {
	case Replayed:
		return "replayed"
	case WouldReplay:
		return "would replay"
	case AlreadyReplayed:
		return "already replayed"
	case Skipped:
		return "skipped"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// ReplayOptions select and pace a replay.
type ReplayOptions struct {
	// Filter selects the records. Filter.Seqs names them one by one;
	// without Seqs, All must be set.
	Filter Filter
	// All confirms that a replay without Seqs means every record the
	// filter selects.
	All bool
	// ToFunction, when set, replays every job against this function OCID
	// instead of its own.
	ToFunction string
	// Rate is the most jobs enqueued per second; 0 means no limit.
	Rate float64
	// DryRun reads and reports, and changes nothing.
	DryRun bool
	// Keep leaves the records in the stream after replaying them (their
	// markers keep them from being replayed twice).
	Keep bool
	// Watch follows the replayed jobs' outcomes and stops the replay when
	// too many fail again. Ignored on a dry run.
	Watch *WatchOptions
	// OnPlan is called once, before anything is replayed, with the
	// selected records (without Header and History).
	OnPlan func(selected []dlq.Record)
	// OnEvent is called after each record, on the calling goroutine.
	OnEvent func(ReplayEvent)
	// OnWatch is called, on the calling goroutine, when the watch's tally
	// changed: between records and while waiting for the last outcomes.
	OnWatch func(WatchTally)
}

// WatchOptions make a replay self-protecting.
type WatchOptions struct {
	// MaxFailureRatio stops the replay once more than this share of the
	// replayed jobs that finished failed again. Default 0.5.
	MaxFailureRatio float64
	// MinSample is how many replayed jobs must have finished before the
	// ratio is judged. Default 10.
	MinSample int
	// Settle is how long to wait, after the last record, for the
	// outstanding outcomes. Default 2m.
	Settle time.Duration
}

// Defaults of WatchOptions.
const (
	MaxFailureRatioDefault = 0.5
	MinSampleDefault       = 10
	SettleDefault          = 2 * time.Minute
)

func (w WatchOptions) withDefaults() WatchOptions {
	if w.MaxFailureRatio == 0 {
		w.MaxFailureRatio = MaxFailureRatioDefault
	}
	if w.MinSample == 0 {
		w.MinSample = MinSampleDefault
	}
	if w.Settle == 0 {
		w.Settle = SettleDefault
	}
	return w
}

// Validate reports the first unusable field.
func (w WatchOptions) Validate() error {
	switch {
	case math.IsNaN(w.MaxFailureRatio) || w.MaxFailureRatio < 0 || w.MaxFailureRatio >= 1:
		return fieldErr("max-failure-ratio", "%v: want a share in [0, 1), such as 0.5", w.MaxFailureRatio)
	case w.MinSample < 0:
		return fieldErr("min-sample", "%d: must not be negative", w.MinSample)
	case w.Settle < 0:
		return fieldErr("watch-timeout", "%s: must not be negative", w.Settle)
	}
	return nil
}

// Validate reports the first unusable field.
func (o ReplayOptions) Validate() error {
	if err := validateSelection(o.Filter, o.All); err != nil {
		return err
	}
	if o.ToFunction != "" {
		if err := job.ValidateFunctionID(o.ToFunction); err != nil {
			return &FieldError{Field: "to-function", Err: err}
		}
	}
	if math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) || o.Rate < 0 {
		return fieldErr("rate", "%v: want a positive number of jobs per second", o.Rate)
	}
	if o.Watch != nil {
		return o.Watch.Validate()
	}
	return nil
}

func validateSelection(f Filter, all bool) error {
	if err := f.Validate(); err != nil {
		return err
	}
	switch {
	case all && len(f.Seqs) > 0:
		return fieldErr("all", "name record sequences or select all, not both")
	case !all && len(f.Seqs) == 0:
		return fieldErr("all", "name record sequences, or select all (with filters to narrow)")
	}
	return nil
}

// ReplayEvent is what happened to one record.
type ReplayEvent struct {
	Record  dlq.Record
	Outcome ReplayOutcome
	// Subject and FunctionID are where the job went (or would go).
	Subject    string
	FunctionID string
	// MsgID is the replayed job's Nats-Msg-Id.
	MsgID string
	// Deleted is set when the record was removed from the stream.
	Deleted bool
	// Note says why a record was skipped, already replayed or failed, or
	// what went wrong after a successful replay.
	Note string
	// Warning, for a job replayed (or that would be), says why the worker
	// will dead-letter it again at once: it is invalid as written, or its
	// Invoke-Deadline has passed.
	Warning string
	Err     error
}

// ReplayResult sums a replay up.
type ReplayResult struct {
	DryRun   bool
	Selected int
	// Replayed counts jobs enqueued (on a dry run: that would be).
	Replayed int
	// AlreadyReplayed counts records whose job an earlier run had
	// enqueued; Skipped counts records gone or no longer matching.
	AlreadyReplayed int
	Skipped         int
	Failed          int
	// Deleted counts records removed from the stream.
	Deleted int
	// Left counts selected records not reached because the replay stopped.
	Left int
	// Watch is the replayed jobs' outcomes, when watched.
	Watch *WatchTally
	// Stopped is set when the watch stopped the replay.
	Stopped bool
}

// WatchTally counts the outcomes of a watched replay's jobs.
type WatchTally struct {
	Succeeded   int
	FailedAgain int
	// Pending are replayed jobs with no outcome yet.
	Pending int
}
