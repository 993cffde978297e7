// Package jobfile is `worker enqueue --file x.jsonl`: it publishes a
// JSONL job file (client.EnqueueLines) and reports as the contract says:
// job ids on stdout in line order, rejected lines by number on stderr,
// with --wait one JSON line per outcome and the counts, and a progress bar
// on a terminal. It owns that reporting; the format is client's, the flags
// and exit codes are the command's.
package jobfile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/invoke-worker/worker/client"
	"github.com/invoke-worker/worker/internal/render"
)

// Options are a run's settings and writers.
type Options struct {
	// Name is the file's name, for messages.
	Name string
	// Template gives every line's defaults (the command's flags).
	Template client.Job
	// Wait waits for every job's outcome, for at most WaitFor (0: as
	// long as it takes).
	Wait           bool
	WaitFor        time.Duration
	Stdout, Stderr io.Writer
}

// Failed is a run that did its work but failed some of it (lines rejected,
// jobs dead-lettered, a wait given up): Msg, when not empty, says what.
type Failed struct{ Msg string }

func (f *Failed) Error() string { return f.Msg }

// fileRun is the state of one `enqueue --file x.jsonl`.
type fileRun struct {
	stdout, stderr io.Writer
	bar            *progressbar.ProgressBar // nil: no terminal

	// EnqueueLines reports one line at a time.
	rejected []int    // line numbers
	reasons  []string // the first maxReasons, "line N: why"
	accepted map[client.JobID]int
	ids      []client.JobID
	dups     int
	outErr   error
}

const maxReasons = 20

func (r *fileRun) reject(line int, err error) {
	r.rejected = append(r.rejected, line)
	if len(r.reasons) < maxReasons {
		r.reasons = append(r.reasons, fmt.Sprintf("line %d: %v", line, err))
	}
	step(r.bar)
}

// step advances bar, when there is one.
func step(bar *progressbar.ProgressBar) {
	if bar != nil {
		_ = bar.Add(1)
	}
}

// finish clears bar, when there is one.
func finish(bar *progressbar.ProgressBar) {
	if bar != nil {
		_ = bar.Finish()
	}
}

// await waits for the outcome of every accepted job, printing one JSON
// line per outcome and a count at the end.
func (r *fileRun) await(ctx context.Context, c *client.Client, opt Options) error {
	if len(r.ids) == 0 {
		return nil
	}
	if opt.WaitFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opt.WaitFor)
		defer cancel()
	}
	fmt.Fprintf(r.stderr, "waiting for %d outcomes\n", len(r.ids))
	var bar *progressbar.ProgressBar
	if r.bar != nil {
		bar = newBar(r.stderr, len(r.ids), "outcomes")
	}
	succeeded := 0
	failed := map[string]int{}
	enc := json.NewEncoder(r.stdout)
	err := c.AwaitAll(ctx, r.ids, func(o client.Outcome) {
		rec := struct {
			Line    int    `json:"line"`
			ID      string `json:"id"`
			Outcome string `json:"outcome"`
			Status  int    `json:"status,omitempty"`
			Reason  string `json:"reason,omitempty"`
			Error   string `json:"error,omitempty"`
		}{Line: r.accepted[o.JobID], ID: o.JobID, Outcome: "completed", Status: o.Status}
		if o.DeadLettered {
			rec.Outcome, rec.Reason, rec.Error = "dead-lettered", o.Reason, o.Error
			failed[o.Reason]++
		} else {
			succeeded++
		}
		if r.outErr == nil {
			r.outErr = enc.Encode(rec)
		}
		step(bar)
	})
	finish(bar)
	nFailed := 0
	var parts []string
	for _, reason := range slices.Sorted(maps.Keys(failed)) {
		nFailed += failed[reason]
		parts = append(parts, fmt.Sprintf("%s %d", reason, failed[reason]))
	}
	msg := fmt.Sprintf("%d succeeded, %d failed", succeeded, nFailed)
	if nFailed > 0 {
		msg += " (dead-lettered: " + strings.Join(parts, ", ") + ")"
	}
	if missing := len(r.ids) - succeeded - nFailed; missing > 0 {
		msg += fmt.Sprintf(", %d without an outcome yet", missing)
	}
	fmt.Fprintln(r.stderr, msg)
	switch {
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		return &Failed{Msg: fmt.Sprintf("worker: gave up waiting after %s (the rest may still complete)", opt.WaitFor)}
	case err != nil:
		return err
	case r.outErr != nil:
		return r.outErr
	case nFailed > 0:
		return &Failed{}
	}
	return nil
}

// newBar is a progress bar of n steps on w, a terminal.
func newBar(w io.Writer, n int, what string) *progressbar.ProgressBar {
	return progressbar.NewOptions(n,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("jobs"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30),
	)
}

// lineList prints line numbers, at most 50 of them.
func lineList(lines []int) string {
	var b strings.Builder
	for i, n := range lines {
		if i == 50 {
			fmt.Fprintf(&b, " ... (%d more)", len(lines)-50)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// Run publishes the jobs of f, a JSONL job file of total non-blank lines
// (client.CountJobLines), with c, as opt says.
func Run(ctx context.Context, c *client.Client, f io.Reader, total int, opt Options) error {
	tmpl := opt.Template
	r := &fileRun{stdout: opt.Stdout, stderr: opt.Stderr, accepted: map[client.JobID]int{}}
	if render.IsCharDevice(r.stderr) && !render.IsCharDevice(r.stdout) && total > 0 {
		r.bar = newBar(r.stderr, total, "enqueue")
	}

	err := c.EnqueueLines(ctx, f, tmpl, func(res client.LineResult) {
		if res.Err != nil {
			r.reject(res.Line, res.Err)
			return
		}
		if res.Duplicate {
			r.dups++
		}
		if _, seen := r.accepted[res.ID]; !seen {
			r.accepted[res.ID] = res.Line
			r.ids = append(r.ids, res.ID)
		}
		if !opt.Wait && r.outErr == nil {
			_, r.outErr = fmt.Fprintln(r.stdout, res.ID)
		}
		step(r.bar)
	})
	finish(r.bar)
	if err != nil && !errors.Is(err, client.ErrIncomplete) {
		return err
	}
	if r.outErr != nil {
		return r.outErr
	}
	summary := fmt.Sprintf("enqueued %d jobs from %s", len(r.ids), opt.Name)
	if r.dups > 0 {
		summary += fmt.Sprintf(" (%d already enqueued: duplicates of stored jobs)", r.dups)
	}
	for _, s := range r.reasons {
		fmt.Fprintln(r.stderr, s)
	}
	if more := len(r.rejected) - len(r.reasons); more > 0 {
		fmt.Fprintf(r.stderr, "... and %d more rejected\n", more)
	}
	fmt.Fprintln(r.stderr, summary)

	var failed error
	if len(r.rejected) > 0 {
		slices.Sort(r.rejected)
		what := "lines"
		if len(r.rejected) == 1 {
			what = "line"
		}
		failed = &Failed{Msg: fmt.Sprintf("worker: %d %s rejected: %s", len(r.rejected), what, lineList(r.rejected))}
	}
	if !opt.Wait {
		if failed != nil {
			return failed
		}
		return nil
	}
	return errors.Join(failed, r.await(ctx, c, opt))
}
