// The lines and summaries of `worker dlq replay` and `worker dlq purge`.

package dlqview

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/invoke-worker/worker/dlq"
	"github.com/invoke-worker/worker/dlq/dlqops"
	"github.com/invoke-worker/worker/internal/render"
)

// EventNote is what a replay event adds to its outcome: a note, a warning
// that the job fails again at once, an error; one line.
func EventNote(ev dlqops.ReplayEvent) string {
	note := ev.Note
	if ev.Warning != "" {
		note = strings.TrimPrefix(note+"; "+ev.Warning, "; ")
	}
	if ev.Err != nil {
		if note != "" {
			note += ": "
		}
		note += ev.Err.Error()
	}
	return render.OneLine(note)
}

// EventLine is one replay event as a line: outcome, sequence, job id,
// subject and note.
func EventLine(ev dlqops.ReplayEvent) string {
	s := fmt.Sprintf("%-16s %d  %s", ev.Outcome, ev.Record.Seq, ev.Record.JobID)
	if ev.Subject != "" && (ev.Outcome == dlqops.Replayed || ev.Outcome == dlqops.WouldReplay) {
		s += "  → " + ev.Subject
	}
	if note := EventNote(ev); note != "" {
		s += "  (" + note + ")"
	}
	return s
}

// ReplaySummary is the closing line of a replay (or dry run) and, with
// --watch, the outcomes of the replayed jobs.
func ReplaySummary(res dlqops.ReplayResult, keep bool) string {
	var b strings.Builder
	if res.DryRun {
		fmt.Fprintf(&b, "Would replay %d, already replayed %d, skipped %d", res.Replayed, res.AlreadyReplayed, res.Skipped)
		if res.Failed > 0 {
			fmt.Fprintf(&b, ", cannot replay %d", res.Failed)
		}
		b.WriteString(" (dry run: nothing changed).")
		return b.String()
	}
	fmt.Fprintf(&b, "Replayed %d, skipped %d", res.Replayed, res.Skipped+res.AlreadyReplayed)
	if res.AlreadyReplayed > 0 {
		fmt.Fprintf(&b, " (%d already replayed)", res.AlreadyReplayed)
	}
	fmt.Fprintf(&b, ", failed %d", res.Failed)
	if res.Left > 0 {
		fmt.Fprintf(&b, ", not reached %d", res.Left)
	}
	if keep {
		b.WriteString("; records kept.")
	} else {
		fmt.Fprintf(&b, "; %s deleted.", render.Plural(res.Deleted, "record"))
	}
	if t := res.Watch; t != nil {
		fmt.Fprintf(&b, "\nOutcomes of the replayed jobs: %d succeeded, %d failed again", t.Succeeded, t.FailedAgain)
		if t.Pending > 0 {
			fmt.Fprintf(&b, ", %d still running (not waited for)", t.Pending)
		}
		b.WriteString(".")
	}
	return b.String()
}

// Describe sums records up for a confirmation prompt.
func Describe(rs []dlq.Record, now time.Time) string {
	reasons := map[dlq.Reason]int{}
	functions := map[string]int{}
	oldest, newest := rs[0].FailedAt, rs[0].FailedAt
	for _, r := range rs {
		reasons[r.Reason]++
		functions[r.FunctionID]++
		oldest = minTime(oldest, r.FailedAt)
		newest = maxTime(newest, r.FailedAt)
	}
	var parts []string
	for _, r := range dlq.Reasons() {
		if reasons[r] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", reasons[r], r))
		}
	}
	fns := make([]string, 0, len(functions))
	for fn := range functions {
		fns = append(fns, fn)
	}
	sort.Slice(fns, func(i, j int) bool { return functions[fns[i]] > functions[fns[j]] })
	var b strings.Builder
	span := render.Age(now.Sub(oldest)) + " ago"
	if a, b := render.Age(now.Sub(oldest)), render.Age(now.Sub(newest)); a != b {
		span = "between " + a + " and " + b + " ago"
	}
	fmt.Fprintf(&b, "%s match: %s; failed %s.\n", render.Plural(len(rs), "record"), strings.Join(parts, ", "), span)
	for i, fn := range fns {
		if i == 5 {
			fmt.Fprintf(&b, "  … and %d more functions\n", len(fns)-5)
			break
		}
		label := fn
		if label == "" {
			label = "(no function id)"
		}
		fmt.Fprintf(&b, "  %6d  %s\n", functions[fn], label)
	}
	return b.String()
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// ReplayReport draws a replay as it runs: the plan of a dry run as a
// table, else a progress line (with the watch's tally) and a line for every
// record that was not simply replayed; on a pipe, a line per record.
type ReplayReport struct {
	out, errOut  io.Writer
	stream       string
	dryRun, keep bool
	watch        *dlqops.WatchOptions
	filter       dlqops.Filter

	bar     *render.Progress
	perLine bool
	n       int
	counts  map[dlqops.ReplayOutcome]int
	tally   *dlqops.WatchTally
	plan    *render.Table
	doomed  int // jobs that fail again at once (ReplayEvent.Warning)
}

// NewReplayReport draws the replay opts describes on out (the plan, the
// lines, the summary) and errOut (the progress): it sets opts' OnPlan,
// OnEvent and OnWatch.
func NewReplayReport(out, errOut io.Writer, stream string, opts *dlqops.ReplayOptions) *ReplayReport {
	r := &ReplayReport{
		out: out, errOut: errOut, stream: stream, dryRun: opts.DryRun, keep: opts.Keep, watch: opts.Watch,
		counts: map[dlqops.ReplayOutcome]int{},
		plan:   &render.Table{Cols: []render.Column{{Title: "SEQ", Right: true}, {Title: "JOB"}, {Title: "ACTION"}, {Title: "SUBJECT"}, {Title: "FUNCTION", Cut: 2, Min: 20, Tail: true}, {Title: "NOTE", Cut: 1, Min: 16}}},
	}
	opts.OnPlan, opts.OnEvent, opts.OnWatch = r.onPlan, r.onEvent, r.onWatch
	r.filter = opts.Filter
	return r
}

func (r *ReplayReport) status() string {
	s := fmt.Sprintf("replayed %d", r.counts[dlqops.Replayed])
	if k := r.counts[dlqops.AlreadyReplayed] + r.counts[dlqops.Skipped]; k > 0 {
		s += fmt.Sprintf(", skipped %d", k)
	}
	if k := r.counts[dlqops.Failed]; k > 0 {
		s += fmt.Sprintf(", failed %d", k)
	}
	if t := r.tally; t != nil {
		s += fmt.Sprintf(" │ ok %d, failed again %d, running %d", t.Succeeded, t.FailedAgain, t.Pending)
	}
	return s
}

func (r *ReplayReport) onPlan(rs []dlq.Record) {
	switch {
	case len(rs) == 0:
	case r.dryRun:
		fmt.Fprintf(r.out, "Dry run: %s selected in %s; nothing is published or deleted.\n\n", render.Plural(len(rs), "record"), r.stream)
	default:
		if r.watch != nil {
			fmt.Fprintf(r.errOut, "Replaying %s from %s, watching their outcomes (stop above %.0f%% failed again, judged after %d).\n",
				render.Plural(len(rs), "record"), r.stream, r.watch.MaxFailureRatio*100, r.watch.MinSample)
		} else {
			fmt.Fprintf(r.errOut, "Replaying %s from %s.\n", render.Plural(len(rs), "record"), r.stream)
		}
		r.bar = render.NewProgress(r.errOut, "replay", len(rs))
		r.perLine = r.bar == nil
	}
}

func (r *ReplayReport) onEvent(ev dlqops.ReplayEvent) {
	r.n++
	r.counts[ev.Outcome]++
	if ev.Warning != "" {
		r.doomed++
	}
	if r.dryRun {
		action := ev.Outcome.String()
		if ev.Outcome == dlqops.AlreadyReplayed && !r.keep {
			action = "delete only"
		}
		r.plan.Add(strconv.FormatUint(ev.Record.Seq, 10), ev.Record.JobID, action, Dash(ev.Subject), Dash(ev.FunctionID), EventNote(ev))
		return
	}
	line := EventLine(ev)
	switch {
	case r.perLine:
		fmt.Fprintln(r.out, line)
	case ev.Outcome != dlqops.Replayed || ev.Err != nil:
		r.bar.Above("%s", line)
	}
	r.bar.Set(r.n, r.status())
}

func (r *ReplayReport) onWatch(t dlqops.WatchTally) {
	r.tally = &t
	r.bar.Set(r.n, r.status())
}

// Finish erases the progress line and prints the plan of a dry run, then
// the summary, given what Replay returned; or, when nothing was selected,
// says so. The error is out's.
func (r *ReplayReport) Finish(res dlqops.ReplayResult, err error) error {
	r.bar.Finish()
	out := r.out
	if r.dryRun && res.Selected > 0 {
		if rerr := r.plan.Render(out, render.Width(out)); rerr != nil {
			return rerr
		}
		fmt.Fprintln(out)
	}
	if res.Selected == 0 && err == nil {
		_, err := fmt.Fprintln(out, NoRecords(r.filter, r.stream))
		return err
	}
	fmt.Fprintln(out, ReplaySummary(res, r.keep))
	if r.doomed > 0 {
		see := ""
		if r.dryRun {
			see = ": see NOTE"
		}
		fmt.Fprintf(out, "%d of these jobs fail again at once, without an invocation (invalid as written, or past their deadline)%s.\n", r.doomed, see)
	}
	return nil
}

// PurgeReport draws a purge: the confirmation prompt, a progress line and
// a line for every record that could not be deleted, and the outcome (the
// table of what a dry run would delete).
type PurgeReport struct {
	out, errOut io.Writer
	stream      string
	now         time.Time
	opts        *dlqops.PurgeOptions

	bar     *render.Progress
	n       int
	matched []dlq.Record
}

// NewPurgeReport draws the purge opts describes: it sets opts' OnPlan and
// OnDelete.
func NewPurgeReport(out, errOut io.Writer, stream string, now time.Time, opts *dlqops.PurgeOptions) *PurgeReport {
	r := &PurgeReport{out: out, errOut: errOut, stream: stream, now: now, opts: opts}
	opts.OnPlan = func(rs []dlq.Record) { r.matched = rs }
	opts.OnDelete = r.onDelete
	return r
}

// AskFrom makes the purge ask for confirmation on errOut, reading the
// answer (y or yes) from in.
func (r *PurgeReport) AskFrom(in io.Reader) {
	r.opts.Confirm = func(rs []dlq.Record) bool {
		fmt.Fprintf(r.errOut, "%s\nDelete %s from %s? This cannot be undone. [y/N] ", Describe(rs, r.now), render.Plural(len(rs), "record"), r.stream)
		answer, _ := bufio.NewReader(in).ReadString('\n')
		answer = strings.ToLower(strings.TrimSpace(answer))
		return answer == "y" || answer == "yes"
	}
}

func (r *PurgeReport) onDelete(rec dlq.Record, err error) {
	if r.n == 0 {
		r.bar = render.NewProgress(r.errOut, "purge", len(r.matched))
	}
	r.n++
	if err != nil {
		r.bar.Above("failed  %d  %s: %v", rec.Seq, rec.JobID, err)
	}
	r.bar.Set(r.n, "")
}

// Finish erases the progress line and says, given what Purge returned,
// that nothing was selected, what a dry run would delete, or (unless the
// purge was not confirmed) what was deleted. The error is out's.
func (r *PurgeReport) Finish(res dlqops.PurgeResult, err error) error {
	r.bar.Finish()
	out := r.out
	switch {
	case res.Selected == 0 && err == nil:
		_, err := fmt.Fprintln(out, NoRecords(r.opts.Filter, r.stream))
		return err
	case r.opts.DryRun:
		if rerr := RecordTable(r.matched, r.now).Render(out, render.Width(out)); rerr != nil {
			return rerr
		}
		_, err := fmt.Fprintf(out, "\nWould delete %s from %s (dry run: nothing changed).\n", render.Plural(res.Selected, "record"), r.stream)
		return err
	case errors.Is(err, dlqops.ErrNotConfirmed):
		return nil
	}
	fmt.Fprintf(out, "Deleted %s from %s", render.Plural(res.Deleted, "record"), r.stream)
	if res.Failed > 0 {
		fmt.Fprintf(out, "; %d could not be deleted", res.Failed)
	}
	fmt.Fprintln(out, ".")
	return nil
}
